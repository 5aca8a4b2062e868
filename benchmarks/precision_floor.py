"""Measure the precision floor's constants: the largest error of correct textbook implementations.

Runs every entry of the gallery (``verification/crosscheck/gallery.py``: POT, scipy ``sqrtm``, ``torch.distributions``,
``torch.cdist``, ``F.kl_div``, expanded costs, ...) through ``kd2m_ref.testing.check`` in float64 and
float32 and records, per entry and dtype, the largest error in units of u·S and as a fraction of the
floor (``kd2m_ref.testing.precision``). The constants there are set so that the largest fraction
stays below 1 / MARGIN; any entry that does not conform is a false alarm, listed and counted::

    .venv/bin/python benchmarks/precision_floor.py --examples 200
    .venv/bin/python benchmarks/precision_floor.py --examples 25 --seed 1 --out /tmp/seed1.json  # random draws
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(examples: int, seed: int | None = None) -> dict:
    sys.path.insert(0, str(ROOT))
    from verification.crosscheck.gallery import GALLERY

    from kd2m_ref.testing import CheckError, MismatchError, PrecisionLossWarning, check
    from kd2m_ref.testing.precision import CONSTANTS, MARGIN

    rows = []
    for entry in GALLERY:
        for dtype in ("float64", "float32"):
            start = time.perf_counter()
            row = {"name": entry.name, "metric": entry.metric, "family": entry.family, "dtype": dtype}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", PrecisionLossWarning)
                    report = check(entry.fn, entry.metric, params=entry.params, dtype=dtype, max_examples=examples,
                                   gradients=False, seed=seed)
                run = report.runs[0]
                row.update(verdict=report.verdict, examples=run.examples, units=run.worst_units,
                           floor_ratio=run.worst_floor_ratio, where=list(run.worst_where))
            except MismatchError as err:
                row.update(verdict="differs", examples=err.examples, floor_ratio=err.failure.severity,
                           report=str(err))
            except CheckError as err:
                row.update(verdict="error", report=str(err))
            row["seconds"] = round(time.perf_counter() - start, 2)
            rows.append(row)
            print(f"{entry.name:34s} {dtype:8s} {row['verdict']:30s} floor ratio {row.get('floor_ratio', 0):.3g}",
                  flush=True)
    per_key = {}
    for r in rows:
        key = per_key.setdefault(r["metric"], {"constants": list(CONSTANTS[r["metric"]]), "float64": 0.0,
                                               "float32": 0.0})
        key[r["dtype"]] = max(key[r["dtype"]], r.get("floor_ratio", float("inf")))
    return {"margin": MARGIN, "per_key": per_key, "rows": rows,
            "false_alarms": sum(r["verdict"] in ("differs", "error") for r in rows)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="random Hypothesis seed (default: derandomised)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "precision_floor.json"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = measure(args.examples, args.seed)
    rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                text=True, cwd=ROOT).stdout.strip())
    out["provenance"] = {"command": "python benchmarks/precision_floor.py " + " ".join(argv or sys.argv[1:]),
                         "git_revision": rev, "tree_clean": not dirty, "examples": args.examples, "seed": args.seed,
                         "wall_seconds": round(time.perf_counter() - start, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    for key, v in out["per_key"].items():
        print(f"{key:40s} float64 {v['float64']:.3g}  float32 {v['float32']:.3g}  (constants {v['constants']})")
    print(f"false alarms: {out['false_alarms']}")
    return 1 if out["false_alarms"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
