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

    written = []
    for name, key, plot in (("speed.png", "speed", plot_speed), ("accuracy.png", "accuracy", plot_accuracy),
                            ("memory.png", "memory", plot_memory)):
        if key in result:
            fig = plot(result[key])
            fig.savefig(out / name, dpi=110, bbox_inches="tight")
            plt.close(fig)
            written.append(out / name)
    return written
