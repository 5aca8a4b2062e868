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


def _rounded(log_plan, cost, a, b, epsilon):
    """``(<P, C>, <P, C> + ε KL(P || a⊗b))`` of the plan rounded onto U(a, b); see
    :func:`kd2m_ref.reference.sinkhorn.rounded_plan`."""
    plan, tiny = log_plan.exp(), torch.finfo(log_plan.dtype).tiny
    plan = plan * torch.clamp(a / plan.sum(1).clamp(min=tiny), max=1.0)[:, None]
    plan = plan * torch.clamp(b / plan.sum(0).clamp(min=tiny), max=1.0)[None, :]
    err_a, err_b = (a - plan.sum(1)).clamp(min=0), (b - plan.sum(0)).clamp(min=0)  # >= 0 up to rounding
    mass = err_a.sum()
    if mass > 0:
        plan = plan + torch.outer(err_a, err_b) / mass
    plan_cost = float((plan * cost).sum())
    return plan_cost, plan_cost + epsilon * float(_kl(plan, a, b))


def _kl(plan, a, b):
    """KL(P || a⊗b) (terms of zero plan mass are 0)."""
    ab = torch.outer(a, b)
    ratio = torch.where(ab > 0, plan / torch.where(ab > 0, ab, torch.ones_like(ab)), torch.ones_like(ab))
    return torch.xlogy(plan, ratio).sum()


def _dot(w, potential):
    """sum_i w_i f_i over the entries of positive weight."""
    return torch.where(w > 0, w * torch.where(w > 0, potential, torch.zeros_like(potential)),
                       torch.zeros_like(potential)).sum()


def _gap(c, la, lb, a, b, f, epsilon) -> float:
    """The certified duality gap at ``f`` (see :func:`_certify`)."""
    _, (_, primal), dual = _certify(c, la, lb, a, b, f, epsilon)
    return primal - dual


def _certify(c, la, lb, a, b, f, epsilon):
    """``(g, (plan cost, primal), dual)`` from ``f`` at the target ε; see
    :func:`kd2m_ref.reference.sinkhorn._certify`."""
    g = -epsilon * torch.logsumexp((la + f / epsilon)[:, None] - c / epsilon, dim=0)
    log_plan = (-c + f[:, None] + g[None, :]) / epsilon + la[:, None] + lb[None, :]
    dual = float(_dot(a, f) + _dot(b, g) - epsilon * (log_plan.exp().sum() - 1))
    return g, _rounded(log_plan, c, a, b, epsilon), dual


def _potentials(cost, a, b, epsilon, max_iter, tol, *, gap_rule=True):
    """The ε-scaled solve without autograd: ``(f, g, bounds, unconverged)``, ``bounds`` =
    ``{"ot_eps", "plan_cost", "dual"}`` as the reference computes them and ``unconverged`` None or
    ``(error, tol, gap)``; see :func:`kd2m_ref.reference.sinkhorn.solve_entropic`."""
    with torch.no_grad():
        c, a0, b0 = cost.detach(), a.detach(), b.detach()
        la, lb = torch.log(a0), torch.log(b0)
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
                if not fresh and (err <= stage_tol or (final and gap_rule and it % GAP_EVERY == GAP_EVERY - 1
                                                       and _gap(c, la, lb, a0, b0, f, eps) <= tol * cmax)):
                    converged = final
                    break
                it, fresh = it + 1, False
                if symmetric:  # a measure against itself: averaged update, f = g; see the reference
                    f = g = 0.5 * (f + f_next)
                else:
                    f = f_next
                    g = -eps * torch.logsumexp(k + (la + f / eps)[:, None], dim=0)
        g, (plan_cost, primal), dual = _certify(c, la, lb, a0, b0, f, epsilon)
        if converged:
            log_plan = (-c + f[:, None] + g[None, :]) / epsilon + la[:, None] + lb[None, :]
            plan_cost = float((log_plan.exp() * c).sum())
        bounds = {"ot_eps": dual if converged else primal, "plan_cost": plan_cost, "dual": dual}
        return f, g, bounds, None if converged else (err, tol, primal - dual)


class _PlanCost(torch.autograd.Function):
    r"""``<P, C>`` of the entropic plan :math:`P = (a\otimes b)\,e^{(f\oplus g - C)/\varepsilon}` at converged
    potentials, with the implicit-function gradient: differentiating the marginal constraints
    :math:`P\mathbb 1 = a`, :math:`P^\top\mathbb 1 = b` gives the potentials' response, so with
    :math:`W = P\circ C/\varepsilon` and :math:`(\lambda, \mu)` solving
    :math:`\begin{pmatrix}\mathrm{diag}(P\mathbb 1) & P\ P^\top & \mathrm{diag}(P^\top\mathbb 1)\end{pmatrix}
    \binom{\lambda}{\mu} = \binom{W\mathbb 1}{W^\top\mathbb 1}` (singular along (1, -1), which no
    gradient on the simplex sees): :math:`\partial_C = P\circ(1 - C/\varepsilon + \lambda\oplus\mu)`,
    :math:`\partial_a = \varepsilon\lambda`, :math:`\partial_b = \varepsilon\mu`. One (m, m) solve."""

    @staticmethod
    def forward(ctx, cost, a, b, f, g, epsilon):
        log_plan = (f[:, None] + g[None, :] - cost) / epsilon + torch.log(a)[:, None] + torch.log(b)[None, :]
        plan = log_plan.exp()
        ctx.save_for_backward(cost, plan)
        ctx.epsilon = epsilon
        return (plan * cost).sum()

    @staticmethod
    def backward(ctx, grad):
        cost, plan = ctx.saved_tensors
        eps = ctx.epsilon
        w = plan * cost / eps
        rows, cols = plan.sum(1), plan.sum(0)
        inv = torch.where(rows > 0, 1 / torch.where(rows > 0, rows, torch.ones_like(rows)), torch.zeros_like(rows))
        schur = torch.diag(cols) - plan.T @ (inv[:, None] * plan)
        rhs = w.sum(0) - plan.T @ (inv * w.sum(1))
        mu = torch.linalg.pinv(schur, hermitian=True) @ rhs
        lam = inv * (w.sum(1) - plan @ mu)
        grad_cost = plan * (1 - cost / eps + lam[:, None] + mu[None, :])
        return grad * grad_cost, grad * eps * lam, grad * eps * mu, None, None, None


def _entropic_cost(cost, a, b, epsilon, max_iter, tol, *, value):
    """``(value, unconverged)`` of entropic OT of ``cost`` between probability vectors ``a``, ``b``:
    ``value`` "ot_eps" (converged: the dual value; else the rounded plan's cost + ε KL, an upper bound),
    "dual" (the dual objective: a lower bound) or "plan_cost" (<P, C>). Gradients: the envelope gradient
    for "ot_eps" and "dual", the implicit one (:class:`_PlanCost`) for "plan_cost". ``unconverged`` is
    None or ``(error, tol, gap)``."""
    tol = _effective_tol(tol, cost.dtype, max(len(a), len(b)))
    f, g, bounds, unconverged = _potentials(cost, a, b, epsilon, max_iter, tol, gap_rule=value != "plan_cost")
    if value == "plan_cost":
        exact = _PlanCost.apply(cost, a, b, f, g, epsilon)
    else:
        f = -epsilon * torch.logsumexp(torch.log(b)[None, :] + (g[None, :] - cost) / epsilon, dim=1)
        exact = _dot(a, f) + _dot(b, g)
    return exact + (bounds[value] - exact).detach(), unconverged


def fixed_iterations(cost, a, b, epsilon: float, n_iter: int, value: str):
    """Exactly ``n_iter`` Sinkhorn iterations from u = 1 on a batch of problems (cost (B, n, m), a (B, n),
    b (B, m)), differentiated through the iterations as training code is; the per-problem ``value``
    (B,); see :func:`kd2m_ref.reference.sinkhorn.fixed_iterations`."""
    log_a, log_b = torch.log(a), torch.log(b)
    log_k = -cost / epsilon
    log_u = torch.where(a > 0, torch.zeros_like(a), torch.full_like(a, -torch.inf))
    for _ in range(n_iter):
        log_v = log_b - torch.logsumexp(log_u[:, :, None] + log_k, dim=1)
        log_u = log_a - torch.logsumexp(log_k + log_v[:, None, :], dim=2)
    plan = (log_u[:, :, None] + log_k + log_v[:, None, :]).exp()
    plan_cost = (plan * cost).sum((1, 2))
    if value == "plan_cost":
        return plan_cost
    if value == "ot_eps":
        ab = a[:, :, None] * b[:, None, :]
        ratio = torch.where(ab > 0, plan / torch.where(ab > 0, ab, torch.ones_like(ab)), torch.ones_like(ab))
        return plan_cost + epsilon * torch.xlogy(plan, ratio).sum((1, 2))
    f, g = epsilon * (log_u - log_a), epsilon * (log_v - log_b)
    dual = (torch.where(a > 0, a * torch.where(a > 0, f, torch.zeros_like(f)), torch.zeros_like(f)).sum(1)
            + torch.where(b > 0, b * torch.where(b > 0, g, torch.zeros_like(g)), torch.zeros_like(g)).sum(1))
    return dual - epsilon * (plan.sum((1, 2)) - 1)


def _prepared(xs, xt, a, b, p, epsilon, max_iter, tol, relative_epsilon, value="ot_eps"):
    check_sinkhorn_params(p, epsilon, max_iter, tol, relative_epsilon, value)
    xs, xt, a, b = measure(xs, xt, a, b)
    cost = pairwise_cost(xs, xt, p)
    if relative_epsilon:
        epsilon = resolve_epsilon(epsilon, float(a.detach() @ cost.detach() @ b.detach()))
    return xs, xt, a, b, cost, float(epsilon)


@float32_for_low_precision
def sinkhorn(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1, max_iter: int = 1000,
             tol: float = 1e-9, relative_epsilon: bool = False, value: str = "ot_eps") -> torch.Tensor:
    r"""Entropic OT: :math:`\mathrm{OT}_\varepsilon` (the dual value when converged, else the rounded
    plan's cost, an upper bound), the plan's cost :math:`\langle P, C\rangle` or the dual objective
    (``value``); see :func:`kd2m_ref.reference.sinkhorn`.

    ``tol`` is raised to ``32·n·u`` (u the unit roundoff of the input dtype) when smaller, since the
    marginal error cannot be resolved below it. A relative epsilon is resolved on the detached batch
    (no gradient through it). float16/bfloat16 inputs are computed in float32. Gradients: envelope
    theorem for "ot_eps" and "dual"; implicit differentiation of the plan for "plan_cost" (one
    (m, m) symmetric pseudo-inverse per call).

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import sinkhorn
    >>> xs, xt = torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [2.0]])
    >>> [round(sinkhorn(xs, xt, epsilon=0.5, value=v).item(), 4)
    ...  for v in ("ot_eps", "plan_cost")]  # both above W_2^2 = 1
    [1.2831, 1.1192]
    """
    xs, xt, a, b, cost, epsilon = _prepared(xs, xt, a, b, p, epsilon, max_iter, tol, relative_epsilon, value)
    out, unconverged = _entropic_cost(cost, a, b, epsilon, int(max_iter), tol, value=value)
    if unconverged:
        warn_unconverged(int(max_iter), *unconverged, value=value)
    return out


@float32_for_low_precision
def sinkhorn_divergence(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1,
                        max_iter: int = 1000, tol: float = 1e-9, relative_epsilon: bool = False) -> torch.Tensor:
    r"""Debiased Sinkhorn divergence (unconverged: the cross term's upper bound minus the self terms'
    lower bounds); see :func:`kd2m_ref.reference.sinkhorn_divergence`.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import sinkhorn_divergence
    >>> xs, xt = torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [2.0]])
    >>> round(sinkhorn_divergence(xs, xt, epsilon=0.5).item(), 4)  # debiased
    1.0
    """
    xs, xt, a, b, cost, epsilon = _prepared(xs, xt, a, b, p, epsilon, max_iter, tol, relative_epsilon)
    args = (epsilon, int(max_iter), tol)
    terms = [_entropic_cost(cost, a, b, *args, value="ot_eps"),
             _entropic_cost(pairwise_cost(xs, xs, p), a, a, *args, value="dual"),
             _entropic_cost(pairwise_cost(xt, xt, p), b, b, *args, value="dual")]
    unconverged = [u for _, u in terms if u]
    if unconverged:
        warn_unconverged(int(max_iter), *unconverged[0])
    return terms[0][0] - 0.5 * terms[1][0] - 0.5 * terms[2][0]
