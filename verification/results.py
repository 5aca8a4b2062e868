"""Writing results: JSON with provenance, PNG figures, under ``results/<profile>/``.

Everything but the ``provenance`` block is a function of (profile, seed): floats are rounded to 12
significant digits so that the JSON is byte-identical across runs with the same seed (wall time,
date, git revision and versions live in ``provenance`` only).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

LIBRARIES = ("kd2m-ref", "numpy", "scipy", "pot", "geomloss", "torch", "hypothesis", "matplotlib", "tqdm")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(*, command: str, profile: str, seed: int, wall_time_s: float) -> dict:
    """Git revision (and whether the tree had uncommitted changes outside the results folders), command,
    profile, seed, library versions, device, wall time and UTC date."""
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    # results folders are excluded: a run writes its own outputs there before this is called
    status = _git("status", "--porcelain", "--", ":/", ":!/verification/results", ":!/benchmarks/results")
    torch = sys.modules.get("torch")  # only when the experiment used it
    device = "cpu" if torch is None else f"cpu, torch {torch.get_num_threads()} thread(s)"
    return {
        "git_revision": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "command": command,
        "profile": profile,
        "seed": seed,
        "python": sys.version.split()[0],
        "libraries": versions,
        "device": device,
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cpus",
        "wall_time_s": round(wall_time_s, 2),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def clean(value):
    """JSON-ready copy: numpy scalars/arrays to Python, floats to 12 significant digits, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return None
        return float(f"{v:.12g}")
    return value


def write_json(path: Path, payload: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(payload), indent=1, sort_keys=False) + "\n")
    return path


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def figure_setup():
    """Non-interactive matplotlib with a fixed style; returns pyplot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "font.size": 9, "axes.grid": True,
                         "grid.alpha": 0.3, "svg.hashsalt": "kd2m"})
    return plt
