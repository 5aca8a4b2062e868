"""Properties of MMD^2 and Hinton KD on the float64 reference."""

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kd2m_ref import oracle as O
from kd2m_ref import reference as R
from kd2m_ref.reference.kernel import bandwidth_from_rule, kernel_matrix, mmd_condition
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


# Extreme bandwidths: any finite s > 0 (s**2 is never formed). Rows are distinct within each cloud; rows
# 1 and 2 of _XT coincide with rows 1 and 2 of _XS (the cross pairs at distance 0).
_XS = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [-1.0, -1.0]])
_XT = np.array([[1.5, -2.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
_COINCIDENT = 2


def mmd_bandwidth_limit(s, estimator, n=len(_XS), m=len(_XT), coincident=_COINCIDENT):
    """s -> 0: k = identity on distinct points, V = 1/n + 1/m - 2 c/(nm), U = -2 c/(nm) (c coincident
    cross pairs); s -> oo: k = 1 everywhere, V = U = 0."""
    if s > 1:
        return Fraction(0)
    return (Fraction(1, n) + Fraction(1, m) if estimator == "biased" else 0) - Fraction(2 * coincident, n * m)


@pytest.mark.parametrize("s", [1e-300, 1e300])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("kernel", SHIFT_INVARIANT)
def test_mmd_extreme_bandwidth_limits(kernel, estimator, s):
    """covers("mmd", "oracle"): s = 1e-300 and 1e300 give the closed-form limits (were NaN on the diagonal
    and OverflowError from 2 s**2); the kernel matrix is exactly the 0/1 limit; the oracle agrees."""
    kw = dict(kernel=kernel, bandwidth=s, estimator=estimator)
    limit = mmd_bandwidth_limit(s, estimator)
    expected = float(limit)
    assert R.mmd(_XS, _XT, **kw) == pytest.approx(expected, rel=0, abs=4e-16)
    value, mass = mmd_condition(_XS, _XT, **kw)
    assert value == pytest.approx(expected, rel=0, abs=4e-16) and math.isfinite(mass)
    k = kernel_matrix(_XS, _XT, kernel=kernel, bandwidth=s)
    assert np.array_equal(k, (cost_matrix(_XS, _XT, 2) == 0) if s < 1 else np.ones_like(k))
    assert np.array_equal(kernel_matrix(_XS, _XS, kernel=kernel, bandwidth=s),
                          np.eye(len(_XS)) if s < 1 else np.ones((len(_XS), len(_XS))))
    with mp.workdps(50):
        assert abs(O.mmd(_XS, _XT, **kw) - mp.mpf(limit.numerator) / limit.denominator) <= 1e-40


@settings(max_examples=30)
@given(mmd_example(), st.sampled_from(SHIFT_INVARIANT), st.sampled_from([1e-3, 1e3, 1e-200, 1e200]))
def test_mmd_reference_matches_oracle_at_extreme_bandwidths(ex, kernel, factor):
    """covers("mmd", "oracle"): s = 1e-3, 1e3, 1e-200 and 1e200 times the 'mean' bandwidth of the batch:
    the reference is within the float64 error model of the 50-digit oracle (at 1e+-200 the old
    ``2 s**2`` under/overflowed)."""
    xs, xt = ex.args
    ex.kwargs.update(kernel=kernel, bandwidth=factor * bandwidth_from_rule(xs, xt, "mean"))
    ref = ex.call(R.mmd)
    exact = ex.call(O.mmd)
    assert abs(mp.mpf(ref) - exact) <= _atol(ex) / 8, (ref, exact)


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


# --- Hinton KD at every temperature: gaps |u/T| far beyond float64's exponent range --------------------

DIRECTIONS = ["teacher_student", "student_teacher"]
KD_TEMPERATURES = [1e-3, 1e-2, 1.0, 1e3, 1e6]
_LOG_1E300 = 690.7755278982137  # e^{-690.7755...} = 1e-300


def extreme_kd_case(name, t):
    """(logits_student, logits_teacher) of a named extreme case at temperature t."""
    base = np.random.default_rng(21).normal(size=(3, 5))
    if name == "issue":  # T = 0.01 gave NaN: gaps / T beyond 709
        return np.array([[0.0, 10.0], [3.0, -2.0]]), np.array([[1.0, 2.0], [0.0, 0.0]])
    if name == "gap_710":
        return np.array([[0.0, 710.0]]), np.array([[0.0, 0.0]])
    if name == "far_apart":
        return np.array([[1e3, -1e3, 0.0], [-1e3, 0.0, 1e3]]), np.array([[-1e3, 1e3, 0.5], [-1e3, 1e3, 999.0]])
    if name == "one_side_saturated":  # one softmax saturates at small T, the other splits two classes
        return np.array([[0.0, 1e-3, -500.0]]), np.array([[100.0, 0.0, -500.0]])
    if name == "saturated_1e-300":  # both softmaxes put 1 - 1e-300 on class 0 at this T; their tails differ
        u = np.array([[_LOG_1E300, 0.0, -0.5, -1.0]]) * t
        return u + np.array([[0.0, 0.0, 1e-3, -2e-3]]) * t, u
    if name == "deep_tails":  # both saturated, different only in a class of probability ~e^{-5250/T}
        return np.array([[571.0, 138.0, -734.0]]), np.array([[571.0, 138.0, -742.0]])
    if name == "shift_exact":  # dyadic rows and shifts: exactly constant gaps, KL = 0
        grid = np.round(base * 16) / 16 * 50
        return grid + np.array([[3.0], [-700.0], [0.5]]), grid
    if name == "shift_rounded":  # u + 0.1 rounds entry by entry: gaps constant to ~1e-16 relative only
        return base * 300 + 0.1, base * 300
    if name == "tiny_gap":
        return base * 300 + 1e-13 * np.random.default_rng(22).normal(size=base.shape), base * 300
    if name == "one_class":
        return base[:, :1] * 300, base[:, :1] - 7.0
    if name == "tiny_entry":  # gaps 1 - 5e-111 and 1: not constant, KL ~ 3e-222 (at 50 digits they would be)
        return np.array([[5e-111, 0.0]]), np.array([[1.0, 1.0]])
    raise KeyError(name)


EXTREME_KD_CASES = ["issue", "gap_710", "far_apart", "one_side_saturated", "saturated_1e-300", "deep_tails",
                    "shift_exact", "shift_rounded", "tiny_gap", "one_class", "tiny_entry"]


def kd_floor(t):
    """Absolute slack near 0: a few subnormal ulps (of T^2 times a subnormal q or p)."""
    return (1.0 + t * t) * 2.0**-1070


@pytest.mark.parametrize("t", KD_TEMPERATURES)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", EXTREME_KD_CASES)
def test_hinton_reference_matches_oracle_at_extremes(case, direction, t):
    """covers("hinton_kd", "oracle"): 1e-12 relative to the oracle (a few subnormal ulps near 0) at
    T = 1e-3 ... 1e6 with gaps |u/T| up to 2e6 (NaN before: e^{r} overflowed in log Z), saturated softmaxes
    (1 - 1e-300; tails of probability e^{-5000}, where the oracle's 25 digits cost thousands), exact and
    rounded constant shifts, gaps of 1e-13. Exact shifts and a single class give exactly 0."""
    us, ut = extreme_kd_case(case, t)
    ref = R.hinton_kd(us, ut, temperature=t, direction=direction)
    exact = O.hinton_kd(us, ut, temperature=t, direction=direction)
    assert math.isfinite(ref) and ref >= 0
    assert abs(mp.mpf(ref) - exact) <= 1e-12 * abs(exact) + kd_floor(t), (ref, exact)
    if case in ("shift_exact", "one_class"):
        assert ref == 0.0 and exact == 0


@pytest.mark.parametrize("t", [1e-300, 1e-100, 1e100, 1e300])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", ["issue", "gap_710", "one_side_saturated"])
def test_hinton_reference_matches_oracle_at_astronomical_temperatures(case, direction, t):
    """covers("hinton_kd", "oracle"): T^2 is applied term by term (T·x formed first), so neither T^2
    (underflows for T < 1e-162, overflows beyond 1e154) nor KL ~ (gap/T)^2 (underflows for T > 1e160)
    leaves float64's range before the product does: T^2 KL stays right from T = 1e-300 to 1e300."""
    us, ut = extreme_kd_case(case, t)
    ref = R.hinton_kd(us, ut, temperature=t, direction=direction)
    exact = O.hinton_kd(us, ut, temperature=t, direction=direction)
    assert abs(mp.mpf(ref) - exact) <= 1e-12 * abs(exact) + 2.0**-1070, (ref, exact)


@st.composite
def kd_at_any_temperature(draw):
    """Logits with |u| <= 1e3 at a scale 1e-3 ... 1e3: independent rows, nearly equal rows (relative gaps
    down to 1e-15), rows shifted by a constant, or one logit raised by up to 1e3 (a saturated softmax on
    either side); T log-uniform in [1e-3, 1e6]."""
    b, c = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    scale = 10.0 ** draw(st.floats(-3, 3))
    unit = hnp.arrays(np.float64, (b, c), elements=st.floats(-1, 1))
    ut = draw(unit) * scale
    kind = draw(st.sampled_from(["independent", "near", "shift", "saturate"]))
    if kind == "independent":
        us = draw(unit) * scale
    elif kind == "near":
        us = ut + 10.0 ** draw(st.floats(-15, -1)) * scale * draw(unit)
    elif kind == "shift":
        us = ut + draw(hnp.arrays(np.float64, (b, 1), elements=st.floats(-1, 1))) * scale
    else:
        us = ut.copy()
        us[:, draw(st.integers(0, c - 1))] += draw(st.floats(1.0, 1e3))
    if draw(st.booleans()):
        us, ut = ut, us
    t = 10.0 ** draw(st.floats(-3, 6))
    return np.clip(us, -1e3, 1e3), np.clip(ut, -1e3, 1e3), t, draw(st.sampled_from(DIRECTIONS))


@settings(max_examples=60)
@given(kd_at_any_temperature())
def test_hinton_reference_matches_oracle_at_any_temperature(case):
    """covers("hinton_kd", "oracle"): 1e-12 relative to the oracle (a few subnormal ulps near 0) for T
    log-uniform in [1e-3, 1e6], both directions."""
    us, ut, t, direction = case
    ref = R.hinton_kd(us, ut, temperature=t, direction=direction)
    exact = O.hinton_kd(us, ut, temperature=t, direction=direction)
    assert abs(mp.mpf(ref) - exact) <= 1e-12 * abs(exact) + kd_floor(t), (ref, exact)


def test_hinton_oracle_at_extremes():
    """The oracle's adaptive precision stops correctly at the extremes: it matches the same naive sum at
    1000 digits (to 1e-20 relative, or 1e-400 absolute where it stopped on its absolute floor), and a
    2-class closed form: KL(softmax(0, 0) || softmax(0, 710)) = 355 - log 2 + log1p(e^{-710})."""
    with mp.workdps(60):
        closed = 355 - mp.log(2) + mp.log1p(mp.exp(-710))
        assert abs(O.hinton_kd(np.array([[0.0, 710.0]]), np.array([[0.0, 0.0]])) - closed) <= 1e-40 * closed
    for case in ("far_apart", "saturated_1e-300", "deep_tails", "tiny_gap"):
        for t in (1e-3, 0.25, 1e6):
            us, ut = extreme_kd_case(case, t)
            exact = O.hinton_kd(us, ut, temperature=t)
            with mp.workdps(1000):
                rows = []
                for up, uq in zip(ut, us):
                    lp, lq = ([v - mp.log(mp.fsum(mp.exp(w) for w in z)) for v in z]
                              for z in ([mp.mpf(float(v)) / mp.mpf(t) for v in row] for row in (up, uq)))
                    rows.append(mp.fsum(mp.exp(a) * (a - b) for a, b in zip(lp, lq)))
                deep = mp.mpf(t) ** 2 * mp.fsum(rows) / len(us)
                assert abs(exact - deep) <= 1e-20 * abs(deep) + mp.mpf(10) ** -380, (case, t, exact, deep)
