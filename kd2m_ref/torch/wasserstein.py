"""Differentiable exact OT in torch (paper eqs. 2-4) and sliced OT.

Exact OT: the plan is solved in float64 on the CPU, by scipy's assignment solver for equal uniform
clouds (as the reference: the oracle and POT are the independent checks there) and by POT's network
simplex otherwise (weights renormalised in float64, so float32 inputs are never "infeasible"); the
value ``<plan, C>`` is formed on the input's device and dtype. Gradients: w.r.t. points through ``C`` at the fixed optimal plan (Danskin);
w.r.t. weights through the centred dual potentials.
"""

from __future__ import annotations

import ot
import torch
from scipy.optimize import linear_sum_assignment

from .._checks import check_choice, check_labels, check_p, check_positive
from .._classes import class_blocks
from ..reference.wasserstein import LABEL_COSTS, sliced_projections
from ._common import measure, pairwise_cost


def _equal_uniform(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same number of points, every weight equal, no gradient wanted w.r.t. the weights: then an
    optimal plan is a permutation (Birkhoff), in 1-D the one pairing sorted values."""
    return (len(a) == len(b) and not (a.requires_grad or b.requires_grad)
            and bool((a == a[0]).all()) and bool((b == b[0]).all()))


def exact_ot(cost: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact OT value ``min <plan, cost>`` over couplings of the probability vectors ``a``, ``b``.

    Equal uniform weights: the optimal permutation from scipy's ``linear_sum_assignment`` (faster than
    the network simplex there); otherwise POT's ``emd``.
    """
    if _equal_uniform(a, b):
        rows, cols = linear_sum_assignment(cost.detach().cpu().double().numpy())
        return cost[torch.as_tensor(rows, device=cost.device), torch.as_tensor(cols, device=cost.device)].mean()
    a64 = a.detach().cpu().double().numpy()
    b64 = b.detach().cpu().double().numpy()
    plan, log = ot.emd(a64 / a64.sum(), b64 / b64.sum(), cost.detach().cpu().double().numpy(),
                       numItermax=10_000_000, log=True)
    if log["warning"] is not None:
        raise RuntimeError(f"exact OT solver failed: {log['warning']}")
    value = (torch.as_tensor(plan, dtype=cost.dtype, device=cost.device) * cost).sum()
    for w, potential in ((a, log["u"]), (b, log["v"])):
        if w.requires_grad:
            centred = torch.as_tensor(potential - potential.mean(), dtype=cost.dtype, device=cost.device)
            value = value + ((w - w.detach()) * centred).sum()
    return value


def wasserstein(xs, xt, *, a=None, b=None, p: float = 2.0) -> torch.Tensor:
    r"""Exact :math:`W_p^p` between weighted empirical measures; see :func:`kd2m_ref.reference.wasserstein`.

    Returns a 0-d tensor of the input's dtype and device, differentiable w.r.t. ``xs``, ``xt``,
    ``a`` and ``b``.
    """
    check_p(p)
    xs, xt, a, b = measure(xs, xt, a, b)
    return exact_ot(pairwise_cost(xs, xt, p), a, b)


def class_conditional_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p: float = 2.0,
                                  weights: str = "uniform") -> torch.Tensor:
    r""":math:`\sum_c w_c W_p^p(\hat P_S^c, \hat P_T^c)`; see :func:`kd2m_ref.reference.class_conditional_wasserstein`."""
    check_p(p)
    xs, xt, a_n, b_n = measure(xs, xt, a, b)
    total = xs.new_zeros(())
    for blk in class_blocks(ys, yt, len(xs), len(xt), weights=weights, a=a):
        i = torch.as_tensor(blk.index_s, device=xs.device)
        j = torch.as_tensor(blk.index_t, device=xs.device)
        sub_a, sub_b = a_n[i], b_n[j]
        total = total + blk.weight * exact_ot(pairwise_cost(xs[i], xt[j], p), sub_a / sub_a.sum(), sub_b / sub_b.sum())
    return total


def label_cost_matrix(ys, yt, label_cost: str, num_classes: int | None, like: torch.Tensor) -> torch.Tensor:
    """Label cost in torch; see :func:`kd2m_ref.reference.wasserstein.label_cost_matrix` for the conventions."""
    check_choice(label_cost, "label_cost", LABEL_COSTS)
    if label_cost == "onehot":
        if ys.ndim != 1 or yt.ndim != 1:
            raise ValueError("label_cost='onehot' needs class indices for ys and yt; use 'soft' for probabilities")
        return 2.0 * (ys.to(like.device)[:, None] != yt.to(like.device)[None, :]).to(like.dtype)
    k = num_classes or 1 + int(max(ys.max() if ys.ndim == 1 else ys.shape[1] - 1,
                                    yt.max() if yt.ndim == 1 else yt.shape[1] - 1))
    ps, pt = _probabilities(ys, k, "ys", like), _probabilities(yt, k, "yt", like)
    if label_cost == "soft":
        return pairwise_cost(ps, pt, 2.0)
    if bool(((pt == 0)[None, :, :] & (ps > 0)[:, None, :]).any()):
        raise ValueError("label_cost='cross_entropy' needs yt > 0 wherever ys > 0 (log 0); pass probabilities for yt")
    log_pt = torch.where(pt > 0, torch.log(torch.where(pt > 0, pt, torch.ones_like(pt))), torch.zeros_like(pt))
    return -ps @ log_pt.T


def _probabilities(y, k, name, like):
    if y.ndim == 2:
        if y.shape[1] != k:
            raise ValueError(f"{name} has {y.shape[1]} classes but {k} are expected")
        return y.to(dtype=like.dtype, device=like.device)
    return torch.nn.functional.one_hot(y.to(like.device).long(), k).to(like.dtype)


def joint_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p: float = 2.0, beta: float = 1.0,
                      label_cost: str = "onehot", num_classes: int | None = None) -> torch.Tensor:
    r"""Joint feature-label OT; see :func:`kd2m_ref.reference.joint_wasserstein`. Soft labels given as
    probability tensors are differentiated through the label cost."""
    check_p(p)
    check_positive(beta, "beta", strict=False)
    xs, xt, a, b = measure(xs, xt, a, b)
    check_labels(ys, "ys", len(xs))
    if yt is None and len(xt) != len(xs):
        raise ValueError("yt is required when xs and xt have different numbers of rows")
    yt = ys if yt is None else check_labels(yt, "yt", len(xt))
    cost = pairwise_cost(xs, xt, p) + beta * label_cost_matrix(ys, yt, label_cost, num_classes, xs)
    return exact_ot(cost, a, b)


def wasserstein_1d(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, b: torch.Tensor, p: float) -> torch.Tensor:
    r"""Exact 1-D :math:`W_p^p` for each column of ``u`` (n, K) and ``v`` (m, K), by merging the quantile
    breakpoints of the two measures (equal uniform weights: by pairing sorted values); differentiable
    w.r.t. points and weights. Returns shape (K,)."""
    if _equal_uniform(a, b):
        diff = torch.sort(u, dim=0).values - torch.sort(v, dim=0).values
        return (diff.square() if p == 2 else diff.abs() ** p).mean(0)
    su, iu = torch.sort(u, dim=0, stable=True)
    sv, iv = torch.sort(v, dim=0, stable=True)
    cu, cv = torch.cumsum(a[iu], 0), torch.cumsum(b[iv], 0)
    zero = u.new_zeros((1, u.shape[1]))
    t, _ = torch.sort(torch.cat([zero, cu[:-1], cv[:-1], zero + 1]), dim=0)
    dt, mid = t[1:] - t[:-1], 0.5 * (t[1:] + t[:-1])
    ku = torch.searchsorted(cu.T.detach().contiguous(), mid.T.detach().contiguous()).T.clamp(max=len(u) - 1)
    kv = torch.searchsorted(cv.T.detach().contiguous(), mid.T.detach().contiguous()).T.clamp(max=len(v) - 1)
    diff = torch.gather(su, 0, ku) - torch.gather(sv, 0, kv)
    return (dt * diff.abs() ** p).sum(0)


def sliced_wasserstein(xs, xt, *, a=None, b=None, p: float = 2.0, n_projections: int = 50,
                       seed: int = 0) -> torch.Tensor:
    r"""Sliced :math:`SW_p^p`, with the same seeded directions as :func:`kd2m_ref.reference.sliced_wasserstein`."""
    if int(n_projections) < 1:
        raise ValueError(f"n_projections must be a positive integer; got {n_projections}")
    check_p(p)
    xs, xt, a, b = measure(xs, xt, a, b)
    theta = torch.as_tensor(sliced_projections(xs.shape[1], int(n_projections), seed).T,
                            dtype=xs.dtype, device=xs.device)
    return wasserstein_1d(xs @ theta, xt @ theta, a, b, p).mean()


__all__ = ["class_conditional_wasserstein", "exact_ot", "joint_wasserstein", "sliced_wasserstein",
           "wasserstein", "wasserstein_1d"]
