r"""The global batch under ``torch.distributed``: a differentiable all-gather of rows with uneven shards.

Under DistributedDataParallel (DDP) each process sees its shard of the batch. A distribution-matching
loss computed on the shard is a different estimator from the one on the whole batch: exact OT couples
only within a shard, a covariance fitted on ``n / W`` samples is rank-deficient sooner, a class may
have one sample per shard, and the biased MMD V-statistic has a larger bias. DDP averages the
gradients of the per-rank losses, so it optimises :math:`\frac1W\sum_r D(\text{shard}_r)`, not
:math:`D(\text{batch})`. :func:`all_gather_rows` gives every rank the concatenated batch (rank order)
with a backward pass that sends each rank the gradient of its own rows;
``KD2MLoss(..., sync="global")`` uses it.

Gradient scaling
    Every rank computes the same loss :math:`D(X)` on the gathered :math:`X`. The backward pass sums,
    over ranks, each rank's gradient for the rows of shard :math:`r` (the adjoint of the all-gather:
    a reduce-scatter, or an all-reduce on backends without one). Rank :math:`r` therefore receives
    :math:`W\,\partial D/\partial x_r`, the gradient of the sum of the :math:`W` identical per-rank
    losses. DDP averages parameter gradients over ranks, which divides by :math:`W`: the update is
    exactly :math:`\partial D(X)/\partial\theta`, the single-process gradient on the concatenated
    batch. If you reduce gradients yourself, average them (do not sum).

Cost (``N`` rows in the global batch, ``d`` columns, ``W`` ranks)
    Memory: every rank holds the gathered ``N x d`` tensors and the metric's workspace on ``N`` rows
    (``N x N`` cost or kernel matrices for OT, Sinkhorn and MMD; ``d x d`` for Gaussian fits), and
    computes the distance on ``N`` rows: the metric's compute is replicated, not split.
    Communication per tensor and step: one all-gather of ``N d`` elements in the forward pass (plus a
    shape exchange of a few integers shared by all tensors of the call) and, for a tensor that
    requires grad, a reduce-scatter (NCCL; other backends an all-reduce of the padded
    ``W max_r(n_r) d`` elements) in the backward pass. For ResNet features (``N = 128``,
    ``d = 512``) that is 65k numbers, small beside DDP's all-reduce of the model's gradients.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

SYNC_MODES = ("none", "global")

_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
           torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128)
_MAX_DIMS = 8


def process_group_size(group=None) -> int:
    """The number of ranks of ``group`` (default group), or 1 when no process group is initialised.

    Examples
    --------
    >>> from kd2m_ref.torch.distributed import process_group_size
    >>> process_group_size()  # a single process, no torch.distributed.init_process_group
    1
    """
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


def _gather_shapes(tensors, group) -> list[list[torch.Size]]:
    """Every rank's shapes of ``tensors`` (``[rank][i]``), in one all-gather; checks that the ranks agree on
    the number of tensors, their dtypes, whether they require grad and every dimension but the first (a
    ValueError on every rank)."""
    device = tensors[0].device
    rows = []
    for t in tensors:
        if t.dim() == 0 or t.dim() > _MAX_DIMS:
            raise ValueError(f"all_gather_rows needs tensors with 1 to {_MAX_DIMS} dimensions; got shape "
                             f"{tuple(t.shape)}")
        if t.dtype not in _DTYPES:
            raise ValueError(f"all_gather_rows does not support dtype {t.dtype}")
        graph = int(t.requires_grad and torch.is_grad_enabled())
        rows.append([t.dim(), _DTYPES.index(t.dtype), graph, *t.shape] + [0] * (_MAX_DIMS - t.dim()))
    code = torch.tensor(rows, dtype=torch.int64, device=device).flatten()
    count = torch.tensor([code.numel()], dtype=torch.int64, device=device)
    counts = [torch.empty_like(count) for _ in range(dist.get_world_size(group))]
    dist.all_gather(counts, count, group=group)
    if len({int(c) for c in counts}) != 1:
        raise ValueError("all_gather_rows was called with a different number of tensors on different ranks")
    codes = [torch.empty_like(code) for _ in counts]
    dist.all_gather(codes, code, group=group)
    shapes = []
    for c in codes:
        table = c.view(len(tensors), 3 + _MAX_DIMS).tolist()
        per_rank = []
        for i, (ndim, dtype, graph, *dims) in enumerate(table):
            if graph != int(tensors[i].requires_grad and torch.is_grad_enabled()):
                raise ValueError(f"tensor {i} of all_gather_rows requires grad on some ranks and not on others "
                                 "(the backward pass is a collective: every rank must take part)")
            if ndim != tensors[i].dim() or _DTYPES[dtype] != tensors[i].dtype or \
                    list(dims[1:ndim]) != list(tensors[i].shape[1:]):
                raise ValueError(f"tensor {i} of all_gather_rows differs between ranks beyond the first dimension: "
                                 f"{_DTYPES[dtype]} {tuple(dims[:ndim])} on one rank, {tensors[i].dtype} "
                                 f"{tuple(tensors[i].shape)} here")
            per_rank.append(torch.Size(dims[:ndim]))
        shapes.append(per_rank)
    return shapes


def _gather_padded(x: torch.Tensor, sizes: list[int], group) -> torch.Tensor:
    """Rows of every rank, concatenated in rank order: pad to the largest shard, all-gather, trim."""
    longest = max(sizes)
    padded = x.new_zeros((longest, *x.shape[1:]))
    padded[: len(x)] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous(), group=group)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


class _AllGatherRows(torch.autograd.Function):
    """Forward: the concatenated rows of every rank. Backward: the sum over ranks of the gradient of this
    rank's rows (reduce-scatter; all-reduce where the backend has no reduce-scatter)."""

    @staticmethod
    def forward(ctx, x, sizes, group):
        ctx.sizes, ctx.group = sizes, group
        ctx.rank = dist.get_rank(group)
        return _gather_padded(x, sizes, group)

    @staticmethod
    def backward(ctx, grad):
        sizes, group, rank = ctx.sizes, ctx.group, ctx.rank
        longest = max(sizes)
        padded = grad.new_zeros((len(sizes), longest, *grad.shape[1:]))
        for r, block in enumerate(torch.split(grad, sizes)):
            padded[r, : len(block)] = block
        if dist.get_backend(group) == dist.Backend.NCCL:
            own = grad.new_empty((longest, *grad.shape[1:]))
            dist.reduce_scatter_tensor(own, padded.reshape(len(sizes) * longest, *grad.shape[1:]), group=group)
        else:
            dist.all_reduce(padded, group=group)
            own = padded[rank]
        return own[: sizes[rank]], None, None


def all_gather_rows(*tensors: torch.Tensor, group=None) -> tuple[torch.Tensor, ...]:
    r"""Concatenate each tensor's rows over the ranks of ``group`` (rank order); differentiable.

    Parameters
    ----------
    *tensors
        This rank's shards (tensors: features, labels, logits), rows on the first dimension. Shards
        may have different numbers of rows on different ranks (uneven last batches, even zero rows);
        the other dimensions and the dtype must agree across ranks (a ``ValueError`` on every rank
        otherwise). Every rank must call with the same number of tensors.
    group
        A ``torch.distributed`` process group (default None: the default group).

    Returns
    -------
    tuple
        The global tensors, identical on every rank. A floating tensor that requires grad stays in
        the autograd graph: the backward pass gives this rank's shard :math:`W` times the gradient of
        its rows (the sum of the identical per-rank gradients), so that DDP's mean over ranks yields
        the single-process gradient (module docstring). Other tensors (integer labels, detached
        teacher features) are gathered without a graph.

    Without an initialised process group (or with one rank) the tensors are returned unchanged.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch.distributed import all_gather_rows
    >>> features, labels = all_gather_rows(torch.ones(3, 2), torch.arange(3))  # one process: unchanged
    >>> features.shape, labels.tolist()
    (torch.Size([3, 2]), [0, 1, 2])
    """
    if not tensors:
        return ()
    if process_group_size(group) == 1:
        return tuple(tensors)
    shapes = _gather_shapes(tensors, group)
    out = []
    for i, t in enumerate(tensors):
        sizes = [int(per_rank[i][0]) for per_rank in shapes]
        if t.requires_grad and torch.is_grad_enabled():
            out.append(_AllGatherRows.apply(t, sizes, group))
        else:
            out.append(_gather_padded(t.detach(), sizes, group))
    return tuple(out)


def check_sync(sync: str) -> str:
    """Validate a ``sync`` argument of :class:`~kd2m_ref.torch.KD2MLoss`."""
    if sync not in SYNC_MODES:
        raise ValueError(f"sync must be one of {SYNC_MODES}; got {sync!r}")
    return sync


__all__ = ["SYNC_MODES", "all_gather_rows", "check_sync", "process_group_size"]
