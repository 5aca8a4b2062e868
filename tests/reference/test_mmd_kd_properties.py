"""Properties of MMD^2 and Hinton KD (THEORY.md §5.6, §5.7) on the float64 reference."""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kd2m_ref import oracle as O
from kd2m_ref import reference as R
from kd2m_ref.reference.kernel import bandwidth_from_rule, kernel_matrix
from kd2m_ref.reference.wasserstein import cost_matrix, ot_plan
from kd2m_ref.testing.strategies import hinton_kd_example, mmd_example, point_cloud
from kd2m_ref.testing.tolerance import mmd_tolerance

SHIFT_INVARIANT = ("gaussian", "laplacian")


def _atol(ex):
    """The float64 error bound of MMD^2 on this example (absolute: it is a difference of kernel sums)."""
    return mmd_tolerance(ex, "float64")[1]


@settings(max_examples=30)
@given(mmd_example())
def test_mmd_reference_matches_oracle_everywhere(ex):
    """covers("mmd", "oracle"): over the whole domain, near-equal clouds included, the reference is within
    the float64 error model of the 50-digit oracle (tests/test_layers.py checks 1e-12 relative where the
    problem is well conditioned)."""
    ref = ex.call(R.mmd)
    with mp.workdps(50):
        exact = ex.call(O.mmd)
    assert abs(mp.mpf(ref) - exact) <= _atol(ex) / 8, (ref, exact)


@given(mmd_example())
def test_mmd_symmetric_nonnegative_zero_at_equality(ex):
    """covers("mmd", "symmetry") covers("mmd", "nonnegative_zero_at_equality"): V >= 0; exactly 0 for a
    permutation; ~0 for the same measure with duplicated rows."""
    xs, xt = ex.args
    v = ex.call(R.mmd)
    assert v == R.mmd(xt, xs, **ex.kwargs)
    if ex.kwargs["estimator"] == "biased":
        assert v >= -_atol(ex)
        assert R.mmd(xs, xs[::-1].copy(), **ex.kwargs) == 0.0
        assert abs(R.mmd(xs, np.concatenate([xs, xs]), **ex.kwargs)) <= _atol(ex)


@given(mmd_example())
def test_linear_kernel_is_squared_mean_difference(ex):
    """covers("mmd", "linear_is_mean_difference"): V with k = x.y equals |mean(x) - mean(y)|^2."""
    xs, xt = ex.args
    ex.kwargs.update(kernel="linear", estimator="biased")
    diff = xs.mean(0) - xt.mean(0)
    assert abs(ex.call(R.mmd) - diff @ diff) <= _atol(ex)


@given(mmd_example())
def test_v_equals_u_plus_diagonal_correction(ex):
    """covers("mmd", "v_u_identity"): for k(z, z) = 1, V = U + (1 - U_xx)/n + (1 - U_yy)/m, U_xx the mean
    of k(x_i, x_j) over i != j; also: a rule's value gives the same MMD as passing it as a number."""
    xs, xt = ex.args
    kernel = ex.kwargs["kernel"]
    assume(kernel in SHIFT_INVARIANT and len(xs) >= 2 and len(xt) >= 2)
    bw = ex.kwargs["bandwidth"]
    s = bandwidth_from_rule(xs, xt, bw) if isinstance(bw, str) else bw
    v = R.mmd(xs, xt, kernel=kernel, bandwidth=s)
    assert v == R.mmd(xs, xt, kernel=kernel, bandwidth=bw)
    u = R.mmd(xs, xt, kernel=kernel, bandwidth=s, estimator="unbiased")

    def within(x):
        k = kernel_matrix(x, x, kernel=kernel, bandwidth=s)
        return (k.sum() - np.trace(k)) / (len(x) * (len(x) - 1))

    n, m = len(xs), len(xt)
    assert abs(v - (u + (1 - within(xs)) / n + (1 - within(xt)) / m)) <= 2 * _atol(ex)


def _population_mmd2(mu, sigma, d):
    """Gaussian kernel exp(-|.|^2/2s^2) between N(0, I) and N(mu, I):
    2 (s^2/(s^2+2))^{d/2} (1 - exp(-|mu|^2/2(s^2+2)))."""
    c = (sigma**2 / (sigma**2 + 2)) ** (d / 2)
    return 2 * c * (1 - math.exp(-(mu @ mu) / (2 * (sigma**2 + 2))))


@pytest.mark.slow
def test_unbiased_estimator_by_monte_carlo():
    """covers("mmd", "unbiased"): the mean of U over 4000 draws of n = m = 5 matches the population MMD^2
    within 4 standard errors, while the mean of V is detectably off (the test has power)."""
    rng = np.random.default_rng(0)
    d, sigma, mu = 2, 1.0, np.array([0.8, 0.0])
    truth = _population_mmd2(mu, sigma, d)
    us, vs = [], []
    for _ in range(4000):
        x, y = rng.normal(size=(5, d)), rng.normal(size=(5, d)) + mu
        us.append(R.mmd(x, y, bandwidth=sigma, estimator="unbiased"))
        vs.append(R.mmd(x, y, bandwidth=sigma))
    se_u, se_v = np.std(us) / math.sqrt(len(us)), np.std(vs) / math.sqrt(len(vs))
    assert abs(np.mean(us) - truth) <= 4 * se_u
    assert abs(np.mean(vs) - truth) > 10 * se_v


def _dk_cost(xs, xt, kernel, s, degree, offset):
    """Kernel metric d_k(x, y) = sqrt(k(x,x) + k(y,y) - 2k(x,y)), without cancellation where possible."""
    if kernel == "gaussian":
        return np.sqrt(-2 * np.expm1(-cost_matrix(xs, xt, 2) / (2 * s**2)))
    if kernel == "laplacian":
        return np.sqrt(-2 * np.expm1(-np.sqrt(cost_matrix(xs, xt, 2)) / s))
    if kernel == "linear":
        return np.sqrt(cost_matrix(xs, xt, 2))
    kw = dict(kernel=kernel, degree=degree, offset=offset)
    kx = np.diag(kernel_matrix(xs, xs, **kw))
    ky = np.diag(kernel_matrix(xt, xt, **kw))
    return np.sqrt(np.maximum(kx[:, None] + ky[None, :] - 2 * kernel_matrix(xs, xt, **kw), 0))


@given(mmd_example())
def test_sqrt_v_le_w1_under_kernel_metric(ex):
    """covers("mmd", "le_kernel_w1"): sqrt(V) <= W1 with ground cost d_k (exact LP), for every kernel;
    for the Gaussian kernel also sqrt(V) <= W1^{|.|}/s and V <= 2."""
    xs, xt = ex.args
    kw = dict(ex.kwargs, estimator="biased")
    kernel = kw["kernel"]
    bw = kw.get("bandwidth", 1.0)
    s = bandwidth_from_rule(xs, xt, bw) if isinstance(bw, str) else bw
    v = R.mmd(xs, xt, **kw)
    cost = _dk_cost(xs, xt, kernel, s, kw.get("degree", 2), kw.get("offset", 1.0))
    w1 = float(np.sum(ot_plan(cost) * cost))
    slack = _atol(ex) + (1e-9 * w1 * w1 if kernel != "polynomial" else 1e-7 * (1 + np.max(cost)) ** 2)
    assert v <= w1 * w1 + slack
    if kernel == "gaussian":
        euclid = np.sqrt(cost_matrix(xs, xt, 2))
        w1_euclid = float(np.sum(ot_plan(euclid) * euclid))
        assert v <= (w1_euclid / s) ** 2 + slack and v <= 2 + _atol(ex)


@given(mmd_example(), st.sampled_from([0.25, 4.0, 3.0, -0.5]))
def test_bandwidth_scaling(ex, c):
    """covers("mmd", "bandwidth_scaling"): MMD_s(cP, cQ) = MMD_{s/|c|}(P, Q) for shift-invariant kernels;
    a bandwidth rule makes MMD scale-invariant. Exact for powers of two (every rounding scales)."""
    xs, xt = ex.args
    kernel, bw = ex.kwargs["kernel"], ex.kwargs.get("bandwidth")
    assume(kernel in SHIFT_INVARIANT)
    kw = dict(ex.kwargs)
    scaled = R.mmd(c * xs, c * xt, **kw)
    if not isinstance(bw, str):
        kw["bandwidth"] = bw / abs(c)
    base = R.mmd(xs, xt, **kw)
    if c in (0.25, 4.0, -0.5) and np.all((xs == 0) | (np.abs(xs) > 1e-300)):
        assert scaled == base
    else:
        assert abs(scaled - base) <= 2 * _atol(ex)


@given(mmd_example(), point_cloud(1, 4))
def test_translation_invariance(ex, v):
    """covers("mmd", "translation"): shift-invariant kernels and the rules ignore a common translation."""
    xs, xt = ex.args
    assume(ex.kwargs["kernel"] in SHIFT_INVARIANT)
    v = v[0, : xs.shape[1]]
    base, shifted = ex.call(R.mmd), R.mmd(xs + v, xt + v, **ex.kwargs)
    # the shift re-rounds the coordinates: relative u * (|v| + |x|) / (gap) per distance, absorbed in the
    # error model of the shifted inputs, scaled by the coordinate magnitude over the smallest bandwidth
    radius = 1 + np.abs(v).max() + max(np.abs(xs).max(), np.abs(xt).max())
    assert abs(base - shifted) <= _atol(ex) * radius * 1e3


# --- Hinton KD ----------------------------------------------------------------------------------


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("case", ["saturated", "one_class", "shifted", "tiny_gap"])
@pytest.mark.parametrize("direction", ["teacher_student", "student_teacher"])
def test_hinton_reference_matches_oracle_in_hard_cases(case, direction):
    """covers("hinton_kd", "oracle"): 1e-12 relative to the oracle where the naive sum cancels or
    underflows: saturated softmax (|u/T| ~ 200), one class (KL = 0), constant gaps, gaps of 1e-12."""
    rng = np.random.default_rng(5)
    ut = rng.normal(size=(4, 6)) * 3
    us = {"saturated": ut * 40 + rng.normal(size=(4, 6)), "one_class": ut[:, :1] + 1.0,
          "shifted": ut + rng.normal(size=(4, 1)) * 7, "tiny_gap": ut + 1e-12 * rng.normal(size=(4, 6))}[case]
    if case == "saturated":
        ut = ut * 40
    if case == "one_class":
        ut = ut[:, :1]
    for t in (0.5, 1.0, 4.0):
        ref = R.hinton_kd(us, ut, temperature=t, direction=direction)
        exact = O.hinton_kd(us, ut, temperature=t, direction=direction)
        assert abs(mp.mpf(ref) - exact) <= 1e-12 * abs(exact) + mp.mpf(1e-300), (t, ref, exact)
    if case == "one_class":
        assert ref == 0.0


@given(hinton_kd_example())
def test_hinton_nonnegative_and_zero_iff_shift(ex):
    """covers("hinton_kd", "nonnegative_zero_iff_shift"): KD >= 0 (the reference sums non-negative
    terms), = 0 exactly for an exact per-row shift, > 0 when some row's gap is not constant."""
    us, ut = ex.args
    value = ex.call(R.hinton_kd)
    assert value >= 0
    gap = us - ut
    if us.shape[1] > 1 and np.any(gap.max(1) != gap.min(1)):
        assert value > 0
    grid = np.round(ut * 16) / 16  # multiples of 1/16: adding integers is exact
    assert R.hinton_kd(grid + np.arange(len(ut))[:, None] * 3.0, grid, **ex.kwargs) == 0.0


@given(hinton_kd_example(), st.integers(-8, 8), st.integers(-8, 8))
def test_hinton_invariant_to_row_constants(ex, cs, ct):
    """covers("hinton_kd", "row_constant_invariance"): adding per-row constants to either logits (exactly,
    on a dyadic grid) changes the value by rounding only."""
    us, ut = (np.round(u * 64) / 64 for u in ex.args)
    rows = np.arange(len(us))[:, None]
    base = R.hinton_kd(us, ut, **ex.kwargs)
    moved = R.hinton_kd(us + cs * (rows + 1), ut + ct * (rows - 2), **ex.kwargs)
    assert abs(moved - base) <= 1e-12 * base + 1e-300


def test_hinton_high_temperature_limit():
    """covers("hinton_kd", "high_temperature_limit"): T^2 KL -> |P(u_T - u_S)|^2 / 2C (P centres each row)
    as T -> oo, with error O(1/T)."""
    rng = np.random.default_rng(7)
    us, ut = rng.normal(size=(5, 4)) * 2, rng.normal(size=(5, 4)) * 2
    gap = ut - us
    gap -= gap.mean(1, keepdims=True)
    limit = np.mean(np.sum(gap**2, 1)) / (2 * us.shape[1])
    errors = []
    for t in (1e2, 1e3, 1e4, 1e5):
        for direction in ("teacher_student", "student_teacher"):
            value = R.hinton_kd(us, ut, temperature=t, direction=direction)
            assert abs(value - limit) <= 20 * limit / t
        errors.append(abs(R.hinton_kd(us, ut, temperature=t) - limit))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 5) & (ratios < 20)), ratios  # first order in 1/T


@given(hinton_kd_example())
def test_hinton_batchmean(ex):
    """covers("hinton_kd", "batchmean"): the value is the mean of the per-row values (sum / B)."""
    us, ut = ex.args
    rows = [R.hinton_kd(us[i:i + 1], ut[i:i + 1], **ex.kwargs) for i in range(len(us))]
    assert abs(ex.call(R.hinton_kd) - np.mean(rows)) <= 1e-14 * np.mean(rows) + 1e-300


def test_hinton_direction_conventions():
    """Default KL(teacher || student) (Hinton); 'student_teacher' is KL(student || teacher), the paper's
    code; they differ on asymmetric inputs. Checked against an independent direct formula."""
    us, ut = np.array([[0.0, 2.0, -1.0]]), np.array([[1.0, 0.0, 0.5]])
    t = 2.0
    ps, pt = _softmax(us / t), _softmax(ut / t)
    kl_ts = float(np.sum(pt * np.log(pt / ps)))
    kl_st = float(np.sum(ps * np.log(ps / pt)))
    assert abs(R.hinton_kd(us, ut, temperature=t) - t * t * kl_ts) <= 1e-14
    assert abs(R.hinton_kd(us, ut, temperature=t, direction="student_teacher") - t * t * kl_st) <= 1e-14
    assert abs(kl_ts - kl_st) > 1e-3
