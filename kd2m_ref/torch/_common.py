"""Helpers shared by the torch metrics: input checks, weights, low precision, and a ground cost with
finite gradients."""

from __future__ import annotations

import functools

import torch

from .._checks import check_points, check_weights

LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_tensor(x, name: str) -> torch.Tensor:
    """The torch layer differentiates its inputs: they must be tensors (NumPy input has the reference)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor; got {type(x).__name__}. Convert it with "
                         "torch.as_tensor(...), or use kd2m_ref.reference for NumPy arrays")
    return x


def as_tensor(v, name: str, like: torch.Tensor, dtype=None) -> torch.Tensor:
    """Weights or labels given as a list, NumPy array or tensor, as a tensor on ``like``'s device."""
    try:
        return torch.as_tensor(v, dtype=dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be an array of numbers; got {type(v).__name__} ({exc})") from None


def float32_for_low_precision(fn):
    """Run a metric with autocast off, computing float16/bfloat16 inputs in float32 and returning the
    float32 value: the iterations, factorisations and sums of these metrics are not accurate in half
    precision (and a distance can exceed float16's range). float32/float64 inputs keep their dtype."""

    def up(v):
        return v.float() if isinstance(v, torch.Tensor) and v.dtype in LOW_PRECISION else v

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        first = next((v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)), None)
        if first is None:
            return fn(*args, **kwargs)
        with torch.autocast(device_type=first.device.type, enabled=False):
            return fn(*map(up, args), **{k: up(v) for k, v in kwargs.items()})
    return wrapper

_CHUNK = 1 << 24  # elements of the (n, m, d) difference tensor built at once
_BLOCK = 1 << 20  # entries of a larger (n, m) cost tested for cancellation at once


def measure(xs: torch.Tensor, xt: torch.Tensor, a=None, b=None):
    """Validate a pair of weighted point clouds; return ``(xs, xt, a, b)`` with weights normalised
    to sum 1 (uniform when None) in the dtype and on the device of ``xs``."""
    check_points(check_tensor(xs, "xs"), "xs")
    check_points(check_tensor(xt, "xt"), "xt", dim=xs.shape[1])
    if xt.dtype != xs.dtype or xt.device != xs.device:
        raise ValueError(f"xs and xt must share dtype and device; got {xs.dtype}/{xs.device} and {xt.dtype}/{xt.device}")
    return xs, xt, _normalised(a, "a", xs), _normalised(b, "b", xt)


def _normalised(w, name: str, x: torch.Tensor) -> torch.Tensor:
    if w is None:
        return torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=x.dtype, device=x.device)
    w = as_tensor(w, name, x)
    check_weights(w, name, x.shape[0])
    w = w.to(dtype=x.dtype)
    return w / w.sum()


class _SquaredDistances(torch.autograd.Function):
    """(n, m) squared distances: BLAS expansion where it is accurate, explicit differences where it
    cancels. The backward uses matmuls, so neither pass keeps the (n, m, d) difference tensor."""

    @staticmethod
    def forward(ctx, xs, xt):
        ctx.save_for_backward(xs, xt)
        # Shift both clouds by the teacher mean (distances are shift-invariant): norms become spreads.
        shift = xt.mean(0)
        u, v = xs - shift, xt - shift
        nu, nv = (u * u).sum(1), (v * v).sum(1)
        # one (n, m) buffer; nu_i + nv_j first, so a cloud against itself gives an exactly symmetric cost
        sq = torch.add(nu[:, None], nv[None, :]).addmm_(u, v.T, alpha=-2)
        # |u|^2 + |v|^2 - 2 u.v loses about d·eps·(|u|^2 + |v|^2) absolutely: relative to sq that is at
        # most 2 d·eps wherever sq >= (|u|^2 + |v|^2) / 2. The other entries (near pairs, among them
        # student = teacher) are recomputed from explicit differences of the unshifted inputs. The test
        # runs on blocks of rows, so its temporaries stay small.
        if xs is xt:  # a cloud against itself: the diagonal is exactly zero
            sq.fill_diagonal_(0.0)
        n, m = sq.shape
        block = n if n * m <= _BLOCK else max(1, _BLOCK // m)
        for r0 in range(0, sq.shape[0], block):
            rows = sq[r0:r0 + block]
            near = rows < 0.5 * (nu[r0:r0 + block, None] + nv[None, :])
            if xs is xt:
                near.diagonal(r0).fill_(False)
            if not near.any():
                continue
            i, j = torch.nonzero(near, as_tuple=True)
            step = max(1, _CHUNK // max(1, xs.shape[1]))
            for k in range(0, len(i), step):
                ik, jk = i[k:k + step], j[k:k + step]
                rows[ik, jk] = ((xs[r0 + ik] - xt[jk]) ** 2).sum(-1)
        return sq

    @staticmethod
    def backward(ctx, grad):
        xs, xt = ctx.saved_tensors
        # d/dx_i sum_j G_ij |x_i - y_j|^2 = 2 (x_i sum_j G_ij - sum_j G_ij y_j), and symmetrically for y.
        gx = 2 * (xs * grad.sum(1, keepdim=True) - grad @ xt) if ctx.needs_input_grad[0] else None
        gy = 2 * (xt * grad.sum(0)[:, None] - grad.T @ xs) if ctx.needs_input_grad[1] else None
        return gx, gy


def pairwise_cost(xs: torch.Tensor, xt: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    r"""Ground cost :math:`C_{ij} = \|x_i - y_j\|_2^p` without cancellation for close points.

    The :math:`\|x\|^2 + \|y\|^2 - 2x^\top y` expansion (one matmul) is used only where it cannot cancel
    (after a common shift, for entries at least half the sum of the squared norms); closer pairs are
    recomputed from explicit differences, so every entry keeps a relative error of order d·eps. The
    gradient is finite (zero) at coincident points for every p >= 1, unlike ``cdist``'s backward.
    Memory O(nm + nd).
    """
    return power_of_squared(_SquaredDistances.apply(xs, xt), p)


def power_of_squared(sq: torch.Tensor, p: float) -> torch.Tensor:
    """``sq ** (p / 2)`` for squared distances, with a finite (zero) gradient where ``sq == 0``."""
    if p == 2:
        return sq
    positive = sq > 0
    safe = torch.where(positive, sq, torch.ones_like(sq))
    return torch.where(positive, safe ** (p / 2), torch.zeros_like(sq))
