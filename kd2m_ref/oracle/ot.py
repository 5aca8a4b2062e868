"""High-precision (mpmath) optimal transport for small inputs: the ground truth of the reference.

Inputs are taken as the exact binary values of the float64 arrays given; every operation after that
runs at ``DPS`` decimal digits, so rounding cannot matter. Exact W_p^p is evaluated by enumerating
permutations (uniform weights, equal sizes: optimal plans include a permutation, Birkhoff), or by the
1-D quantile formula (any weights). Results are ``mpmath.mpf``.
"""

from __future__ import annotations

import itertools

import mpmath as mp
import numpy as np

from .._conventions import sliced_projections

DPS = 50
MAX_PERMUTATION_N = 7


def _mp_rows(x):
    return [[mp.mpf(float(v)) for v in row] for row in np.asarray(x, dtype=np.float64)]


def _dist_p(u, v, p):
    sq = mp.fsum((ui - vi) ** 2 for ui, vi in zip(u, v))
    return sq if p == 2 else mp.sqrt(sq) ** p


def _assignment_min(cost):
    n = len(cost)
    return min(mp.fsum(cost[i][s[i]] for i in range(n)) for s in itertools.permutations(range(n))) / n


def _weights(w, n):
    if w is None:
        return [mp.mpf(1) / n] * n
    w = [mp.mpf(float(v)) for v in w]
    total = mp.fsum(w)
    return [v / total for v in w]


def wasserstein_1d(u, v, a=None, b=None, p=2):
    r"""Exact 1-D :math:`W_p^p=\int_0^1|F^{-1}-G^{-1}|^p` at ``DPS`` digits (any weights).

    Examples
    --------
    >>> from kd2m_ref.oracle import wasserstein_1d
    >>> float(wasserstein_1d([0.0, 1.0], [1.0, 2.0]))
    1.0
    >>> float(wasserstein_1d([0.0, 1.0], [1.0, 2.0], a=[3.0, 1.0], p=1))
    1.25
    """
    with mp.workdps(DPS):
        return _w1d([mp.mpf(float(t)) for t in u], [mp.mpf(float(t)) for t in v], a, b, p)


def _w1d(u, v, a, b, p):
    """Quantile-merge W_p^p for lists of mpf (the caller sets the precision)."""
    a, b = _weights(a, len(u)), _weights(b, len(v))
    ou, ov = sorted(range(len(u)), key=lambda i: u[i]), sorted(range(len(v)), key=lambda i: v[i])
    i = j = 0
    ra, rb = a[ou[0]], b[ov[0]]  # mass left in the current atoms
    total = mp.mpf(0)
    while True:
        step = min(ra, rb)
        total += step * abs(u[ou[i]] - v[ov[j]]) ** p
        ra, rb = ra - step, rb - step
        if ra <= 0 and i + 1 < len(u):
            i += 1
            ra = a[ou[i]]
        if rb <= 0 and j + 1 < len(v):
            j += 1
            rb = b[ov[j]]
        if (ra <= 0 and i + 1 >= len(u)) or (rb <= 0 and j + 1 >= len(v)):
            return total


def _exact(cost_fn, xs, xt, a, b, p):
    xs, xt = np.asarray(xs, np.float64), np.asarray(xt, np.float64)
    if xs.shape[1] == 1 and cost_fn is None:
        return wasserstein_1d(xs[:, 0], xt[:, 0], a, b, p)
    uniform = (a is None or np.ptp(a) == 0) and (b is None or np.ptp(b) == 0)
    if not (uniform and len(xs) == len(xt) and len(xs) <= MAX_PERMUTATION_N):
        raise NotImplementedError(
            f"the OT oracle covers d = 1 (any weights) or uniform weights with n = m <= {MAX_PERMUTATION_N}"
        )
    with mp.workdps(DPS):
        ms, mt = _mp_rows(xs), _mp_rows(xt)
        cost = [[_dist_p(u, v, p) + (cost_fn(i, j) if cost_fn else 0) for j, v in enumerate(mt)]
                for i, u in enumerate(ms)]
        return _assignment_min(cost)


def wasserstein(xs, xt, *, a=None, b=None, p=2):
    r""":math:`W_p^p` at ``DPS`` digits (see module docstring for the cases covered).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import wasserstein
    >>> xs, xt = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    >>> value = wasserstein(xs, xt)
    >>> type(value).__name__, float(value)
    ('mpf', 1.0)
    """
    return _exact(None, xs, xt, a, b, p)


def class_conditional_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p=2, weights="uniform"):
    r""":math:`\sum_c w_c W_p^p` at ``DPS`` digits; class weights as in the reference.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import class_conditional_wasserstein
    >>> xs = np.array([[0.0], [1.0], [5.0], [6.0]])
    >>> xt = np.array([[0.0], [2.0], [7.0], [8.0]])
    >>> ys = np.array([0, 0, 1, 1])
    >>> float(class_conditional_wasserstein(xs, xt, ys=ys))
    2.25
    """
    ys = np.asarray(ys)
    yt = ys if yt is None else np.asarray(yt)
    xs, xt = np.asarray(xs), np.asarray(xt)
    classes = np.unique(ys)
    with mp.workdps(DPS):
        mass = _weights(a, len(xs))
        total = mp.mpf(0)
        for c in classes:
            i, j = np.flatnonzero(ys == c), np.flatnonzero(yt == c)
            w = {"uniform": mp.mpf(1) / len(classes), "sum": mp.mpf(1),
                 "prior": mp.fsum(mass[k] for k in i)}[weights]
            sub_a = None if a is None else np.asarray(a)[i]
            sub_b = None if b is None else np.asarray(b)[j]
            total += w * wasserstein(xs[i], xt[j], a=sub_a, b=sub_b, p=p)
        return total


def joint_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p=2, beta=1.0, label_cost="onehot",
                      num_classes=None):
    r"""Joint OT with cost :math:`\|x-y\|^p+\beta L` at ``DPS`` digits (uniform weights, n = m small).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import joint_wasserstein
    >>> xs, xt = np.array([[0.0], [1.0]]), np.array([[1.0], [0.0]])
    >>> ys = np.array([0, 1])
    >>> [float(joint_wasserstein(xs, xt, ys=ys, beta=b)) for b in (0.0, 1.0)]
    [0.0, 1.0]
    """
    ys = np.asarray(ys)
    yt = ys if yt is None else np.asarray(yt)
    with mp.workdps(DPS):
        beta = mp.mpf(float(beta))

        def onehot(y, k):
            return [mp.mpf(1) if c == y else mp.mpf(0) for c in range(k)]

        k = num_classes or 1 + int(max(ys.max() if ys.ndim == 1 else ys.shape[1] - 1,
                                        yt.max() if yt.ndim == 1 else yt.shape[1] - 1))
        ps = [onehot(y, k) if ys.ndim == 1 else [mp.mpf(float(t)) for t in y] for y in ys]
        pt = [onehot(y, k) if yt.ndim == 1 else [mp.mpf(float(t)) for t in y] for y in yt]

        def label(i, j):
            if label_cost in ("onehot", "soft"):
                return beta * mp.fsum((u - v) ** 2 for u, v in zip(ps[i], pt[j]))
            return beta * -mp.fsum(u * mp.log(v) for u, v in zip(ps[i], pt[j]) if u != 0)

        return _exact(label, xs, xt, a, b, p)


def sliced_wasserstein(xs, xt, *, a=None, b=None, p=2, n_projections=50, seed=0):
    r"""Sliced :math:`SW_p^p` with the reference's float64 directions, each 1-D problem at ``DPS`` digits.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import sliced_wasserstein
    >>> xs = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> xt = xs + [0.0, 1.0]
    >>> round(float(sliced_wasserstein(xs, xt)), 4)  # same 50 directions
    0.5401
    """
    xs, xt = np.asarray(xs, np.float64), np.asarray(xt, np.float64)
    theta = sliced_projections(xs.shape[1], int(n_projections), seed)
    with mp.workdps(DPS):
        ms, mt = _mp_rows(xs), _mp_rows(xt)
        total = mp.mpf(0)
        for th in theta:
            mth = [mp.mpf(float(t)) for t in th]
            u = [mp.fsum(x * t for x, t in zip(row, mth)) for row in ms]
            v = [mp.fsum(x * t for x, t in zip(row, mth)) for row in mt]
            total += _w1d(u, v, a, b, p)
        return total / len(theta)
