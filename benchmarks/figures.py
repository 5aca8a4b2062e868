"""Figures of ``bench.json``: time against n, speed ratios against the peers, the Gaussian W2 grid, the
verdicts of the targets, relative error along the near-equality ladder, peak memory against n, and the
cost of each loss in a training step.

Each ``plot_*`` takes a part of the results file and returns a matplotlib figure. The book calls them
after :func:`verification.plotting.use_style` and shows them with :func:`verification.plotting.show`
(SVG, text kept as text); ``write_all`` saves them as PNGs next to the JSON under the same style.
Every figure is at most :data:`verification.plotting.WIDTH` inches wide, with at most two panels per
row and one legend below the panels: an implementation keeps one colour and one marker in every
figure, and the line style tells the second variable (d, or the dtype) apart.
"""

from __future__ import annotations

from pathlib import Path

from verification.plotting import COLORS, STYLE, WIDTH

#: Implementation -> (colour, marker, label in legends).
IMPLEMENTATIONS = {
    "ours": (COLORS[0], "o", "ours"),
    "ours_tol_1e-3": (COLORS[5], "D", "ours, tol 1e-3"),
    "pot": (COLORS[3], "s", "POT"),
    "geomloss": (COLORS[2], "^", "GeomLoss"),
    "geomloss_0.9": (COLORS[4], "v", "GeomLoss, scaling 0.9"),
    "naive": (COLORS[1], "X", "naive"),
}
PEERS = ("pot", "geomloss", "naive")
#: Verdict of a case -> (colour, marker, label).
VERDICTS = {"met": (COLORS[2], "o", "met ✓"), "missed": (COLORS[3], "X", "missed ✗"),
            "unresolved": (COLORS[1], "s", "unresolved (interval across the threshold)")}
PANEL_HEIGHT = 2.5  # inches per row of panels


def _style(name: str):
    return IMPLEMENTATIONS.get(name, (COLORS[-1], "d", name))


def _grid(k: int, height: float = PANEL_HEIGHT):
    """``k`` panels, two per row, the full width; the figure's legend goes below them."""
    import matplotlib.pyplot as plt

    cols = 2 if k > 1 else 1
    rows = (k + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH - 0.2, height * rows + 0.9), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _legend(fig, names, styles: dict[str, str] | None = None, ncol: int = 3) -> None:
    """One legend below the panels: a colour and marker per implementation, then a grey line per style."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=_style(n)[0], marker=_style(n)[1], ls="-", label=_style(n)[2]) for n in names]
    handles += [Line2D([], [], color="0.35", ls=ls, label=label) for label, ls in (styles or {}).items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)


def _plain_log_ticks(axis, label=lambda v: f"{v:g}") -> None:
    """Ticks of a log axis as plain numbers (0.5, 2, 300), not as powers of ten (or as ``label`` writes
    them)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: label(v)))
    axis.set_minor_formatter(NullFormatter())


def _readable_log_ticks(ax, which: str = "y", label=lambda v: f"{v:g}") -> None:
    """At least three ticks on a log axis over its current limits: powers of ten, else 1-2-5, else
    1-1.5-2-3-5-7 times them, whichever is the coarsest with three ticks in view. Call after plotting."""
    import math

    from matplotlib.ticker import FixedLocator

    axis = ax.yaxis if which == "y" else ax.xaxis
    lo, hi = sorted(ax.get_ylim() if which == "y" else ax.get_xlim())
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for subs in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [s * 10.0**k for k in decades for s in subs if lo <= s * 10.0**k <= hi]
        if len(ticks) >= 3:
            break
    axis.set_major_locator(FixedLocator(ticks))
    _plain_log_ticks(axis, label)


def _power(v: float) -> str:
    """1e-6, 0.001, 1, 1000, 1e5: full-size text (mathtext exponents would be 30 % smaller)."""
    return f"{v:g}" if 1e-3 <= v < 1e4 else f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def _seconds(v: float) -> str:
    return f"{v * 1e3:g} ms" if v < 0.1 else f"{v:g} s"


def _n_axis(ax, ns) -> None:
    """Log n axis with a tick at each measured n (64, 256, 1024, ...)."""
    ax.set_xscale("log")
    ticks = []
    for n in sorted(set(ns)):
        if not ticks or n >= 2 * ticks[-1]:  # labels that do not run together
            ticks.append(n)
    ax.set_xticks(ticks)
    _plain_log_ticks(ax.xaxis)


def _ordered(names) -> list[str]:
    names = set(names)
    return [n for n in IMPLEMENTATIONS if n in names] + sorted(names - set(IMPLEMENTATIONS))


def _against_n(rows: list[dict], value, tick_label, ylabel: str, by_d: dict[int, str] | None = None):
    """One log-scale panel per metric of ``value(row)`` against n, a line per implementation (and per
    feature size d in ``by_d``, with its line style)."""
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics):
        sel = [r for r in rows if r["metric"] == metric]
        for name in _ordered(r["implementation"] for r in sel):
            color, marker, _ = _style(name)
            for d, ls in (by_d or {None: "-"}).items():
                pts = sorted((r["n"], value(r)) for r in sel if r["implementation"] == name and d in (None, r["d"]))
                if pts:
                    ax.plot(*zip(*pts), ls=ls, color=color, marker=marker, ms=5)
        _n_axis(ax, [r["n"] for r in sel])
        ax.set_yscale("log")
        _readable_log_ticks(ax, label=tick_label)
        ax.set_title(metric)
        ax.set_xlabel("n")
    for ax in axes[::2]:
        ax.set_ylabel(ylabel)
    _legend(fig, _ordered(r["implementation"] for r in rows), by_d and {f"d = {d}": ls for d, ls in by_d.items()})
    return fig


def plot_speed(rows: list[dict], dtype: str = "float32"):
    """Median forward + backward time against n, one panel per metric; solid d = 512, dashed d = 64
    (the default ε only: the small-ε Sinkhorn cases are in the book's tables)."""
    rows = [r for r in rows if "median_s" in r and r["median_s"] is not None and r["dtype"] == dtype
            and r["d"] in (64, 512) and not r.get("relative_epsilon")]
    return _against_n(rows, lambda r: r["median_s"], _seconds, "forward + backward", {512: "-", 64: "--"})


def plot_ratios(rows: list[dict], dtype: str = "float32"):
    """Ratio time of the peer / time of ours against n with its bootstrap 95 % interval, one panel per
    metric (d = 512 solid, d = 64 dashed; above the black line at 1, ours is faster)."""
    rows = [r for r in rows if "ratio_ci95" in r and r["dtype"] == dtype and r["implementation"] in PEERS
            and r["d"] in (64, 512) and not r.get("relative_epsilon") and r["n"] <= 1024]
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics):
        sel = [r for r in rows if r["metric"] == metric]
        for name in PEERS:
            color, marker, _ = _style(name)
            for d, ls, shift in ((512, "-", 1.05), (64, "--", 0.95)):
                pts = sorted((r["n"], r["ratio_to_ours"], *r["ratio_ci95"]) for r in sel
                             if r["implementation"] == name and r["d"] == d)
                if pts:
                    n, ratio, lo, hi = map(list, zip(*pts))
                    n = [v * shift for v in n]  # side by side, so the intervals do not overlap
                    ax.errorbar(n, ratio, yerr=[[r - a for r, a in zip(ratio, lo)], [b - r for r, b in zip(ratio, hi)]],
                                ls=ls, color=color, marker=marker, ms=5, capsize=2)
        ax.axhline(1.0, color="black", lw=1)
        _n_axis(ax, [r["n"] for r in sel])
        ax.set_yscale("log")
        _readable_log_ticks(ax)
        ax.set_title(metric)
        ax.set_xlabel("n")
    for ax in axes[::2]:
        ax.set_ylabel("peer time / our time")
    _legend(fig, [p for p in PEERS if any(r["implementation"] == p for r in rows)],
            {"d = 512": "-", "d = 64": "--"})
    fig.suptitle(f"{dtype}: above 1, ours is faster; bars: 95 % interval")
    return fig


def ratio_text(v: float) -> str:
    """A ratio for reading: 2530, 448, 37.4, 1.27, 0.302 (no powers of ten)."""
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def plot_gaussian_grid(rows: list[dict]):
    """Gaussian W2, float32: time of POT / time of ours over the n x d grid (log colour scale). Above the
    diagonal n < d (ours works in the n x n Gram space), below it n > d. The intervals are in the book's
    table under the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    sel = {(r["n"], r["d"]): r for r in rows if r["metric"] == "gaussian_wasserstein" and r["implementation"] == "pot"
           and r["dtype"] == "float32" and "ratio_to_ours" in r}
    ns, ds = sorted({n for n, _ in sel}), sorted({d for _, d in sel})
    fig, ax = plt.subplots(figsize=(WIDTH - 0.4, 0.55 * len(ds) + 1.6), layout="constrained")
    grid = [[sel[(n, d)]["ratio_to_ours"] if (n, d) in sel else float("nan") for n in ns] for d in ds]
    norm = LogNorm(vmin=1 / 30, vmax=30)
    image = ax.imshow(grid, origin="lower", cmap="RdBu", norm=norm, aspect="auto")
    for i, d in enumerate(ds):
        for j, n in enumerate(ns):
            if (n, d) in sel:
                v = sel[(n, d)]["ratio_to_ours"]
                dark = abs(norm(v) - 0.5) > 0.3
                ax.text(j, i, ratio_text(v), ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(len(ns)), [str(n) for n in ns])
    ax.set_yticks(range(len(ds)), [str(d) for d in ds])
    ax.grid(False)
    ax.set_xlabel("n (samples per cloud)")
    ax.set_ylabel("d (features)")
    bar = fig.colorbar(image, ax=ax, label="POT time / our time")
    _plain_log_ticks(bar.ax.yaxis)
    ax.set_title("Blue: ours faster; red: POT faster; blank: not measured")
    return fig


def target_label(k: int) -> str:
    """The short name of the k-th target (0-based) in the figure and the book's table: T1, T2, ..."""
    return f"T{k + 1}"


def plot_targets(targets: list[dict]):
    """Every case of every target, one row per target: its ratio over the target's threshold with its
    interval (1 = exactly the threshold; right of it the case clears it). Colour and marker: met, missed,
    unresolved. Rows are named T1, T2, ... as in the book's table of targets."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH - 0.2, 0.6 * len(targets) + 1.4), layout="constrained")
    for k, t in enumerate(targets):
        need = t["needs_ratio_at_least"]
        cases = sorted((c for c in t["per_case"] if c["interval"] is not None), key=lambda c: c["ratio"])
        offsets = [0.0] if len(cases) == 1 else [-0.25 + 0.5 * i / (len(cases) - 1) for i in range(len(cases))]
        if k:
            ax.axhline(k - 0.5, color="0.8", lw=0.8)
        for c, off in zip(cases, offsets):
            color, marker, _ = VERDICTS[c["verdict"]]
            lo, hi = (v / need for v in c["interval"])
            ax.plot([lo, hi], [k + off] * 2, color=color, lw=1.5, ls="-")
            ax.plot(c["ratio"] / need, k + off, marker=marker, color=color, ms=5, ls="none")
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    _readable_log_ticks(ax, "x")
    ax.set_yticks(range(len(targets)), [f"{target_label(k)} {'✓' if t['verdict'] == 'met' else '✗'}"
                                        for k, t in enumerate(targets)])
    ax.set_ylim(len(targets) - 0.5, -0.5)
    ax.grid(True, axis="x", which="major")
    ax.grid(False, axis="y")
    ax.set_xlabel("ratio / threshold: right of the line, the case clears its target")
    from matplotlib.lines import Line2D

    fig.legend(handles=[Line2D([], [], color=c, marker=m, label=label) for c, m, label in VERDICTS.values()],
               loc="outside lower center", ncol=2, frameon=False)
    return fig


def plot_accuracy(rows: list[dict], cases=None):
    """Relative error against the oracle along the ladder, one panel per case; solid float32, dashed
    float64, thin grey lines: the unit roundoff of each."""
    from matplotlib.ticker import LogLocator

    cases = cases or list(dict.fromkeys(r["case"] for r in rows))
    fig, axes = _grid(len(cases), height=PANEL_HEIGHT + 0.2)
    for ax, case in zip(axes, cases):
        sel = [r for r in rows if r["case"] == case]
        for name in _ordered(r["implementation"] for r in sel):
            color, marker, _ = _style(name)
            for dtype, ls in (("float32", "-"), ("float64", "--")):
                pts = [(r["delta"], max(r["rel_error"], 1e-18)) for r in sel
                       if r["implementation"] == name and r["dtype"] == dtype and r["rel_error"] is not None]
                if pts:
                    ax.plot(*zip(*pts), ls=ls, color=color, marker=marker, ms=4)
        for u, ls in ((2.0**-24, "-"), (2.0**-53, "--")):
            ax.axhline(u, color="0.5", lw=0.8, ls=ls)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=100.0))
        ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=5))
        _plain_log_ticks(ax.xaxis, _power)
        _plain_log_ticks(ax.yaxis, _power)
        ax.invert_xaxis()
        ax.set_title(f"{case}\n{sel[0]['inputs']}", fontsize=10)
        ax.set_xlabel(r"$\delta$ (teacher moved by $\delta$)")
    for ax in axes[::2]:
        ax.set_ylabel("relative error")
    names = _ordered(r["implementation"] for r in rows if r["case"] in cases)
    _legend(fig, names, {"float32": "-", "float64": "--"})
    return fig


def plot_memory(memory: dict, d: int = 512):
    """Peak memory of forward + backward above the inputs against n (feature size ``d``, float32), one panel
    per metric. A peak of 0 (below the resolution of the measurement) is left out of the log scale."""
    rows = [r for r in memory["rows"] if r.get("peak_bytes", 0) > 0 and r["d"] == d]
    return _against_n(rows, lambda r: r["peak_bytes"] / 2**20, _power, "peak MiB")


def step_order(rows: list[dict]) -> list[str]:
    """Keys by cost: the largest fraction over batch sizes, descending; keys that only errored last."""
    keys = list(dict.fromkeys(r["metric"] for r in rows))
    worst = {k: max((r["fraction"] for r in rows if r["metric"] == k and "fraction" in r), default=-1.0) for k in keys}
    return sorted(keys, key=lambda k: -worst[k])


def plot_step_cost(result: dict):
    """Time of each distillation term as a fraction of a ResNet-18 training step (log scale), one marker
    per batch size, with bootstrap 95 % intervals (``result``: the ``step_cost`` part of bench.json)."""
    import matplotlib.pyplot as plt

    rows = result["rows"]
    keys = step_order(rows)
    batches = sorted({r["batch"] for r in rows})
    fig, ax = plt.subplots(figsize=(WIDTH - 0.2, 0.3 * len(keys) + 1.5), layout="constrained")
    offsets = [0.0] if len(batches) == 1 else [-0.25 + 0.5 * i / (len(batches) - 1) for i in range(len(batches))]
    for i, (b, off) in enumerate(zip(batches, offsets)):
        sel = [r for r in rows if r["batch"] == b and "fraction" in r]
        frac = [r["fraction"] for r in sel]
        lo = [f - r["fraction_ci95"][0] for f, r in zip(frac, sel)]
        hi = [r["fraction_ci95"][1] - f for f, r in zip(frac, sel)]
        ax.errorbar(frac, [keys.index(r["metric"]) + off for r in sel], xerr=[lo, hi], ls="none",
                    marker="osD^v"[i % 5], color=COLORS[i % len(COLORS)], ms=5, capsize=2, label=f"B = {b}")
    ax.axvline(1.0, color="black", ls="--", lw=1, label="one whole step")
    labels = []
    for k in keys:
        failed = [str(r["batch"]) for r in rows if r["metric"] == k and "error" in r]
        labels.append(k + (f" (error at B = {', '.join(failed)})" if failed else ""))
    ax.set_yticks(range(len(keys)), labels)
    ax.set_ylim(len(keys) - 0.5, -0.5)
    ax.set_xscale("log")
    highest = max((r["fraction_ci95"][1] for r in rows if "fraction" in r), default=1.0)
    ax.set_xlim(right=max(2.0, 1.5 * highest))
    _readable_log_ticks(ax, "x", label=_power)
    ax.grid(True, axis="x", which="major")
    ax.grid(False, axis="y")
    ax.set_xlabel("time of the term / time of one training step")
    fig.legend(loc="outside lower center", ncol=len(batches) + 1, frameon=False)
    return fig


def write_all(result: dict, out: Path) -> list[Path]:
    """Every figure of ``result`` as a PNG in ``out``, drawn in the book's style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    with plt.rc_context(STYLE):
        for name, key, plot in (("speed.png", "speed", plot_speed), ("ratios.png", "speed", plot_ratios),
                                ("gaussian_grid.png", "speed", plot_gaussian_grid),
                                ("targets.png", "targets", plot_targets), ("accuracy.png", "accuracy", plot_accuracy),
                                ("memory.png", "memory", plot_memory), ("step_cost.png", "step_cost", plot_step_cost)):
            if key in result:
                fig = plot(result[key])
                fig.savefig(out / name, dpi=110, bbox_inches="tight")
                plt.close(fig)
                written.append(out / name)
    return written
