"""Differentiable exact OT in torch (paper eqs. 2-4) and sliced OT.

Exact OT: the plan is solved in float64 on the CPU, by scipy's assignment solver for equal uniform
clouds (as the reference: the oracle and POT are the independent checks there) and by POT's network
simplex otherwise (weights renormalised in float64, so float32 inputs are never "infeasible"); the
value ``<plan, C>`` is formed on the input's device and dtype. Gradients: w.r.t. points through ``C`` at the fixed optimal plan (Danskin);
w.r.t. weights through the centred dual potentials.
"""

from __future__ import annotations

import warnings

import ot
import torch
from scipy.optimize import linear_sum_assignment

from .._checks import check_labels
from .._conventions import (LABEL_COSTS, check_choice, check_class_conditional_wasserstein_params,
                            check_joint_wasserstein_params, check_sliced_wasserstein_params,
                            check_wasserstein_params, class_blocks, num_classes_of, sliced_projections)
from ._common import as_tensor, float32_for_low_precision, measure, pairwise_cost, power_of_squared


def _equal_uniform(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same number of points, every weight equal, no gradient wanted w.r.t. the weights: then an
    optimal plan is a permutation (Birkhoff), in 1-D the one pairing sorted values."""
    return (len(a) == len(b) and not (a.requires_grad or b.requires_grad)
            and bool((a == a[0]).all()) and bool((b == b[0]).all()))


#: Largest n·m the exact solvers accept (about 11,600 x 11,600): one float64 copy of the cost is
#: then 1 GiB, and exact OT holds about four (the cost, its float64 CPU copy for the solver, the
#: dense plan, the product); the network simplex is also minutes to hours at that size.
_MAX_EXACT_ENTRIES = 1 << 27
_EMD_MAX_ITER = 10_000_000
_ALTERNATIVES = "use sinkhorn_divergence or sliced_wasserstein for clouds this large"


def _check_exact_size(n: int, m: int) -> None:
    """Raise ``ValueError`` before an n x m cost is formed when exact OT would need more than
    ``_MAX_EXACT_ENTRIES`` entries per matrix (the message gives the memory it would take)."""
    entries = int(n) * int(m)
    if entries > _MAX_EXACT_ENTRIES:
        gib = entries * 8 / 2**30
        raise ValueError(
            f"exact OT between {n} and {m} points needs an {n} x {m} cost matrix ({entries:,} entries: "
            f"{gib:.1f} GiB per float64 copy, about {4 * gib:.0f} GiB for the cost, its CPU copy, the plan "
            f"and their product), above the limit of {_MAX_EXACT_ENTRIES:,} entries; {_ALTERNATIVES}")


def exact_ot(cost: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact OT value ``min <plan, cost>`` over couplings of the probability vectors ``a``, ``b``.

    Equal uniform weights: the optimal permutation from scipy's ``linear_sum_assignment`` (faster than
    the network simplex there); otherwise POT's ``emd``. Costs above ``_MAX_EXACT_ENTRIES``
    entries raise ``ValueError``, and a network simplex that stops at its iteration limit raises
    ``RuntimeError``; both name the alternatives (Sinkhorn, sliced OT).
    """
    n, m = cost.shape
    _check_exact_size(n, m)
    if _equal_uniform(a, b):
        rows, cols = linear_sum_assignment(cost.detach().cpu().double().numpy())
        return cost[torch.as_tensor(rows, device=cost.device), torch.as_tensor(cols, device=cost.device)].mean()
    a64 = a.detach().cpu().double().numpy()
    b64 = b.detach().cpu().double().numpy()
    with warnings.catch_warnings():  # POT's "try to increase numItermax" is replaced by the error below
        warnings.filterwarnings("ignore", message="numItermax reached", category=UserWarning)
        plan, log = ot.emd(a64 / a64.sum(), b64 / b64.sum(), cost.detach().cpu().double().numpy(),
                           numItermax=_EMD_MAX_ITER, log=True)
    if log["warning"] is not None:
        if log.get("result_code") == 3 or "numItermax" in str(log["warning"]):
            raise RuntimeError(
                f"exact OT on a {n} x {m} problem stopped at the network simplex's iteration limit "
                f"({_EMD_MAX_ITER:,}) before reaching optimality; {_ALTERNATIVES}")
        raise RuntimeError(f"exact OT solver failed on a {n} x {m} problem: {log['warning']}")
    value = (torch.as_tensor(plan, dtype=cost.dtype, device=cost.device) * cost).sum()
    for w, potential in ((a, log["u"]), (b, log["v"])):
        if w.requires_grad:
            centred = torch.as_tensor(potential - potential.mean(), dtype=cost.dtype, device=cost.device)
            value = value + ((w - w.detach()) * centred).sum()
    return value


@float32_for_low_precision
def wasserstein(xs, xt, *, a=None, b=None, p: float = 2.0) -> torch.Tensor:
    r"""Exact :math:`W_p^p` between weighted empirical measures; see :func:`kd2m_ref.reference.wasserstein`.

    Returns a 0-d tensor of the input's dtype and device, differentiable w.r.t. ``xs``, ``xt``,
    ``a`` and ``b``.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import wasserstein
    >>> xs = torch.tensor([[0.0], [1.0]], requires_grad=True)
    >>> xt = torch.tensor([[1.0], [2.0]])
    >>> wasserstein(xs, xt).item()  # every point moves by 1
    1.0
    """
    check_wasserstein_params(p)
    xs, xt, a, b = measure(xs, xt, a, b)
    _check_exact_size(len(xs), len(xt))
    if _equal_uniform(a, b):
        return _assignment_cost(xs, xt, p)
    return exact_ot(pairwise_cost(xs, xt, p), a, b)


def _assignment_cost(xs: torch.Tensor, xt: torch.Tensor, p: float) -> torch.Tensor:
    """Equal uniform clouds: the optimal permutation of the float64 cost (its only (n, n) buffer),
    then the mean cost of the matched pairs from explicit differences, with autograd on n rows only."""
    with torch.no_grad():
        cost = pairwise_cost(xs.detach().double(), xt.detach().double(), 2.0)
        if p != 2:
            cost.pow_(p / 2)
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        del cost
    rows, cols = torch.as_tensor(rows, device=xs.device), torch.as_tensor(cols, device=xs.device)
    return power_of_squared(((xs[rows] - xt[cols]) ** 2).sum(1), p).mean()


@float32_for_low_precision
def class_conditional_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p: float = 2.0,
                                  weights: str = "uniform") -> torch.Tensor:
    r""":math:`\sum_c w_c W_p^p(\hat P_S^c, \hat P_T^c)`; see :func:`kd2m_ref.reference.class_conditional_wasserstein`.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import class_conditional_wasserstein
    >>> xs = torch.tensor([[0.0], [1.0], [5.0], [6.0]])
    >>> xt = torch.tensor([[0.0], [2.0], [7.0], [8.0]])
    >>> ys = torch.tensor([0, 0, 1, 1])  # classes: W_2^2 = 0.5 and 4
    >>> class_conditional_wasserstein(xs, xt, ys=ys).item()
    2.25
    """
    check_class_conditional_wasserstein_params(p, weights)
    xs, xt, a_n, b_n = measure(xs, xt, a, b)
    total = xs.new_zeros(())
    for blk in class_blocks(ys, yt, len(xs), len(xt), weights=weights, a=a, b=b):
        i = torch.as_tensor(blk.index_s, device=xs.device)
        j = torch.as_tensor(blk.index_t, device=xs.device)
        sub_a, sub_b = a_n[i], b_n[j]
        _check_exact_size(len(i), len(j))
        total = total + blk.weight * exact_ot(pairwise_cost(xs[i], xt[j], p), sub_a / sub_a.sum(), sub_b / sub_b.sum())
    return total


def label_cost_matrix(ys, yt, label_cost: str, num_classes: int | None, like: torch.Tensor) -> torch.Tensor:
    """Label cost in torch; see :func:`kd2m_ref.reference.wasserstein.label_cost_matrix` for the conventions."""
    check_choice(label_cost, "label_cost", LABEL_COSTS)
    if label_cost == "onehot":
        if ys.ndim != 1 or yt.ndim != 1:
            raise ValueError("label_cost='onehot' needs class indices for ys and yt; use 'soft' for probabilities")
        return 2.0 * (ys.to(like.device)[:, None] != yt.to(like.device)[None, :]).to(like.dtype)
    k = num_classes_of(ys, yt, num_classes)
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


@float32_for_low_precision
def joint_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p: float = 2.0, beta: float = 1.0,
                      label_cost: str = "onehot", num_classes: int | None = None) -> torch.Tensor:
    r"""Joint feature-label OT; see :func:`kd2m_ref.reference.joint_wasserstein`. Soft labels given as
    probability tensors are differentiated through the label cost.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import joint_wasserstein
    >>> xs, xt = torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [0.0]])
    >>> ys = torch.tensor([0, 1])  # the label cost forbids the swap
    >>> [joint_wasserstein(xs, xt, ys=ys, beta=b).item() for b in (0.0, 1.0)]
    [0.0, 1.0]
    """
    check_joint_wasserstein_params(p, beta, label_cost, num_classes)
    xs, xt, a, b = measure(xs, xt, a, b)
    ys = check_labels(None if ys is None else as_tensor(ys, "ys", xs), "ys", len(xs))
    if yt is None and len(xt) != len(xs):
        raise ValueError("yt is required when xs and xt have different numbers of rows")
    yt = ys if yt is None else check_labels(as_tensor(yt, "yt", xs), "yt", len(xt))
    num_classes_of(ys, yt, num_classes)  # a given num_classes must cover the labels, whatever the cost
    _check_exact_size(len(xs), len(xt))
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


@float32_for_low_precision
def sliced_wasserstein(xs, xt, *, a=None, b=None, p: float = 2.0, n_projections: int = 50,
                       seed: int = 0) -> torch.Tensor:
    r"""Sliced :math:`SW_p^p`, with the same seeded directions as :func:`kd2m_ref.reference.sliced_wasserstein`.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import sliced_wasserstein
    >>> xs = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    >>> xt = xs + torch.tensor([0.0, 1.0])  # a shift by 1: W_2^2 = 1
    >>> round(sliced_wasserstein(xs, xt).item(), 4)  # 50 seeded directions
    0.5401
    """
    check_sliced_wasserstein_params(p, n_projections, seed)
    xs, xt, a, b = measure(xs, xt, a, b)
    theta = torch.as_tensor(sliced_projections(xs.shape[1], int(n_projections), seed).T,
                            dtype=xs.dtype, device=xs.device)
    return wasserstein_1d(xs @ theta, xt @ theta, a, b, p).mean()


__all__ = ["class_conditional_wasserstein", "exact_ot", "joint_wasserstein", "sliced_wasserstein",
           "wasserstein", "wasserstein_1d"]
