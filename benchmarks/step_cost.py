"""What a distillation term costs, as a fraction of one ResNet-18 student training step.

For each batch size B and every registry key with a torch implementation, the term
``KD2MLoss(key, weight=1.0)(student, teacher, labels, ...)`` on (B, 512) features (hinton_kd: (B, 10)
logits), forward + backward to a fresh leaf of student features, is timed against one student step:
``resnet18(10, stem="cifar")`` in train mode, forward and cross-entropy backward on (B, 3, 32, 32)
float32 inputs. The step and the terms are called in rounds, in a rotated order
(:func:`benchmarks.timing.interleaved`), so a burst of machine load lands on all of them; a term's
fraction of a step is the median of its per-round ratios ``term / step``, with a bootstrap 95 %
interval over rounds (:func:`benchmarks.timing.ratio_interval`).

Peak memory is measured as in :mod:`benchmarks.memory`: on CPU in a child process whose glibc returns
every block above 64 KiB on free, as VmHWM (reset through ``/proc/self/clear_refs``) minus the resident
set before the call; on CUDA with ``torch.cuda.max_memory_allocated``. Either way it is the peak above
the call's inputs (model parameters, batch, teacher tensors), after one warm-up call. The CPU resolution
is a page, and blocks under 64 KiB come from the heap, where a term may reuse space freed by its warm-up
call: a term that small can read 0.

    kd2m-ref bench --parts step [--quick] [--device cuda]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kd2m_ref.registry import METRICS
from kd2m_ref.torch import KD2MLoss
from verification.resnet.models import resnet18

from . import timing
from .memory import _status_kib

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (64, 128, 256)
D = 512
N_CLASSES = 10
IMAGE = (3, 32, 32)
SEED = 0
#: Most rounds and the time budget per batch size; callables faster than BLOCK_S are repeated per round.
SETTINGS = {"quick": {"rounds": 5, "budget_s": 20.0}, "full": {"rounds": 15, "budget_s": 60.0}}
BLOCK_S = 0.05
#: Parameters beyond the registry's defaults. At B <= d = 512 the fitted full covariance has rank < d
#: (per class, at n_c ~ B / 10, far less), and the Gaussian KL inverts it: these keys take their own ridge
#: Σ + eps I. 1e-2 is ~3 % of a coordinate's variance for these features (relu of a standard normal: 0.34);
#: the cost does not depend on it. The Sinkhorn keys take epsilon relative to the batch's mean cost (0.05 of
#: it), as one trains on features of unknown scale: the default absolute 0.1 is ~2e-4 of the mean squared
#: distance between these 512-d features, a near-unregularised problem nobody would train with.
PARAMS: dict[str, dict] = {"gaussian_kl": {"eps": 1e-2}, "class_conditional_gaussian_kl": {"eps": 1e-2},
                           "sinkhorn": {"epsilon": 0.05, "relative_epsilon": True},
                           "sinkhorn_divergence": {"epsilon": 0.05, "relative_epsilon": True}}


def student() -> torch.nn.Module:
    """The student whose training step is the unit of cost."""
    return resnet18(num_classes=N_CLASSES, stem="cifar")


def torch_keys() -> list[str]:
    """Registry keys with a torch implementation that compare (B, d) features or logits (the feature-map
    keys take (B, C, H, W) maps, not pooled features: not timed here)."""
    return [key for key, spec in METRICS.items() if spec.torch_path is not None and spec.layout != "feature_maps"]


def params(key: str) -> dict:
    """The parameters the term of ``key`` runs with: the registry's defaults, updated by ``PARAMS``."""
    return {name: p.default for name, p in METRICS[key].params.items()} | PARAMS.get(key, {})


@dataclass
class Batch:
    """One batch size's callables: the student step and each key's term (keys that failed in ``errors``,
    warnings of a term's first call in ``warnings``)."""

    step: Callable[[], None]
    reset: Callable[[], None]
    terms: dict[str, Callable[[], None]]
    errors: dict[str, str]
    warnings: dict[str, str]


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _term(loss: KD2MLoss, fs: torch.Tensor, ft: torch.Tensor, y: torch.Tensor, ls: torch.Tensor,
          lt: torch.Tensor) -> Callable[[], None]:
    def call() -> None:
        loss(fs.detach().clone().requires_grad_(), ft, y, ls.detach().clone().requires_grad_(), lt).backward()
    return call


def batch(model: torch.nn.Module, b: int, d: int, device: str, keys: Sequence[str]) -> Batch:
    """The step and the terms at batch size ``b`` and feature dimension ``d``, on seeded random inputs. Each
    term is called once here; a key that fails, at construction or in that call, is recorded in ``errors``
    and left out."""
    g = torch.Generator().manual_seed(SEED + b)
    x = torch.randn(b, *IMAGE, generator=g).to(device)
    y = torch.randint(0, N_CLASSES, (b,), generator=g).to(device)
    ft, fs = (torch.relu(torch.randn(b, d, generator=g)).to(device) for _ in range(2))  # post-ReLU, as pooled
    lt, ls = (torch.randn(b, N_CLASSES, generator=g).to(device) for _ in range(2))

    def step() -> None:
        model.zero_grad(set_to_none=True)
        logits, _ = model(x)
        F.cross_entropy(logits, y).backward()

    terms, errors, warned = {}, {}, {}
    for key in keys:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                term = _term(KD2MLoss(key, weight=1.0, **PARAMS.get(key, {})), fs, ft, y, ls, lt)
                term()
        except Exception as exc:  # noqa: BLE001 - recorded per (key, batch)
            errors[key] = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        terms[key] = term
        if caught:
            warned[key] = "; ".join(dict.fromkeys(f"{w.category.__name__}: {str(w.message)[:200]}" for w in caught))
    return Batch(step, lambda: model.zero_grad(set_to_none=True), terms, errors, warned)


def peak_bytes(fn: Callable[[], None], device: str, reset: Callable[[], None] = lambda: None) -> int:
    """Peak memory of ``fn()`` above what is allocated before it, after one warm-up call and ``reset()``
    (CPU: valid in a process started with ``MALLOC_MMAP_THRESHOLD_``, see the module docstring)."""
    fn()
    reset()
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    base = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current resident set
    fn()
    return max(0, _status_kib("VmHWM") - base) * 1024  # heap reuse can leave the peak below the start: 0


def measure_memory(b: Batch, device: str) -> dict[str, int | str]:
    """Peak bytes of the step (``"step"``) and of each term; an error text where the term or its measurement failed."""
    out: dict[str, int | str] = dict(b.errors)
    for name, fn, reset in [("step", b.step, b.reset)] + [(k, f, lambda: None) for k, f in b.terms.items()]:
        try:
            out[name] = peak_bytes(fn, device, reset)
        except Exception as exc:  # noqa: BLE001 - recorded per case
            out[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return out


def _model(device: str) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return student().to(device).train()


def _memory_child(device: str, keys: Sequence[str]) -> dict[int, dict[str, int | str]]:
    """``measure_memory`` at every batch size, in a child process (CPU)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TOP_PAD_="0",
               OMP_NUM_THREADS=str(torch.get_num_threads()))
    cmd = [sys.executable, "-m", "benchmarks.step_cost", "--memory", device, "--batches",
           ",".join(map(str, BATCHES)), "--d", str(D), "--keys", ",".join(keys)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=True, cwd=ROOT)
    return {int(b): m for b, m in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def run(device: str, quick: bool, progress: Callable[..., Iterable], *, memory: bool = True,
        keys: Sequence[str] | None = None) -> dict:
    """Time (and, with ``memory``, peak memory) of each key's term as a fraction of a student step, at each
    batch size in ``BATCHES``; ``{"rows": [...], "config": {...}}``, one row per (key, batch size)."""
    keys = list(keys) if keys is not None else torch_keys()
    setting = SETTINGS["quick" if quick else "full"]
    sync = _sync(device)
    model = _model(device)
    rows, load = [], []
    memory_in_process: dict[int, dict[str, int | str]] = {}
    for b in progress(BATCHES, desc="step cost"):
        before = timing.load_average()
        cases = batch(model, b, D, device, keys)
        calls = {"step": timing.timer(cases.step, sync)} | {k: timing.timer(f, sync) for k, f in cases.terms.items()}
        times, repeats = timing.interleaved(calls, rounds=setting["rounds"], budget_s=setting["budget_s"],
                                            block_s=BLOCK_S)
        if memory and device.startswith("cuda"):
            memory_in_process[b] = measure_memory(cases, device)
        load.append({"batch": b, "before": before, "after": timing.load_average()})
        step_s = float(np.median(times["step"]))
        for key in keys:
            row = {"metric": key, "batch": b, "d": D, "device": device, "params": params(key)}
            if key in cases.errors:
                rows.append(row | {"error": cases.errors[key]})
                continue
            ratio = timing.ratio_interval(times[key], times["step"])
            row |= {"term_s": float(np.median(times[key])), "step_s": step_s, "fraction": ratio["ratio"],
                    "fraction_ci95": ratio["ratio_ci95"], "rounds": ratio["rounds"], "repeats": repeats[key]}
            if key in cases.warnings:
                row["warning"] = cases.warnings[key]
            rows.append(row)
        del cases, calls
    memory_error = None
    if memory:
        try:
            peaks = memory_in_process if device.startswith("cuda") else _memory_child(device, keys)
        except subprocess.CalledProcessError as exc:  # e.g. killed for memory: keep the times
            peaks, memory_error = {}, f"the memory child process exited with status {exc.returncode}"
        for row in rows:
            if "error" in row or row["batch"] not in peaks:
                continue
            term, step = peaks[row["batch"]][row["metric"]], peaks[row["batch"]]["step"]
            if isinstance(term, int) and isinstance(step, int):
                row |= {"peak_bytes": term, "step_peak_bytes": step,
                        "memory_fraction": term / step if step else float("nan")}
            else:
                row["memory_error"] = term if isinstance(term, str) else step
    config = {"batches": list(BATCHES), "d": D, "device": device, "dtype": "float32", "n_classes": N_CLASSES,
              "student": f"resnet18(num_classes={N_CLASSES}, stem='cifar'), train mode, inputs {list(IMAGE)}",
              "weight": 1.0, "params": PARAMS, "profile": "quick" if quick else "full", **setting,
              "block_s": BLOCK_S, "torch_threads": torch.get_num_threads(), "memory": memory,
              "load_average": load, "memory_error": memory_error}
    return {"rows": rows, "config": config}


def main(argv: Sequence[str] | None = None) -> int:
    """The memory child of :func:`run`: peaks of the step and of every term, one JSON line on stdout
    (``kd2m-ref bench --parts step`` is the command that runs this benchmark)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_cost", description=main.__doc__.split("\n")[0])
    parser.add_argument("--memory", metavar="DEVICE", required=True)
    parser.add_argument("--batches", required=True, help="comma-separated batch sizes")
    parser.add_argument("--d", type=int, required=True, help="feature dimension")
    parser.add_argument("--keys", required=True, help="comma-separated keys")
    args = parser.parse_args(argv)
    model, keys = _model(args.memory), args.keys.split(",")
    print(json.dumps({b: measure_memory(batch(model, int(b), args.d, args.memory, keys), args.memory)
                      for b in args.batches.split(",")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
