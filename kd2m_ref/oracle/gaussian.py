r"""High-precision (mpmath) Gaussian W2 and KL for small inputs (d <= 8): the ground truth of the reference.

Inputs are taken as the exact binary values of the float64 arrays given; moments, factors and the
closed forms are evaluated at ``DPS`` (>= 50) decimal digits, so rounding cannot matter:

* W2 from samples: :math:`\|\Delta\mu\|^2 + \|F_S\|_F^2 + \|F_T\|_F^2 - 2\|F_T F_S^\top\|_*` with the exact
  weighted centred factors (:math:`F^\top F = \Sigma`); the nuclear norm from mpmath's SVD;
* W2 from moments: the same, with the symmetric square roots from mpmath's symmetric eigensolver
  (at twice the precision, so that the square roots of zero eigenvalues stay below 10^-DPS);
* KL: :math:`\tfrac12[\mathrm{tr}(\Sigma_T^{-1}\Sigma_S) + \Delta\mu^\top\Sigma_T^{-1}\Delta\mu - d
  + \ln\det\Sigma_T - \ln\det\Sigma_S]` with mpmath's inverse and determinant.

Results are ``mpmath.mpf``; a result below 10^-(DPS-10) relative to its scale (the rounding of an
exact 0) is returned as 0.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

from .._conventions import grid_cells

DPS = 50
MAX_D = 8


def _mp(x):
    return mp.matrix([[mp.mpf(float(v)) for v in row] for row in np.atleast_2d(np.asarray(x, dtype=np.float64))])


def _check_d(d):
    if d > MAX_D:
        raise NotImplementedError(f"the Gaussian oracle covers d <= {MAX_D}; got d = {d}")


def _factor(x, a, estimator, eps):
    """Exact (mean, F) at the working precision: F = c diag(sqrt w) (X - mean), stacked over sqrt(eps) I."""
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    X = _mp(x)
    w = [mp.mpf(1) / n] * n if a is None else [mp.mpf(float(v)) for v in a]
    total = mp.fsum(w)
    w = [v / total for v in w]
    mean = [mp.fsum(w[i] * X[i, j] for i in range(n)) for j in range(d)]
    c = mp.mpf(1)
    if estimator == "unbiased":
        c = 1 / mp.sqrt(1 - mp.fsum(v * v for v in w))
    rows = [[c * mp.sqrt(w[i]) * (X[i, j] - mean[j]) for j in range(d)] for i in range(n)]
    if float(eps) > 0:
        rows += [[mp.sqrt(mp.mpf(float(eps))) if i == j else mp.mpf(0) for j in range(d)] for i in range(d)]
    return mean, mp.matrix(rows)


def _frob2(m):
    return mp.fsum(m[i, j] ** 2 for i in range(m.rows) for j in range(m.cols))


def _bures2(fs, ft):
    """||F_S||^2 + ||F_T||^2 - 2 ||F_T F_S^T||_* (F_S, F_T with d columns); exactly 0 for equal factors."""
    if fs.rows == ft.rows and all(fs[i, j] == ft[i, j] for i in range(fs.rows) for j in range(fs.cols)):
        return mp.mpf(0)
    sv = mp.svd_r(ft * fs.T, compute_uv=False)
    size = _frob2(fs) + _frob2(ft)
    return _snap(size - 2 * mp.fsum(sv), size)


def _snap(value, size):
    """0 for |value| below the working precision relative to ``size`` (the rounding of an exact 0; a
    nonzero W2^2 or KL of float64 inputs is far above 10^-(DPS-10) relative)."""
    return mp.mpf(0) if abs(value) <= mp.mpf(10) ** (10 - mp.mp.dps) * size else value


def _mean_term(ms, mt):
    return mp.fsum((u - v) ** 2 for u, v in zip(ms, mt))


def fit_gaussian(x, *, a=None, estimator="mle", covariance="full", eps=0.0):
    """``(mean, cov)`` as lists / ``mp.matrix`` at ``DPS`` digits (see the reference ``fit_gaussian``)."""
    with mp.workdps(DPS):
        mean, f = _factor(x, a, estimator, eps)
        cov = f.T * f
        return mean, ([cov[j, j] for j in range(cov.rows)] if covariance == "diag" else cov)


def gaussian_wasserstein(xs, xt, *, a=None, b=None, covariance="full", estimator="mle", eps=0.0, mean_weight=1.0):
    """Squared W2 between fitted Gaussians at ``DPS`` digits, the mean term weighted by ``mean_weight``.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import gaussian_wasserstein
    >>> xs = np.array([[0.0], [2.0]])  # fitted N(1, 1)
    >>> xt = np.array([[1.0], [5.0]])  # fitted N(3, 4)
    >>> float(gaussian_wasserstein(xs, xt))
    5.0
    """
    _check_d(np.shape(xs)[1])
    with mp.workdps(DPS):
        ms, fs = _factor(xs, a, estimator, eps)
        mt, ft = _factor(xt, b, estimator, eps)
        mean_term = mp.mpf(float(mean_weight)) * _mean_term(ms, mt)
        if covariance == "diag":
            sd = [mp.sqrt(mp.fsum(fs[i, j] ** 2 for i in range(fs.rows))) for j in range(fs.cols)]
            td = [mp.sqrt(mp.fsum(ft[i, j] ** 2 for i in range(ft.rows))) for j in range(ft.cols)]
            return mean_term + _mean_term(sd, td)
        return mean_term + _bures2(fs, ft)


def grid_gaussian_wasserstein(xs, xt, *, grid=1, mean_weight=1.0, covariance="diag", estimator="unbiased",
                              eps=1e-5):
    """WKD-F at ``DPS`` digits: :func:`gaussian_wasserstein` per image and grid cell, averaged (cells as in
    the reference).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import grid_gaussian_wasserstein
    >>> maps = np.arange(8.0).reshape(1, 2, 2, 2)  # (B, C, H, W)
    >>> float(grid_gaussian_wasserstein(maps, maps + 1.0, eps=0.0))
    2.0
    """
    xs, xt = np.asarray(xs, np.float64), np.asarray(xt, np.float64)
    batch, channels, height, width = xs.shape
    cells = grid_cells(height, width, grid, estimator)
    with mp.workdps(DPS):
        total = mp.fsum(gaussian_wasserstein(xs[b, :, r, c].reshape(channels, -1).T,
                                             xt[b, :, r, c].reshape(channels, -1).T, covariance=covariance,
                                             estimator=estimator, eps=eps, mean_weight=mean_weight)
                        for b in range(batch) for r, c in cells)
        return total / (batch * len(cells))


def _sqrtm_psd(cov):
    lam, vec = mp.eigsy(cov)
    root = mp.diag([mp.sqrt(max(v, 0)) for v in lam])
    return vec * root * vec.T


def gaussian_wasserstein_from_moments(mean_s, mean_t, cov_s, cov_t):
    """Squared W2 between N(mean_s, cov_s) and N(mean_t, cov_t) at ``DPS`` digits (variance vectors: diagonal).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import gaussian_wasserstein_from_moments
    >>> ms, mt = np.zeros(2), np.array([1.0, 0.0])
    >>> cs, ct = np.eye(2), 4 * np.eye(2)
    >>> float(gaussian_wasserstein_from_moments(ms, mt, cs, ct))
    3.0
    """
    cov_s, cov_t = np.asarray(cov_s, np.float64), np.asarray(cov_t, np.float64)
    _check_d(len(mean_s))
    with mp.workdps(DPS):
        ms, mt = [mp.mpf(float(v)) for v in mean_s], [mp.mpf(float(v)) for v in mean_t]
        if cov_s.ndim == 1:
            return _mean_term(ms, mt) + _mean_term([mp.sqrt(mp.mpf(float(v))) for v in cov_s],
                                                   [mp.sqrt(mp.mpf(float(v))) for v in cov_t])
        with mp.workdps(2 * DPS):
            value = _mean_term(ms, mt) + _bures2(_sqrtm_psd(_mp(cov_s)), _sqrtm_psd(_mp(cov_t)))
        return +value


def _kl(ms, mt, cs, ct, direction):
    if direction == "teacher_student":
        ms, mt, cs, ct = mt, ms, ct, cs
    d = len(ms)
    dm = mp.matrix([u - v for u, v in zip(ms, mt)])
    if not isinstance(cs, mp.matrix):  # variances
        return _snap(mp.fsum(s / t + dm[i] ** 2 / t - 1 + mp.log(t / s) for i, (s, t) in enumerate(zip(cs, ct))),
                     d) / 2
    if all(cs[i, j] == ct[i, j] for i in range(d) for j in range(d)):  # the covariance term is exactly 0
        return (dm.T * mp.inverse(ct) * dm)[0, 0] / 2
    ti = mp.inverse(ct)
    tr = mp.fsum((ti * cs)[i, i] for i in range(d))
    maha = (dm.T * ti * dm)[0, 0]
    return _snap(tr + maha - d + mp.log(mp.det(ct)) - mp.log(mp.det(cs)), d) / 2


def gaussian_kl(xs, xt, *, a=None, b=None, covariance="full", estimator="mle", eps=0.0,
                direction="student_teacher"):
    """KL between fitted Gaussians at ``DPS`` digits (default KL(student || teacher)).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import gaussian_kl
    >>> xs = np.array([[0.0], [2.0]])  # fitted N(1, 1)
    >>> xt = np.array([[1.0], [5.0]])  # fitted N(3, 4)
    >>> round(float(gaussian_kl(xs, xt)), 10)  # (1/4 + 1 - 1 + ln 4) / 2
    0.8181471806
    """
    _check_d(np.shape(xs)[1])
    with mp.workdps(DPS):
        ms, cs = fit_gaussian(xs, a=a, estimator=estimator, covariance=covariance, eps=eps)
        mt, ct = fit_gaussian(xt, a=b, estimator=estimator, covariance=covariance, eps=eps)
        return _kl(ms, mt, cs, ct, direction)


def gaussian_kl_from_moments(mean_s, mean_t, cov_s, cov_t, *, direction="student_teacher"):
    """KL between N(mean_s, cov_s) and N(mean_t, cov_t) at ``DPS`` digits (variance vectors: diagonal).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import gaussian_kl_from_moments
    >>> ms, mt, cov = np.zeros(1), np.array([2.0]), np.eye(1)
    >>> float(gaussian_kl_from_moments(ms, mt, cov, cov))
    2.0
    """
    cov_s, cov_t = np.asarray(cov_s, np.float64), np.asarray(cov_t, np.float64)
    with mp.workdps(DPS):
        ms, mt = [mp.mpf(float(v)) for v in mean_s], [mp.mpf(float(v)) for v in mean_t]
        if cov_s.ndim == 1:
            return _kl(ms, mt, [mp.mpf(float(v)) for v in cov_s], [mp.mpf(float(v)) for v in cov_t], direction)
        return _kl(ms, mt, _mp(cov_s), _mp(cov_t), direction)


def _class_conditional(metric, xs, xt, ys, yt, a, b, weights, **kwargs):
    ys = np.asarray(ys)
    yt = ys if yt is None else np.asarray(yt)
    xs, xt = np.asarray(xs), np.asarray(xt)
    classes = np.unique(ys)
    with mp.workdps(DPS):
        mass = [mp.mpf(1)] * len(xs) if a is None else [mp.mpf(float(v)) for v in a]
        total_mass = mp.fsum(mass)
        total = mp.mpf(0)
        for c in classes:
            i, j = np.flatnonzero(ys == c), np.flatnonzero(yt == c)
            w = {"uniform": mp.mpf(1) / len(classes), "sum": mp.mpf(1),
                 "prior": mp.fsum(mass[k] for k in i) / total_mass}[weights]
            sub_a = None if a is None else np.asarray(a)[i]
            sub_b = None if b is None else np.asarray(b)[j]
            total += w * metric(xs[i], xt[j], a=sub_a, b=sub_b, **kwargs)
        return total


def class_conditional_gaussian_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, weights="uniform",
                                           covariance="full", estimator="mle", eps=0.0):
    """Class-conditional squared Gaussian W2 at ``DPS`` digits; class weights as in the reference.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import class_conditional_gaussian_wasserstein
    >>> xs = np.array([[0.0], [2.0], [0.0], [2.0]])
    >>> xt = np.array([[1.0], [5.0], [0.0], [2.0]])
    >>> ys = np.array([0, 0, 1, 1])
    >>> float(class_conditional_gaussian_wasserstein(xs, xt, ys=ys))
    2.5
    """
    return _class_conditional(gaussian_wasserstein, xs, xt, ys, yt, a, b, weights, covariance=covariance,
                              estimator=estimator, eps=eps)


def class_conditional_gaussian_kl(xs, xt, *, ys, yt=None, a=None, b=None, weights="uniform",
                                  covariance="full", estimator="mle", eps=0.0, direction="student_teacher"):
    """Class-conditional Gaussian KL at ``DPS`` digits; class weights as in the reference.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import class_conditional_gaussian_kl
    >>> xs = np.array([[0.0], [2.0], [0.0], [2.0]])
    >>> xt = np.array([[1.0], [5.0], [0.0], [2.0]])
    >>> ys = np.array([0, 0, 1, 1])
    >>> round(float(class_conditional_gaussian_kl(xs, xt, ys=ys)), 4)
    0.4091
    """
    return _class_conditional(gaussian_kl, xs, xt, ys, yt, a, b, weights, covariance=covariance,
                              estimator=estimator, eps=eps, direction=direction)
