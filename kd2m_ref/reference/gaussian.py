r"""Fitted Gaussians: Bures–Wasserstein and KL (paper eqs. 5-6), float64.

Moments are fitted from (optionally weighted) samples; ``estimator`` = ``"mle"`` (1/n, the paper's
code and the default) or ``"unbiased"`` (1/(1 - sum w_i^2) with normalised weights: 1/(n-1) when
uniform). The covariance is never needed for W2: between empirical Gaussians the Bures term is the
orthogonal Procrustes residual of the centred, weighted data matrices

.. math:: \mathrm{B}^2(\Sigma_S, \Sigma_T) = \min_{U^\top U = I}\|F_S - U F_T\|_F^2,
          \qquad F^\top F = \Sigma,

computed from the residual itself (no ``tr + tr - 2 tr sqrt`` cancellation), so the error of W2 is
of the order of the unit roundoff times sqrt(tr Σ_S + tr Σ_T) at every distance, rank-deficient
covariances (n < d) included. The parameter-level forms (means and covariances in) take the factor
from an eigen-decomposition; KL goes through the eigenvalues of Σ_T^{-1/2} Σ_S Σ_T^{-1/2}, summed
as λ - 1 - ln λ without cancellation.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._checks import as_array, check_feature_maps, check_moments, check_points, check_weights
from .._conventions import (GAUSSIAN_DIRECTIONS, SINGULAR_HINT, check_choice, check_gaussian_params,
                            check_gaussian_wasserstein_params, check_grid_gaussian_wasserstein_params,
                            class_blocks, grid_cells)
from .wasserstein import _measure


# --------------------------------------------------------------------------------------------- fitting

def _normalised_weights(w, n: int) -> np.ndarray:
    return np.full(n, 1.0 / n) if w is None else np.asarray(w, dtype=np.float64) / np.sum(w)


def gaussian_factor(x, *, a=None, estimator: str = "mle", eps: float = 0.0):
    r"""Mean and a square factor of the fitted covariance: ``(mean, F)`` with :math:`F^\top F = \Sigma`.

    :math:`F = c\,\mathrm{diag}(\sqrt{w})(X - \mathbf 1\mu^\top)`, stacked over :math:`\sqrt{\varepsilon} I`
    when ``eps > 0``, with :math:`c = 1` (``mle``) or :math:`c = (1 - \sum_i w_i^2)^{-1/2}`
    (``unbiased``). F has n (+ d) rows; the covariance itself is never formed.
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    w = _normalised_weights(a, n)
    mean = w @ x
    c = 1.0
    if estimator == "unbiased":
        if np.sum(w ** 2) >= 1.0:
            raise ValueError("estimator='unbiased' needs at least 2 samples with positive weight")
        c = 1.0 / np.sqrt(1.0 - np.sum(w ** 2))
    factor = c * np.sqrt(w)[:, None] * (x - mean)
    if eps > 0:
        factor = np.vstack([factor, np.sqrt(eps) * np.eye(d)])
    return mean, factor


def fit_gaussian(x, *, a=None, estimator: str = "mle", covariance: str = "full", eps: float = 0.0):
    r"""Fit a Gaussian to samples: ``(mean, cov)``.

    .. math:: \mu = \sum_i w_i x_i, \qquad
              \Sigma = c \sum_i w_i (x_i - \mu)(x_i - \mu)^\top + \varepsilon I

    with normalised weights :math:`w` (uniform if ``a`` is None), :math:`c = 1` for ``estimator="mle"``
    (1/n, default) and :math:`c = 1/(1 - \sum_i w_i^2)` for ``"unbiased"`` (1/(n-1) when uniform).
    ``covariance="diag"`` returns the vector of variances instead of the (d, d) matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import fit_gaussian
    >>> x = np.array([[0.0], [2.0]])
    >>> mean, var = fit_gaussian(x, covariance="diag")
    >>> mean.tolist(), var.round(4).tolist()  # 1/n variance
    ([1.0], [1.0])
    >>> fit_gaussian(x, estimator="unbiased")[1].tolist()  # 1/(n-1), (d, d)
    [[2.0]]
    """
    check_gaussian_params(covariance, estimator, eps)
    x = check_points(as_array(x, "x"), "x")
    check_weights(None if a is None else np.asarray(a, dtype=np.float64), "a", x.shape[0])
    mean, f = gaussian_factor(x, a=a, estimator=estimator, eps=eps)
    return mean, (np.sum(f * f, axis=0) if covariance == "diag" else f.T @ f)


# ------------------------------------------------------------------------------------------ Bures / W2

def procrustes_residual(fs: np.ndarray, ft: np.ndarray) -> float:
    r"""Squared Bures distance between :math:`F_S^\top F_S` and :math:`F_T^\top F_T`, as the residual
    :math:`\min_U \|F_S - U F_T\|_F^2` over orthogonal U.

    The shorter factor is padded with zero rows; factors with more rows than columns are first reduced
    to their (d, d) triangular QR factors (same Gram matrix). The optimal U is the polar factor of
    :math:`F_S F_T^\top` (SciPy SVD, ``gesvd``); the residual is then summed directly.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference.gaussian import procrustes_residual
    >>> procrustes_residual(np.eye(2), 2 * np.eye(2))  # Bures^2(I, 4 I)
    2.0
    """
    k, d = max(len(fs), len(ft)), fs.shape[1]
    fs = np.vstack([fs, np.zeros((k - len(fs), d))])
    ft = np.vstack([ft, np.zeros((k - len(ft), d))])
    if k > d:
        fs = scipy.linalg.qr(fs, mode="r")[0][:d]
        ft = scipy.linalg.qr(ft, mode="r")[0][:d]
    if np.array_equal(fs, ft):  # U = I is optimal, and exact
        return 0.0
    w, _, zt = scipy.linalg.svd(fs @ ft.T, lapack_driver="gesvd")
    residual = fs - (w @ zt) @ ft
    return float(np.sum(residual * residual))


def _sqrt_factor(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix from its eigen-decomposition (eigenvalues clamped at 0)."""
    lam, vec = np.linalg.eigh((cov + cov.T) / 2)
    return (vec * np.sqrt(np.clip(lam, 0.0, None))) @ vec.T


def gaussian_wasserstein_from_moments(mean_s, mean_t, cov_s, cov_t) -> float:
    r"""Squared 2-Wasserstein distance between :math:`N(\mu_S, \Sigma_S)` and :math:`N(\mu_T, \Sigma_T)`.

    .. math:: W_2^2 = \|\mu_S - \mu_T\|^2 + \mathrm{tr}\,\Sigma_S + \mathrm{tr}\,\Sigma_T
              - 2\,\mathrm{tr}\big(\Sigma_S^{1/2}\Sigma_T\Sigma_S^{1/2}\big)^{1/2}

    Full covariances ((d, d), PSD) are factored by their eigen-decomposition and the Bures term is
    evaluated as the Procrustes residual :math:`\min_U\|\Sigma_S^{1/2} - U\Sigma_T^{1/2}\|_F^2` (no
    cancellation). Variance vectors ((d,)) give the diagonal formula
    :math:`\|\mu_S - \mu_T\|^2 + \|\sigma_S - \sigma_T\|^2`. Returns the **squared** distance.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import gaussian_wasserstein_from_moments
    >>> ms, mt = np.zeros(2), np.array([1.0, 0.0])
    >>> cs, ct = np.eye(2), 4 * np.eye(2)  # or variance vectors: the same
    >>> gaussian_wasserstein_from_moments(ms, mt, cs, ct)  # 1 + 2 (1 - 2)^2
    3.0
    >>> gaussian_wasserstein_from_moments(ms, mt, np.ones(2), 4 * np.ones(2))
    3.0
    """
    mean_s, mean_t, cov_s, cov_t = check_moments(mean_s, mean_t, cov_s, cov_t)
    mean_term = float(np.sum((mean_s - mean_t) ** 2))
    if cov_s.ndim == 1:
        return mean_term + float(np.sum((np.sqrt(cov_s) - np.sqrt(cov_t)) ** 2))
    if np.array_equal(cov_s, cov_t):
        return mean_term
    return mean_term + procrustes_residual(_sqrt_factor(cov_s), _sqrt_factor(cov_t))


def gaussian_wasserstein(xs, xt, *, a=None, b=None, covariance: str = "full", estimator: str = "mle",
                         eps: float = 0.0, mean_weight: float = 1.0) -> float:
    r"""Squared W2 between the Gaussians fitted to ``xs`` (student) and ``xt`` (teacher) (paper eq. 5).

    .. math:: W_2^2 = w\,\|\mu_S - \mu_T\|^2 + \mathrm{tr}\,\Sigma_S + \mathrm{tr}\,\Sigma_T
              - 2\,\mathrm{tr}\big(\Sigma_S^{1/2}\Sigma_T\Sigma_S^{1/2}\big)^{1/2}

    Moments as in :func:`fit_gaussian` (``estimator="mle"``, 1/n, by default; ``eps`` = 0, no ridge,
    by default). ``mean_weight`` :math:`w \ge 0` weights the mean term (1, the W2 itself, by default;
    WKD-F uses 2 to 4). ``covariance="diag"`` keeps the variances only: :math:`w\|\Delta\mu\|^2 +
    \|\sigma_S - \sigma_T\|^2` (the paper's code). The full Bures term is the Procrustes residual of
    the centred weighted samples (see the module docstring): exact up to rounding for any n, d,
    including n < d. Symmetric in its arguments. Returns the **squared** distance.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import gaussian_wasserstein
    >>> xs = np.array([[0.0], [2.0]])  # fitted N(1, 1)
    >>> xt = np.array([[1.0], [5.0]])  # fitted N(3, 4)
    >>> gaussian_wasserstein(xs, xt)  # (1 - 3)^2 + (1 - 2)^2
    5.0
    >>> gaussian_wasserstein(xs, xt, mean_weight=2.0)
    9.0
    """
    check_gaussian_wasserstein_params(covariance, estimator, eps, mean_weight)
    xs, xt, a, b = _measure(xs, xt, a, b)
    ms, fs = gaussian_factor(xs, a=a, estimator=estimator, eps=eps)
    mt, ft = gaussian_factor(xt, a=b, estimator=estimator, eps=eps)
    mean_term = float(mean_weight) * float(np.sum((ms - mt) ** 2))
    if covariance == "diag":
        return mean_term + float(np.sum((np.linalg.norm(fs, axis=0) - np.linalg.norm(ft, axis=0)) ** 2))
    return mean_term + procrustes_residual(fs, ft)


def grid_gaussian_wasserstein(xs, xt, *, grid=1, mean_weight: float = 1.0, covariance: str = "diag",
                              estimator: str = "unbiased", eps: float = 1e-5) -> float:
    r"""WKD-F: :func:`gaussian_wasserstein` per image and grid cell of feature maps, averaged.

    .. math:: \frac{1}{B\,g_h g_w}\sum_{b=1}^{B}\sum_{k=1}^{g_h g_w} w\,\|\mu_S^{bk} - \mu_T^{bk}\|^2
              + \|\sigma_S^{bk} - \sigma_T^{bk}\|^2, \qquad \sigma = \sqrt{\mathrm{var} + \varepsilon}

    ``xs``, ``xt``: (B, C, H, W) feature maps; the pixels of cell k of image b are the samples of a
    C-dimensional Gaussian. ``grid``: g (g x g cells) or (gh, gw), cells with adaptive-pooling
    boundaries (see ``kd2m_ref._conventions.grid_cells``). Defaults as WKD-F: diagonal Gaussians,
    unbiased variances (1/(n-1) over a cell's n pixels), ``eps`` = 1e-5, ``mean_weight`` w = 1 (the
    published configurations use 2 to 4); ``covariance="full"`` takes the full Bures term per cell.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import grid_gaussian_wasserstein
    >>> maps = np.arange(8.0).reshape(1, 2, 2, 2)  # (B, C, H, W)
    >>> grid_gaussian_wasserstein(maps, maps + 1.0, eps=0.0)  # 1 + 1
    2.0
    """
    check_grid_gaussian_wasserstein_params(grid, mean_weight, covariance, estimator, eps)
    xs = check_feature_maps(as_array(xs, "xs"), "xs")
    xt = check_feature_maps(as_array(xt, "xt"), "xt", like=xs)
    batch, channels, height, width = xs.shape
    cells = grid_cells(height, width, grid, estimator)
    total = 0.0
    for b in range(batch):
        for rows, cols in cells:
            total += gaussian_wasserstein(xs[b, :, rows, cols].reshape(channels, -1).T,
                                          xt[b, :, rows, cols].reshape(channels, -1).T, covariance=covariance,
                                          estimator=estimator, eps=eps, mean_weight=mean_weight)
    return total / (batch * len(cells))


# ------------------------------------------------------------------------------------------------- KL

def exp_minus_one_minus(z):
    r""":math:`g(z) = e^z - 1 - z \ge 0` without cancellation near 0 (Taylor series for |z| < 1/2).

    With :math:`z = \ln\lambda`, :math:`g = \lambda - 1 - \ln\lambda`, the per-eigenvalue KL term.
    """
    z = np.asarray(z, dtype=np.float64)
    small = np.abs(z) < 0.5
    zs = np.where(small, z, 0.0)
    series = np.zeros_like(z)
    for k in range(18, 1, -1):  # Horner: z^2/2! (1 + z/3 (1 + z/4 (...)))
        series = zs / k * (1.0 + series) if k > 2 else zs * zs / 2 * (1.0 + series)
    return np.where(small, series, np.expm1(np.where(small, 0.0, z)) - z)


def gaussian_kl_from_moments(mean_s, mean_t, cov_s, cov_t, *, direction: str = "student_teacher") -> float:
    r"""KL divergence between :math:`N(\mu_S, \Sigma_S)` and :math:`N(\mu_T, \Sigma_T)` (paper eq. 6).

    .. math::

        \mathrm{KL}(N_S\|N_T) &= \tfrac12\Big[\mathrm{tr}(\Sigma_T^{-1}\Sigma_S)
            + \Delta\mu^\top\Sigma_T^{-1}\Delta\mu - d + \ln\frac{\det\Sigma_T}{\det\Sigma_S}\Big] \\
        &= \tfrac12\Big[\sum_i (\lambda_i - 1 - \ln\lambda_i) + \Delta\mu^\top\Sigma_T^{-1}\Delta\mu\Big]

    with :math:`\lambda_i` the eigenvalues of :math:`\Sigma_T^{-1/2}\Sigma_S\Sigma_T^{-1/2}`.
    ``direction="student_teacher"`` (default, the paper's code) is KL(student ‖ teacher);
    ``"teacher_student"`` swaps the roles. Variance vectors give the diagonal formula. A singular
    covariance raises ``ValueError`` (the KL is infinite); add a ridge ``eps`` when fitting.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import gaussian_kl_from_moments
    >>> ms, mt, cov = np.zeros(1), np.array([2.0]), np.eye(1)
    >>> gaussian_kl_from_moments(ms, mt, cov, cov)  # |2|^2 / 2
    2.0
    >>> round(gaussian_kl_from_moments(ms, ms, np.ones(1), 4 * np.ones(1)), 4)
    0.3181
    """
    check_choice(direction, "direction", GAUSSIAN_DIRECTIONS)
    return _kl(*check_moments(mean_s, mean_t, cov_s, cov_t), direction, ("cov_s", "cov_t"))


def _kl(mean_s, mean_t, cov_s, cov_t, direction, names) -> float:
    for name, cov in zip(names, (cov_s, cov_t)):
        lam = cov if cov.ndim == 1 else np.linalg.eigvalsh((cov + cov.T) / 2)
        if lam.min() <= lam.size * np.finfo(float).eps * max(lam.max(), 0.0) or lam.max() <= 0:
            raise ValueError(f"{name} is singular (smallest eigenvalue {lam.min():.3e}): " + SINGULAR_HINT)
    if direction == "teacher_student":
        mean_s, mean_t, cov_s, cov_t = mean_t, mean_s, cov_t, cov_s
    dm = mean_s - mean_t
    if cov_s.ndim == 1:
        return 0.5 * float(np.sum(exp_minus_one_minus(np.log(cov_s / cov_t)) + dm ** 2 / cov_t))
    lam_t, vec_t = np.linalg.eigh((cov_t + cov_t.T) / 2)
    maha = float(np.sum((vec_t.T @ dm) ** 2 / lam_t))
    if np.array_equal(cov_s, cov_t):  # all λ = 1 exactly
        return 0.5 * maha
    whiten = vec_t / np.sqrt(lam_t)  # Σ_T^{-1/2} up to the rotation vec_t (same spectrum)
    c = whiten.T @ cov_s @ whiten
    lam = np.linalg.eigvalsh((c + c.T) / 2)
    return 0.5 * (float(np.sum(exp_minus_one_minus(np.log(lam)))) + maha)


def gaussian_kl(xs, xt, *, a=None, b=None, covariance: str = "full", estimator: str = "mle", eps: float = 0.0,
                direction: str = "student_teacher") -> float:
    r"""KL divergence between the Gaussians fitted to ``xs`` (student) and ``xt`` (teacher) (paper eq. 6).

    Default ``direction="student_teacher"``: :math:`\mathrm{KL}(N_S \| N_T)`, as the paper's code;
    ``"teacher_student"`` gives :math:`\mathrm{KL}(N_T \| N_S)`. Moments as in :func:`fit_gaussian`;
    ``covariance="diag"`` uses the diagonal formula
    :math:`\tfrac12\sum_i[\sigma_{S,i}^2/\sigma_{T,i}^2 + \Delta\mu_i^2/\sigma_{T,i}^2 - 1
    + \ln(\sigma_{T,i}^2/\sigma_{S,i}^2)]`. A singular fitted covariance (n <= d, constant or collinear
    features) raises ``ValueError``: pass ``eps > 0`` for the ridge :math:`\Sigma + \varepsilon I`.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import gaussian_kl
    >>> xs = np.array([[0.0], [2.0]])  # fitted N(1, 1)
    >>> xt = np.array([[1.0], [5.0]])  # fitted N(3, 4)
    >>> round(gaussian_kl(xs, xt), 4)  # (1/4 + 1 - 1 + ln 4) / 2
    0.8181
    >>> round(gaussian_kl(xs, xt, direction="teacher_student"), 4)
    2.8069
    """
    check_gaussian_params(covariance, estimator, eps)
    check_choice(direction, "direction", GAUSSIAN_DIRECTIONS)
    xs, xt, a, b = _measure(xs, xt, a, b)
    ms, cs = fit_gaussian(xs, a=a, estimator=estimator, covariance=covariance, eps=eps)
    mt, ct = fit_gaussian(xt, a=b, estimator=estimator, covariance=covariance, eps=eps)
    return _kl(ms, mt, cs, ct, direction, ("the covariance fitted to xs", "the covariance fitted to xt"))


# ---------------------------------------------------------------------------------- class-conditional

def _class_conditional(metric, xs, xt, ys, yt, a, b, weights, **kwargs) -> float:
    xs, xt, a, b = _measure(xs, xt, a, b)
    total = 0.0
    for blk in class_blocks(ys, yt, len(xs), len(xt), weights=weights, a=a, b=b):
        sub_a = None if a is None else a[blk.index_s]
        sub_b = None if b is None else b[blk.index_t]
        total += blk.weight * metric(xs[blk.index_s], xt[blk.index_t], a=sub_a, b=sub_b, **kwargs)
    return total


def class_conditional_gaussian_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, weights: str = "uniform",
                                           covariance: str = "full", estimator: str = "mle",
                                           eps: float = 0.0) -> float:
    r""":math:`\sum_c w_c\, W_2^2(N(\mu_S^c, \Sigma_S^c), N(\mu_T^c, \Sigma_T^c))`, Gaussians fitted per class.

    ``weights`` as in :func:`kd2m_ref.reference.class_conditional_wasserstein` (``uniform`` 1/K over the
    classes present, default; ``prior`` n_c/n; ``sum`` 1 each, the paper's code); ``yt`` defaults to
    ``ys``; other parameters as :func:`gaussian_wasserstein`.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import class_conditional_gaussian_wasserstein
    >>> xs = np.array([[0.0], [2.0], [0.0], [2.0]])
    >>> xt = np.array([[1.0], [5.0], [0.0], [2.0]])
    >>> ys = np.array([0, 0, 1, 1])  # classes: W_2^2 = 5 and 0
    >>> class_conditional_gaussian_wasserstein(xs, xt, ys=ys)
    2.5
    """
    return _class_conditional(gaussian_wasserstein, xs, xt, ys, yt, a, b, weights, covariance=covariance,
                              estimator=estimator, eps=eps)


def class_conditional_gaussian_kl(xs, xt, *, ys, yt=None, a=None, b=None, weights: str = "uniform",
                                  covariance: str = "full", estimator: str = "mle", eps: float = 0.0,
                                  direction: str = "student_teacher") -> float:
    r""":math:`\sum_c w_c\, \mathrm{KL}(N_S^c \| N_T^c)` (default direction), Gaussians fitted per class.

    ``weights`` as in :func:`class_conditional_gaussian_wasserstein`; other parameters as
    :func:`gaussian_kl`. Each class needs a nonsingular covariance (more samples than features) or
    ``eps > 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import class_conditional_gaussian_kl
    >>> xs = np.array([[0.0], [2.0], [0.0], [2.0]])
    >>> xt = np.array([[1.0], [5.0], [0.0], [2.0]])
    >>> ys = np.array([0, 0, 1, 1])  # classes: KL = 0.8181 and 0
    >>> round(class_conditional_gaussian_kl(xs, xt, ys=ys), 4)
    0.4091
    """
    return _class_conditional(gaussian_kl, xs, xt, ys, yt, a, b, weights, covariance=covariance,
                              estimator=estimator, eps=eps, direction=direction)
