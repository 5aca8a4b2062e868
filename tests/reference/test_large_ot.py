"""Exact OT that scales: the reference's column-generation LP (``ot_plan``), the blocked
``cost_matrix``, and the torch layer's size limit and iteration-limit errors."""

import importlib
import json
import subprocess
import sys
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.optimize import linprog

from kd2m_ref import reference as R

W = importlib.import_module("kd2m_ref.reference.wasserstein")


def dense_lp_plan(cost, a, b):
    """The former reference solver, kept here as the oracle: one HiGHS LP over all n·m cells with a
    dense equality matrix (n + m - 1 rows). Only for small problems."""
    n, m = cost.shape
    a, b = a / a.sum(), b / b.sum()
    a_eq = np.zeros((n + m - 1, n * m))
    for i in range(n):
        a_eq[i, i * m:(i + 1) * m] = 1.0
    for j in range(m - 1):
        a_eq[n + j, j::m] = 1.0
    scale = cost.max() if cost.max() > 0 else 1.0
    res = linprog((cost / scale).ravel(), A_eq=a_eq, b_eq=np.concatenate([a, b[:-1]]), bounds=(0, None),
                  method="highs", options={"primal_feasibility_tolerance": 1e-10,
                                           "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0, res.message
    return res.x.reshape(n, m)


def unblocked_cost(xs, xt, p):
    diff = xs[:, None, :] - xt[None, :, :]
    sq = np.einsum("ijk,ijk->ij", diff, diff)
    return sq if p == 2 else np.sqrt(sq) ** p


@pytest.fixture(params=["default", "stress"])
def settings(request, monkeypatch):
    """``stress``: one starting partner, one priced edge per row and column, pruning down to
    (n + m) edges: small problems then take many rounds and exercise pricing and pruning."""
    if request.param == "stress":
        monkeypatch.setattr(W, "_START", 1)
        monkeypatch.setattr(W, "_PRICE", 1)
        monkeypatch.setattr(W, "_KEEP", 1)
        monkeypatch.setattr(W, "_BLOCK", 64)  # several row and column blocks even for tiny problems
    return request.param


def _problem(kind, seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(2, 25, size=2)
    d = int(rng.integers(1, 4))
    xs, xt = rng.standard_normal((n, d)), rng.standard_normal((m, d)) + rng.uniform(0, 2)
    a, b = rng.uniform(0.05, 1, n), rng.uniform(0.05, 1, m)
    p = 2.0
    if kind == "duplicates":
        xs[: n // 2] = xs[0]
        xt[: m // 2] = xs[0]
    elif kind == "zero_weights":
        a[rng.permutation(n)[: n // 2]] = 0.0
        b[rng.permutation(m)[: m // 2]] = 0.0
    elif kind == "skewed":
        a, b = rng.exponential(size=n) ** 4, rng.exponential(size=m) ** 4
    elif kind == "integer":  # many ties and degenerate vertices
        xs, xt = rng.integers(0, 3, (n, d)).astype(float), rng.integers(0, 3, (m, d)).astype(float)
        a, b = rng.integers(1, 4, n).astype(float), rng.integers(1, 4, m).astype(float)
    elif kind == "p1":
        p = 1.0
    cost = W.cost_matrix(xs, xt, p)
    if kind == "constant":
        cost = np.full((n, m), 3.0)
    return cost, a, b


KINDS = ["random", "duplicates", "zero_weights", "skewed", "integer", "p1", "constant"]


@pytest.mark.parametrize("kind", KINDS)
def test_matches_dense_lp(kind, settings):
    """Column generation gives the dense LP's optimum (to 1e-9 relative), and a feasible plan."""
    for seed in range(6):
        cost, a, b = _problem(kind, seed)
        plan = W.ot_plan(cost, a, b)
        assert plan.shape == cost.shape and plan.min() >= 0
        np.testing.assert_allclose(plan.sum(1), a / a.sum(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(plan.sum(0), b / b.sum(), rtol=0, atol=1e-12)
        value, dense = np.sum(plan * cost), np.sum(dense_lp_plan(cost, a, b) * cost)
        assert abs(value - dense) <= 1e-9 * max(abs(dense), 1e-12 * cost.max()), (kind, seed, value, dense)
        assert W._ot_cost(cost, a, b) == pytest.approx(value, rel=1e-12, abs=1e-15)


def test_matches_pot_on_larger_problems(settings):
    """A third opinion (POT's network simplex, test-only) where the dense LP would be too slow."""
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(1)
    for n, m, d in [(150, 230, 2), (300, 200, 8)]:
        xs, xt = rng.standard_normal((n, d)), 1.5 * rng.standard_normal((m, d)) + 0.5
        a, b = rng.exponential(size=n) ** 2, rng.uniform(0.1, 1, m)
        cost = W.cost_matrix(xs, xt, 2.0)
        value = R.wasserstein(xs, xt, a=a, b=b)
        pot = ot.emd2(a / a.sum(), b / b.sum(), cost, numItermax=10**7)
        assert value == pytest.approx(pot, rel=1e-9)


def test_uniform_equal_sizes_still_use_the_assignment():
    rng = np.random.default_rng(2)
    cost = rng.uniform(size=(30, 30))
    plan = W.ot_plan(cost)
    assert np.count_nonzero(plan) == 30 and set(np.unique(plan)) == {0.0, 1 / 30}
    assert np.sum(plan * cost) == pytest.approx(np.sum(dense_lp_plan(cost, np.ones(30), np.ones(30)) * cost), rel=1e-9)


def test_highs_failure_is_a_runtime_error(monkeypatch):
    monkeypatch.setattr(W, "linprog", lambda *args, **kwargs: SimpleNamespace(status=4, message="numerical trouble"))
    with pytest.raises(RuntimeError, match="HiGHS failed to solve the transport LP .*numerical trouble"):
        W.ot_plan(np.random.default_rng(0).uniform(size=(5, 7)))


def test_round_limit_is_a_runtime_error(monkeypatch):
    monkeypatch.setattr(W, "_START", 1)
    monkeypatch.setattr(W, "_PRICE", 1)
    monkeypatch.setattr(W, "_MAX_ROUNDS", 1)
    cost = W.cost_matrix(*np.random.default_rng(3).standard_normal((2, 40, 2)), 2.0)
    with pytest.raises(RuntimeError, match="did not converge in 1 rounds"):
        W.ot_plan(cost, np.ones(40), np.arange(1.0, 41.0))


@pytest.mark.parametrize("p", [2.0, 1.0, 1.5])
def test_cost_matrix_blocks_give_the_same_values(p, monkeypatch):
    rng = np.random.default_rng(4)
    xs, xt = 10 * rng.standard_normal((37, 5)), rng.standard_normal((23, 5))
    expected = unblocked_cost(xs, xt, p)
    for block in (1, 7, 5 * 23, 1 << 22):
        monkeypatch.setattr(W, "_BLOCK", block)
        got = W.cost_matrix(xs, xt, p)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_cost_matrix_memory_is_bounded():
    """2000 x 2000 points in 16-D: the (n, m, d) tensor would be 512 MB; the blocked version needs the
    32 MB result plus bounded temporaries."""
    rng = np.random.default_rng(5)
    xs, xt = rng.standard_normal((2000, 16)), rng.standard_normal((2000, 16))
    tracemalloc.start()
    try:
        cost = W.cost_matrix(xs, xt, 2.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * cost.nbytes + 2 * 8 * W._BLOCK, peak
    np.testing.assert_array_equal(cost[:3], unblocked_cost(xs[:3], xt, 2.0))


_TIMED = """
import json, resource, sys, time
import numpy as np
from kd2m_ref import reference as R
n, m, d = map(int, sys.argv[1:4])
rng = np.random.default_rng(0)
xs, xt = rng.standard_normal((n, d)), rng.standard_normal((m, d)) + 0.3
a, b = rng.uniform(0.1, 1, n), rng.uniform(0.1, 1, m)
t = time.perf_counter()
value = R.wasserstein(xs, xt, a=a, b=b)
seconds = time.perf_counter() - t
print(json.dumps(dict(value=value, seconds=seconds, rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)))
"""


@pytest.mark.slow
@pytest.mark.parametrize("n, m", [(2000, 2000), (1500, 2000)])
def test_weighted_2000_points_within_a_minute_and_2_gb(n, m):
    """Weighted exact OT on 2,000 points in 16-D: under 60 s and 2 GB peak RSS (in a fresh process,
    so the test session's own memory is not counted), and POT's value."""
    out = subprocess.run([sys.executable, "-c", _TIMED, str(n), str(m), "16"], capture_output=True, text=True,
                         timeout=600, check=True)
    got = json.loads(out.stdout)
    assert got["seconds"] < 60, got
    assert got["rss"] < 2 * 2**30, got
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(0)
    xs, xt = rng.standard_normal((n, 16)), rng.standard_normal((m, 16)) + 0.3
    a, b = rng.uniform(0.1, 1, n), rng.uniform(0.1, 1, m)
    pot = ot.emd2(a / a.sum(), b / b.sum(), W.cost_matrix(xs, xt, 2.0), numItermax=10**8)
    assert got["value"] == pytest.approx(pot, rel=1e-9)


# ---- torch layer: refuse huge problems early, and name the alternatives when POT gives up ----

def _torch_wasserstein():
    pytest.importorskip("torch")
    pytest.importorskip("ot")
    return importlib.import_module("kd2m_ref.torch.wasserstein")


def test_torch_exact_ot_refuses_huge_problems_before_forming_the_cost(monkeypatch):
    import torch
    TW = _torch_wasserstein()
    monkeypatch.setattr(TW, "_MAX_EXACT_ENTRIES", 50)

    def no_cost(*args):
        raise AssertionError("the cost was built before the size check")

    monkeypatch.setattr(TW, "pairwise_cost", no_cost)
    xs, xt, xt8 = (torch.randn(k, 3, dtype=torch.float64) for k in (8, 7, 8))
    ys = torch.zeros(8, dtype=torch.long)
    calls = [lambda: TW.wasserstein(xs, xt),
             lambda: TW.joint_wasserstein(xs, xt8, ys=ys),
             lambda: TW.class_conditional_wasserstein(xs, xt8, ys=ys),
             lambda: TW.exact_ot(torch.zeros(8, 7, dtype=torch.float64), torch.full((8,), 1 / 8), torch.full((7,), 1 / 7))]
    for call in calls:
        with pytest.raises(ValueError, match=r"8 x [78] cost matrix .* GiB .*sinkhorn_divergence or sliced_wasserstein"):
            call()
    monkeypatch.undo()
    assert float(TW.wasserstein(xs, xt)) >= 0  # the real limit lets small problems through


def test_torch_exact_ot_iteration_limit_names_the_alternatives(monkeypatch):
    import torch
    TW = _torch_wasserstein()

    def stalled(a, b, cost, numItermax, log):
        return np.zeros_like(cost), {"cost": 0.0, "u": np.zeros(len(a)), "v": np.zeros(len(b)), "result_code": 3,
                                     "warning": "numItermax reached before optimality. Try to increase numItermax."}

    monkeypatch.setattr(TW.ot, "emd", stalled)
    xs, xt = torch.randn(6, 2, dtype=torch.float64), torch.randn(9, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"6 x 9 problem .*iteration limit .*sinkhorn_divergence or sliced_wasserstein"):
        TW.wasserstein(xs, xt)


def _equal_weighted_clouds_across_decades():
    """Eleven 1-D points (nine at 0, 1e-8, 0.1) against themselves with the same random weights: the
    costs span 14 decades (1e-16 next to 1e-2), and W = 0."""
    x = np.array([0.0] * 9 + [0.1, 1e-8])[:, None]
    rng = np.random.default_rng(0)
    return x, [rng.uniform(0.05, 1, len(x)) for _ in range(40)]


def test_costs_spanning_many_decades_are_told_apart():
    """Found by the random test profile: with costs scaled to max 1, HiGHS's absolute 1e-10 tolerances
    could not tell a 1e-16 cost from 0 and returned ~1e-17 for equal measures. Costs are now scaled to
    max 1e6, so the tolerance resolves 1e-16 max|C|."""
    x, weights = _equal_weighted_clouds_across_decades()
    assert all(R.wasserstein(x, x, a=w, b=w) == 0.0 for w in weights)


def test_decades_check_catches_unit_cost_scaling(monkeypatch):
    """Planted error: the former scaling (max |C| = 1) fails the test above."""
    monkeypatch.setattr(sys.modules["kd2m_ref.reference.wasserstein"], "_COST_UNIT", 1.0)
    x, weights = _equal_weighted_clouds_across_decades()
    assert any(R.wasserstein(x, x, a=w, b=w) != 0.0 for w in weights)
