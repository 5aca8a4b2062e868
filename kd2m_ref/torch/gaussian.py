r"""Differentiable Gaussian W2 and KL in torch (paper eqs. 5-6); same conventions as
:mod:`kd2m_ref.reference.gaussian`.

W2 (full): the Bures term is the orthogonal Procrustes residual :math:`\min_U\|F_S - UF_T\|_F^2` of
the centred, weighted data matrices (:math:`F^\top F = \Sigma`). The optimal U, the polar factor of
:math:`F_S F_T^\top`, is found without gradient (n x n when n <= d; else through the (d, d) QR
factors), and the value :math:`\|F_S - UF_T\|_F^2` is formed with autograd. By the envelope theorem
its gradient at the fixed optimal U is the gradient of the minimum (a subgradient where U is not
unique, e.g. rank-deficient covariances): no SVD backward, no division by singular values or their
gaps, zero gradient at student = teacher, and no ``tr + tr - 2 tr sqrt`` cancellation in float32.
Cost O(n^2 d) for n <= d (no d x d matrix is formed), O(n d^2) otherwise.

KL (full): Cholesky factors :math:`L_S, L_T`, :math:`A = L_T^{-1}L_S`, :math:`b = L_T^{-1}\Delta\mu`,
:math:`\mathrm{KL} = \tfrac12[\sum_{i>j}A_{ij}^2 + \sum_i g(2\ln A_{ii}) + \|b\|^2]` with
:math:`g(z) = e^z - 1 - z` summed without cancellation.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_feature_maps, check_moments
from .._conventions import (GAUSSIAN_DIRECTIONS, SINGULAR_HINT, check_choice, check_gaussian_kl_params,
                            check_gaussian_params, check_gaussian_wasserstein_params,
                            check_grid_gaussian_wasserstein_params, class_blocks, grid_cells)
from ._common import check_tensor, float32_for_low_precision, measure


def gaussian_factor(x: torch.Tensor, w: torch.Tensor, estimator: str = "mle", eps: float = 0.0):
    r"""``(mean, F)`` with :math:`F^\top F = \Sigma` for normalised weights ``w`` over the last two dimensions
    of ``x`` (samples, features; leading dimensions are a batch); see
    :func:`kd2m_ref.reference.gaussian.gaussian_factor`."""
    mean = w @ x
    scale = w.sqrt()
    if estimator == "unbiased":
        wsq = float((w.detach().double() ** 2).sum())
        if wsq >= 1.0:
            raise ValueError("estimator='unbiased' needs at least 2 samples with positive weight")
        scale = scale / math.sqrt(1.0 - wsq)
    factor = scale[:, None] * (x - mean.unsqueeze(-2))
    if eps > 0:
        ridge = math.sqrt(eps) * torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
        factor = torch.cat([factor, ridge.expand(*x.shape[:-2], -1, -1)], dim=-2)
    return mean, factor


@float32_for_low_precision
def fit_gaussian(x: torch.Tensor, *, a=None, estimator: str = "mle", covariance: str = "full", eps: float = 0.0):
    r"""``(mean, cov)`` of the Gaussian fitted to ``x``; see :func:`kd2m_ref.reference.fit_gaussian`.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import fit_gaussian
    >>> x = torch.tensor([[0.0], [2.0]])
    >>> mean, var = fit_gaussian(x, covariance="diag")
    >>> mean.tolist(), [round(v, 4) for v in var.tolist()]  # 1/n variance
    ([1.0], [1.0])
    """
    check_gaussian_params(covariance, estimator, eps)
    x, _, w, _ = measure(x, x, a, None)
    mean, f = gaussian_factor(x, w, estimator, eps)
    return mean, ((f * f).sum(0) if covariance == "diag" else f.T @ f)


def procrustes_residual(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    r"""Squared Bures distance between :math:`F_S^\top F_S` and :math:`F_T^\top F_T` as
    :math:`\min_U\|F_S - UF_T\|_F^2`, differentiable w.r.t. both factors (envelope gradient)."""
    k, d = max(fs.shape[0], ft.shape[0]), fs.shape[1]
    if fs.shape[0] < k:
        fs = torch.cat([fs, fs.new_zeros(k - fs.shape[0], d)])
    if ft.shape[0] < k:
        ft = torch.cat([ft, ft.new_zeros(k - ft.shape[0], d)])
    if torch.equal(fs, ft):  # U = I is optimal, and exact: value 0, gradient 0
        return ((fs - ft) ** 2).sum()
    with torch.no_grad():
        if k > d:  # reduce to (d, d) triangular factors with the same Gram matrices
            qs, gs = torch.linalg.qr(fs)
            qt, gt = torch.linalg.qr(ft)
        else:
            gs, gt = fs, ft
        w, _, zh = torch.linalg.svd(gs @ gt.T)
        u = w @ zh
    moved = qs @ (u @ (qt.T @ ft)) if k > d else u @ ft
    residual = fs - moved
    return (residual * residual).sum()


def _pair(xs, xt, a, b):
    return measure(xs, xt, a, b)


def _std_distance(fs: torch.Tensor, ft: torch.Tensor, eps: float) -> torch.Tensor:
    r""":math:`\|\sigma_S - \sigma_T\|^2` per batch entry, :math:`\sigma_j = (\sum_i F_{ij}^2 + \varepsilon)^{1/2}`
    from factors without their ridge: norms of the columns with a row :math:`\sqrt\varepsilon` appended,
    whose gradient at a constant feature with eps = 0 (:math:`\sigma = 0`, a kink) is the zero subgradient."""
    def std(f):
        return torch.linalg.vector_norm(torch.cat([f, torch.full_like(f[..., :1, :], math.sqrt(eps))], dim=-2), dim=-2)
    return ((std(fs) - std(ft)) ** 2).sum(-1)


@float32_for_low_precision
def gaussian_wasserstein(xs, xt, *, a=None, b=None, covariance: str = "full", estimator: str = "mle",
                         eps: float = 0.0, mean_weight: float = 1.0) -> torch.Tensor:
    r"""Squared W2 between the Gaussians fitted to ``xs`` and ``xt``, the mean term weighted by
    ``mean_weight``; see :func:`kd2m_ref.reference.gaussian_wasserstein` for the formula and conventions.

    Differentiable w.r.t. ``xs``, ``xt`` (and the weights); finite gradients at ``xs == xt`` and for
    rank-deficient covariances (n < d). The diagonal form uses column norms of the centred data, whose
    gradient is finite (zero) at a constant feature.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import gaussian_wasserstein
    >>> xs = torch.tensor([[0.0], [2.0]])  # fitted N(1, 1)
    >>> xt = torch.tensor([[1.0], [5.0]])  # fitted N(3, 4)
    >>> round(gaussian_wasserstein(xs, xt).item(), 4)  # (1-3)^2 + (1-2)^2
    5.0
    """
    check_gaussian_wasserstein_params(covariance, estimator, eps, mean_weight)
    xs, xt, a, b = _pair(xs, xt, a, b)
    ridge = 0.0 if covariance == "diag" else eps
    ms, fs = gaussian_factor(xs, a, estimator, ridge)
    mt, ft = gaussian_factor(xt, b, estimator, ridge)
    mean_term = mean_weight * ((ms - mt) ** 2).sum()
    if covariance == "diag":
        return mean_term + _std_distance(fs, ft, eps)
    return mean_term + procrustes_residual(fs, ft)


@float32_for_low_precision
def grid_gaussian_wasserstein(xs, xt, *, grid=1, mean_weight: float = 1.0, covariance: str = "diag",
                              estimator: str = "unbiased", eps: float = 1e-5) -> torch.Tensor:
    r"""WKD-F: :func:`gaussian_wasserstein` per image and grid cell of (B, C, H, W) feature maps, averaged;
    see :func:`kd2m_ref.reference.grid_gaussian_wasserstein` for the formula and conventions.

    The diagonal form is batched over the images (a loop over the cells only); the full form loops over
    images and cells. Differentiable, with a zero gradient at ``xs == xt``. :math:`\sigma = \sqrt{\mathrm{var}
    + \varepsilon}` is smooth for eps > 0; with eps = 0 a constant channel of a cell (σ = 0) is a kink of
    the loss, where the gradient returned is the zero subgradient (finite, never NaN).

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import grid_gaussian_wasserstein
    >>> maps = torch.arange(8.0).reshape(1, 2, 2, 2)  # (B, C, H, W)
    >>> grid_gaussian_wasserstein(maps, maps + 1.0, eps=0.0).item()  # 1 + 1
    2.0
    """
    check_grid_gaussian_wasserstein_params(grid, mean_weight, covariance, estimator, eps)
    check_feature_maps(check_tensor(xs, "xs"), "xs")
    check_feature_maps(check_tensor(xt, "xt"), "xt", like=xs)
    if xt.dtype != xs.dtype or xt.device != xs.device:
        raise ValueError(f"xs and xt must share dtype and device; got {xs.dtype}/{xs.device} and {xt.dtype}/{xt.device}")
    batch, channels, height, width = xs.shape
    cells = grid_cells(height, width, grid, estimator)
    total = xs.new_zeros(())
    for rows, cols in cells:
        ps = xs[:, :, rows, cols].reshape(batch, channels, -1).transpose(1, 2)  # (B, pixels, C)
        pt = xt[:, :, rows, cols].reshape(batch, channels, -1).transpose(1, 2)
        if covariance == "full":
            for b in range(batch):
                total = total + gaussian_wasserstein(ps[b], pt[b], covariance="full", estimator=estimator, eps=eps,
                                                     mean_weight=mean_weight)
            continue
        w = torch.full((ps.shape[1],), 1.0 / ps.shape[1], dtype=xs.dtype, device=xs.device)
        (ms, fs), (mt, ft) = gaussian_factor(ps, w, estimator), gaussian_factor(pt, w, estimator)
        total = total + mean_weight * ((ms - mt) ** 2).sum() + _std_distance(fs, ft, eps).sum()
    return total / (batch * len(cells))


def _sqrt_factor(cov: torch.Tensor) -> torch.Tensor:
    lam, vec = torch.linalg.eigh((cov + cov.T) / 2)
    return (vec * lam.clamp(min=0).sqrt()) @ vec.T


def _check_moment_tensors(mean_s, mean_t, cov_s, cov_t):
    """Tensors, validated as the reference validates moments (shapes, finite, symmetric PSD), sharing a
    dtype and device."""
    tensors = dict(mean_s=mean_s, mean_t=mean_t, cov_s=cov_s, cov_t=cov_t)
    for name, v in tensors.items():
        check_tensor(v, name)
    check_moments(mean_s, mean_t, cov_s, cov_t)
    if len({(v.dtype, v.device) for v in tensors.values()}) > 1:
        raise ValueError("mean_s, mean_t, cov_s and cov_t must share dtype and device; got "
                         + ", ".join(f"{k}: {v.dtype}/{v.device}" for k, v in tensors.items()))


@float32_for_low_precision
def gaussian_wasserstein_from_moments(mean_s, mean_t, cov_s, cov_t) -> torch.Tensor:
    r"""Squared W2 between :math:`N(\mu_S,\Sigma_S)` and :math:`N(\mu_T,\Sigma_T)` (variance vectors:
    diagonal formula); see :func:`kd2m_ref.reference.gaussian_wasserstein_from_moments`.

    The symmetric square roots come from ``eigh``; gradients w.r.t. full covariances go through it and
    are not finite at repeated eigenvalues: train with the sample-level :func:`gaussian_wasserstein`.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import gaussian_wasserstein_from_moments
    >>> ms, mt = torch.zeros(2), torch.tensor([1.0, 0.0])
    >>> cs, ct = torch.eye(2), 4 * torch.eye(2)
    >>> gaussian_wasserstein_from_moments(ms, mt, cs, ct).item()  # 1 + 2
    3.0
    """
    _check_moment_tensors(mean_s, mean_t, cov_s, cov_t)
    mean_term = ((mean_s - mean_t) ** 2).sum()
    if cov_s.ndim == 1:
        return mean_term + ((cov_s.clamp(min=0).sqrt() - cov_t.clamp(min=0).sqrt()) ** 2).sum()
    if torch.equal(cov_s, cov_t):
        return mean_term + 0 * (cov_s - cov_t).sum()
    return mean_term + procrustes_residual(_sqrt_factor(cov_s), _sqrt_factor(cov_t))


class _ExpMinusOneMinus(torch.autograd.Function):
    """Forward by a Taylor series for |z| < 1/2 (no cancellation), backward d/dz = expm1(z) (accurate)."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        small = z.abs() < 0.5
        zs = torch.where(small, z, torch.zeros_like(z))
        series = torch.zeros_like(z)
        terms = 10 if torch.finfo(z.dtype).eps > 1e-10 else 18  # truncation < u relative to z^2/2
        for k in range(terms, 2, -1):
            series = zs / k * (1.0 + series)
        series = zs * zs / 2 * (1.0 + series)
        zl = torch.where(small, torch.zeros_like(z), z)
        return torch.where(small, series, torch.expm1(zl) - zl)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * torch.expm1(z)


def exp_minus_one_minus(z: torch.Tensor) -> torch.Tensor:
    r""":math:`e^z - 1 - z` without cancellation near 0 (Taylor series for |z| < 1/2); differentiable,
    with derivative :math:`e^z - 1`."""
    return _ExpMinusOneMinus.apply(z)


def _cholesky(cov: torch.Tensor, name: str) -> torch.Tensor:
    chol, info = torch.linalg.cholesky_ex(cov)
    diag = chol.diagonal()
    tiny = cov.shape[0] * torch.finfo(cov.dtype).eps * cov.diagonal().max()
    if int(info) != 0 or not bool((diag * diag > tiny).all()) or not bool(chol.isfinite().all()):
        raise ValueError(f"{name} is singular or not positive definite in {cov.dtype}: " + SINGULAR_HINT)
    return chol


def _kl(ms, mt, cs, ct, direction, names):
    if cs.ndim == 1:
        for name, v in zip(names, (cs, ct)):
            if not bool((v > 0).all()):
                raise ValueError(f"{name} has a zero variance: " + SINGULAR_HINT)
    else:
        ls, lt = _cholesky(cs, names[0]), _cholesky(ct, names[1])
    if direction == "teacher_student":
        ms, mt, cs, ct = mt, ms, ct, cs
        if cs.ndim == 2:
            ls, lt = lt, ls
    dm = ms - mt
    if cs.ndim == 1:
        return 0.5 * (exp_minus_one_minus(torch.log(cs / ct)) + dm * dm / ct).sum()
    b = torch.linalg.solve_triangular(lt, dm[:, None], upper=False)
    if torch.equal(cs, ct):  # A = I exactly: the covariance term and its gradient vanish
        return 0.5 * (b * b).sum() + 0 * (ls - lt).sum()
    a = torch.linalg.solve_triangular(lt, ls, upper=False)
    idx = torch.arange(a.shape[0], device=a.device)
    off = torch.where(idx[:, None] > idx[None, :], a, torch.zeros((), dtype=a.dtype, device=a.device))  # (tril is slow on CPU)
    return 0.5 * ((off * off).sum() + exp_minus_one_minus(2 * torch.log(a.diagonal())).sum() + (b * b).sum())


@float32_for_low_precision
def gaussian_kl_from_moments(mean_s, mean_t, cov_s, cov_t, *, direction: str = "student_teacher") -> torch.Tensor:
    r"""KL between :math:`N(\mu_S,\Sigma_S)` and :math:`N(\mu_T,\Sigma_T)` (default KL(student ‖ teacher));
    see :func:`kd2m_ref.reference.gaussian_kl_from_moments`.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import gaussian_kl_from_moments
    >>> ms, mt, cov = torch.zeros(1), torch.tensor([2.0]), torch.eye(1)
    >>> gaussian_kl_from_moments(ms, mt, cov, cov).item()  # |2|^2 / 2
    2.0
    """
    check_choice(direction, "direction", GAUSSIAN_DIRECTIONS)
    _check_moment_tensors(mean_s, mean_t, cov_s, cov_t)
    return _kl(mean_s, mean_t, cov_s, cov_t, direction, ("cov_s", "cov_t"))


@float32_for_low_precision
def gaussian_kl(xs, xt, *, a=None, b=None, covariance: str = "full", estimator: str = "mle", eps: float = 0.0,
                direction: str = "student_teacher") -> torch.Tensor:
    r"""KL between the Gaussians fitted to ``xs`` (student) and ``xt`` (teacher), default
    :math:`\mathrm{KL}(N_S\|N_T)`; see :func:`kd2m_ref.reference.gaussian_kl`. Cholesky-based; a
    singular fitted covariance raises ``ValueError`` suggesting ``eps``.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import gaussian_kl
    >>> xs = torch.tensor([[0.0], [2.0]])  # fitted N(1, 1)
    >>> xt = torch.tensor([[1.0], [5.0]])  # fitted N(3, 4)
    >>> round(gaussian_kl(xs, xt).item(), 4)  # KL(N_S || N_T)
    0.8181
    >>> round(gaussian_kl(xs, xt, direction="teacher_student").item(), 4)
    2.8069
    """
    check_gaussian_kl_params(covariance, estimator, eps, direction)
    uniform = (a is None, b is None)
    xs, xt, a, b = _pair(xs, xt, a, b)
    ms, cs = _moments(xs, a, uniform[0], estimator, covariance, eps)
    mt, ct = _moments(xt, b, uniform[1], estimator, covariance, eps)
    return _kl(ms, mt, cs, ct, direction, ("the covariance fitted to xs", "the covariance fitted to xt"))


def _moments(x, w, uniform, estimator, covariance, eps):
    """Mean and covariance (or variances); with uniform weights exactly the plain ``c.T @ c / n``."""
    if not uniform:
        mean, f = gaussian_factor(x, w, estimator, eps)
        return mean, ((f * f).sum(0) if covariance == "diag" else f.T @ f)
    n = x.shape[0]
    if estimator == "unbiased" and n < 2:
        raise ValueError("estimator='unbiased' needs at least 2 samples with positive weight")
    mean = x.mean(0)
    centred = x - mean
    coef = 1.0 / (n - 1 if estimator == "unbiased" else n)
    if covariance == "diag":
        return mean, (centred * centred).sum(0) * coef + eps
    cov = (centred.T @ centred) * coef
    return mean, (cov + eps * torch.eye(x.shape[1], dtype=x.dtype, device=x.device) if eps > 0 else cov)


def _class_conditional(metric, xs, xt, ys, yt, a, b, weights, **kwargs) -> torch.Tensor:
    xs, xt, a_n, b_n = _pair(xs, xt, a, b)
    total = xs.new_zeros(())
    for blk in class_blocks(ys, yt, len(xs), len(xt), weights=weights, a=a, b=b):
        i = torch.as_tensor(blk.index_s, device=xs.device)
        j = torch.as_tensor(blk.index_t, device=xs.device)
        total = total + blk.weight * metric(xs[i], xt[j], a=a_n[i], b=b_n[j], **kwargs)
    return total


@float32_for_low_precision
def class_conditional_gaussian_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, weights: str = "uniform",
                                           covariance: str = "full", estimator: str = "mle",
                                           eps: float = 0.0) -> torch.Tensor:
    r""":math:`\sum_c w_c W_2^2` between per-class fitted Gaussians; see
    :func:`kd2m_ref.reference.class_conditional_gaussian_wasserstein`.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import class_conditional_gaussian_wasserstein
    >>> xs = torch.tensor([[0.0], [2.0], [0.0], [2.0]])
    >>> xt = torch.tensor([[1.0], [5.0], [0.0], [2.0]])
    >>> ys = torch.tensor([0, 0, 1, 1])  # classes: W_2^2 = 5 and 0
    >>> value = class_conditional_gaussian_wasserstein(xs, xt, ys=ys)
    >>> round(value.item(), 4)
    2.5
    """
    check_gaussian_params(covariance, estimator, eps)
    return _class_conditional(gaussian_wasserstein, xs, xt, ys, yt, a, b, weights, covariance=covariance,
                              estimator=estimator, eps=eps)


@float32_for_low_precision
def class_conditional_gaussian_kl(xs, xt, *, ys, yt=None, a=None, b=None, weights: str = "uniform",
                                  covariance: str = "full", estimator: str = "mle", eps: float = 0.0,
                                  direction: str = "student_teacher") -> torch.Tensor:
    r""":math:`\sum_c w_c \mathrm{KL}` between per-class fitted Gaussians; see
    :func:`kd2m_ref.reference.class_conditional_gaussian_kl`.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import class_conditional_gaussian_kl
    >>> xs = torch.tensor([[0.0], [2.0], [0.0], [2.0]])
    >>> xt = torch.tensor([[1.0], [5.0], [0.0], [2.0]])
    >>> ys = torch.tensor([0, 0, 1, 1])  # classes: KL = 0.8181 and 0
    >>> round(class_conditional_gaussian_kl(xs, xt, ys=ys).item(), 4)
    0.4091
    """
    check_gaussian_kl_params(covariance, estimator, eps, direction)
    return _class_conditional(gaussian_kl, xs, xt, ys, yt, a, b, weights, covariance=covariance,
                              estimator=estimator, eps=eps, direction=direction)


__all__ = ["class_conditional_gaussian_kl", "class_conditional_gaussian_wasserstein", "exp_minus_one_minus",
           "fit_gaussian", "gaussian_factor", "gaussian_kl", "gaussian_kl_from_moments", "gaussian_wasserstein",
           "gaussian_wasserstein_from_moments", "grid_gaussian_wasserstein", "procrustes_residual"]
