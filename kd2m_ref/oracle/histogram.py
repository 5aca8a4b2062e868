r"""High-precision (mpmath) entropic OT between class histograms, for small K.

Kernel-form Sinkhorn (:math:`u \leftarrow a/Kv`, :math:`v \leftarrow b/K^\top u`, :math:`K = e^{-C/\varepsilon}`)
at ``DPS`` digits: a fixed number of iterations exactly as stated, or, converged, iterated until the
L1 marginal error is below ``1e-35`` (the strategies keep :math:`\varepsilon \ge 0.2\max C`, where
Sinkhorn contracts by at least :math:`\tanh^2(1.25) \approx 0.72` per iteration). No linear program:
exact OT (``epsilon=0``) is checked against POT and the total-variation closed form instead.
"""

from __future__ import annotations

import mpmath as mp

from .logit import _log_softmax
from .ot import DPS, _mp_rows

#: converged: the L1 marginal error at which iterations stop
MARGINAL_TOL = mp.mpf(10) ** -35
MAX_ITER = 100_000


def _row(cost, a, b, epsilon, n_iter, value):
    k_mat = [[mp.exp(-c / epsilon) for c in row] for row in cost]
    n, m = len(a), len(b)
    u = [mp.mpf(1) if ai > 0 else mp.mpf(0) for ai in a]
    for it in range(MAX_ITER if n_iter is None else n_iter):
        v = [b[j] / mp.fsum(k_mat[i][j] * u[i] for i in range(n)) for j in range(m)]
        u = [a[i] / mp.fsum(k_mat[i][j] * v[j] for j in range(m)) for i in range(n)]
        if n_iter is None:
            cols = [mp.fsum(u[i] * k_mat[i][j] * v[j] for i in range(n)) for j in range(m)]
            if mp.fsum(abs(cols[j] - b[j]) for j in range(m)) < MARGINAL_TOL:
                break
    else:
        if n_iter is None:
            raise RuntimeError("oracle Sinkhorn did not converge")
    plan = [[u[i] * k_mat[i][j] * v[j] for j in range(m)] for i in range(n)]
    plan_cost = mp.fsum(plan[i][j] * cost[i][j] for i in range(n) for j in range(m))
    if value == "plan_cost":
        return plan_cost
    if value == "ot_eps":
        return plan_cost + epsilon * mp.fsum(plan[i][j] * mp.log(plan[i][j] / (a[i] * b[j]))
                                             for i in range(n) for j in range(m) if plan[i][j] > 0)
    dual = mp.fsum(epsilon * a[i] * mp.log(u[i] / a[i]) for i in range(n) if a[i] > 0)
    dual += mp.fsum(epsilon * b[j] * mp.log(v[j] / b[j]) for j in range(m) if b[j] > 0)
    return dual - epsilon * (mp.fsum(mp.fsum(row) for row in plan) - 1)


def histogram_ot(logits_student, logits_teacher, *, cost=None, inputs="logits", temperature=1.0, epsilon=0.1,
                 value="ot_eps", n_iter=None, max_iter=None, tol=None):
    """Batch mean of entropic OT between the class histograms (``epsilon > 0`` only); parameters as
    :func:`kd2m_ref.reference.histogram_ot` (``max_iter`` and ``tol`` are the reference's
    solver settings, not used here).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import histogram_ot
    >>> p_s, p_t = np.array([[1.0, 1.0]]), np.array([[1.0, 3.0]])
    >>> value = histogram_ot(p_s, p_t, inputs="probabilities", epsilon=0.5,
    ...                      n_iter=10, value="plan_cost")
    >>> round(float(value), 4)
    0.2668
    """
    if not epsilon > 0:
        raise ValueError("the oracle computes entropic OT only (epsilon > 0)")
    with mp.workdps(DPS):
        rows_s, rows_t = _mp_rows(logits_student), _mp_rows(logits_teacher)
        k = len(rows_s[0])
        if inputs == "logits":
            t = mp.mpf(float(temperature))
            hist = [([mp.exp(v) for v in _log_softmax(rs, t)], [mp.exp(v) for v in _log_softmax(rt, t)])
                    for rs, rt in zip(rows_s, rows_t)]
        else:
            hist = [([v / mp.fsum(rs) for v in rs], [v / mp.fsum(rt) for v in rt]) for rs, rt in zip(rows_s, rows_t)]
        if cost is None:
            costs = [[[mp.mpf(int(i != j)) for j in range(k)] for i in range(k)]] * len(hist)
        elif getattr(cost, "ndim", 2) == 3:
            costs = [_mp_rows(c) for c in cost]
        else:
            costs = [_mp_rows(cost)] * len(hist)
        eps = mp.mpf(float(epsilon))
        return mp.fsum(_row(c, a, b, eps, n_iter, value) for c, (a, b) in zip(costs, hist)) / len(hist)
