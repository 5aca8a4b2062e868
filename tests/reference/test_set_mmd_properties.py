"""Properties of the per-set MMD^2 averaged over a batch (NST) on the float64 reference."""

import math

import mpmath as mp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kd2m_ref import oracle as O
from kd2m_ref import reference as R
from kd2m_ref.reference.kernel import normalize_samples
from kd2m_ref.testing.strategies import set_mmd_example
from kd2m_ref.testing.tolerance import set_mmd_tolerance


def _atol(ex):
    """The float64 error bound of the example (absolute: MMD^2 is a difference of kernel sums)."""
    return set_mmd_tolerance(ex, "float64")[1]


def _mmd_kwargs(ex):
    return {k: v for k, v in ex.kwargs.items() if k != "normalize"}


@settings(max_examples=30)
@given(set_mmd_example())
def test_set_mmd_reference_matches_oracle_everywhere(ex):
    """covers("set_mmd", "oracle"): over the whole domain (near-equal sets included), the reference is within
    the float64 error model of the 50-digit oracle, which normalises in mpmath (tests/test_layers.py checks
    1e-12 relative where the problem is well conditioned)."""
    ref = ex.call(R.set_mmd)
    with mp.workdps(50):
        exact = ex.call(O.set_mmd)
    assert abs(mp.mpf(ref) - exact) <= _atol(ex) / 8, (ref, exact)


@given(set_mmd_example())
def test_one_set_is_mmd(ex):
    """covers("set_mmd", "one_set_is_mmd"): B = 1 with normalize="none" is ``mmd`` on the flattened set, bit
    for bit; with "l2" it is ``mmd`` on the normalised samples."""
    xs, xt = (x[:1] for x in ex.args)
    flat_s, flat_t = xs.reshape(len(xs[0]), -1), xt.reshape(len(xt[0]), -1)
    kw = _mmd_kwargs(ex)
    assert R.set_mmd(xs, xt, **kw, normalize="none") == R.mmd(flat_s, flat_t, **kw)
    assert R.set_mmd(xs, xt, **kw, normalize="l2") == R.mmd(normalize_samples(flat_s), normalize_samples(flat_t), **kw)


@given(set_mmd_example(), st.randoms(use_true_random=False))
def test_value_is_the_mean_over_sets(ex, rnd):
    """covers("set_mmd", "mean_over_sets"): the value of a batch is the mean of the values of its sets
    (a bandwidth rule is evaluated per set), and does not depend on the order of the sets."""
    xs, xt = ex.args
    per_set = [R.set_mmd(xs[b:b + 1], xt[b:b + 1], **ex.kwargs) for b in range(len(xs))]
    value = ex.call(R.set_mmd)
    assert value == math.fsum(per_set) / len(xs)
    order = list(range(len(xs)))
    rnd.shuffle(order)
    assert R.set_mmd(xs[order], xt[order], **ex.kwargs) == value


@given(set_mmd_example(), st.sampled_from([3.7, 1e-3, 2.0**-600, 2.0**600, 0.5]))
def test_l2_normalisation_is_scale_invariant(ex, c):
    """covers("set_mmd", "scale_invariance"): with normalize="l2", multiplying samples by c > 0 (each sample
    its own factor) changes nothing: bit for bit for powers of two (even 2^-600, 2^600, where a naive norm
    under- or overflows), within the float64 bound otherwise."""
    ex.kwargs["normalize"] = "l2"
    xs, xt = ex.args
    factors = np.where(np.arange(xs.shape[1]).reshape(1, -1, *([1] * (xs.ndim - 2))) % 2 == 0, c, 1.0)
    scaled = R.set_mmd(xs * factors, xt * c, **ex.kwargs)
    value = ex.call(R.set_mmd)
    if math.log2(c).is_integer():
        assert scaled == value
    else:
        assert abs(scaled - value) <= 2 * _atol(ex)


@given(set_mmd_example())
def test_nonnegative_and_zero_at_equality(ex):
    """covers("set_mmd", "nonnegative_zero_at_equality"): the V-statistic is >= 0 (to rounding); exactly 0
    when each teacher set is the student set, its rows permuted, or (normalize="l2") rescaled by powers of
    two."""
    ex.kwargs["estimator"] = "biased"
    xs, _ = ex.args
    assert ex.call(R.set_mmd) >= -_atol(ex)
    assert R.set_mmd(xs, xs.copy(), **ex.kwargs) == 0.0
    assert R.set_mmd(xs, xs[:, ::-1].copy(), **ex.kwargs) == 0.0
    powers = 2.0 ** (np.arange(xs.shape[1]) % 3 - 1).reshape(1, -1, *([1] * (xs.ndim - 2)))
    assert R.set_mmd(xs, xs * powers, **{**ex.kwargs, "normalize": "l2"}) == 0.0


@given(set_mmd_example())
def test_feature_map_layout_is_its_flattened_sets(ex):
    """covers("set_mmd", "layout_equivalence"): (B, C, H, W) maps equal their (B, C, H·W) reshape, and
    (B, n, d) points their (B, n, d, 1) view, bit for bit."""
    xs, xt = ex.args
    value = ex.call(R.set_mmd)
    flat = [x.reshape(x.shape[0], x.shape[1], -1) for x in (xs, xt)]
    assert R.set_mmd(*flat, **ex.kwargs) == value
    assert R.set_mmd(*(x[..., None] for x in flat), **ex.kwargs) == value


def test_zero_sample_stays_zero():
    """A dead channel (all zeros) is kept as a zero sample, as F.normalize does, not an error: the value is
    that of the other samples normalised by hand and the zero one left as it is."""
    rng = np.random.default_rng(3)
    xs, xt = rng.normal(size=(2, 4, 3, 3)), rng.normal(size=(2, 5, 3, 3))
    xs[0, 2] = 0.0
    flat_s, flat_t = xs.reshape(2, 4, 9), xt.reshape(2, 5, 9)
    norm_s = np.linalg.norm(flat_s, axis=2, keepdims=True)
    by_hand = flat_s / np.where(norm_s > 0, norm_s, 1.0), flat_t / np.linalg.norm(flat_t, axis=2, keepdims=True)
    value = R.set_mmd(xs, xt)
    assert np.isfinite(value)
    assert abs(value - R.set_mmd(*by_hand, normalize="none")) <= 1e-14
