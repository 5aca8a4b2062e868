"""Figures of ``bench.json``: log-log time against n, relative error along the near-equality ladder,
peak memory against n. Each ``plot_*`` takes the rows of the results file and returns a matplotlib
figure (the book calls them too); ``write_all`` saves the PNGs next to the JSON."""

from __future__ import annotations

from pathlib import Path

STYLE = {"ours": ("C0", "o"), "ours_tol_1e-3": ("C9", "o"), "pot": ("C3", "s"), "geomloss": ("C2", "^"), "geomloss_0.9": ("C8", "v"),
         "naive": ("C7", "x")}


def _style(name: str):
    return STYLE.get(name, ("C4", "d"))


def _grid(k: int):
    import matplotlib.pyplot as plt

    cols = 3
    rows = (k + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def plot_speed(rows: list[dict], dtype: str = "float32"):
    """Median forward + backward time against n, one panel per metric; solid d = 512, dashed d = 64."""
    rows = [r for r in rows if "median_s" in r and r["dtype"] == dtype]
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics):
        for name in dict.fromkeys(r["implementation"] for r in rows if r["metric"] == metric):
            color, marker = _style(name)
            for d, ls in ((512, "-"), (64, "--")):
                pts = sorted((r["n"], r["median_s"]) for r in rows
                             if r["metric"] == metric and r["implementation"] == name and r["d"] == d)
                if pts:
                    ax.loglog(*zip(*pts), ls, color=color, marker=marker, ms=4,
                              label=name if d == 512 else None)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("n (student = teacher batch size)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("seconds, forward + backward")
    fig.suptitle(f"{dtype}; solid d = 512, dashed d = 64", fontsize=9)
    fig.tight_layout()
    return fig


def plot_accuracy(rows: list[dict], cases=None):
    """Relative error against the oracle along the ladder; solid float32, dashed float64."""
    cases = cases or list(dict.fromkeys(r["case"] for r in rows))
    fig, axes = _grid(len(cases))
    for ax, case in zip(axes, cases):
        sel = [r for r in rows if r["case"] == case]
        for name in dict.fromkeys(r["implementation"] for r in sel):
            color, marker = _style(name)
            for dtype, ls in (("float32", "-"), ("float64", "--")):
                pts = [(r["delta"], max(r["rel_error"], 1e-18)) for r in sel
                       if r["implementation"] == name and r["dtype"] == dtype and r["rel_error"] is not None]
                if pts:
                    ax.loglog(*zip(*pts), ls, color=color, marker=marker, ms=4,
                              label=name if dtype == "float32" else None)
        for u, ls in ((2.0**-24, "-"), (2.0**-53, "--")):
            ax.axhline(u, color="grey", lw=0.7, ls=ls)
        ax.invert_xaxis()
        ax.set_title(f"{case}\n({sel[0]['inputs']})", fontsize=9)
        ax.set_xlabel(r"$\delta$ (teacher = student moved by $\delta$)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("relative error vs 50-digit oracle")
    fig.suptitle("solid float32, dashed float64; grey: unit roundoff u", fontsize=9)
    fig.tight_layout()
    return fig


def plot_memory(memory: dict):
    """Peak memory of forward + backward against n (d = 512, float32)."""
    rows = [r for r in memory["rows"] if "peak_bytes" in r]
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics):
        for name in dict.fromkeys(r["implementation"] for r in rows if r["metric"] == metric):
            color, marker = _style(name)
            pts = sorted((r["n"], max(r["peak_bytes"], 1) / 2**20) for r in rows
                         if r["metric"] == metric and r["implementation"] == name)
            ax.loglog(*zip(*pts), color=color, marker=marker, ms=4, label=name)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("n")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("peak MiB above inputs")
    fig.tight_layout()
    return fig


def write_all(result: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .step_cost import plot as plot_step_cost

    written = []
    for name, key, plot in (("speed.png", "speed", plot_speed), ("ratios.png", "speed", plot_ratios),
                            ("gaussian_grid.png", "speed", plot_gaussian_grid), ("targets.png", "targets", plot_targets),
                            ("accuracy.png", "accuracy", plot_accuracy), ("memory.png", "memory", plot_memory),
                            ("step_cost.png", "step_cost", plot_step_cost)):
        if key in result:
            fig = plot(result[key])
            fig.savefig(out / name, dpi=110, bbox_inches="tight")
            plt.close(fig)
            written.append(out / name)
    return written


PEERS = ("pot", "geomloss", "naive")


def _plain_log_ticks(axis) -> None:
    """Ticks of a log axis as plain numbers (0.5, 2, 300), not as powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_ratios(rows: list[dict], dtype: str = "float32"):
    """Ratio time of the peer / time of ours against n with its bootstrap 95 % interval, one panel per
    metric (d = 512 solid, d = 64 dashed; above the grey line at 1, ours is faster)."""
    rows = [r for r in rows if "ratio_ci95" in r and r["dtype"] == dtype and r["implementation"] in PEERS
            and r["d"] in (64, 512) and not r.get("relative_epsilon") and r["n"] <= 1024]
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics):
        for name in PEERS:
            color, marker = _style(name)
            for d, ls, shift in ((512, "-", 1.04), (64, "--", 0.96)):
                pts = sorted((r["n"], r["ratio_to_ours"], *r["ratio_ci95"]) for r in rows
                             if r["metric"] == metric and r["implementation"] == name and r["d"] == d)
                if pts:
                    n, ratio, lo, hi = map(list, zip(*pts))
                    n = [v * shift for v in n]  # side by side, so the intervals do not overlap
                    ax.errorbar(n, ratio, yerr=[[r - a for r, a in zip(ratio, lo)], [b - r for r, b in zip(ratio, hi)]],
                                fmt=ls, color=color, marker=marker, ms=4, capsize=2, label=name if d == 512 else None)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.xaxis)
        _plain_log_ticks(ax.yaxis)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("n")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("time of peer / time of ours")
    fig.suptitle(f"{dtype}; solid d = 512, dashed d = 64; bars: bootstrap 95 % interval", fontsize=9)
    fig.tight_layout()
    return fig


def plot_gaussian_grid(rows: list[dict]):
    """Gaussian W2, float32: time of POT / time of ours over the n x d grid (log colour scale), with the
    n = d diagonal; left of it n < d (ours works in the n x n Gram space), right of it n > d."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    sel = {(r["n"], r["d"]): r for r in rows if r["metric"] == "gaussian_wasserstein" and r["implementation"] == "pot"
           and r["dtype"] == "float32" and "ratio_to_ours" in r}
    ns, ds = sorted({n for n, _ in sel}), sorted({d for _, d in sel})
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    grid = [[sel[(n, d)]["ratio_to_ours"] if (n, d) in sel else float("nan") for n in ns] for d in ds]
    image = ax.imshow(grid, origin="lower", cmap="RdBu", norm=LogNorm(vmin=1 / 30, vmax=30), aspect="auto")
    for i, d in enumerate(ds):
        for j, n in enumerate(ns):
            if (n, d) in sel:
                lo, hi = sel[(n, d)]["ratio_ci95"]
                ax.text(j, i, f"{sel[(n, d)]['ratio_to_ours']:.3g}\n[{lo:.2g}, {hi:.2g}]", ha="center", va="center",
                        fontsize=7)
    ax.set_xticks(range(len(ns)), [str(n) for n in ns])
    ax.set_yticks(range(len(ds)), [str(d) for d in ds])
    ax.set_xlabel("n (samples per cloud)")
    ax.set_ylabel("d (feature dimension)")
    fig.colorbar(image, ax=ax, label="time of POT / time of ours")
    ax.set_title("Gaussian W2 vs POT: blue, ours faster; red, POT faster", fontsize=9)
    fig.tight_layout()
    return fig


def plot_targets(targets: list[dict]):
    """Every case of every target: its ratio and interval over the target's threshold (1 = exactly
    the threshold; above: the case clears it). Colour: met, missed, unresolved."""
    import matplotlib.pyplot as plt

    colors = {"met": "C2", "missed": "C3", "unresolved": "C1"}
    fig, axes = plt.subplots(len(targets), 1, figsize=(8, 1.0 + 0.55 * len(targets) + 0.06 * sum(
        t["cases"] for t in targets)), squeeze=False)
    for ax, t in zip(axes[:, 0], targets):
        need = t["needs_ratio_at_least"]
        cases = [c for c in t["per_case"] if c["interval"] is not None]
        for k, c in enumerate(cases):
            lo, hi = (v / need for v in c["interval"])
            ax.plot([lo, hi], [k, k], color=colors[c["verdict"]], lw=2)
            ax.plot(c["ratio"] / need, k, "o", color=colors[c["verdict"]], ms=3)
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
        ax.set_yticks([])
        ax.set_ylim(-1, max(1, len(cases)))
        ax.set_title(f"{t['target']}: {t['verdict'].upper()} ({t['met']} met, {t['missed']} missed, "
                     f"{t['unresolved']} unresolved)", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("ratio / threshold (log): right of the line, the case clears its target")
    fig.tight_layout()
    return fig
