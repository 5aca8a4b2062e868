"""Properties of the empirical OT family on the float64 reference."""

import dataclasses
import itertools
import re
import sys
import warnings

import numpy as np
import ot
import pytest
from scipy.spatial.distance import cdist
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kd2m_ref import reference as R
from kd2m_ref.reference.sinkhorn import solve_entropic
from kd2m_ref.testing.strategies import (joint_example, labelled_clouds, ot_example, point_cloud,
                                         sinkhorn_divergence_example)

TOL = dict(rtol=1e-9, atol=1e-11)


def close(x, y, scale=1.0):
    return abs(x - y) <= TOL["atol"] * scale + TOL["rtol"] * max(abs(x), abs(y))


@given(ot_example())
def test_matches_pot_emd2(ex):
    """covers("wasserstein", "pot"): a third opinion from POT's network simplex (on a cost from scipy's
    cdist: POT's own ``ot.dist`` expands |x|^2 + |y|^2 - 2xy and loses digits for close points)."""
    xs, xt = ex.args
    p = ex.kwargs["p"]
    a = ex.kwargs.get("a", np.ones(len(xs)))
    b = ex.kwargs.get("b", np.ones(len(xt)))
    pot = ot.emd2(a / a.sum(), b / b.sum(), cdist(xs, xt) ** p)
    assert close(ex.call(R.wasserstein), pot, 1 + pot)


@given(ot_example())
def test_symmetry_and_nonnegativity(ex):
    """covers("wasserstein", "symmetry")"""
    xs, xt = ex.args
    kw = dict(ex.kwargs)
    a, b = kw.pop("a", None), kw.pop("b", None)
    w1, w2 = R.wasserstein(xs, xt, a=a, b=b, **kw), R.wasserstein(xt, xs, a=b, b=a, **kw)
    assert w1 >= 0 and close(w1, w2)


@given(ot_example(), st.integers(0, 3))
def test_zero_iff_equal(ex, dup):
    """covers("wasserstein", "zero_iff_equal"): zero for equal measures (also with duplicated points,
    which merge), positive for different supports."""
    xs, xt = ex.args
    p = ex.kwargs["p"]
    assert R.wasserstein(xs, xs[np.random.default_rng(dup).permutation(len(xs))], p=p) == 0
    doubled = np.concatenate([xs, xs])
    assert R.wasserstein(xs, doubled, p=p) <= 1e-12 * (1 + np.abs(xs).max()) ** p
    if any(not (xs == row).all(1).any() for row in xt):  # xt has an atom outside the support of xs
        assert R.wasserstein(xs, xt, p=p) > 0


@given(ot_example(), point_cloud(1, 4))
def test_translation_invariance(ex, v):
    """covers("wasserstein", "translation")"""
    xs, xt = ex.args
    v = v[0, : xs.shape[1]]
    base = ex.call(R.wasserstein)
    shifted = R.wasserstein(xs + v, xt + v, **ex.kwargs)
    # the shift changes the rounding of the coordinates: allow u * |v| * gap per entry
    assert abs(base - shifted) <= 1e-10 * (1 + base) * (1 + np.abs(v).max() + np.abs(xs).max() + np.abs(xt).max()) ** ex.kwargs["p"]


@given(ot_example())
def test_mean_decomposition_p2(ex):
    """covers("wasserstein", "mean_decomposition"): W2^2 = |m_P - m_Q|^2 + W2^2(centred copies)."""
    xs, xt = ex.args
    a = ex.kwargs.get("a", np.ones(len(xs)))
    b = ex.kwargs.get("b", np.ones(len(xt)))
    ms, mt = a @ xs / a.sum(), b @ xt / b.sum()
    kw = {"a": ex.kwargs.get("a"), "b": ex.kwargs.get("b")}
    lhs = R.wasserstein(xs, xt, **kw)
    rhs = np.sum((ms - mt) ** 2) + R.wasserstein(xs - ms, xt - mt, **kw)
    assert abs(lhs - rhs) <= 1e-9 * (1 + lhs) * (1 + np.abs(xs).max() + np.abs(xt).max()) ** 2


@given(ot_example(), st.floats(-3, 3).filter(lambda c: abs(c) > 1e-3), st.integers(0, 100))
def test_scaling_and_orthogonal_invariance(ex, c, seed):
    """covers("wasserstein", "scaling"): W_p(cP, cQ) = |c| W_p(P, Q), and invariance under rotations."""
    xs, xt = ex.args
    p = ex.kwargs["p"]
    base = ex.call(R.wasserstein)
    assert close(R.wasserstein(c * xs, c * xt, **ex.kwargs), abs(c) ** p * base, abs(c) ** p * (1 + base))
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((xs.shape[1],) * 2))
    assert abs(R.wasserstein(xs @ q, xt @ q, **ex.kwargs) - base) <= 1e-9 * (1 + base) * (1 + np.abs(xs).max() + np.abs(xt).max()) ** p


@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1.0, 2.0, 3.0]), st.data())
def test_one_d_closed_form(n, m, p, data):
    """covers("wasserstein", "one_d_closed_form"): the LP equals the quantile formula; for equal n the
    sorted-samples formula; and W1 = int |F - G|."""
    u, v = data.draw(point_cloud(n, 1)), data.draw(point_cloud(m, 1))
    a = data.draw(st.none() | st.just(np.linspace(1, 2, n)))
    b = None if a is None else np.linspace(2, 1, m)
    lp = R.wasserstein(u, v, a=a, b=b, p=p)
    assert close(lp, R.wasserstein_1d(u[:, 0], v[:, 0], a=a, b=b, p=p), 1 + lp)
    if n == m and a is None:
        assert close(lp, np.mean(np.abs(np.sort(u[:, 0]) - np.sort(v[:, 0])) ** p), 1 + lp)
    if p == 1.0:
        aa = np.full(n, 1 / n) if a is None else a / a.sum()
        bb = np.full(m, 1 / m) if b is None else b / b.sum()
        grid = np.sort(np.concatenate([u[:, 0], v[:, 0]]))
        cdf = lambda pts, w, t: np.array([w[pts <= s].sum() for s in t])  # noqa: E731
        integral = np.sum(np.abs(cdf(u[:, 0], aa, grid[:-1]) - cdf(v[:, 0], bb, grid[:-1])) * np.diff(grid))
        assert close(lp, integral, 1 + lp)


@given(st.integers(1, 6), st.integers(1, 3), st.sampled_from([1.0, 2.0]), st.data())
def test_triangle_inequality(n, d, p, data):
    """covers("wasserstein", "triangle"): W_p (the p-th root) is a metric."""
    x, y, z = (data.draw(point_cloud(n, d)) for _ in range(3))
    w = lambda s, t: R.wasserstein(s, t, p=p) ** (1 / p)  # noqa: E731
    assert w(x, z) <= w(x, y) + w(y, z) + 1e-9


@given(st.integers(1, 10), st.integers(1, 4), st.sampled_from([1.0, 2.0]), st.data())
def test_paired_bound_and_assignment(n, d, p, data):
    """covers("wasserstein", "paired_bound"): W_p^p <= (1/n) sum |zS_i - zT_i|^p for paired clouds, and
    for uniform equal sizes the value is the assignment optimum (brute force for n <= 6)."""
    xs, xt = data.draw(point_cloud(n, d)), data.draw(point_cloud(n, d))
    w = R.wasserstein(xs, xt, p=p)
    paired = np.mean(np.linalg.norm(xs - xt, axis=1) ** p)
    assert w <= paired + 1e-12 * (1 + paired)
    if n <= 6:
        cost = np.linalg.norm(xs[:, None] - xt[None], axis=-1) ** p
        brute = min(cost[range(n), list(s)].mean() for s in itertools.permutations(range(n)))
        assert close(w, brute, 1 + brute)


# --- class-conditional ----------------------------------------------------------------------------


@given(labelled_clouds(), st.sampled_from([1.0, 2.0]))
def test_marginal_le_conditional_le_paired(clouds, p):
    """covers("class_conditional_wasserstein", "marginal_le_conditional_le_paired") with prior weights."""
    xs, xt, ys = clouds
    marg = R.wasserstein(xs, xt, p=p)
    cond = R.class_conditional_wasserstein(xs, xt, ys=ys, p=p, weights="prior")
    paired = np.mean(np.linalg.norm(xs - xt, axis=1) ** p)
    slack = 1e-10 * (1 + paired)
    assert marg <= cond + slack and cond <= paired + slack


@given(labelled_clouds(), st.sampled_from(["uniform", "prior", "sum"]))
def test_one_class_is_marginal(clouds, weights):
    """covers("class_conditional_wasserstein", "one_class_is_marginal")"""
    xs, xt, _ = clouds
    ys = np.zeros(len(xs), dtype=int)
    assert close(R.class_conditional_wasserstein(xs, xt, ys=ys, weights=weights), R.wasserstein(xs, xt))


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.data())
def test_uniform_equals_prior_when_balanced(k, per_class, d, data):
    """covers("class_conditional_wasserstein", "uniform_equals_prior_balanced"); ``sum`` = K x uniform."""
    n = k * per_class
    xs, xt = data.draw(point_cloud(n, d)), data.draw(point_cloud(n, d))
    ys = np.repeat(np.arange(k), per_class)
    uni = R.class_conditional_wasserstein(xs, xt, ys=ys, weights="uniform")
    assert close(uni, R.class_conditional_wasserstein(xs, xt, ys=ys, weights="prior"), 1 + uni)
    assert close(k * uni, R.class_conditional_wasserstein(xs, xt, ys=ys, weights="sum"), 1 + k * uni)


def test_missing_class_is_skipped_and_one_sided_class_is_an_error():
    xs = np.array([[0.0], [1.0], [5.0]])
    xt = np.array([[0.5], [1.0], [6.0]])
    ys = np.array([0, 0, 2])  # class 1 absent from this minibatch: skipped, K counts present classes
    expected = 0.5 * R.wasserstein(xs[:2], xt[:2]) + 0.5 * R.wasserstein(xs[2:], xt[2:])
    assert close(R.class_conditional_wasserstein(xs, xt, ys=ys), expected)
    with pytest.raises(ValueError, match=r"\[2\] appear in ys only"):
        R.class_conditional_wasserstein(xs, xt, ys=ys, yt=np.array([0, 0, 1]))


# --- joint ---------------------------------------------------------------------------------------


@given(labelled_clouds(), st.sampled_from([1.0, 2.0]))
def test_joint_beta_zero_monotone_and_conditional_limit(clouds, p):
    """covers("joint_wasserstein", "beta_zero_is_marginal") covers("joint_wasserstein", "monotone_in_beta")
    covers("joint_wasserstein", "le_conditional") covers("joint_wasserstein", "large_beta_is_conditional")"""
    xs, xt, ys = clouds
    marg = R.wasserstein(xs, xt, p=p)
    cond = R.class_conditional_wasserstein(xs, xt, ys=ys, p=p, weights="prior")
    scale = 1 + cond
    assert close(R.joint_wasserstein(xs, xt, ys=ys, p=p, beta=0.0), marg, scale)
    values = [R.joint_wasserstein(xs, xt, ys=ys, p=p, beta=beta) for beta in (0.0, 0.1, 1.0, 10.0)]
    assert all(v1 <= v2 + 1e-10 * scale for v1, v2 in zip(values, values[1:]))
    assert all(v <= cond + 1e-10 * scale for v in values)
    big = 1e6 * (1 + np.max(np.linalg.norm(xs[:, None] - xt[None], axis=-1) ** p))
    assert close(R.joint_wasserstein(xs, xt, ys=ys, p=p, beta=big), cond, scale)


@given(joint_example())
def test_joint_symmetry_for_symmetric_label_costs(ex):
    """covers("joint_wasserstein", "symmetry"): onehot and soft label costs are symmetric."""
    assume(ex.kwargs["label_cost"] != "cross_entropy")
    xs, xt = ex.args
    v1 = ex.call(R.joint_wasserstein)
    v2 = R.joint_wasserstein(xt, xs, **ex.kwargs)
    assert v1 >= 0 and close(v1, v2, 1 + v1)


def test_joint_cross_entropy_convention():
    """ys is the target distribution and yt the prediction: L = -sum_c ys_c log yt_c."""
    ys = np.array([0, 1])
    yt = np.array([[0.9, 0.1], [0.2, 0.8]])
    cost = R.wasserstein(np.zeros((2, 1)), np.zeros((2, 1)))
    assert cost == 0
    value = R.joint_wasserstein(np.zeros((2, 1)), np.zeros((2, 1)), ys=ys, yt=yt, label_cost="cross_entropy")
    assert close(value, 0.5 * (-np.log(0.9) - np.log(0.8)))


# --- Sinkhorn and sliced ------------------------------------------------------------------------


@settings(max_examples=10)
@given(ot_example())
def test_sinkhorn_tends_to_exact(ex):
    """covers("sinkhorn", "tends_to_exact") covers("sinkhorn_divergence", "tends_to_exact")
    covers("sinkhorn", "ge_exact"): OT_eps >= W (the entropy term is >= 0) and OT_eps -> W as eps -> 0,
    with 0 <= OT_eps - W <= eps log(nm) (entropy of a coupling is at most log(nm))."""
    xs, xt = ex.args
    kw = dict(ex.kwargs)
    exact = R.wasserstein(xs, xt, **kw)
    scale = 1 + np.max(np.sum((xs[:, None] - xt[None]) ** 2, -1) ** (kw["p"] / 2))  # 1 + max cost
    for rel in (0.25, 0.1):
        eps = rel * scale
        value = R.sinkhorn(xs, xt, epsilon=eps, max_iter=100_000, tol=1e-10, **kw)
        assert exact - 1e-8 * scale <= value <= exact + eps * np.log(len(xs) * len(xt)) + 1e-8 * scale
    div = R.sinkhorn_divergence(xs, xt, epsilon=0.1 * scale, max_iter=100_000, tol=1e-10, **kw)
    assert abs(div - exact) <= 0.1 * scale * (1 + 2 * np.log(len(xs) * len(xt) + 1)) + 1e-8 * scale


def test_sinkhorn_epsilon_ladder_to_exact():
    """covers("sinkhorn", "tends_to_exact"): on a fixed problem the error to W2^2 shrinks with epsilon
    down to 1e-3 of the largest cost, inside the bound eps log(nm), in float64."""
    rng = np.random.default_rng(5)
    xs, xt = rng.normal(size=(8, 2)), rng.normal(size=(9, 2)) + 1
    exact = R.wasserstein(xs, xt)
    cmax = np.max(np.sum((xs[:, None] - xt[None]) ** 2, -1))
    errors = []
    for rel in (1e-1, 1e-2, 1e-3):
        value = R.sinkhorn(xs, xt, epsilon=rel * cmax, max_iter=200_000, tol=1e-10)
        errors.append(value - exact)
        assert -1e-9 <= errors[-1] <= rel * cmax * np.log(72)
    assert errors[0] > errors[1] > errors[2] > 0


@settings(max_examples=8)  # each example runs three Sinkhorn problems to tol 1e-10 in NumPy
@given(sinkhorn_divergence_example())
def test_sinkhorn_divergence_nonnegative_symmetric_zero(ex):
    """covers("sinkhorn_divergence", "nonnegative") covers("sinkhorn_divergence", "zero_at_equality")
    covers("sinkhorn_divergence", "symmetry")"""
    xs, xt = ex.args
    kw = dict(ex.kwargs, tol=1e-10, max_iter=20_000)
    a, b = kw.pop("a", None), kw.pop("b", None)
    scale = 1 + kw["epsilon"]
    s1 = R.sinkhorn_divergence(xs, xt, a=a, b=b, **kw)
    s2 = R.sinkhorn_divergence(xt, xs, a=b, b=a, **kw)
    assert s1 >= -1e-9 * scale and abs(s1 - s2) <= 1e-8 * scale
    assert abs(R.sinkhorn_divergence(xs, xs, a=a, b=a, **kw)) <= 1e-9 * scale


def test_sinkhorn_small_epsilon_is_finite_and_warns_when_capped():
    """covers("sinkhorn", "small_epsilon_finite"): log-domain iterations stay finite and accurate at
    eps = 1e-3, where plain Sinkhorn's kernel exp(-C/eps) is identically 0; hitting max_iter warns."""
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(8, 2)), rng.normal(size=(8, 2)) + 3
    exact = R.wasserstein(xs, xt)
    cost = np.sum((xs[:, None] - xt[None]) ** 2, -1)
    assert np.all(np.exp(-cost / 1e-3) == 0)  # the kernel of plain Sinkhorn underflows entirely here
    value = R.sinkhorn(xs, xt, epsilon=1e-3, max_iter=20_000)
    assert np.isfinite(value) and abs(value - exact) <= 1e-3 * np.log(64)
    with pytest.warns(R.SinkhornNotConverged, match="max_iter=2"):
        R.sinkhorn(xs, xt, epsilon=1e-3, max_iter=2)


# A measure against itself whose plan is almost diagonal (cost / eps ~ 18): alternating Sinkhorn creeps
# along a nearly flat dual direction here (1e-7 per iteration) and its dual value fell below 0.
NEAR_DIAGONAL = dict(xs=np.array([[4.944786973210904, -4.2668505073620056], [-3.727129361203705, -4.0]]),
                     a=np.array([0.5, 1.0]), epsilon=4.2656931462611665)


def test_sinkhorn_divergence_near_diagonal_plan():
    """covers("sinkhorn_divergence", "near_diagonal_nonnegative"): the symmetric updates keep the two
    potentials equal, so this converges at once and S_eps(a, a) is 0 up to rounding, never below."""
    xs, a, eps = NEAR_DIAGONAL["xs"], NEAR_DIAGONAL["a"], NEAR_DIAGONAL["epsilon"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", R.SinkhornNotConverged)
        value = R.sinkhorn_divergence(xs, xs, a=a, b=a, epsilon=eps, max_iter=20_000, tol=1e-10)
    assert -1e-14 <= value <= 1e-12


def _solution(xs, xt, p, eps, max_iter, tol=1e-12):
    cost = R.wasserstein.__globals__["cost_matrix"](xs, xt, p)
    la, lb = np.full(len(xs), -np.log(len(xs))), np.full(len(xt), -np.log(len(xt)))
    return solve_entropic(cost, la, lb, eps, max_iter, tol)


def check_unconverged_upper_bound(xs, xt, p, eps, max_iter, tol=1e-12):
    """Stopped after ``max_iter`` iterations (a warning), the value is the cost of a feasible plan:
    >= W_p^p and >= a certified lower bound of OT_eps (the dual value of a long run), and above that
    bound by at most the gap the warning states plus the long run's own gap. Converged within
    ``max_iter`` (no warning), it is the documented dual value, within ``tol`` * max C of OT_eps."""
    exact = R.wasserstein(xs, xt, p=p)
    reference = _solution(xs, xt, p, eps, 100_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", R.SinkhornNotConverged)
        value = R.sinkhorn(xs, xt, p=p, epsilon=eps, max_iter=max_iter, tol=tol)
    scale = 1e-12 * (1 + abs(exact))
    if caught:
        assert value >= exact - scale and value >= reference.dual - scale
        gap = float(re.search(r"by at most ([0-9.]+e[+-][0-9]+)", str(caught[0].message)).group(1))
        assert value - reference.dual <= 1.01 * gap + (reference.primal - reference.dual) + scale
    else:
        allowed = tol * float(np.max(cdist(xs, xt) ** p)) + scale
        assert reference.dual - allowed <= value <= reference.primal + allowed


@settings(max_examples=10)
@given(ot_example(), st.integers(1, 30), st.sampled_from([1e-3, 1e-2, 1e-1]))
def test_sinkhorn_unconverged_value_is_an_upper_bound(ex, max_iter, rel):
    """covers("sinkhorn", "unconverged_is_upper_bound"): stopped early, the value is still the cost of
    a feasible plan, so OT_eps >= W is never broken (a dual value can fall far below W there)."""
    xs, xt = ex.args
    p = ex.kwargs["p"]
    cmax = float(np.max(np.sum((xs[:, None] - xt[None]) ** 2, -1) ** (p / 2)))
    check_unconverged_upper_bound(xs, xt, p, rel * max(cmax, 1e-2), max_iter)


def test_unconverged_upper_bound_check_catches_a_dual_value(monkeypatch):
    """Planted error: returning the dual value after max_iter (the former behaviour) breaks OT_eps >= W."""
    rng = np.random.default_rng(3)
    xs, xt = rng.normal(size=(8, 2)), rng.normal(size=(8, 2)) + 1
    check_unconverged_upper_bound(xs, xt, 2.0, 1e-3, 3)  # the correct code passes
    sinkhorn_module = sys.modules["kd2m_ref.reference.sinkhorn"]
    real = sinkhorn_module.solve_entropic
    monkeypatch.setattr(sinkhorn_module, "solve_entropic",
                        lambda *args, **kw: dataclasses.replace(real(*args, **kw), primal=real(*args, **kw).dual))
    with pytest.raises(AssertionError):
        check_unconverged_upper_bound(xs, xt, 2.0, 1e-3, 3)


@pytest.mark.parametrize("rel", [0.1, 0.01])
def test_relative_epsilon_converges_on_unit_features(rel):
    """covers("sinkhorn", "relative_epsilon_converges"): 128 x 512 unit-scale features converge within the
    default budget, without a warning, when epsilon is relative to the mean cost."""
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(128, 512)), rng.normal(size=(128, 512))
    with warnings.catch_warnings():
        warnings.simplefilter("error", R.SinkhornNotConverged)
        value = R.sinkhorn_divergence(xs, xt, epsilon=rel, relative_epsilon=True)
    mean_cost = np.mean(np.sum((xs[:, None] - xt[None]) ** 2, -1))
    assert value == pytest.approx(R.sinkhorn_divergence(xs, xt, epsilon=rel * mean_cost), rel=1e-12)
    with pytest.warns(R.SinkhornNotConverged):  # the same features with an absolute epsilon of 0.1 do not
        R.sinkhorn(xs[:32], xt[:32], epsilon=0.1)


@given(ot_example(), st.integers(1, 8), st.integers(0, 1000))
def test_sliced_le_exact_and_seeded(ex, k, seed):
    """covers("sliced_wasserstein", "le_exact") covers("sliced_wasserstein", "seeded"): each projection
    is 1-Lipschitz so SW_p^p <= W_p^p; the same seed gives the same value."""
    exact = ex.call(R.wasserstein)
    sw = R.sliced_wasserstein(*ex.args, n_projections=k, seed=seed, **ex.kwargs)
    assert sw <= exact + 1e-9 * (1 + exact)
    assert sw == R.sliced_wasserstein(*ex.args, n_projections=k, seed=seed, **ex.kwargs)


def test_sliced_keeps_relative_precision_for_nearby_points():
    """Found by the randomised profile: projecting each point and then subtracting cancels
    (|theta.x| ~ 2, theta.(x - y) ~ 1e-3 costs 1e-12 relative after squaring); the reference
    subtracts the points first and stays at float64 precision of the oracle."""
    import mpmath as mp

    from kd2m_ref import oracle

    xs, xt = np.array([[0.0, 2.0]]), np.array([[1e-3, 2.001]])
    with mp.workdps(50):
        exact = oracle.sliced_wasserstein(xs, xt, p=2.0, n_projections=1, seed=0)
        assert abs(mp.mpf(R.sliced_wasserstein(xs, xt, p=2.0, n_projections=1, seed=0)) - exact) <= 1e-14 * exact
    from kd2m_ref._conventions import sliced_projections

    theta = sliced_projections(2, 1, 0)
    naive = np.abs(xs @ theta.T - xt @ theta.T).item() ** 2  # the cancelling form the reference avoids
    with mp.workdps(50):
        assert abs(mp.mpf(naive) - exact) > 1e-12 * exact


@given(st.integers(1, 10), st.integers(1, 10), st.sampled_from([1.0, 2.0]), st.data())
def test_sliced_in_one_dimension_is_exact(n, m, p, data):
    """covers("sliced_wasserstein", "one_d_is_exact"): in d = 1 every direction is +-1."""
    u, v = data.draw(point_cloud(n, 1)), data.draw(point_cloud(m, 1))
    exact = R.wasserstein(u, v, p=p)
    assert close(R.sliced_wasserstein(u, v, p=p, n_projections=3), exact, 1 + exact)
