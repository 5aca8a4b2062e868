"""``kd2m-ref bench``: speed, accuracy, memory and step cost against POT, GeomLoss and naive code, side by side.

One run measures kd2m_ref's torch losses and their peers on the same inputs; it writes
``benchmarks/results/<profile>-<device>/bench.json`` (with provenance: machine, threads, load average per
case, library versions), the verdict of every target, and the figures the book's Performance page shows.

    kd2m-ref bench --quick                 # the committed results: ~18 min on 2 CPU cores
    kd2m-ref bench                         # the full grid (float64 too, d up to 2048 for every metric, the
                                           # Gaussian grid to d = 4096, exact OT to n = 8192): hours on 2 cores
    kd2m-ref bench --device cuda           # the same suite on a GPU (scripts/gpu_check.sh runs it in one call)
    python -m benchmarks.agree A/bench.json B/bench.json   # exit 1: a target met in one run, missed in the other"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from . import timing

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("speed", "accuracy", "memory", "step")


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


def _label(r: dict) -> str:
    eps = f" rel.eps={r['relative_epsilon']:g}" if r.get("relative_epsilon") else ""
    return f"{r['metric']} n={r['n']} d={r['d']} {r['dtype']}{eps}"


def equal_accuracy(speed: list[dict], peer: str = "geomloss") -> list[dict]:
    """Per Sinkhorn case: the ratio time of ``peer`` / time of the fastest of our settings whose error
    against the float64 reference is no larger than the peer's, paired per round, with its interval.
    A case where none of our settings is as accurate gets no interval (it counts as missed)."""
    out = []
    cases = dict.fromkeys((r["n"], r["d"], r["dtype"], r.get("relative_epsilon")) for r in speed
                          if r["metric"] == "sinkhorn_divergence")
    for case in cases:
        rows = {r["implementation"]: r for r in speed if r["metric"] == "sinkhorn_divergence"
                and (r["n"], r["d"], r["dtype"], r.get("relative_epsilon")) == case and "median_s" in r}
        if peer not in rows:
            continue
        ours = [r for name, r in rows.items() if name.startswith("ours") and r["rel_error"] <= rows[peer]["rel_error"]]
        entry = {"case": _label(rows[peer]), "interval": None}
        if ours:
            best = min(ours, key=lambda r: r["median_s"])
            ratio = timing.ratio_interval(rows[peer]["times_s"], best["times_s"])
            entry = {"case": _label(best) + f" ({best['implementation']})", "interval": ratio["ratio_ci95"],
                     "ratio": ratio["ratio"]}
        out.append(entry)
    return out


def _ratios(speed: list[dict], metric: str | None, impl: str, keep=lambda r: True) -> list[dict]:
    return [{"case": _label(r), "ratio": r["ratio_to_ours"], "interval": r["ratio_ci95"]} for r in speed
            if (metric is None or r["metric"] == metric) and r["implementation"] == impl and "ratio_to_ours" in r
            and keep(r)]


def memory_cases(memory: dict | None) -> list[dict]:
    """Exact OT: the size of the float64 cost matrix the exact solvers consume (scipy's assignment and
    POT's network simplex both take float64) over our peak memory (a measurement, not an interval)."""
    rows = [] if memory is None else memory["rows"]
    return [{"case": f"wasserstein n={r['n']} d={r['d']}", "ratio": r["cost_matrix_bytes"] / r["peak_bytes"],
             "interval": [r["cost_matrix_bytes"] / r["peak_bytes"]] * 2, "peak_over_cost": r["peak_bytes"]
             / r["cost_matrix_bytes"]} for r in rows if r.get("cost_matrix_bytes") and r["implementation"] == "ours"
            and r.get("peak_bytes", 0) > 0]


def targets(speed: list[dict], memory: dict | None = None) -> list[dict]:
    """Each target: a ratio (time of the peer / time of ours, or memory) that every case must reach.
    A case is met when its bootstrap 95 % interval lies at or above the threshold, missed when it lies
    below, unresolved otherwise; the target is missed when any case is, met when all are."""
    spec = [("gaussian_wasserstein >= 20x POT at n=128, d=512", 20.0,
             _ratios(speed, "gaussian_wasserstein", "pot", lambda r: (r["n"], r["d"], r["dtype"]) == (128, 512, "float32"))),
            ("gaussian_wasserstein >= 100x POT at n=128, d=2048", 100.0,
             _ratios(speed, "gaussian_wasserstein", "pot", lambda r: (r["n"], r["d"], r["dtype"]) == (128, 2048, "float32"))),
            ("wasserstein no slower than POT emd2 at n >= 2048, d=64", 1.0,
             _ratios(speed, "wasserstein", "pot", lambda r: r["n"] >= 2048 and r["d"] == 64 and r["dtype"] == "float32")),
            ("wasserstein peak memory <= 2x its float64 cost matrix at n >= 2048", 0.5, memory_cases(memory)),
            ("sinkhorn_divergence no slower than GeomLoss at equal accuracy (every case, small eps included)", 1.0,
             equal_accuracy(speed)),
            ("mmd no slower than GeomLoss (every case)", 1.0, _ratios(speed, "mmd", "geomloss")),
            ("nothing slower than the naive baseline (every case)", 1.0, _ratios(speed, None, "naive"))]
    out = []
    for name, need, cases in spec:
        for c in cases:
            c["verdict"] = "missed" if c["interval"] is None else timing.verdict(c["interval"], need)
        worst = min((c for c in cases if c["interval"] is not None), key=lambda c: c["ratio"], default=None)
        out.append({"target": name, "needs_ratio_at_least": need, "verdict": timing.combine([c["verdict"] for c in cases]),
                    "cases": len(cases), "met": sum(c["verdict"] == "met" for c in cases),
                    "missed": sum(c["verdict"] == "missed" for c in cases),
                    "unresolved": sum(c["verdict"] == "unresolved" for c in cases),
                    "worst": worst, "per_case": cases})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kd2m-ref bench", description=__doc__.split("\n")[0].replace("``", ""))
    parser.add_argument("--quick", action="store_true", help="the small grid (float32, n in {64, 256, 1024}, "
                        "d in {64, 512}, plus the target cases): about 18 min on 2 cores")
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

    from . import accuracy, figures, memory, speed, step_cost

    progress = progress_bar(not args.no_progress)
    start = time.time()
    result: dict = {"benchmark": "kd2m-ref bench", "profile": profile, "device": args.device}
    if "speed" in parts:
        result["speed"] = speed.run(args.device, args.quick, progress)
    if "accuracy" in parts:
        result["accuracy"] = accuracy.run(progress)
        result["accuracy_resolution"] = accuracy.resolution(result["accuracy"])
    if "memory" in parts:
        result["memory"] = memory.run(args.device, args.quick, not args.no_progress)
    if "speed" in parts:
        result["targets"] = targets(result["speed"], result.get("memory"))
    if "step" in parts:
        result["step_cost"] = step_cost.run(args.device, args.quick, progress)
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
        worst = "" if t["worst"] is None else (f"; worst {t['worst']['case']}: {t['worst']['ratio']:.2f} "
                                               f"[{t['worst']['interval'][0]:.2f}, {t['worst']['interval'][1]:.2f}]")
        lines.append(f"{t['verdict'].upper():10s} {t['target']} (needs >= {t['needs_ratio_at_least']:g}; "
                     f"{t['met']} met, {t['missed']} missed, {t['unresolved']} unresolved of {t['cases']}{worst})")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
