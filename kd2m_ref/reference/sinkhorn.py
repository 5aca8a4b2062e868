"""Entropic optimal transport by log-domain Sinkhorn, float64.

Plain (kernel-domain) Sinkhorn underflows at small epsilon, so only the log-domain form is used.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import logsumexp

from .._checks import check_p, check_positive
from .wasserstein import _measure, cost_matrix


class SinkhornNotConverged(RuntimeWarning):
    """Sinkhorn stopped at ``max_iter`` before the marginal error fell below ``tol``."""


def sinkhorn_potentials(cost, log_a, log_b, epsilon, max_iter, tol, symmetric=False):
    """Dual potentials (f, g) of entropic OT; stops when the row-marginal L1 error is below ``tol``.

    ``symmetric`` (a measure against itself): the averaged update f <- (f + T(f)) / 2, which converges
    where the alternating one oscillates; then g = f.
    """
    f, g = np.zeros(len(log_a)), np.zeros(len(log_b))
    err = np.inf
    for _ in range(int(max_iter)):
        if symmetric:
            f = g = 0.5 * (f - epsilon * logsumexp(log_a[None, :] + (f[None, :] - cost) / epsilon, axis=1))
        else:
            f = -epsilon * logsumexp(log_b[None, :] + (g[None, :] - cost) / epsilon, axis=1)
            g = -epsilon * logsumexp(log_a[:, None] + (f[:, None] - cost) / epsilon, axis=0)
        log_plan = log_a[:, None] + log_b[None, :] + (f[:, None] + g[None, :] - cost) / epsilon
        err = np.abs(np.exp(logsumexp(log_plan, axis=1)) - np.exp(log_a)).sum()
        if err < tol:
            return f, g
    warnings.warn(
        f"Sinkhorn did not converge in max_iter={max_iter} iterations (marginal error {err:.2e} > tol={tol:.1e}); "
        "increase max_iter or epsilon",
        SinkhornNotConverged,
        stacklevel=3,
    )
    return f, g


def _entropic_cost(xs, xt, a, b, p, epsilon, max_iter, tol, symmetric=False) -> float:
    cost = cost_matrix(xs, xt, p)
    log_a = np.log(np.full(len(xs), 1.0 / len(xs)) if a is None else a / a.sum())
    log_b = np.log(np.full(len(xt), 1.0 / len(xt)) if b is None else b / b.sum())
    f, g = sinkhorn_potentials(cost, log_a, log_b, epsilon, max_iter, tol, symmetric)
    return float(np.exp(log_a) @ f + np.exp(log_b) @ g)


def _check_sinkhorn_params(p, epsilon, max_iter, tol):
    check_p(p)
    check_positive(epsilon, "epsilon")
    check_positive(tol, "tol")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter}")


def sinkhorn(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1, max_iter: int = 1000,
             tol: float = 1e-9) -> float:
    r"""Entropic OT cost :math:`\mathrm{OT}_\varepsilon` between weighted empirical measures.

    .. math:: \mathrm{OT}_\varepsilon(a, b) = \min_{\gamma \in U(a,b)} \langle \gamma, C\rangle
              + \varepsilon\, \mathrm{KL}(\gamma \,\|\, a \otimes b) = \langle a, f\rangle + \langle b, g\rangle

    with :math:`C_{ij} = \|x_i - y_j\|^p` and ``epsilon`` in the units of the cost (not relative to
    it). Log-domain iterations until the marginal L1 error is below ``tol``; a
    :class:`SinkhornNotConverged` warning otherwise. Tends to :math:`W_p^p` as epsilon -> 0.
    """
    _check_sinkhorn_params(p, epsilon, max_iter, tol)
    xs, xt, a, b = _measure(xs, xt, a, b)
    return _entropic_cost(xs, xt, a, b, p, epsilon, max_iter, tol)


def sinkhorn_divergence(xs, xt, *, a=None, b=None, p: float = 2.0, epsilon: float = 0.1,
                        max_iter: int = 1000, tol: float = 1e-9) -> float:
    r"""Debiased Sinkhorn divergence
    :math:`S_\varepsilon = \mathrm{OT}_\varepsilon(a,b) - \tfrac12\mathrm{OT}_\varepsilon(a,a) - \tfrac12\mathrm{OT}_\varepsilon(b,b)`.

    Non-negative, zero iff the measures are equal (for p = 1, 2 costs), tends to :math:`W_p^p` as
    epsilon -> 0 and to an MMD as epsilon -> infinity. Same parameters as :func:`sinkhorn`.
    """
    _check_sinkhorn_params(p, epsilon, max_iter, tol)
    xs, xt, a, b = _measure(xs, xt, a, b)
    args = (p, epsilon, max_iter, tol)
    return (_entropic_cost(xs, xt, a, b, *args)
            - 0.5 * _entropic_cost(xs, xs, a, a, *args, symmetric=True)
            - 0.5 * _entropic_cost(xt, xt, b, b, *args, symmetric=True))
