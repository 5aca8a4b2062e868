"""``KD2MLoss(sync="global")`` under torch.distributed: gloo on CPU, process groups of 2 and 3 ranks started
once per module (forkserver, spawn where there is none; 127.0.0.1 only). The global-batch loss under DDP equals the single-process loss on the
concatenated batch, in value and gradient, for every registry key, with even and uneven shards; a short
DDP training run matches the single-process run step for step."""

from __future__ import annotations

import os
import queue
import socket
import sys
import traceback
from datetime import timedelta

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from kd2m_ref import METRICS  # noqa: E402
from kd2m_ref.torch import KD2MLoss  # noqa: E402
from kd2m_ref.torch.distributed import all_gather_rows, process_group_size  # noqa: E402
from kd2m_ref.torch.examples import DEMO_PARAMS, MLP, stratified_batches, synthetic_task  # noqa: E402

if not dist.is_available():
    pytest.skip("torch.distributed is not available in this torch build", allow_module_level=True)

TORCH_KEYS = sorted(k for k, s in METRICS.items() if s.torch_path is not None)
RESULT_TIMEOUT_S = 120
SHARDS = {2: [12, 12], 3: [5, 11, 8]}  # even and uneven splits of the same 24-row global batch


# ---------------------------------------------------------------- a spawned process group, reused by the module

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(rank: int, world: int, port: int, tasks, results) -> None:
    """Worker: join the gloo group on 127.0.0.1, then run ``(fn, args)`` tasks until ``None``."""
    if sys.platform.startswith("linux") and os.path.exists("/sys/class/net/lo"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=60))
    try:
        while (task := tasks.get()) is not None:
            fn, args = task
            try:
                results.put((rank, True, fn(*args)))
            except BaseException:  # noqa: BLE001 - reported to the test
                results.put((rank, False, traceback.format_exc()))
    finally:
        dist.destroy_process_group()
        results.close()
        results.join_thread()
        os._exit(0)  # skip the interpreter's teardown of torch (seconds on a busy machine)


def _context():
    """A forkserver that imports torch and kd2m_ref once and forks the workers from that clean,
    single-threaded process (spawn re-imports everything per worker: seconds each); spawn elsewhere."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torch.distributed", "torch.nn.parallel", "kd2m_ref.torch",
                                "kd2m_ref.torch.examples"])
    return ctx


class SpawnedGroup:
    """``world`` spawned processes in one gloo group; :meth:`run` calls a module-level function on all."""

    def __init__(self, world: int):
        ctx = _context()
        self.world, port = world, _free_port()
        self.tasks = [ctx.Queue() for _ in range(world)]
        self.results = ctx.Queue()
        self.procs = [ctx.Process(target=_serve, args=(r, world, port, self.tasks[r], self.results), daemon=True)
                      for r in range(world)]
        for p in self.procs:
            p.start()

    def run(self, fn, *args) -> list:
        """``[fn(*args) on rank r for r in range(world)]``; a failure on any rank fails the test."""
        for q in self.tasks:
            q.put((fn, args))
        out, failures = {}, []
        while len(out) + len(failures) < self.world:
            try:
                rank, ok, value = self.results.get(timeout=RESULT_TIMEOUT_S)
            except queue.Empty:
                alive = [p.is_alive() for p in self.procs]
                raise AssertionError(f"no result from every rank within {RESULT_TIMEOUT_S} s "
                                     f"(alive: {alive})") from None
            (out.__setitem__(rank, value) if ok else failures.append(f"rank {rank}:\n{value}"))
        if failures:
            raise AssertionError("\n".join(failures))
        return [out[r] for r in range(self.world)]

    def close(self) -> None:
        for q in self.tasks:
            q.put(None)
        for p in self.procs:
            p.join(timeout=20)
            if p.is_alive():
                p.terminate()


@pytest.fixture(scope="module")
def groups():
    started: dict[int, SpawnedGroup] = {}

    def get(world: int) -> SpawnedGroup:
        if world not in started:
            started[world] = SpawnedGroup(world)
        return started[world]

    yield get
    for g in started.values():
        g.close()


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- the problem: a float64 linear student on 24 rows

def _problem(key: str, seed: int = 0):
    """Inputs, teacher features and logits, labels (3 balanced classes, interleaved so that every shard has
    several classes) and a float64 linear student whose output is compared with the teacher's."""
    g = torch.Generator().manual_seed(seed)
    n, d_in, d, c = 24, 5, 4, 3
    x = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    ft = torch.randn(n, d, generator=g, dtype=torch.float64) + 0.5
    lt = 2 * torch.randn(n, c, generator=g, dtype=torch.float64)
    labels = torch.arange(n) % c
    torch.manual_seed(seed + 1)
    student = torch.nn.Linear(d_in, c if "logits" in METRICS[key].needs else d).double()
    return x, ft, lt, labels, student


def _gradients(key, student, x, ft, lt, labels, sync):
    x = x.clone().requires_grad_(True)
    out = student(x)
    feats_s, feats_t = out, ft
    if METRICS[key].layout == "feature_maps":  # each row a 1-channel 2 x 2 map: the shards split images
        feats_s, feats_t = out.reshape(-1, 1, 2, 2), ft.reshape(-1, 1, 2, 2)
    value = KD2MLoss(key, weight=1.0, sync=sync, **DEMO_PARAMS.get(key, {}))(feats_s, feats_t, labels, out, lt)
    value.backward()
    return value, x.grad


def _rows(sizes, rank):
    lo = sum(sizes[:rank])
    return slice(lo, lo + sizes[rank])


def _ddp_key(key: str, sizes: list[int]):
    """On a rank: the global-batch loss of the DDP-wrapped student on this rank's shard."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    x, ft, lt, labels, student = _problem(key)
    rows = _rows(sizes, dist.get_rank())
    ddp = DDP(student)
    value, x_grad = _gradients(key, ddp, x[rows], ft[rows], lt[rows], labels[rows], "global")
    return value.item(), [p.grad.numpy().copy() for p in student.parameters()], x_grad.numpy().copy()


def _close(actual, expected, rtol=1e-11):
    """Float64 agreement up to a few rounding errors of the largest entry."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(np.abs(expected).max(), 1e-300))


@pytest.mark.parametrize("world", sorted(SHARDS))
@pytest.mark.parametrize("key", TORCH_KEYS)
def test_global_batch_loss_under_ddp_equals_single_process(key, world, groups):
    """Value: the same on every rank (bitwise), equal to the single-process value on the concatenated batch.
    Gradient: DDP's averaged parameter gradients equal the single-process ones; the shard itself receives
    world_size times its single-process gradient (the documented scaling)."""
    sizes = SHARDS[world]
    results = groups(world).run(_ddp_key, key, sizes)
    x, ft, lt, labels, student = _problem(key)
    value, x_grad = _gradients(key, student, x, ft, lt, labels, "none")
    values = [r[0] for r in results]
    assert values == [values[0]] * world, values
    _close(values[0], value.item(), rtol=1e-13)
    for rank, (_, param_grads, shard_grad) in enumerate(results):
        for got, p in zip(param_grads, student.parameters()):
            _close(got, p.grad.numpy())
        _close(shard_grad, world * x_grad[_rows(sizes, rank)].numpy())
    assert np.abs(x_grad.numpy()).max() > 0  # the comparison is not between zeros


def _gather_uneven(sizes: list[int]):
    rank = dist.get_rank()
    g = torch.Generator().manual_seed(7)
    full = torch.randn(sum(sizes), 3, generator=g, dtype=torch.float64)
    labels = torch.arange(sum(sizes))
    weights = torch.randn(sum(sizes), 3, generator=g, dtype=torch.float64)
    shard = full[_rows(sizes, rank)].clone().requires_grad_(True)
    gathered, gathered_labels = all_gather_rows(shard, labels[_rows(sizes, rank)])
    (gathered * weights).sum().backward()
    return gathered.detach().numpy(), gathered_labels.numpy(), shard.grad.numpy(), full.numpy(), weights.numpy()


def test_all_gather_rows_with_an_empty_shard(groups):
    """Shards of 0, 4 and 2 rows: every rank gets all rows in rank order; shard gradient = W × its rows'."""
    sizes = [0, 4, 2]
    for rank, (gathered, labels, grad, full, weights) in enumerate(groups(3).run(_gather_uneven, sizes)):
        np.testing.assert_array_equal(gathered, full)
        np.testing.assert_array_equal(labels, np.arange(6))
        np.testing.assert_array_equal(grad, 3 * weights[_rows(sizes, rank)])


def _mismatch(kind: str):
    rank = dist.get_rank()
    x = torch.zeros(2, 3 + (rank if kind == "shape" else 0))
    if kind == "grad":
        x.requires_grad_(rank == 0)
    try:
        all_gather_rows(x)
    except ValueError as err:
        return str(err)
    return None


@pytest.mark.parametrize("kind, message", [("shape", "differs between ranks"), ("grad", "requires grad on some")])
def test_ranks_that_disagree_get_a_clear_error_not_a_hang(kind, message, groups):
    errors = groups(2).run(_mismatch, kind)
    assert all(e is not None and message in e for e in errors), errors


# ---------------------------------------------------------------- training: DDP with sync="global" = one process

STEPS, BATCH, LR = 8, 48, 0.05


def _train(key: str, sync: str, weight: float):
    """SGD on CE + weight·D; under a process group, DDP on this rank's half of each global batch.
    Returns the parameters after every step."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    world, rank = process_group_size(), (dist.get_rank() if process_group_size() > 1 else 0)
    task = synthetic_task(seed=0)
    teacher = task.teacher.double()
    torch.manual_seed(1)
    student = MLP(task.x_train.shape[1], [16], task.d_feature, task.n_classes).double()
    model = DDP(student) if world > 1 else student
    loss_fn = KD2MLoss(key, weight=weight, sync=sync)
    optimizer = torch.optim.SGD(student.parameters(), lr=LR, momentum=0.9)
    gen = torch.Generator().manual_seed(2)
    history = []
    for idx in stratified_batches(task.y_train, BATCH, STEPS, gen):
        shard = idx.view(world, -1)[rank]  # class-sorted batch: the two halves hold different classes
        x, y = task.x_train[shard].double(), task.y_train[shard]
        with torch.no_grad():
            logits_t, feats_t = teacher(x)
        logits_s, feats_s = model(x)
        optimizer.zero_grad()
        loss_fn.total(logits_s, y, feats_s, feats_t, logits_t).total.backward()
        optimizer.step()
        history.append(torch.cat([p.detach().flatten() for p in student.parameters()]).numpy().copy())
    return np.array(history)


@pytest.mark.parametrize("key, weight", [("class_conditional_wasserstein", 0.5), ("gaussian_wasserstein", 0.5)])
def test_ddp_training_with_global_sync_matches_one_process(key, weight, groups):
    """Equal halves: CE's local means average to the global mean and D is global, so every step's
    parameters match the single-process run (float64, rounding only). With sync="none" they do not."""
    single = _train(key, "none", weight)
    for history in groups(2).run(_train, key, "global", weight):
        for step in range(STEPS):
            _close(history[step], single[step], rtol=1e-9)
    local = groups(2).run(_train, key, "none", weight)[0]
    gap = np.abs(local[-1] - single[-1]).max() / np.abs(single[-1] - single[0]).max()
    assert gap > 1e-2, gap  # the local-batch estimator trains a different student


# ---------------------------------------------------------------- without a process group

def test_global_without_a_process_group_is_the_local_batch():
    assert process_group_size() == 1
    x, ft, lt, labels, student = _problem("class_conditional_wasserstein")
    a = _gradients("class_conditional_wasserstein", student, x, ft, lt, labels, "none")
    b = _gradients("class_conditional_wasserstein", student, x, ft, lt, labels, "global")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert "sync='global'" in repr(KD2MLoss("mmd", weight=1.0, sync="global"))


def test_unknown_sync_is_an_error():
    with pytest.raises(ValueError, match="sync must be one of"):
        KD2MLoss("mmd", weight=1.0, sync="all")
