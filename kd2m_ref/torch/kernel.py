"""Differentiable MMD^2 in torch; conventions of :func:`kd2m_ref.reference.mmd`.

Distances come from :func:`~kd2m_ref.torch._common.pairwise_cost` (no cancellation for close points, finite
gradients at coincident points), so the gradient is finite where student equals teacher, and a
bandwidth rule differentiated through (``detach_bandwidth=False``) is finite too.
"""

from __future__ import annotations

import torch

from .._checks import check_points, check_sets
from .._conventions import SHIFT_INVARIANT, check_mmd_params, check_set_mmd_params
from ._common import check_tensor, float32_for_low_precision, pairwise_cost


def bandwidth_from_rule(xs: torch.Tensor, xt: torch.Tensor, rule: str) -> torch.Tensor:
    """Bandwidth by ``rule`` ("mean" or "median"); see :func:`kd2m_ref.reference.kernel.bandwidth_from_rule`."""
    if rule == "mean":
        parts = [pairwise_cost(u, v, 1.0) for u, v in ((xs, xs), (xt, xt), (xs, xt))]
        s = sum(part.sum() for part in parts) / sum(part.numel() for part in parts)
    else:
        z = torch.cat([xs, xt])
        i, j = torch.triu_indices(len(z), len(z), 1, device=z.device)
        d, _ = torch.sort(pairwise_cost(z, z, 1.0)[i, j])
        k = len(d)
        s = d[k // 2] if k % 2 else 0.5 * (d[k // 2 - 1] + d[k // 2])
    return torch.where(s > 0, s, torch.ones_like(s))


def _over_bandwidth(cost: torch.Tensor, s, times: int) -> torch.Tensor:
    """``cost / s**times`` as ``times`` divisions by s. A number s that the cost's dtype cannot hold as a
    normal number (1e-300 or 1e300 in float32: it would round to 0 or inf, and 0/0 = NaN on the
    diagonal) divides in float64, the result rounded back (to inf, 0 or a value)."""
    finfo = torch.finfo(cost.dtype)
    wide = not isinstance(s, torch.Tensor) and not finfo.tiny <= s <= finfo.max
    z = cost.to(torch.float64) if wide else cost
    for _ in range(times):
        z = z / s
    return z.to(cost.dtype)


def _gaussian_scale(s, dtype: torch.dtype):
    """``-1 / (2 s^2)`` when it and ``1 / s^2`` are normal numbers of ``dtype`` (then the exponent is one
    multiplication and its derivative finite), else None (the careful path)."""
    finfo = torch.finfo(dtype)
    if not 4 * finfo.tiny**0.5 <= float(s) <= finfo.max**0.5 / 4:
        return None
    return -0.5 / (s * s)


def kernel_matrix(x: torch.Tensor, y: torch.Tensor, *, kernel: str = "gaussian", bandwidth=1.0, degree: int = 2,
                  offset: float = 1.0) -> torch.Tensor:
    """Kernel matrix; ``bandwidth`` a number or a 0-d tensor. See :func:`kd2m_ref.reference.kernel.kernel_matrix`.
    The linear and polynomial kernels also take batches (B, n, d) x (B, m, d) -> (B, n, m)."""
    # distances are divided by s first, so s**2 is never formed: any finite s > 0 works (see the
    # reference). Gaussian: coincident points (sq == 0) take k = 1 as a constant, so no gradient flows
    # there: d k / d sq = -k/(2 s^2) overflows for s < 1e-154, and inf times the zero gradient of sq at
    # coincident points would be NaN (the true gradient is 0 for every s).
    if kernel == "gaussian":
        sq = pairwise_cost(x, y, 2.0)
        scale = _gaussian_scale(bandwidth, sq.dtype)
        if scale is not None:  # one multiplication; -k/(2 s^2) is finite, so no special case is needed
            return torch.exp(sq * scale)
        k = torch.exp(-0.5 * _over_bandwidth(sq, bandwidth, 2))
        return torch.where(sq > 0, k, torch.ones_like(k))
    if kernel == "laplacian":
        return torch.exp(-_over_bandwidth(pairwise_cost(x, y, 1.0), bandwidth, 1))
    gram = x @ y.transpose(-2, -1)
    return gram if kernel == "linear" else (gram + offset) ** int(degree)


def _blocks(xs, xt, kernel, bandwidth, degree, offset, detach_bandwidth):
    """K_SS, K_TT, K_ST of one pair of clouds, a bandwidth rule evaluated on them (detached or not)."""
    s = 1.0
    if kernel in SHIFT_INVARIANT:
        if isinstance(bandwidth, str):
            if detach_bandwidth:
                with torch.no_grad():
                    s = bandwidth_from_rule(xs.detach(), xt.detach(), bandwidth)
            else:
                s = bandwidth_from_rule(xs, xt, bandwidth)
        else:
            s = float(bandwidth)
    kw = dict(kernel=kernel, bandwidth=s, degree=degree, offset=offset)
    return kernel_matrix(xs, xs, **kw), kernel_matrix(xt, xt, **kw), kernel_matrix(xs, xt, **kw)


def _estimate(kxx, kyy, kxy, estimator):
    """The V- or U-statistic from the kernel blocks, per set for batched (B, ., .) blocks."""
    n, m = kxx.shape[-1], kyy.shape[-1]
    sxx, syy, sxy = (k.sum((-2, -1)) for k in (kxx, kyy, kxy))
    if estimator == "biased":
        return sxx / n**2 + syy / m**2 - 2 * sxy / (n * m)
    trace = lambda k: k.diagonal(dim1=-2, dim2=-1).sum(-1)  # noqa: E731
    return (sxx - trace(kxx)) / (n * (n - 1)) + (syy - trace(kyy)) / (m * (m - 1)) - 2 * sxy / (n * m)


@float32_for_low_precision
def mmd(xs, xt, *, kernel: str = "gaussian", bandwidth: float | str = "mean", estimator: str = "biased",
        degree: int = 2, offset: float = 1.0, detach_bandwidth: bool = True) -> torch.Tensor:
    r"""MMD^2 (V- or U-statistic); see :func:`kd2m_ref.reference.mmd` for the formula and conventions.

    With a bandwidth rule, ``detach_bandwidth=True`` (default, as the paper's code) treats s as a
    constant in the backward pass; ``False`` differentiates through it. Returns a 0-d tensor of the
    input's dtype and device.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import mmd
    >>> xs, xt = torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [3.0]])
    >>> mmd(xs, xt, kernel="linear").item()  # the squared gap of the means
    1.0
    >>> round(mmd(xs, xt).item(), 4)  # Gaussian kernel, bandwidth rule "mean"
    0.1729
    """
    check_mmd_params(kernel, bandwidth, estimator, degree, offset, detach_bandwidth)
    rows = 2 if estimator == "unbiased" else 1
    check_points(check_tensor(xs, "xs"), "xs", min_rows=rows)
    check_points(check_tensor(xt, "xt"), "xt", dim=xs.shape[1], min_rows=rows)
    if xt.dtype != xs.dtype or xt.device != xs.device:
        raise ValueError(f"xs and xt must share dtype and device; got {xs.dtype}/{xs.device} and "
                         f"{xt.dtype}/{xt.device}")
    return _estimate(*_blocks(xs, xt, kernel, bandwidth, degree, offset, detach_bandwidth), estimator)


def normalize_samples(x: torch.Tensor, normalize: str = "l2") -> torch.Tensor:
    """Samples (last dimension) divided by their Euclidean norm; a zero sample stays zero (its gradient is
    that of x / 1). See :func:`kd2m_ref.reference.kernel.normalize_samples`. The norm is taken of
    x / max|x_i| (detached: the quotient does not depend on it), so no square overflows or underflows."""
    if normalize == "none":
        return x
    scale = x.detach().abs().amax(-1, keepdim=True)
    x = x / torch.where(scale > 0, scale, torch.ones_like(scale))
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


@float32_for_low_precision
def set_mmd(xs, xt, *, kernel: str = "polynomial", bandwidth: float | str = "mean", estimator: str = "biased",
            degree: int = 2, offset: float = 0.0, normalize: str = "l2", detach_bandwidth: bool = True) -> torch.Tensor:
    r"""Per-set MMD^2 averaged over a batch of sets (NST); see :func:`kd2m_ref.reference.set_mmd`.

    ``xs`` (B, n, ...) and ``xt`` (B, m, ...), e.g. (B, C, H, W) feature maps. The linear and polynomial
    kernels (NST's) run as one batched product over the B sets; the shift-invariant ones build each set's
    blocks with its own bandwidth. Returns a 0-d tensor of the input's dtype and device.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import set_mmd
    >>> xs = torch.tensor([[[1.0, 0.0]], [[0.0, 3.0]]])  # 2 sets of 1 sample
    >>> xt = torch.tensor([[[0.0, 2.0]], [[0.0, 1.0]]])
    >>> set_mmd(xs, xt).item()  # normalised samples: (2 + 0) / 2
    1.0
    """
    check_set_mmd_params(kernel, bandwidth, estimator, degree, offset, normalize, detach_bandwidth)
    rows = 2 if estimator == "unbiased" else 1
    xs = check_sets(check_tensor(xs, "xs"), "xs", min_rows=rows)
    xt = check_sets(check_tensor(xt, "xt"), "xt", like=xs, min_rows=rows)
    if xt.dtype != xs.dtype or xt.device != xs.device:
        raise ValueError(f"xs and xt must share dtype and device; got {xs.dtype}/{xs.device} and "
                         f"{xt.dtype}/{xt.device}")
    xs, xt = normalize_samples(xs, normalize), normalize_samples(xt, normalize)
    if kernel in SHIFT_INVARIANT:
        per_set = [_blocks(u, v, kernel, bandwidth, degree, offset, detach_bandwidth) for u, v in zip(xs, xt)]
        blocks = [torch.stack(k) for k in zip(*per_set)]
    else:
        blocks = _blocks(xs, xt, kernel, bandwidth, degree, offset, detach_bandwidth)
    return _estimate(*blocks, estimator).mean()


__all__ = ["bandwidth_from_rule", "kernel_matrix", "mmd", "normalize_samples", "set_mmd"]
