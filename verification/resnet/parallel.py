r"""The ResNet recipe under ``torchrun``: DDP with the same global batches as one process.

``torchrun --standalone --nproc_per_node W -m kd2m_ref.cli verify resnet ...`` (the same options as
one process) starts W processes; :func:`init` joins them in a process group (NCCL on CUDA, one GPU per
process; gloo on CPU). Each global batch of ``recipe.batch_size`` images, drawn and augmented exactly
as in one process (the epoch's permutation and augmentation generator are seeded by ``(seed,
epoch)``, the same on every rank), is split as a ``DistributedSampler`` splits its index list: rank
``r`` takes rows ``r, r + W, ...`` (:func:`shard`). The global batch is therefore the single-process
one, and ``KD2MLoss(..., sync="global")`` sees it whole. Model initialisation is seeded identically
on every rank (DDP also broadcasts rank 0's weights); the recipe has no other randomness, so no
per-rank seed is needed, and none is used: a per-rank seed would change the augmentation draws
and break the equality of global batches with the single-process run. What differs from one
process: BatchNorm statistics are per-rank (batch ``B / W``), and float summation order. Rank 0
alone writes checkpoints, results and figures and shows progress bars; every rank evaluates (the
same numbers; only rank 0's are written).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    return rank() == 0


def init(device: str) -> str:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1 in the environment) and
    return this rank's device (``cuda:LOCAL_RANK`` on CUDA); one process: ``device`` unchanged."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return device
    cuda = str(device).startswith("cuda")
    if cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return device


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This rank's rows of a global batch (rows ``rank, rank + W, ...``; the whole batch in one process)."""
    w = world_size()
    if w == 1:
        return batch
    if len(batch) % w:
        raise ValueError(f"the batch size ({len(batch)}) must be a multiple of the number of processes ({w})")
    return batch[rank()::w]


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` under a process group, else ``model``."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def mean(*values: torch.Tensor) -> list[float]:
    """Means over ranks of 0-d tensors (one all-reduce), as floats: per-rank batch means -> global means."""
    flat = torch.stack([v.detach().reshape(()).double() for v in values])
    if world_size() > 1:
        device = "cuda" if dist.get_backend() == dist.Backend.NCCL else "cpu"
        flat = flat.to(device)
        dist.all_reduce(flat)
        flat = flat / world_size()
    return flat.cpu().tolist()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
