"""Peak memory of one forward + backward pass, and the largest n that fits, extrapolated.

CPU: measured in a child process whose glibc returns every block above 64 KiB to the system on free
(``MALLOC_MMAP_THRESHOLD_``), so the resident set follows the tensors; before each case the peak
resident set (VmHWM) is reset through ``/proc/self/clear_refs`` and the case's peak is VmHWM minus the
resident set before it. CUDA: ``torch.cuda.max_memory_allocated`` above the allocation before the
case. The largest n is extrapolated from the two largest measured sizes (peak ~ n^k, k fitted) to the
machine's memory: an estimate, labelled as such, not a run at that size.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys

import torch

from .impls import features, implementations

D = 512


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_bytes(metric: str, impl_name: str, n: int, dtype: torch.dtype, device: str, d: int = D) -> int:
    impl = next(i for i in implementations(metric) if i.name == impl_name)
    xs, xt = features(n, d, dtype, device)
    x = xs.clone().requires_grad_()
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        impl.fn(x, xt).backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    base = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current resident set
    impl.fn(x, xt).backward()
    return (_status_kib("VmHWM") - base) * 1024


def total_memory(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def sizes(quick: bool) -> list[int]:
    return [256, 512, 1024, 2048] if quick else [256, 512, 1024, 2048, 4096]


def _cases(quick: bool, device: str) -> list[tuple[str, str, int, int]]:
    """(metric, implementation, n, d): every implementation at d = 512, then, on the CPU (where the exact
    solvers run), exact OT at the large sizes of the speed grid (d = 64; POT, whose time there is
    minutes, up to 4096)."""
    from .speed import LARGE_OT

    return ([(m, i.name, n, D) for m in ("wasserstein", "sinkhorn_divergence", "sliced_wasserstein",
                                         "gaussian_wasserstein", "mmd") for i in implementations(m) for n in sizes(quick)]
            + [("wasserstein", name, n, 64) for n in LARGE_OT["quick" if quick else "full"] for name in ("ours", "pot")
               if (name == "ours" or n <= 4096) and device == "cpu"])


def measure_all(device: str, quick: bool, progress) -> list[dict]:
    """Every case, in this process (the child's job)."""
    rows = []
    for metric, impl_name, n, d in progress(_cases(quick, device), desc="memory"):
        row = {"metric": metric, "implementation": impl_name, "n": n, "d": d, "dtype": "float32", "device": device}
        if d != D:
            row["cost_matrix_bytes"] = n * n * 8  # the float64 (n, n) cost an exact solver consumes
        try:
            row["peak_bytes"] = peak_bytes(metric, impl_name, n, torch.float32, device, d)
        except Exception as exc:  # noqa: BLE001 - recorded per case
            row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        rows.append(row)
    return rows


def run(device: str, quick: bool, show_progress: bool) -> dict:
    """Peak memory per (metric, implementation, n) at d = 512, float32, measured in a child process, and
    the extrapolated largest n."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TOP_PAD_="0")
    cmd = [sys.executable, "-m", "benchmarks.memory", device] + (["--quick"] if quick else []) + (
        [] if show_progress else ["--no-progress"])
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    budget = total_memory(device)
    return {"rows": rows, "largest_n": largest_n(rows, budget), "total_memory_bytes": budget}


def largest_n(rows: list[dict], budget: int) -> list[dict]:
    out = []
    for key in sorted({(r["metric"], r["implementation"]) for r in rows}):
        pts = sorted((r["n"], r["peak_bytes"]) for r in rows
                     if (r["metric"], r["implementation"]) == key and r.get("peak_bytes", 0) > 0 and r["d"] == D)
        if len(pts) < 2:
            continue
        (n1, p1), (n2, p2) = pts[-2], pts[-1]
        k = math.log(p2 / p1) / math.log(n2 / n1) if p2 > p1 else 0.0
        n_max = n2 * (budget / p2) ** (1 / k) if k >= 0.9 else None  # sub-linear: d-bound, not n-bound
        out.append({"metric": key[0], "implementation": key[1], "exponent": k, "largest_n_estimate": n_max,
                    "from_n": [n1, n2]})
    return out


if __name__ == "__main__":  # the child process: all cases, one JSON line on stdout, progress on stderr
    from .run import progress_bar

    torch.set_num_threads(1)
    print(json.dumps(measure_all(sys.argv[1], "--quick" in sys.argv, progress_bar("--no-progress" not in sys.argv))))
