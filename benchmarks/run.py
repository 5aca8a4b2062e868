"""``kd2m-ref bench``: speed, accuracy and memory against POT, GeomLoss and naive code, side by side.

One run measures kd2m_ref's torch losses and their peers on the same inputs; it writes ``benchmarks/results/<profile>-<device>/bench.json`` (with
provenance: machine, threads, load, library versions) and the figures the book's Performance page shows.

    kd2m-ref bench --quick                 # ~4 min on 2 CPU cores
    kd2m-ref bench                         # the full grid (n up to 1024, d up to 2048, float32 and float64):
                                           # over an hour on 2 CPU cores (POT's log-domain Sinkhorn alone
                                           # takes ~70 s per call at n = 1024 in float64)
    kd2m-ref bench --device cuda           # the same suite on a GPU (scripts/gpu_check.sh runs it in one call)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("speed", "accuracy", "memory")


def progress_bar(enabled: bool):
    """``progress(iterable, desc=...)``: a tqdm bar on stderr, or the iterable itself."""
    if not enabled:
        return lambda items, desc="": items
    from tqdm.auto import tqdm

    return lambda items, desc="": tqdm(items, desc=desc, file=sys.stderr)


def _machine(device: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "load_average_1_5_15": list(os.getloadavg())}
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def equal_accuracy(speed: list[dict], peer: str = "geomloss") -> list[float]:
    """Per Sinkhorn case: time of GeomLoss (default scaling) / time of the fastest of our settings whose
    error against the float64 reference is no larger than GeomLoss's."""
    out = []
    for case in {(r["n"], r["d"], r["dtype"]) for r in speed if r["metric"] == "sinkhorn_divergence"}:
        rows = {r["implementation"]: r for r in speed if r["metric"] == "sinkhorn_divergence"
                and (r["n"], r["d"], r["dtype"]) == case and "median_s" in r}
        if peer not in rows:
            continue
        ours = [r["median_s"] for name, r in rows.items() if name.startswith("ours")
                and r["rel_error"] <= rows[peer]["rel_error"]]
        if ours:
            out.append(rows[peer]["median_s"] / min(ours))
    return out


def targets(speed: list[dict]) -> list[dict]:
    """The issue's targets, each with the worst measured ratio (time of the peer / time of ours)."""
    def ratios(metric, impl, **where):
        return [r["ratio_to_ours"] for r in speed if r["metric"] == metric and r["implementation"] == impl
                and "ratio_to_ours" in r and all(r[k] == v for k, v in where.items())]

    spec = [("gaussian_wasserstein vs POT, n=128 d=512 float32", ratios("gaussian_wasserstein", "pot", n=128, d=512,
                                                                          dtype="float32"), 10.0),
            ("gaussian_wasserstein vs POT, n=128 d=2048 float32", ratios("gaussian_wasserstein", "pot", n=128, d=2048,
                                                                           dtype="float32"), 100.0),
            ("wasserstein time <= 1.2x POT emd2 (every size)", ratios("wasserstein", "pot"), 1 / 1.2),
            ("sinkhorn_divergence time <= 1.5x GeomLoss at equal accuracy (every size)", equal_accuracy(speed),
             1 / 1.5),
            ("mmd time <= 1.2x GeomLoss (every size)", ratios("mmd", "geomloss"), 1 / 1.2),
            ("nothing slower than the naive baseline", [r["ratio_to_ours"] for r in speed
                                                        if r["implementation"] == "naive" and "ratio_to_ours" in r],
             1.0)]
    return [{"target": name, "needs_ratio_at_least": need, "worst_ratio": min(vals) if vals else None,
             "cases": len(vals), "met": bool(vals) and min(vals) >= need} for name, vals, need in spec]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kd2m-ref bench", description=__doc__.split("\n")[0].replace("``", ""))
    parser.add_argument("--quick", action="store_true", help="the small grid (float32, n in {64, 256, 1024}, "
                        "d in {64, 512}, plus the Gaussian target sizes): about 4 min on 2 cores")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:k] (default cpu)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/results/<profile>-<device>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; choose among {list(PARTS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is visible")
    if args.device.startswith("cuda") and "accuracy" in parts:
        parts.remove("accuracy")  # the ladder is device-independent arithmetic: run on CPU only
    profile = "quick" if args.quick else "full"
    out = args.out or RESULTS / f"{profile}-{args.device.split(':')[0]}"
    sys.path.insert(0, str(ROOT))
    from verification.results import clean, provenance

    from . import accuracy, figures, memory, speed

    progress = progress_bar(not args.no_progress)
    start = time.time()
    result: dict = {"benchmark": "kd2m-ref bench", "profile": profile, "device": args.device}
    if "speed" in parts:
        result["speed"] = speed.run(args.device, args.quick, progress)
        result["targets"] = targets(result["speed"])
    if "accuracy" in parts:
        result["accuracy"] = accuracy.run(progress)
        result["accuracy_resolution"] = accuracy.resolution(result["accuracy"])
    if "memory" in parts:
        result["memory"] = memory.run(args.device, args.quick, not args.no_progress)
    command = "kd2m-ref bench" + (" --quick" if args.quick else "") + (
        f" --device {args.device}" if args.device != "cpu" else "") + (
        f" --parts {args.parts}" if set(parts) != set(PARTS) else "")
    result["machine"] = _machine(args.device)
    result["provenance"] = provenance(command=command, profile=profile, seed=0, wall_time_s=time.time() - start)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(clean(result), indent=1))
    written = figures.write_all(result, out)
    print(summary(result))
    print(f"wrote {out / 'bench.json'}" + "".join(f", {p.name}" for p in written)
          + f" in {time.time() - start:.0f} s")
    return 0


def summary(result: dict) -> str:
    lines = []
    for t in result.get("targets", []):
        worst = "n/a" if t["worst_ratio"] is None else f"{t['worst_ratio']:.2f}"
        lines.append(f"{'met ' if t['met'] else 'MISSED'} {t['target']}: worst ratio {worst} "
                     f"(needs >= {t['needs_ratio_at_least']:.2f}, {t['cases']} cases)")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
