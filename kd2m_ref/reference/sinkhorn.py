r"""Entropic optimal transport by log-domain Sinkhorn with ε-scaling, float64.

How the value is computed (both layers do the same):

- **Iterations.** Log-domain only (the kernel :math:`e^{-C/\varepsilon}` of plain Sinkhorn underflows at
  small ε). Alternating updates :math:`f \leftarrow T_b(g)`, :math:`g \leftarrow T_a(f)` (T the soft
  c-transform); a symmetric problem (a measure against itself: same points, same weights) takes the
  averaged update :math:`f \leftarrow \tfrac12(f + T(f))` with :math:`g = f`, which converges at once
  where the alternating one creeps along a flat direction. **ε-scaling**: the iterations start at
  :math:`\varepsilon_0 = \max C` and halve ε down to the target, each stage warm-starting the next, so
  the potentials reach the slow (nearly flat) dual directions of a small ε from a point where they
  were not flat.
- **Certified bounds.** After the iterations, one exact c-transform makes the columns exact; the
  dual objective there is a lower bound of :math:`\mathrm{OT}_\varepsilon`, and the primal objective of
  the plan rounded onto :math:`U(a, b)` (rows then columns scaled down, the deficit added as a rank-one
  term; Altschuler, Weed and Rigollet, 2017) is an upper bound. Their difference is the duality gap.
- **Stopping rule**: at the target ε, stop when the L1 marginal error of the plan
  :math:`P = (a\otimes b)\,e^{(f\oplus g - C)/\varepsilon}` (rows plus columns) is at most ``tol``, or
  when the duality gap is at most ``tol``·max C (tested every 16 iterations). The second test ends the
  runs whose plan is nearly a permutation: there the marginal error creeps down by ~e^{-C/ε} per
  iteration while the value is already certified to rounding.
- **Value.** Converged: the dual value (within the gap, at most ``tol``·max C, of
  :math:`\mathrm{OT}_\varepsilon`; its error is quadratic in the potentials' error). Not converged within
  ``max_iter``: the **upper bound**, the cost of a feasible plan, so :math:`\ge \mathrm{OT}_\varepsilon
  \ge W_p^p` holds whatever the budget, and a :class:`SinkhornNotConverged` warning states by how much
  it may exceed :math:`\mathrm{OT}_\varepsilon` (the gap). An unconverged dual value can fall far below
  :math:`W_p^p`; it is never returned. The Sinkhorn divergence subtracts the self terms' dual (lower
  bound) values, so unconverged it is an upper bound of :math:`S_\varepsilon`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from .._conventions import (GAP_EVERY, SinkhornNotConverged, check_sinkhorn_params, epsilon_schedule, resolve_epsilon,
                            warn_unconverged)
from .wasserstein import _measure, cost_matrix


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """log sum exp along ``axis``, max-shifted; -inf where every entry is -inf (scipy's, without its
    per-call overhead, which dominates the small problems of the iterations)."""
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(x - top), axis=axis)) + np.squeeze(top, axis=axis)


@dataclass(frozen=True)
class EntropicSolution:
    """Potentials and certified bounds of one entropic OT problem."""

    f: np.ndarray
    g: np.ndarray
    epsilon: float
    primal: float  # cost of the rounded feasible plan: an upper bound of OT_eps
    dual: float  # dual objective at (f, g): a lower bound of OT_eps
    marginal_error: float
    iterations: int
    converged: bool

    plan_cost: float  # <P, C> of the plan (f, g) (converged) or of the rounded plan (not converged)

    @property
    def value(self) -> float:
        """OT_eps as the metric returns it: the dual value when converged (within the gap of OT_eps, its
        error quadratic in the potentials'), else the upper bound."""
        return self.dual if self.converged else self.primal

    def select(self, value: str) -> float:
        """The number ``value=`` asks for: "ot_eps" (:attr:`value`), "plan_cost" or "dual"."""
        return {"ot_eps": self.value, "plan_cost": self.plan_cost, "dual": self.dual}[value]


def _log_plan(cost, log_a, log_b, f, g, epsilon):
    return log_a[:, None] + log_b[None, :] + (f[:, None] + g[None, :] - cost) / epsilon


def _weighted_change(log_w, diff, eps) -> float:
    """sum_i w_i |e^{diff_i / eps} - 1| over the entries of positive weight: the L1 error of marginals
    w_i e^{diff_i / eps}."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.where(log_w > -np.inf, np.exp(log_w) * np.abs(np.expm1(diff / eps)), 0.0).sum())


def rounded_plan(plan, a, b):
    """Project a positive plan onto the couplings U(a, b): scale rows down to at most ``a``, columns
    down to at most ``b``, then add the missing mass as ``err_a err_b^T / |err_a|_1`` (Altschuler,
    Weed and Rigollet, 2017). The result is feasible, and close to ``plan`` when its marginals are."""
    tiny = np.finfo(float).tiny
    plan = plan * np.minimum(1.0, a / np.maximum(plan.sum(1), tiny))[:, None]
    plan = plan * np.minimum(1.0, b / np.maximum(plan.sum(0), tiny))[None, :]
    err_a, err_b = np.maximum(a - plan.sum(1), 0.0), np.maximum(b - plan.sum(0), 0.0)  # >= 0 up to rounding
    mass = err_a.sum()
    return plan + np.outer(err_a, err_b) / mass if mass > 0 else plan


def primal_value(plan, cost, a, b, epsilon) -> float:
    r""":math:`\langle P, C\rangle + \varepsilon\,\mathrm{KL}(P\,\|\,a\otimes b)` of a coupling P: both terms
    are non-negative sums, so no cancellation."""
    ab = np.outer(a, b)
    ratio = np.divide(plan, ab, out=np.ones_like(plan), where=ab > 0)
    return float(np.sum(plan * cost) + epsilon * np.sum(xlogy(plan, ratio)))


def _certify(cost, log_a, log_b, f, epsilon):
    """``(g, primal, dual)`` at the target ε from ``f``: one exact c-transform g = T_a(f) (it can only
    raise the dual, and makes the columns exact, so no plan entry exceeds b_j), the dual objective
    there (a lower bound of OT_eps) and the cost of the rounded plan (an upper bound)."""
    g = -epsilon * logsumexp(log_a[:, None] + (f[:, None] - cost) / epsilon, axis=0)
    plan = np.exp(_log_plan(cost, log_a, log_b, f, g, epsilon))
    a, b = np.exp(log_a), np.exp(log_b)
    dual = float(_dot(a, f) + _dot(b, g) - epsilon * (plan.sum() - 1.0))
    return g, primal_value(rounded_plan(plan, a, b), cost, a, b, epsilon), dual


def _dot(w, potential) -> float:
    """sum_i w_i f_i over the entries of positive weight (a potential is -inf/undefined off the support)."""
    return float(np.sum(np.where(w > 0, w * np.where(w > 0, potential, 0.0), 0.0)))


def solve_entropic(cost, log_a, log_b, epsilon, max_iter, tol, *, gap_rule: bool = True) -> EntropicSolution:
    """ε-scaled log-domain Sinkhorn on a cost matrix; see the module docstring. ``gap_rule=False``
    stops on the marginal error alone (what a plan's cost needs: a small gap bounds the plan's error
    only by ~sqrt(gap / ε))."""
    symmetric = cost.shape[0] == cost.shape[1] and np.array_equal(cost, cost.T) and np.array_equal(log_a, log_b)
    f, g = np.zeros(len(log_a)), np.zeros(len(log_b))
    cmax = float(cost.max())
    schedule = epsilon_schedule(cmax, epsilon)
    it, err, converged = 0, np.inf, False
    for stage, eps in enumerate(schedule):
        final = stage == len(schedule) - 1
        stage_tol = tol if final else max(tol, 1e-3)
        fresh = True  # g is not yet the c-transform of f at this ε: no test before one update
        while it < (max_iter if final else max_iter // 2):  # half the budget is kept for the target ε
            f_next = -eps * logsumexp(log_b[None, :] + (g[None, :] - cost) / eps, axis=1)
            # with g = T_a(f) the columns are exact and the rows sum to a e^{(f - f_next)/eps}
            err = (1 + symmetric) * _weighted_change(log_a, f - f_next, eps)
            if not fresh and (err <= stage_tol or (final and gap_rule and it % GAP_EVERY == GAP_EVERY - 1
                                                   and _gap(*_certify(cost, log_a, log_b, f, eps)) <= tol * cmax)):
                converged = final
                break
            it, fresh = it + 1, False
            if symmetric:  # a measure against itself: averaged update, f = g throughout
                f = g = 0.5 * (f + f_next)
            else:
                f = f_next
                g = -eps * logsumexp(log_a[:, None] + (f[:, None] - cost) / eps, axis=0)
    g, primal, dual = _certify(cost, log_a, log_b, f, epsilon)
    plan = np.exp(_log_plan(cost, log_a, log_b, f, g, epsilon))
    if not converged:
        plan = rounded_plan(plan, np.exp(log_a), np.exp(log_b))
    return EntropicSolution(f, g, epsilon, primal, dual, err, it, converged, float(np.sum(plan * cost)))


def fixed_iterations(cost, log_a, log_b, epsilon: float, n_iter: int) -> dict[str, float]:
    r"""What training code computes: exactly ``n_iter`` Sinkhorn iterations at ``epsilon``, no
    ε-scaling, no stopping rule. In kernel form (:math:`K = e^{-C/\varepsilon}`) they start from
    :math:`u = \mathbb 1` and repeat :math:`v \leftarrow b / K^\top u`, :math:`u \leftarrow a / K v`; the
    plan is :math:`P = \mathrm{diag}(u) K \mathrm{diag}(v)` (rows exact, columns not yet). Computed in
    the log domain. Returns ``{"plan_cost": <P, C>, "ot_eps": <P, C> + ε KL(P || a⊗b), "dual":
    <f, a> + <g, b> - ε(ΣP - 1)}`` with :math:`f = \varepsilon\log(u/a)`, :math:`g = \varepsilon\log(v/b)`.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference.sinkhorn import fixed_iterations
    >>> log_a, log_b = np.log([0.5, 0.5]), np.log([0.25, 0.75])
    >>> out = fixed_iterations(1 - np.eye(2), log_a, log_b, 0.1, n_iter=10)
    >>> {key: round(value, 4) for key, value in out.items()}  # exact OT: 0.25
    {'plan_cost': 0.2107, 'ot_eps': 0.2372, 'dual': 0.271}
    """
    log_u = np.where(log_a > -np.inf, 0.0, -np.inf)
    log_k = -cost / epsilon
    for _ in range(n_iter):
        log_v = log_b - logsumexp(log_u[:, None] + log_k, axis=0)
        log_u = log_a - logsumexp(log_k + log_v[None, :], axis=1)
    log_plan = log_u[:, None] + log_k + log_v[None, :]
    plan = np.exp(log_plan)
    a, b = np.exp(log_a), np.exp(log_b)
    with np.errstate(invalid="ignore"):
        f, g = epsilon * (log_u - log_a), epsilon * (log_v - log_b)
    return {"plan_cost": float(np.sum(plan * cost)), "ot_eps": primal_value(plan, cost, a, b, epsilon),
            "dual": _dot(a, f) + _dot(b, g) - epsilon * (float(plan.sum()) - 1.0)}


def _gap(g, primal, dual) -> float:
    return primal - dual


def _warn(sol, max_iter, tol, value="ot_eps"):
    warn_unconverged(max_iter, sol.marginal_error, tol, sol.primal - sol.dual, stacklevel=3, value=value)


def _solve(xs, xt, a, b, p, epsilon, max_iter, tol, value="ot_eps") -> EntropicSolution:
    cost = cost_matrix(xs, xt, p)
    with np.errstate(divide="ignore"):
        log_a = np.log(np.full(len(xs), 1.0 / len(xs)) if a is None else a / a.sum())
        log_b = np.log(np.full(len(xt), 1.0 / len(xt)) if b is None else b / b.sum())
    return solve_entropic(cost, log_a, log_b, epsilon, int(max_iter), tol, gap_rule=value != "plan_cost")


def _prepared(xs, xt, a, b, p, epsilon, max_iter, tol, relative_epsilon, value="ot_eps"):
    check_sinkhorn_params(p, epsilon, max_iter, tol, relative_epsilon, value)
    xs, xt, a, b = _measure(xs, xt, a, b)
    if relative_epsilon:
        wa = np.full(len(xs), 1.0 / len(xs)) if a is None else a / a.sum()
        wb = np.full(len(xt), 1.0 / len(xt)) if b is None else b / b.sum()
        epsilon = resolve_epsilon(epsilon, float(wa @ cost_matrix(xs, xt, p) @ wb))
    return xs, xt, a, b, epsilon


def sinkhorn(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1, max_iter: int = 1000,
             tol: float = 1e-9, relative_epsilon: bool = False, value: str = "ot_eps") -> float:
    r"""Entropic OT cost :math:`\mathrm{OT}_\varepsilon` between weighted empirical measures.

    .. math:: \mathrm{OT}_\varepsilon(a, b) = \min_{\gamma \in U(a,b)} \langle \gamma, C\rangle
              + \varepsilon\, \mathrm{KL}(\gamma \,\|\, a \otimes b)

    with :math:`C_{ij} = \|x_i - y_j\|^p`. ``epsilon`` is in cost units, or, with
    ``relative_epsilon=True``, in units of the mean cost :math:`\sum_{ij} a_i b_j C_{ij}` of the batch
    (scale-free: the same value suits features of any scale and dimension). ε-scaled log-domain
    iterations until the L1 marginal error is at most ``tol`` (or the duality gap at most
    ``tol``·max C). Converged: the dual value, within ``tol``·max C of :math:`\mathrm{OT}_\varepsilon`.
    Otherwise: :class:`SinkhornNotConverged` warns, stating the gap, and the cost of the rounded feasible
    plan is returned, an upper bound of :math:`\mathrm{OT}_\varepsilon` (hence of :math:`W_p^p`).
    Tends to :math:`W_p^p` as epsilon -> 0.

    ``value`` picks the number returned from the same solve (all three agree as epsilon -> 0):

    - ``"ot_eps"`` (default): :math:`\mathrm{OT}_\varepsilon` as above.
    - ``"plan_cost"``: :math:`\langle P_\varepsilon, C\rangle`, the transport cost of the entropic plan
      without the entropy term (Cuturi's 2013 "Sinkhorn distance", POT's ``sinkhorn2``). It is at most
      :math:`\mathrm{OT}_\varepsilon` and at least :math:`W_p^p`. Converged means a marginal error within
      ``tol`` (no duality-gap rule: a small gap bounds the plan's error only by ~sqrt(gap/ε)).
      Not converged: the cost of the rounded feasible plan.
    - ``"dual"``: the dual objective :math:`\langle f, a\rangle + \langle g, b\rangle` at the final
      potentials (:math:`\mathrm{OT}_\varepsilon` when converged; a lower bound otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import sinkhorn
    >>> xs, xt = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    >>> [round(sinkhorn(xs, xt, epsilon=0.5, value=v), 4)
    ...  for v in ("ot_eps", "plan_cost", "dual")]  # W_2^2 = 1
    [1.2831, 1.1192, 1.2831]

    Stopped before convergence, it warns, and the value is an upper bound:

    >>> import warnings
    >>> from kd2m_ref.reference import SinkhornNotConverged
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     upper = sinkhorn(xs, xt, epsilon=0.5, max_iter=2)
    >>> caught[0].category is SinkhornNotConverged, upper >= 1.2831
    (True, True)
    """
    xs, xt, a, b, epsilon = _prepared(xs, xt, a, b, p, epsilon, max_iter, tol, relative_epsilon, value)
    sol = _solve(xs, xt, a, b, p, epsilon, max_iter, tol, value)
    if not sol.converged:
        _warn(sol, max_iter, tol, value)
    return sol.select(value)


def sinkhorn_divergence(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1,
                        max_iter: int = 1000, tol: float = 1e-9, relative_epsilon: bool = False) -> float:
    r"""Debiased Sinkhorn divergence
    :math:`S_\varepsilon = \mathrm{OT}_\varepsilon(a,b) - \tfrac12\mathrm{OT}_\varepsilon(a,a) - \tfrac12\mathrm{OT}_\varepsilon(b,b)`.

    Non-negative, zero iff the measures are equal (for p = 1, 2 costs), tends to :math:`W_p^p` as
    epsilon -> 0 and to an MMD as epsilon -> infinity. Same parameters as :func:`sinkhorn` (a relative
    epsilon is resolved once, on the cross cost, and used for all three terms). Not converged, it is
    the cross term's upper bound minus the self terms' lower bounds: an upper bound of
    :math:`S_\varepsilon`, within the summed duality gaps.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import sinkhorn_divergence
    >>> xs, xt = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    >>> round(sinkhorn_divergence(xs, xt, epsilon=0.5), 4)  # debiased: W_2^2
    1.0
    >>> round(sinkhorn_divergence(xs, xs, epsilon=0.5), 4)
    0.0
    """
    xs, xt, a, b, epsilon = _prepared(xs, xt, a, b, p, epsilon, max_iter, tol, relative_epsilon)
    args = (p, epsilon, max_iter, tol)
    terms = (_solve(xs, xt, a, b, *args), _solve(xs, xs, a, a, *args), _solve(xt, xt, b, b, *args))
    for sol in terms:
        if not sol.converged:
            _warn(sol, max_iter, tol)
            break
    cross, self_s, self_t = terms
    return cross.value - 0.5 * self_s.dual - 0.5 * self_t.dual
