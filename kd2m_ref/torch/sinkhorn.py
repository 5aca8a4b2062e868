"""Entropic OT in torch: log-domain Sinkhorn with envelope-theorem gradients.

The iterations run without autograd; one last half-step with autograd gives the value
``<a, f(C, b, g*)> + <b, g*>``, whose gradient is the envelope gradient (plan for the cost, dual
potentials for the weights), so memory does not grow with the number of iterations.
"""

from __future__ import annotations

import warnings

import torch

from ..reference.sinkhorn import SinkhornNotConverged, _check_sinkhorn_params
from ._common import measure, pairwise_cost


def _effective_tol(tol: float, dtype: torch.dtype, n: int) -> float:
    """A marginal error below ~n·eps cannot be certified in the working precision: raise ``tol`` to it."""
    return max(tol, 32 * n * torch.finfo(dtype).eps)


def _entropic_cost(xs, xt, a, b, p, epsilon, max_iter, tol, symmetric=False):
    cost = pairwise_cost(xs, xt, p)
    log_a, log_b = torch.log(a), torch.log(b)
    tol = _effective_tol(tol, cost.dtype, len(a))
    with torch.no_grad():
        # Row marginals of the plan of (f, g) are a * exp((f - T(g)) / eps), T the row update, so the
        # stopping test reuses the next update; column marginals are exact after each column update.
        k, la, lb = -cost.detach() / epsilon, log_a.detach(), log_b.detach()
        f, g = torch.zeros_like(la), torch.zeros_like(lb)
        err = float("inf")
        for _ in range(int(max_iter)):
            f_next = -epsilon * torch.logsumexp(k + (lb + g / epsilon)[None, :], dim=1)
            err = float((la.exp() * torch.expm1((f - f_next) / epsilon)).abs().sum())
            if err < tol:
                break
            if symmetric:  # a measure against itself: averaged update, see the reference
                f = g = 0.5 * (f + f_next)
            else:
                f = f_next
                g = -epsilon * torch.logsumexp(k + (la + f / epsilon)[:, None], dim=0)
        else:
            warnings.warn(
                f"Sinkhorn did not converge in max_iter={max_iter} iterations (marginal error {err:.2e} > "
                f"tol={tol:.1e}); increase max_iter or epsilon", SinkhornNotConverged, stacklevel=3)
    f = -epsilon * torch.logsumexp(log_b[None, :] + (g[None, :] - cost) / epsilon, dim=1)
    return (a * f).sum() + (b * g).sum()


def sinkhorn(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1, max_iter: int = 1000,
             tol: float = 1e-9) -> torch.Tensor:
    r"""Entropic OT cost :math:`\mathrm{OT}_\varepsilon`; see :func:`kd2m_ref.reference.sinkhorn`.

    ``tol`` is raised to ``32·n·eps`` (u the unit roundoff of the input dtype) when smaller, since the
    marginal error cannot be resolved below it.
    """
    _check_sinkhorn_params(p, epsilon, max_iter, tol)
    xs, xt, a, b = measure(xs, xt, a, b)
    return _entropic_cost(xs, xt, a, b, p, epsilon, max_iter, tol)


def sinkhorn_divergence(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1,
                        max_iter: int = 1000, tol: float = 1e-9) -> torch.Tensor:
    r"""Debiased Sinkhorn divergence; see :func:`kd2m_ref.reference.sinkhorn_divergence`."""
    _check_sinkhorn_params(p, epsilon, max_iter, tol)
    xs, xt, a, b = measure(xs, xt, a, b)
    args = (p, epsilon, max_iter, tol)
    return (_entropic_cost(xs, xt, a, b, *args)
            - 0.5 * _entropic_cost(xs, xs, a, a, *args, symmetric=True)
            - 0.5 * _entropic_cost(xt, xt, b, b, *args, symmetric=True))
