"""Speed, forward + backward (gradient w.r.t. the student features), interleaved and paired.

For each case every implementation gets the same inputs. After one warm-up call each, they alternate
within every round in a rotated order (:func:`benchmarks.timing.interleaved`), so that a burst of
machine load lands on all of them; a ratio *peer / ours* is the median of the per-round ratios with a
bootstrap 95 % interval (:func:`benchmarks.timing.ratio_interval`). The 1-minute load average before
and after each case is recorded, and so is every implementation's value and its error against the
float64 reference, so that a fast wrong answer shows.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass

import torch

from . import timing
from .impls import EPSILON, Impl, features, implementations, mean_cost, reference_value


@dataclass(frozen=True)
class Case:
    metric: str
    n: int
    d: int
    dtype: torch.dtype = torch.float32
    relative_epsilon: float | None = None  # Sinkhorn: epsilon = this x the mean cost (None: EPSILON)
    only: tuple[str, ...] | None = None  # the implementations timed (None: all of the metric)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def fwd_bwd(impl: Impl, xs: torch.Tensor, xt: torch.Tensor, device: str) -> tuple[float, float]:
    """(seconds, value) of one forward + backward pass."""
    x = xs.detach().clone().requires_grad_()
    _sync(device)
    t0 = time.perf_counter()
    value = impl.fn(x, xt)
    value.backward()
    _sync(device)
    return time.perf_counter() - t0, float(value.detach())


def time_case(case: Case, device: str, *, rounds: int, budget_s: float, block_s: float) -> list[dict]:
    xs, xt = features(case.n, case.d, case.dtype, device)
    epsilon = EPSILON if case.relative_epsilon is None else case.relative_epsilon * mean_cost(xs, xt)
    impls = [i for i in implementations(case.metric, epsilon) if case.only is None or i.name in case.only]
    load_before = timing.load_average()
    values, warm, errors = {}, {}, {}
    for impl in impls:  # warm-up (first call: lazy imports, allocator, kernels)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an unconverged peer or setting shows in its error
                warm[impl.name], values[impl.name] = fwd_bwd(impl, xs, xt, device)
        except Exception as exc:  # noqa: BLE001 - a peer that fails on this input is reported, not fatal
            errors[impl.name] = f"{type(exc).__name__}: {str(exc)[:200]}"
    calls = {i.name: (lambda i=i: fwd_bwd(i, xs, xt, device)[0]) for i in impls if i.name in warm}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times, repeats = timing.interleaved(calls, rounds=rounds, budget_s=budget_s, block_s=block_s, warm=warm)
    truth = reference_value(case.metric, xs, xt, epsilon)
    base = {"metric": case.metric, "n": case.n, "d": case.d, "dtype": str(case.dtype).removeprefix("torch."),
            "device": device, "epsilon": epsilon if case.metric == "sinkhorn_divergence" else None,
            "relative_epsilon": case.relative_epsilon, "load_before": load_before,
            "load_after": timing.load_average()}
    rows = []
    for impl in impls:
        row = base | {"implementation": impl.name, "library": impl.library, "note": impl.note}
        if impl.name in errors:
            rows.append(row | {"error": errors[impl.name]})
            continue
        t = times[impl.name]
        row |= {"median_s": statistics.median(t), "times_s": t, "repeats": repeats[impl.name], "value": values[impl.name],
                "reference_value": truth, "same_quantity": impl.same_quantity,
                "rel_error": abs(values[impl.name] - truth) / abs(truth) if impl.same_quantity and truth else None}
        if "ours" in times and impl.name != "ours":
            interval = timing.ratio_interval(t, times["ours"])
            row |= {"ratio_to_ours": interval["ratio"], "ratio_ci95": interval["ratio_ci95"]}
        rows.append(row)
    return rows


GAUSSIAN_GRID = {"quick": [(n, d) for d in (64, 512, 2048) for n in (128, 1024, 4096)] + [(128, 4096)],
                 "full": [(n, d) for d in (64, 256, 512, 1024, 2048, 4096) for n in (128, 512, 1024, 2048, 4096)]}
LARGE_OT = {"quick": (2048, 4096), "full": (2048, 4096, 8192)}  # exact OT against POT's emd2, d = 64
SMALL_EPSILON = (1e-2, 1e-3)  # Sinkhorn divergence at epsilon = this x the mean cost


def grid(quick: bool, device: str = "cpu") -> list[Case]:
    """The cases. Both profiles: every metric at n in {64, 256, 1024}, d in {64, 512} (full adds
    float64 and d = 2048), the Gaussian W2 n x d grid (quick up to d = 2048 and one row at d = 4096),
    exact OT at n in {2048, 4096} against POT (full adds 8192; on the CPU only: both exact solvers run
    on the CPU whatever the device), and the Sinkhorn divergence at small relative epsilon."""
    from .impls import METRICS

    sizes = (64, 256, 1024)
    dims = (64, 512) if quick else (64, 512, 2048)
    dtypes = (torch.float32,) if quick else (torch.float32, torch.float64)
    cases = [Case(m, n, d, dt) for m in METRICS for dt in dtypes for d in dims for n in sizes]
    if quick:
        cases += [Case(m, 256, 64, torch.float64) for m in METRICS]
    seen = {(c.metric, c.n, c.d, c.dtype) for c in cases}
    cases += [Case("gaussian_wasserstein", n, d) for n, d in GAUSSIAN_GRID["quick" if quick else "full"]
              if ("gaussian_wasserstein", n, d, torch.float32) not in seen]
    cases += [Case("wasserstein", n, 64, only=("ours", "pot")) for n in LARGE_OT["quick" if quick else "full"]
              if device == "cpu"]
    cases += [Case("sinkhorn_divergence", n, d, relative_epsilon=r, only=("ours", "ours_tol_1e-3", "geomloss",
                                                                          "geomloss_0.9"))
              for r in SMALL_EPSILON for d in (64, 512) for n in ((256,) if quick else (256, 1024))]
    return [c for c in cases if c.metric != "gaussian_kl" or c.n > c.d]  # the Gaussian KL needs n > d


def run(device: str, quick: bool, progress) -> list[dict]:
    rows = []
    for case in progress(grid(quick, device), desc="speed"):
        rows += time_case(case, device, rounds=25 if quick else 50, budget_s=1.5 if quick else 10.0,
                          block_s=0.02 if quick else 0.05)
    return rows
