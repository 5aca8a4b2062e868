"""Entropic OT in torch: ε-scaled log-domain Sinkhorn with envelope-theorem gradients.

The same algorithm and value as :mod:`kd2m_ref.reference.sinkhorn` (ε-scaling, alternating updates or
the averaged one for a measure against itself, marginal-error or duality-gap stopping rule, the dual
value when converged and the rounded plan's cost otherwise). The iterations run without autograd; one last half-step with autograd gives ``<a, f(C, b, g*)> + <b, g*>``, whose gradient is
the envelope gradient (plan for the cost, dual potentials for the weights), so memory does not grow
with the number of iterations. The value the reference returns (dual value, or the rounded plan's
cost when unconverged) replaces that expression's value without changing its gradient.
"""

from __future__ import annotations

import torch

from .._conventions import GAP_EVERY, check_sinkhorn_params, epsilon_schedule, resolve_epsilon, warn_unconverged
from ._common import float32_for_low_precision, measure, pairwise_cost


def _effective_tol(tol: float, dtype: torch.dtype, n: int) -> float:
    """A marginal error below ~n·eps cannot be certified in the working precision: raise ``tol`` to it."""
    return max(tol, 32 * n * torch.finfo(dtype).eps)


def _weighted_change(w, diff, eps):
    """sum_i w_i |e^{diff_i / eps} - 1| over the entries of positive weight."""
    return torch.where(w > 0, w.detach() * torch.expm1(diff / eps).abs(), torch.zeros_like(diff)).sum()


def _rounded_primal(log_plan, cost, a, b, epsilon):
    """Cost + ε·KL of the plan rounded onto U(a, b); see :func:`kd2m_ref.reference.sinkhorn.rounded_plan`."""
    plan, tiny = log_plan.exp(), torch.finfo(log_plan.dtype).tiny
    plan = plan * torch.clamp(a / plan.sum(1).clamp(min=tiny), max=1.0)[:, None]
    plan = plan * torch.clamp(b / plan.sum(0).clamp(min=tiny), max=1.0)[None, :]
    err_a, err_b = (a - plan.sum(1)).clamp(min=0), (b - plan.sum(0)).clamp(min=0)  # >= 0 up to rounding
    mass = err_a.sum()
    if mass > 0:
        plan = plan + torch.outer(err_a, err_b) / mass
    ab = torch.outer(a, b)
    ratio = torch.where(ab > 0, plan / torch.where(ab > 0, ab, torch.ones_like(ab)), torch.ones_like(ab))
    return float((plan * cost).sum() + epsilon * torch.xlogy(plan, ratio).sum())


def _gap(g, primal, dual) -> float:
    return primal - dual


def _certify(c, la, lb, a, b, f, epsilon):
    """``(g, primal, dual)`` from ``f`` at the target ε; see :func:`kd2m_ref.reference.sinkhorn._certify`."""
    g = -epsilon * torch.logsumexp((la + f / epsilon)[:, None] - c / epsilon, dim=0)
    log_plan = (-c + f[:, None] + g[None, :]) / epsilon + la[:, None] + lb[None, :]
    dual = float((a * f).sum() + (b * g).sum() - epsilon * (log_plan.exp().sum() - 1))
    return g, _rounded_primal(log_plan, c, a, b, epsilon), dual


def _entropic_cost(cost, a, b, epsilon, max_iter, tol, *, value):
    """``(value, unconverged)``: OT_eps of ``cost`` between probability vectors ``a``, ``b``, with the
    envelope gradient. ``value="dual"``: the dual objective (a lower bound); ``"primal"``: the dual value
    when converged, else the rounded plan's cost (an upper bound). ``unconverged`` is None or
    ``(error, tol, gap)``."""
    log_a, log_b = torch.log(a), torch.log(b)
    tol = _effective_tol(tol, cost.dtype, max(len(a), len(b)))
    with torch.no_grad():
        c, la, lb, a0, b0 = cost.detach(), log_a.detach(), log_b.detach(), a.detach(), b.detach()
        symmetric = c.shape[0] == c.shape[1] and torch.equal(c, c.T) and torch.equal(a0, b0)
        f, g = torch.zeros_like(la), torch.zeros_like(lb)
        cmax = float(c.max())
        schedule = epsilon_schedule(cmax, epsilon)
        it, err, converged = 0, float("inf"), False
        for stage, eps in enumerate(schedule):
            final = stage == len(schedule) - 1
            stage_tol = tol if final else max(tol, 1e-3)
            k = -c / eps
            fresh = True  # g is not yet the c-transform of f at this ε: no test before one update
            while it < (max_iter if final else max_iter // 2):  # half the budget is kept for the target ε
                f_next = -eps * torch.logsumexp(k + (lb + g / eps)[None, :], dim=1)
                # with g = T_a(f) the columns are exact and the rows sum to a e^{(f - f_next)/eps}
                err = (1 + symmetric) * float(_weighted_change(a0, f - f_next, eps))
                if not fresh and (err <= stage_tol or (final and it % GAP_EVERY == GAP_EVERY - 1
                                                       and _gap(*_certify(c, la, lb, a0, b0, f, eps)) <= tol * cmax)):
                    converged = final
                    break
                it, fresh = it + 1, False
                if symmetric:  # a measure against itself: averaged update, f = g; see the reference
                    f = g = 0.5 * (f + f_next)
                else:
                    f = f_next
                    g = -eps * torch.logsumexp(k + (la + f / eps)[:, None], dim=0)
        g, primal, dual = _certify(c, la, lb, a0, b0, f, epsilon)
        unconverged = None if converged else (err, tol, primal - dual)
    f = -epsilon * torch.logsumexp(log_b[None, :] + (g[None, :] - cost) / epsilon, dim=1)
    envelope = (a * f).sum() + (b * g).sum()
    target = dual if value == "dual" or converged else primal
    return envelope + (target - envelope).detach(), unconverged


def _prepared(xs, xt, a, b, p, epsilon, max_iter, tol, relative_epsilon):
    check_sinkhorn_params(p, epsilon, max_iter, tol, relative_epsilon)
    xs, xt, a, b = measure(xs, xt, a, b)
    cost = pairwise_cost(xs, xt, p)
    if relative_epsilon:
        epsilon = resolve_epsilon(epsilon, float(a.detach() @ cost.detach() @ b.detach()))
    return xs, xt, a, b, cost, float(epsilon)


@float32_for_low_precision
def sinkhorn(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1, max_iter: int = 1000,
             tol: float = 1e-9, relative_epsilon: bool = False) -> torch.Tensor:
    r"""Entropic OT cost :math:`\mathrm{OT}_\varepsilon` (the dual value when converged, else the rounded
    plan's cost, an upper bound); see :func:`kd2m_ref.reference.sinkhorn`.

    ``tol`` is raised to ``32·n·u`` (u the unit roundoff of the input dtype) when smaller, since the
    marginal error cannot be resolved below it. A relative epsilon is resolved on the detached batch
    (no gradient through it). float16/bfloat16 inputs are computed in float32.
    """
    xs, xt, a, b, cost, epsilon = _prepared(xs, xt, a, b, p, epsilon, max_iter, tol, relative_epsilon)
    value, unconverged = _entropic_cost(cost, a, b, epsilon, int(max_iter), tol, value="primal")
    if unconverged:
        warn_unconverged(int(max_iter), *unconverged)
    return value


@float32_for_low_precision
def sinkhorn_divergence(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1,
                        max_iter: int = 1000, tol: float = 1e-9, relative_epsilon: bool = False) -> torch.Tensor:
    r"""Debiased Sinkhorn divergence (unconverged: the cross term's upper bound minus the self terms'
    lower bounds); see :func:`kd2m_ref.reference.sinkhorn_divergence`."""
    xs, xt, a, b, cost, epsilon = _prepared(xs, xt, a, b, p, epsilon, max_iter, tol, relative_epsilon)
    args = (epsilon, int(max_iter), tol)
    terms = [_entropic_cost(cost, a, b, *args, value="primal"),
             _entropic_cost(pairwise_cost(xs, xs, p), a, a, *args, value="dual"),
             _entropic_cost(pairwise_cost(xt, xt, p), b, b, *args, value="dual")]
    unconverged = [u for _, u in terms if u]
    if unconverged:
        warn_unconverged(int(max_iter), *unconverged[0])
    return terms[0][0] - 0.5 * terms[1][0] - 0.5 * terms[2][0]
