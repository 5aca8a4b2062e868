"""Exact optimal transport between weighted empirical measures (paper eqs. 2-4), float64.

Solvers are deliberately not POT's network simplex, so that the torch layer (which uses POT) is
checked against an independent algorithm: ``scipy.optimize.linear_sum_assignment`` for uniform
weights and equal sizes (exact by Birkhoff's theorem), HiGHS ``linprog`` otherwise.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment, linprog

from .._checks import check_choice, check_labels, check_p, check_points, check_positive, check_weights
from .._classes import class_blocks

LABEL_COSTS = ("onehot", "soft", "cross_entropy")


def _measure(xs, xt, a, b):
    xs = check_points(np.asarray(xs), "xs")
    xt = check_points(np.asarray(xt), "xt", dim=xs.shape[1])
    a = check_weights(None if a is None else np.asarray(a, dtype=np.float64), "a", xs.shape[0])
    b = check_weights(None if b is None else np.asarray(b, dtype=np.float64), "b", xt.shape[0])
    return xs.astype(np.float64), xt.astype(np.float64), a, b


def cost_matrix(xs, xt, p: float = 2.0) -> np.ndarray:
    r"""Ground cost :math:`C_{ij} = \|x_i - y_j\|_2^p`, computed from differences (no cancellation)."""
    diff = xs[:, None, :] - xt[None, :, :]
    sq = np.einsum("ijk,ijk->ij", diff, diff)
    return sq if p == 2 else np.sqrt(sq) ** p


def ot_plan(cost: np.ndarray, a=None, b=None) -> np.ndarray:
    """Exact optimal plan for ``cost`` with marginals ``a``, ``b`` (normalised to sum 1; uniform if None)."""
    n, m = cost.shape
    if a is None and b is None and n == m:
        rows, cols = linear_sum_assignment(cost)
        plan = np.zeros((n, m))
        plan[rows, cols] = 1.0 / n
        return plan
    a = np.full(n, 1.0 / n) if a is None else a / a.sum()
    b = np.full(m, 1.0 / m) if b is None else b / b.sum()
    # Equality constraints: row sums = a, column sums = b (one redundant row dropped).
    a_eq = np.zeros((n + m - 1, n * m))
    for i in range(n):
        a_eq[i, i * m:(i + 1) * m] = 1.0
    for j in range(m - 1):
        a_eq[n + j, j::m] = 1.0
    # HiGHS tolerances are absolute: scale the cost to max 1 so they are relative to it.
    scale = cost.max() if cost.max() > 0 else 1.0
    res = linprog((cost / scale).ravel(), A_eq=a_eq, b_eq=np.concatenate([a, b[:-1]]), bounds=(0, None),
                  method="highs", options={"primal_feasibility_tolerance": 1e-10,
                                           "dual_feasibility_tolerance": 1e-10})
    if res.status != 0:
        raise RuntimeError(f"HiGHS failed to solve the transport LP: {res.message}")
    return res.x.reshape(n, m)


def _ot_cost(cost, a, b) -> float:
    return float(np.sum(ot_plan(cost, a, b) * cost))


def wasserstein(xs, xt, *, a=None, b=None, p: float = 2.0) -> float:
    r"""Exact optimal transport cost :math:`W_p^p` between weighted empirical measures.

    .. math:: W_p^p(\hat P, \hat Q) = \min_{\gamma \in U(a, b)} \sum_{ij} \gamma_{ij} \|x_i - y_j\|_2^p

    Convention: returns the **p-th power** (for p = 2 the squared W2, as the paper's loss); weights
    are relative and normalised to sum 1 (uniform when omitted); ``n != m`` is allowed.

    >>> import numpy as np
    >>> float(wasserstein(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])))
    1.0
    """
    check_p(p)
    xs, xt, a, b = _measure(xs, xt, a, b)
    return _ot_cost(cost_matrix(xs, xt, p), a, b)


def class_conditional_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p: float = 2.0,
                                  weights: str = "uniform") -> float:
    r"""Class-conditional OT (paper eq. 3): :math:`\sum_c w_c\, W_p^p(\hat P_S^c, \hat P_T^c)`.

    ``yt`` defaults to ``ys`` (student and teacher features of the same inputs). ``weights``:
    ``"uniform"`` (default, :math:`1/K` over the K classes present: the paper's "where K is the number
    of classes"), ``"prior"`` (:math:`n_c/n`, the weights Theorem 3.1's label-aware form justifies,
    THEORY.md §3.3) or ``"sum"`` (1 per class, the paper's code). Classes absent from the batch are
    skipped; a class on one side only raises ``ValueError``.
    """
    xs, xt, a, b = _measure(xs, xt, a, b)
    total = 0.0
    for blk in class_blocks(ys, yt, len(xs), len(xt), weights=weights, a=a):
        sub_a = None if a is None else a[blk.index_s]
        sub_b = None if b is None else b[blk.index_t]
        total += blk.weight * wasserstein(xs[blk.index_s], xt[blk.index_t], a=sub_a, b=sub_b, p=p)
    return total


def label_cost_matrix(ys, yt, label_cost: str, num_classes: int | None = None) -> np.ndarray:
    r"""Label cost :math:`L(y_i, y'_j)` between the rows of ``ys`` (source) and ``yt`` (target).

    ``onehot``: :math:`\|e_{y} - e_{y'}\|^2 = 2\cdot 1[y \ne y']` (hard labels);
    ``soft``: :math:`\|p - q\|^2` (probability rows; hard labels are one-hot encoded);
    ``cross_entropy``: :math:`-\sum_c y_c \log y'_c`, with ``ys`` the target distribution and ``yt``
    the predicted probabilities (JDOT); asymmetric, and ``yt`` must be positive where ``ys`` is.
    """
    check_choice(label_cost, "label_cost", LABEL_COSTS)
    ys, yt = np.asarray(ys), np.asarray(yt)
    if label_cost == "onehot":
        if ys.ndim != 1 or yt.ndim != 1:
            raise ValueError("label_cost='onehot' needs class indices for ys and yt; use 'soft' for probabilities")
        return 2.0 * (ys[:, None] != yt[None, :])
    k = num_classes or 1 + int(max(ys.max() if ys.ndim == 1 else ys.shape[1] - 1,
                                    yt.max() if yt.ndim == 1 else yt.shape[1] - 1))
    ps, pt = _probabilities(ys, k, "ys"), _probabilities(yt, k, "yt")
    if label_cost == "soft":
        diff = ps[:, None, :] - pt[None, :, :]
        return np.einsum("ijk,ijk->ij", diff, diff)
    if np.any((pt == 0)[None, :, :] & (ps > 0)[:, None, :]):
        raise ValueError("label_cost='cross_entropy' needs yt > 0 wherever ys > 0 (log 0); pass probabilities for yt")
    with np.errstate(divide="ignore"):
        log_pt = np.where(pt > 0, np.log(np.where(pt > 0, pt, 1.0)), 0.0)
    return -ps @ log_pt.T


def _probabilities(y, k: int, name: str) -> np.ndarray:
    if y.ndim == 2:
        if y.shape[1] != k:
            raise ValueError(f"{name} has {y.shape[1]} classes but {k} are expected")
        return y.astype(np.float64)
    return np.eye(k)[y]


def joint_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p: float = 2.0, beta: float = 1.0,
                      label_cost: str = "onehot", num_classes: int | None = None) -> float:
    r"""Joint feature-label OT (paper eq. 4).

    .. math:: \min_{\gamma \in U(a,b)} \sum_{ij} \gamma_{ij}\big[\|x_i - y_j\|^p + \beta\, L(y_i, y'_j)\big]

    ``label_cost`` in ``onehot`` / ``soft`` / ``cross_entropy`` (see :func:`~kd2m_ref.reference.wasserstein.label_cost_matrix`);
    ``beta = 0`` gives :func:`wasserstein`; as ``beta`` grows it tends to the class-conditional value
    with ``prior`` weights (hard labels, equal class masses). ``yt`` defaults to ``ys``.
    """
    check_p(p)
    check_positive(beta, "beta", strict=False)
    xs, xt, a, b = _measure(xs, xt, a, b)
    ys = check_labels(None if ys is None else np.asarray(ys), "ys", len(xs))
    if yt is None and len(xt) != len(xs):
        raise ValueError("yt is required when xs and xt have different numbers of rows")
    yt = ys if yt is None else check_labels(np.asarray(yt), "yt", len(xt))
    cost = cost_matrix(xs, xt, p) + beta * label_cost_matrix(ys, yt, label_cost, num_classes)
    return _ot_cost(cost, a, b)


def wasserstein_1d(u, v, *, a=None, b=None, p: float = 2.0) -> float:
    r"""Exact 1-D :math:`W_p^p = \int_0^1 |F^{-1}(t) - G^{-1}(t)|^p\,dt` by merging quantile breakpoints."""
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    a = np.full(len(u), 1.0 / len(u)) if a is None else np.asarray(a, np.float64) / np.sum(a)
    b = np.full(len(v), 1.0 / len(v)) if b is None else np.asarray(b, np.float64) / np.sum(b)
    iu, iv = np.argsort(u, kind="stable"), np.argsort(v, kind="stable")
    u, a, v, b = u[iu], a[iu], v[iv], b[iv]
    cu, cv = np.cumsum(a), np.cumsum(b)
    t = np.unique(np.concatenate([[0.0], cu[:-1], cv[:-1], [1.0]]))
    dt, mid = np.diff(t), 0.5 * (t[:-1] + t[1:])
    qu = u[np.minimum(np.searchsorted(cu, mid), len(u) - 1)]
    qv = v[np.minimum(np.searchsorted(cv, mid), len(v) - 1)]
    return float(np.sum(dt * np.abs(qu - qv) ** p))


def sliced_projections(d: int, n_projections: int, seed: int) -> np.ndarray:
    """``n_projections`` directions uniform on the unit sphere of R^d, reproducible from ``seed``."""
    theta = np.random.default_rng(seed).standard_normal((n_projections, d))
    return theta / np.linalg.norm(theta, axis=1, keepdims=True)


def sliced_wasserstein(xs, xt, *, a=None, b=None, p: float = 2.0, n_projections: int = 50,
                       seed: int = 0) -> float:
    r"""Monte-Carlo sliced OT: :math:`\frac1K\sum_k W_p^p(\theta_k^\top \hat P, \theta_k^\top \hat Q)`.

    Directions :math:`\theta_k` are uniform on the sphere, drawn by :func:`~kd2m_ref.reference.wasserstein.sliced_projections` from
    ``seed`` (the torch version uses the same directions); each 1-D problem is solved exactly.
    Returns the mean of the p-th powers (sliced :math:`SW_p^p`).
    """
    if int(n_projections) < 1:
        raise ValueError(f"n_projections must be a positive integer; got {n_projections}")
    check_p(p)
    xs, xt, a, b = _measure(xs, xt, a, b)
    theta = sliced_projections(xs.shape[1], int(n_projections), seed)
    ps, pt = xs @ theta.T, xt @ theta.T
    return float(np.mean([wasserstein_1d(ps[:, k], pt[:, k], a=a, b=b, p=p) for k in range(len(theta))]))
