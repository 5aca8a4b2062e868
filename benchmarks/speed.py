"""Speed, forward + backward (gradient w.r.t. the student features), interleaved and side by side.

For each (metric, n, d, dtype) every implementation gets the same inputs. After one warm-up call each,
the implementations are timed in rounds, in a rotating order, so that a change of machine load hits
them all; the reported time is the median over rounds and the ratio ``peer / ours`` is that of medians
(with the range of the per-round ratios). An implementation whose warm-up call takes longer than
``slow_s`` is timed by that one call. Values are recorded too, so a fast wrong answer shows.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .impls import Impl, features, implementations, reference_value


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


def time_case(metric: str, n: int, d: int, dtype: torch.dtype, device: str, *, rounds: int, budget_s: float,
              slow_s: float) -> list[dict]:
    xs, xt = features(n, d, dtype, device)
    impls = implementations(metric)
    times: dict[str, list[float]] = {}
    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    for impl in impls:  # warm-up (first call: lazy imports, allocator, kernels)
        try:
            t, values[impl.name] = fwd_bwd(impl, xs, xt, device)
            times[impl.name] = [t]
        except Exception as exc:  # noqa: BLE001 - a peer that fails on this input is reported, not fatal
            errors[impl.name] = f"{type(exc).__name__}: {str(exc)[:200]}"
    timed = [i for i in impls if i.name in times and times[i.name][0] < slow_s]
    per_round = sum(times[i.name][0] for i in timed) or 1e-3
    n_rounds = int(np.clip(budget_s / per_round, 3, rounds))
    for impl in timed:
        times[impl.name] = []  # the warm-up call is not a measurement (it stays one for the slow ones)
    for r in range(n_rounds if timed else 0):
        for impl in timed[r % len(timed):] + timed[:r % len(timed)]:
            times[impl.name].append(fwd_bwd(impl, xs, xt, device)[0])
    ours = times.get("ours")
    truth = reference_value(metric, xs, xt)
    rows = []
    for impl in impls:
        row = {"metric": metric, "implementation": impl.name, "library": impl.library, "note": impl.note,
               "n": n, "d": d, "dtype": str(dtype).removeprefix("torch."), "device": device}
        if impl.name in errors:
            rows.append(row | {"error": errors[impl.name]})
            continue
        t = times[impl.name]
        row |= {"median_s": float(np.median(t)), "repetitions": len(t), "value": values[impl.name],
                "reference_value": truth, "same_quantity": impl.same_quantity,
                "rel_error": abs(values[impl.name] - truth) / abs(truth) if impl.same_quantity else None}
        if ours and impl.name != "ours":
            row["ratio_to_ours"] = row["median_s"] / float(np.median(ours))
            if len(t) == len(ours):
                paired = np.asarray(t) / np.asarray(ours)
                row["ratio_range"] = [float(paired.min()), float(paired.max())]
        rows.append(row)
    return rows


def grid(quick: bool):
    """(metric, n, d, dtype) cases. Quick: float32, n in {64, 256, 1024}, d in {64, 512}, plus the Gaussian
    target sizes (n = 128, d = 512 and 2048) and one float64 row per metric."""
    from .impls import METRICS

    if quick:
        cases = [(m, n, d, torch.float32) for m in METRICS for d in (64, 512) for n in (64, 256, 1024)]
        cases += [(m, 256, 64, torch.float64) for m in METRICS]
        cases += [("gaussian_wasserstein", 128, d, torch.float32) for d in (512, 2048)]
        return cases
    return [(m, n, d, dt) for m in METRICS for dt in (torch.float32, torch.float64) for d in (64, 512, 2048)
            for n in (64, 128, 256, 512, 1024)]


def run(device: str, quick: bool, progress) -> list[dict]:
    rows = []
    cases = [case for case in grid(quick) if case[0] != "gaussian_kl" or case[1] > case[2]]  # KL needs n > d
    for metric, n, d, dtype in progress(cases, desc="speed"):
        rows += time_case(metric, n, d, dtype, device, rounds=25 if quick else 50,
                          budget_s=1.5 if quick else 10.0, slow_s=2.0 if quick else 30.0)
    return rows
