"""High-precision (mpmath) MMD^2 for small inputs: the ground truth of the reference.

Inputs are the exact binary values of the float64 arrays; distances, the bandwidth rule, the kernel
and the sums run at ``DPS`` digits, straight from the formulas (no rearrangement). Equal empirical
measures give the V-statistic exactly 0 (checked on the atoms with exact fractions).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

from .ot import DPS, _mp_rows


def _dist(u, v):
    return mp.sqrt(mp.fsum((a - b) ** 2 for a, b in zip(u, v)))


def _bandwidth(ms, mt, rule):
    if rule == "mean":
        d = [_dist(u, v) for a, b in ((ms, ms), (mt, mt), (ms, mt)) for u in a for v in b]
        s = mp.fsum(d) / len(d)
    else:
        z = ms + mt
        d = sorted(_dist(z[i], z[j]) for i in range(len(z)) for j in range(i + 1, len(z)))
        k = len(d)
        s = d[k // 2] if k % 2 else (d[k // 2 - 1] + d[k // 2]) / 2
    return s if s > 0 else mp.mpf(1)


def _same_measure(xs, xt) -> bool:
    """Whether the uniform empirical measures of the rows of xs and xt are equal (same atoms, same masses)."""
    from fractions import Fraction

    def atoms(x):
        rows, counts = np.unique(np.asarray(x, np.float64), axis=0, return_counts=True)
        return {tuple(r): Fraction(int(c), len(x)) for r, c in zip(rows, counts)}

    return atoms(xs) == atoms(xt)


def mmd(xs, xt, *, kernel="gaussian", bandwidth="mean", estimator="biased", degree=2, offset=1.0,
        detach_bandwidth=True):
    r"""MMD^2 (V- or U-statistic) at ``DPS`` digits, same conventions as :func:`kd2m_ref.reference.mmd`.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import mmd
    >>> xs, xt = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    >>> float(mmd(xs, xt, kernel="linear")), round(float(mmd(xs, xt)), 4)
    (1.0, 0.1729)
    """
    if estimator == "biased" and _same_measure(xs, xt):
        return mp.mpf(0)  # exact: the V-statistic is the MMD of the two discrete measures
    with mp.workdps(DPS):
        return _mmd_rows(_mp_rows(xs), _mp_rows(xt), kernel, bandwidth, estimator, degree, offset)


def _mmd_rows(ms, mt, kernel, bandwidth, estimator, degree, offset):
    """MMD^2 of two lists of mpmath rows (at the working precision of the caller)."""
    if kernel in ("gaussian", "laplacian"):
        s = _bandwidth(ms, mt, bandwidth) if isinstance(bandwidth, str) else mp.mpf(float(bandwidth))
    c = mp.mpf(float(offset))

    def k(u, v):
        if kernel == "gaussian":
            return mp.exp(-_dist(u, v) ** 2 / (2 * s**2))
        if kernel == "laplacian":
            return mp.exp(-_dist(u, v) / s)
        dot = mp.fsum(a * b for a, b in zip(u, v))
        return dot if kernel == "linear" else (dot + c) ** int(degree)

    n, m = len(ms), len(mt)
    off = estimator == "unbiased"
    sxx = mp.fsum(k(ms[i], ms[j]) for i in range(n) for j in range(n) if not (off and i == j))
    syy = mp.fsum(k(mt[i], mt[j]) for i in range(m) for j in range(m) if not (off and i == j))
    sxy = mp.fsum(k(u, v) for u in ms for v in mt)
    if off:
        return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * sxy / (n * m)
    return sxx / n**2 + syy / m**2 - 2 * sxy / (n * m)


def _unit(row):
    """A row divided by its Euclidean norm (a zero row stays zero)."""
    norm = mp.sqrt(mp.fsum(v * v for v in row))
    return [v / norm for v in row] if norm > 0 else row


def set_mmd(xs, xt, *, kernel="polynomial", bandwidth="mean", estimator="biased", degree=2, offset=0.0,
            normalize="l2", detach_bandwidth=True):
    r"""Mean over the sets of the per-set MMD^2 at ``DPS`` digits, samples normalised in mpmath; same
    conventions as :func:`kd2m_ref.reference.set_mmd`. A set whose student and teacher rows form the same
    measure gives exactly 0 (V-statistic).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import set_mmd
    >>> xs = np.array([[[1.0, 0.0]], [[0.0, 3.0]]])
    >>> xt = np.array([[[0.0, 2.0]], [[0.0, 1.0]]])
    >>> float(set_mmd(xs, xt))
    1.0
    """
    xs, xt = np.asarray(xs, np.float64), np.asarray(xt, np.float64)
    xs, xt = xs.reshape(len(xs), xs.shape[1], -1), xt.reshape(len(xt), xt.shape[1], -1)
    with mp.workdps(DPS):
        values = []
        for u, v in zip(xs, xt):
            if estimator == "biased" and _same_measure(u, v):
                values.append(mp.mpf(0))
                continue
            mu, mv = _mp_rows(u), _mp_rows(v)
            if normalize == "l2":
                mu, mv = [_unit(r) for r in mu], [_unit(r) for r in mv]
            values.append(_mmd_rows(mu, mv, kernel, bandwidth, estimator, degree, offset))
        return mp.fsum(values) / len(values)


__all__ = ["mmd", "set_mmd"]
