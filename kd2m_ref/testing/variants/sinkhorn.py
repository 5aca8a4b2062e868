"""Variants of entropic OT: what other Sinkhorn implementations compute instead.

Every entropic value here is the converged one (ε-scaled log-domain Sinkhorn to :data:`TOL`, or
:data:`PLAN_TOL` for a plan's cost). Where the solver does not converge within :data:`MAX_ITER`, or
max C / ε exceeds :data:`MAX_RATIO`, the variant raises
:class:`~kd2m_ref.testing.variants.NotApplicable` rather than give an unconverged number.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..._conventions import SinkhornNotConverged
from ...registry import METRICS
from ...reference.sinkhorn import solve_entropic
from ...reference.wasserstein import cost_matrix
from ._common import NotApplicable, _ref, as_metric, ignores_weights, not_applicable, param_or, root

MAX_ITER = 20_000  #: iteration budget of every entropic solve here
TOL = 1e-12  #: a dual value is converged once the duality gap is at most TOL·max C (or the marginal error TOL)
PLAN_TOL = 1e-10  #: marginal (L1) error at which a plan's cost <P, C> is taken as converged
MAX_RATIO = 1e3  #: largest max C / epsilon solved (beyond, convergence costs 1e5+ iterations per example)


def _entropic(xs, xt, a, b, p, epsilon, *, plan_cost=False, cost=None) -> float:
    """OT_eps by the converged reference solver: the dual value (converged: duality gap within
    TOL·max C), or <plan, C> of its plan (POT's sinkhorn2; converged: marginal error within PLAN_TOL,
    as a small gap bounds the plan's error only by ~sqrt(gap / eps)). Not converged:
    :class:`NotApplicable` (so is epsilon <= 0, where OT_eps is not defined)."""
    if not epsilon > 0:
        raise NotApplicable
    c = cost_matrix(xs, xt, p) if cost is None else cost
    if c.max() > MAX_RATIO * epsilon:
        raise NotApplicable
    a = np.full(len(xs), 1 / len(xs)) if a is None else np.asarray(a, float) / np.sum(a)
    b = np.full(len(xt), 1 / len(xt)) if b is None else np.asarray(b, float) / np.sum(b)
    la, lb = np.log(a), np.log(b)
    sol = solve_entropic(c, la, lb, epsilon, MAX_ITER, PLAN_TOL if plan_cost else TOL,
                         gap_rule=not plan_cost)
    if not sol.converged:
        raise NotApplicable
    return float(sol.plan_cost if plan_cost else sol.dual)


def sinkhorn_instead(eps: float, plan_cost: bool):
    """Entropic OT with an absolute epsilon, passed off as exact OT."""
    def fn(ex):
        xs, xt = ex.args
        return _entropic(xs, xt, ex.kwargs.get("a"), ex.kwargs.get("b"), float(param_or(ex, "p", 2.0)), eps,
                         plan_cost=plan_cost)
    return fn


def _sinkhorn_kwargs(ex):
    return float(param_or(ex, "p", 2.0)), float(param_or(ex, "epsilon", 0.1))


def entropic_variant(debiased: bool, plan_cost: bool | None = None, eps_map=lambda eps, p, cmax: eps,
                     cost_factor: float = 1.0):
    """Entropic OT (debiased or not) with the cost scaled by ``cost_factor`` and epsilon mapped by
    ``eps_map(eps, p, max cost)``, returning the dual value or the plan's cost (None: as the example's
    ``value``)."""
    def fn(ex):
        xs, xt = ex.args
        a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
        p, eps = _sinkhorn_kwargs(ex)
        e = eps_map(eps, p, float(cost_matrix(xs, xt, p).max()))
        plans = ex.kwargs.get("value") == "plan_cost" if plan_cost is None else plan_cost

        def ot(u, v, wu, wv):
            return _entropic(u, v, wu, wv, p, e, plan_cost=plans, cost=cost_factor * cost_matrix(u, v, p))

        value = ot(xs, xt, a, b)
        if debiased:
            value -= 0.5 * ot(xs, xs, a, a) + 0.5 * ot(xt, xt, b, b)
        return value
    return fn


def _converged(key: str, ex, **changes) -> float:
    """The reference with ``changes``, solved to :data:`TOL` / :data:`PLAN_TOL` (not applicable when the
    changes are no change, or the solve does not converge)."""
    if all(ex.kwargs.get(k, METRICS[key].params[k].default) == v for k, v in changes.items()):
        raise NotApplicable
    value = changes.get("value", ex.kwargs.get("value", "ot_eps"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SinkhornNotConverged)
        try:
            return _ref(key, ex, max_iter=MAX_ITER, tol=PLAN_TOL if value == "plan_cost" else TOL, **changes)
        except SinkhornNotConverged:
            raise NotApplicable from None


def _entropy(w, n) -> float:
    w = np.full(n, 1 / n) if w is None else np.asarray(w, float) / np.sum(w)
    return float(-np.sum(w * np.log(w)))


def _entropy_regulariser(ex):
    """<plan, C> - eps H(plan) = OT_eps - eps (H(a) + H(b))."""
    xs, xt = ex.args
    _, eps = _sinkhorn_kwargs(ex)
    return _ref("sinkhorn", ex) - eps * (_entropy(ex.kwargs.get("a"), len(xs)) + _entropy(ex.kwargs.get("b"), len(xt)))


def _sinkhorn_common(key: str, debiased: bool) -> dict:
    return {
        "half_cost": ("cost ||x - y||^2 / 2 with the same epsilon (GeomLoss's p = 2 convention)",
                      entropic_variant(debiased, cost_factor=0.5)),
        "epsilon=blur^p": ("epsilon read as GeomLoss's blur: epsilon^p used", entropic_variant(
            debiased, eps_map=lambda e, p, c: e ** p if e ** p != e else not_applicable())),
        "epsilon_relative_to_max_cost": ("epsilon relative to the largest cost (epsilon * max C)",
                                         entropic_variant(debiased, eps_map=lambda e, p, c: e * c if c != 1 else
                                                          not_applicable())),
        "exact": ("exact OT (epsilon -> 0) instead of entropic", as_metric("wasserstein")),
        "p_th_root": ("the p-th root of the value", root(key)),
        "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights(key)),
    }


sinkhorn = {
    "value=plan_cost": ("<plan, C> of the entropic plan, without the entropy term (POT's sinkhorn2, Cuturi's "
                        "Sinkhorn distance)", lambda ex: _converged("sinkhorn", ex, value="plan_cost")),
    "value=ot_eps": ("OT_eps = <plan, C> + eps KL(plan || a b^T) instead of the plan's cost",
                     lambda ex: _converged("sinkhorn", ex, value="ot_eps")),
    **_sinkhorn_common("sinkhorn", False),
    "debiased": ("the debiased Sinkhorn divergence instead of entropic OT", as_metric("sinkhorn_divergence")),
    "entropy_regulariser": ("regulariser -eps H(plan) instead of eps KL(plan || a b^T) (shifts by eps (H(a) + H(b)))",
                            _entropy_regulariser),
}

sinkhorn_divergence = {
    "plan_cost": ("<plan, C> of the entropic plans, without the entropy terms (POT's sinkhorn2)",
                  entropic_variant(True, plan_cost=True)),
    **_sinkhorn_common("sinkhorn_divergence", True),
    "not_debiased": ("plain entropic OT (not debiased)", as_metric("sinkhorn")),
}
