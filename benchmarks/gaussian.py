"""Gaussian W2 benchmark: accuracy against the mpmath oracle and speed against POT, side by side.

Accuracy: a ladder of near-equal covariances (d = 8; n = 16 full rank and n = 4 < d), teacher
features xt = xs (I + δ S) + δ (S symmetric), for δ from 1e-1 down to 1e-8. Each implementation gets
torch tensors of one dtype; the oracle (50 digits) is evaluated on the exact rounded inputs that
implementation received:

* ``ours``: ``kd2m_ref.torch.gaussian_wasserstein(xs, xt)`` (samples in; oracle on the samples);
* ``pot_empirical``: ``ot.gaussian.empirical_bures_wasserstein_distance(xs, xt)`` (samples in, its
  default reg = 1e-6 on both covariances; oracle on the samples with the same ridge);
* ``pot_moments``: ``ot.gaussian.bures_wasserstein_distance(ms, mt, Cs, Ct)`` on 1/n moments
  computed in the dtype (oracle on those rounded moments).

Reported: W2 (the square root), its error |W2 - W2_exact|, relative error, and error / (u * scale)
with u the unit roundoff and scale = sqrt(tr Σ_S + tr Σ_T) (the issue's target is <= 10).

Speed: forward + backward, float32, CPU, n = 128, d = 512 and 2048: ours vs POT's
``empirical_bures_wasserstein_distance``; and ``gaussian_kl`` (full) vs a plain Cholesky formula.

Writes ``benchmarks/results/gaussian.json`` (with provenance) and ``benchmarks/results/gaussian.png``.
Run ``python -m benchmarks.gaussian`` (or ``python benchmarks/gaussian.py``); ``--quick`` times POT
once (no warm-up at d = 2048: one call takes ~20 s), still both sizes, side by side. Times are the
best of several runs (a shared machine disturbs the others); the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import mpmath as mp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ot  # noqa: E402
import scipy  # noqa: E402
import torch  # noqa: E402

from kd2m_ref import __version__ as kd2m_version  # noqa: E402
from kd2m_ref import oracle as O  # noqa: E402
from kd2m_ref import torch as T  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DELTAS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
POT_REG = 1e-6  # POT's default ridge in empirical_bures_wasserstein_distance


def _provenance(start: float, threads: int) -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except Exception:  # noqa: BLE001 - provenance is best effort outside a checkout
            return None

    return {
        "git_revision": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--", "kd2m_ref", "benchmarks")),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                     "torch": torch.__version__, "pot": ot.__version__, "mpmath": mp.__version__,
                     "kd2m_ref": kd2m_version},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count()},
        "threads": threads,
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "wall_time_s": round(time.time() - start, 1),
    }


# ------------------------------------------------------------------------------------------- accuracy

def _ladder_inputs(n: int, d: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(16, d))[:n]
    sym = rng.normal(size=(d, d))
    sym = (sym + sym.T) / 2
    for delta in DELTAS:
        yield delta, x, x @ (np.eye(d) + delta * sym) + delta


def _moments(x: torch.Tensor):
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / x.shape[0]


def _entry(name, dtype, n, delta, value_w2, exact_w2, scale):
    u = torch.finfo(dtype).eps / 2
    err = abs(float(value_w2) - float(exact_w2))
    return {"implementation": name, "dtype": str(dtype).replace("torch.", ""), "n": n, "d": 8, "delta": delta,
            "w2": float(value_w2), "w2_exact": float(exact_w2), "w2_over_scale": float(exact_w2) / scale,
            "abs_error": err, "rel_error": err / float(exact_w2) if exact_w2 > 0 else math.inf,
            "error_over_u_scale": err / (u * scale), "scale": scale}


def accuracy() -> list[dict]:
    rows = []
    for n in (16, 4):
        for delta, xs64, xt64 in _ladder_inputs(n):
            for dtype in (torch.float32, torch.float64):
                xs, xt = torch.tensor(xs64, dtype=dtype), torch.tensor(xt64, dtype=dtype)
                rs, rt = xs.double().numpy(), xt.double().numpy()  # the exact inputs received
                scale = math.sqrt(np.trace(np.cov(rs.T, bias=True)) + np.trace(np.cov(rt.T, bias=True)))
                with mp.workdps(50):
                    exact = mp.sqrt(O.gaussian_wasserstein(rs, rt))
                    exact_reg = mp.sqrt(O.gaussian_wasserstein(rs, rt, eps=POT_REG))
                    ms, cs = _moments(xs)
                    mt, ct = _moments(xt)
                    exact_mom = mp.sqrt(O.gaussian_wasserstein_from_moments(
                        *(v.double().numpy() for v in (ms, mt, cs, ct))))
                ours = math.sqrt(max(float(T.gaussian_wasserstein(xs, xt)), 0.0))
                pot_emp = float(ot.gaussian.empirical_bures_wasserstein_distance(xs, xt))
                pot_mom = float(ot.gaussian.bures_wasserstein_distance(ms, mt, cs, ct))
                rows += [_entry("ours", dtype, n, delta, ours, exact, scale),
                         _entry("pot_empirical", dtype, n, delta, pot_emp, exact_reg, scale),
                         _entry("pot_moments", dtype, n, delta, pot_mom, exact_mom, scale)]
    return rows


# ---------------------------------------------------------------------------------------------- speed

def _time(fn, reps: int, warmup: bool = True) -> float:
    """Best of ``reps`` wall times (the least disturbed run on a shared machine), after a warm-up call."""
    if warmup:
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


def _fwd_bwd(loss_fn, xs, xt):
    def run():
        x = xs.clone().requires_grad_()
        loss_fn(x, xt).backward()
    return run


def _plain_cholesky_kl(xs, xt):
    """The textbook KL(N_S || N_T) through Cholesky factors (the baseline of the issue's KL target)."""
    ms, cs = _moments(xs)
    mt, ct = _moments(xt)
    ls, lt = torch.linalg.cholesky(cs), torch.linalg.cholesky(ct)
    a = torch.cholesky_solve(cs, lt)
    b = torch.cholesky_solve((mt - ms)[:, None], lt)
    logdet = 2 * (lt.diagonal().log().sum() - ls.diagonal().log().sum())
    return 0.5 * (a.diagonal().sum() + ((mt - ms)[:, None] * b).sum() - xs.shape[1] + logdet)


def speed(reps: int) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for n, d in ((128, 512), (128, 2048)):
        xs, xt = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
        ours, pot = [], []
        for _ in range(3 if d < 2048 else 1):  # interleaved rounds: both see the same machine load
            ours.append(_time(_fwd_bwd(T.gaussian_wasserstein, xs, xt), 10))
            pot.append(_time(_fwd_bwd(ot.gaussian.empirical_bures_wasserstein_distance, xs, xt), reps,
                             warmup=d < 2048))
        ours, pot = min(ours), min(pot)
        rows.append({"metric": "gaussian_wasserstein", "n": n, "d": d, "dtype": "float32", "device": "cpu",
                     "ours_s": ours, "baseline": "pot_empirical_bures_wasserstein_distance", "baseline_s": pot,
                     "speedup": pot / ours})
    for n, d in ((512, 128), (2048, 512)):
        xs = torch.randn(n, d, generator=g)
        xt = xs @ (torch.eye(d) + 0.1 * torch.randn(d, d, generator=g) / math.sqrt(d)) + 0.1
        ours, plain = [], []
        for _ in range(3):  # interleaved, so that both see the same machine load
            ours.append(_time(_fwd_bwd(T.gaussian_kl, xs, xt), 5))
            plain.append(_time(_fwd_bwd(_plain_cholesky_kl, xs, xt), 5))
        ours, plain = min(ours), min(plain)
        rows.append({"metric": "gaussian_kl", "n": n, "d": d, "dtype": "float32", "device": "cpu", "ours_s": ours,
                     "baseline": "plain_cholesky_kl", "baseline_s": plain, "speedup": plain / ours})
    return rows


# --------------------------------------------------------------------------------------------- figure

def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_accuracy(rows)
    plt.savefig(path, dpi=120, bbox_inches="tight")
    plt.close("all")


def plot_accuracy(rows: list[dict]):
    """Relative error of W2 against W2 / scale, one panel per n (used by the book page too)."""
    import matplotlib.pyplot as plt

    styles = {"ours": ("C0", "o"), "pot_empirical": ("C3", "s"), "pot_moments": ("C1", "^")}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, n in zip(axes, (16, 4)):
        for name, (color, marker) in styles.items():
            for dtype, ls in (("float32", "-"), ("float64", "--")):
                sel = [r for r in rows if r["implementation"] == name and r["dtype"] == dtype and r["n"] == n]
                ax.loglog([r["w2_over_scale"] for r in sel], [max(r["rel_error"], 1e-17) for r in sel], ls,
                          color=color, marker=marker, ms=4, label=f"{name} {dtype}")
        for dtype, ls in (("float32", "-"), ("float64", "--")):
            u = np.finfo(dtype).eps / 2
            xs = np.logspace(-9, 0, 10)
            ax.loglog(xs, 10 * u / xs, ls, color="grey", lw=0.8)
        ax.set_title(f"d = 8, n = {n}" + (" (rank-deficient)" if n < 8 else ""))
        ax.set_xlabel(r"$W_2$ / scale")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(r"relative error of $W_2$ vs oracle")
    axes[1].legend(fontsize=7, loc="lower left")
    fig.suptitle(r"grey: target $10\,u\,$scale (float32 solid, float64 dashed)", fontsize=9)
    return fig


# ----------------------------------------------------------------------------------------------- main

def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one timing repetition of POT (no warm-up at d = 2048)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    args = parser.parse_args(argv)
    start = time.time()
    threads = torch.get_num_threads()
    acc = accuracy()
    spd = speed(1 if args.quick else 3)
    summary = {
        "max_error_over_u_scale": {f"{name} {dtype}": max(r["error_over_u_scale"] for r in acc
                                                            if r["implementation"] == name and r["dtype"] == dtype)
                                   for name in ("ours", "pot_empirical", "pot_moments")
                                   for dtype in ("float32", "float64")},
        "speedups": {f"{r['metric']} n={r['n']} d={r['d']}": r["speedup"] for r in spd},
    }
    result = {"benchmark": "gaussian", "profile": "quick" if args.quick else "full", "accuracy": acc,
              "speed": spd, "summary": summary, "provenance": _provenance(start, threads)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gaussian.json").write_text(json.dumps(result, indent=1))
    figure(acc, args.out / "gaussian.png")
    print(f"{'impl':15s} {'dtype':8s} {'n':>3s} {'W2/scale':>9s} {'rel err':>9s} {'err/(u scale)':>13s}")
    for r in acc:
        print(f"{r['implementation']:15s} {r['dtype']:8s} {r['n']:3d} {r['w2_over_scale']:9.1e} "
              f"{r['rel_error']:9.1e} {r['error_over_u_scale']:13.3g}")
    for r in spd:
        print(f"{r['metric']} n={r['n']} d={r['d']} float32 cpu fwd+bwd: ours {r['ours_s'] * 1e3:.1f} ms, "
              f"{r['baseline']} {r['baseline_s'] * 1e3:.1f} ms, ratio {r['speedup']:.1f}x")
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.out / 'gaussian.json'} and {args.out / 'gaussian.png'} "
          f"({result['provenance']['wall_time_s']} s, {threads} threads)")
    return result


if __name__ == "__main__":
    main()
