"""Torch OT between class histograms and Sinkhorn's plan cost: gradients (gradcheck in float64, finite at
student = teacher) and the per-row costs."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kd2m_ref import reference as R  # noqa: E402
from kd2m_ref import torch as T  # noqa: E402


def _cost(rng, k):
    c = np.abs(rng.normal(size=(k, k)))
    c = (c + c.T) / 2
    np.fill_diagonal(c, 0.0)
    return c


SETTINGS = [dict(epsilon=0.0), dict(epsilon=0.3, value="ot_eps"), dict(epsilon=0.3, value="plan_cost"),
            dict(epsilon=0.3, value="dual"), dict(epsilon=0.1, value="plan_cost", n_iter=10),
            dict(epsilon=0.1, value="ot_eps", n_iter=3), dict(epsilon=0.1, value="dual", n_iter=30)]


@pytest.mark.parametrize("params", SETTINGS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_gradcheck_histogram_ot(params):
    """covers("histogram_ot", "gradcheck"): through the student's and the teacher's logits; exact (dual
    potentials), converged (envelope; implicit for the plan cost) and fixed iterations (unrolled)."""
    rng = np.random.default_rng(len(params))
    us, ut = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    cost = _cost(rng, 5)
    kw = {**params, "cost": cost, "temperature": 2.0, "tol": 1e-13, "max_iter": 5000}
    assert torch.autograd.gradcheck(lambda a, b: T.histogram_ot(a, b, **kw),
                                    (torch.tensor(us, requires_grad=True), torch.tensor(ut, requires_grad=True)),
                                    eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("params", SETTINGS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_finite_gradient_at_equality(params):
    """covers("histogram_ot", "finite_grad_at_equality"): student = teacher, saturated rows included."""
    rng = np.random.default_rng(1)
    u = torch.tensor(np.vstack([rng.normal(size=(2, 4)), [[30.0, -30.0, 0.0, 1.0]]]), requires_grad=True)
    out = T.histogram_ot(u, u.detach().clone(), cost=_cost(rng, 4), **params)
    (g,) = torch.autograd.grad(out, u)
    assert torch.isfinite(g).all()
    if not params["epsilon"] > 0:  # exact OT has its minimum 0 there
        assert float(out.detach()) == pytest.approx(0.0, abs=1e-12)


def test_per_row_costs_match_the_reference():
    rng = np.random.default_rng(2)
    us, ut = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    costs = np.stack([_cost(rng, 4) for _ in range(3)])
    for params in SETTINGS:
        want = R.histogram_ot(us, ut, cost=costs, **params)
        assert float(T.histogram_ot(torch.tensor(us), torch.tensor(ut), cost=costs, **params)) == pytest.approx(
            want, rel=1e-10, abs=1e-13)


def test_gradcheck_sinkhorn_plan_cost():
    """covers("sinkhorn", "plan_cost_gradcheck"): the implicit gradient of <P_eps, C> w.r.t. points and
    weights (the envelope theorem does not apply to the plan's cost)."""
    rng = np.random.default_rng(3)
    xs, xt = rng.normal(size=(5, 2)), rng.normal(size=(6, 2))
    a, b = rng.random(5) + 0.1, rng.random(6) + 0.1
    inputs = tuple(torch.tensor(v, requires_grad=True) for v in (xs, xt, a, b))
    assert torch.autograd.gradcheck(
        lambda x, y, wa, wb: T.sinkhorn(x, y, a=wa, b=wb, epsilon=0.5, value="plan_cost", tol=1e-13, max_iter=5000),
        inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
