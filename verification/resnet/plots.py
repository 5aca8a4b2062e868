"""Table 1 / Fig. 2 / Fig. 3 analogues, rho selection, correlations and bound-check figures, drawn
from a ``summary.json``.

Every ``fig_*`` function returns a figure in the book's style (:mod:`verification.plotting`: at most
:data:`verification.plotting.WIDTH` inches wide, fonts of at least 10 pt, at most two panels per row,
legends outside the data). The command saves them as PNG beside the summary (:func:`save_all`); the
book draws the same figures from the file and shows them with :func:`verification.plotting.show`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plotting import COLORS, LINESTYLES, WIDTH, use_style
from ..results import figure_setup
from .analysis import MIN_RUNS

#: Colours of the Holm verdicts (Okabe-Ito green and vermilion; grey for "indistinguishable").
VERDICT_COLORS = {"helps": "#009E73", "hurts": "#D55E00", "indistinguishable": "#777777"}
#: Display names of the losses (tables and figures); the keys are those of ``train.LOSSES``.
SHORT = {"baseline": "CE only", "wasserstein": "W₂² empirical", "class_conditional_wasserstein": "class-cond. W₂²",
         "joint_wasserstein": "joint W₂²", "gaussian_wasserstein": "Gaussian W₂²", "gaussian_kl": "Gaussian KL",
         "class_conditional_gaussian_wasserstein": "class-cond. Gaussian W₂²", "mmd": "MMD²", "hinton_kd": "Hinton KD",
         "teacher": "teacher"}


#: Display names of the Theorem 3.1 terms correlated with the error.
TERMS = {"w1_marginal": "W1 marginal", "w1_conditional": "Σ p_c W1 class c", "coupling_mean": "E‖φS − φT‖",
         "mmd": "MMD", "kernel_head_bound": "kernel-head bound", "margin_bound": "margin bound"}


def short(arm: str) -> str:
    return SHORT.get(arm, arm)


def _pm(iv: dict) -> str:
    return f"{100 * iv['estimate']:.2f} ± {100 * (iv['upper'] - iv['lower']) / 2:.2f}"


def table_rows(summary: dict) -> list[dict]:
    """Our Table 1: per arm, the selected rho, test accuracy (%) ± the half-width of its 95 %
    t-interval over the evaluation seeds, the paired difference to the baseline (points) ± its
    half-width, the Holm-corrected p-value and the verdict."""
    cmp = summary["analysis"]["comparison"]
    acc = cmp["accuracy"]
    rows = [{"arm": f"teacher (ResNet-{summary['recipe']['teacher_depth']})", "ρ": "",
             "accuracy (%)": f"{100 * summary['teacher']['test_accuracy']:.2f}", "Δ (points)": "", "p (Holm)": "",
             "verdict": "one run"},
            {"arm": "CE only", "ρ": "", "accuracy (%)": _pm(acc["baseline"]), "Δ (points)": "", "p (Holm)": "",
             "verdict": ""}]
    for row in cmp["differences"]:
        d = row["difference"]
        rows.append({"arm": short(row["arm"]), "ρ": f"{row['rho']:g}", "accuracy (%)": _pm(acc[row["arm"]]),
                     "Δ (points)": f"{100 * d['mean']:+.2f} ± {100 * (d['high'] - d['low']) / 2:.2f}",
                     "p (Holm)": f"{row['p_holm']:.2g}",
                     "verdict": {"indistinguishable": "≈\u00a0baseline"}.get(row["verdict"], row["verdict"])})
    return rows


def paper_rows(summary: dict) -> list[dict]:
    """The paper's Table 1 beside ours: its accuracy per dataset with its difference to its student,
    and our paired difference (points); the row-to-loss mapping is an inference (``paper.mapping``)."""
    paper = summary["paper"]
    cols = paper["columns"][:3]
    base = next(r["values"] for r in paper["rows"] if r["arm"] == "baseline")
    ours = {r["arm"]: r for r in summary["analysis"]["comparison"]["differences"]}
    rows = []
    for r in paper["rows"]:
        row = {"our loss (inferred)": short(r["arm"]), "paper row": r["paper_row"]}
        for c, v, b in zip(cols, r["values"], base):
            row[c] = f"{v:.2f}" + ("" if r["arm"] in ("baseline", "teacher") else f" ({v - b:+.2f})")
        o = ours.get(r["arm"])
        row["ours: Δ"] = "" if o is None else f"{100 * o['difference']['mean']:+.2f}"
        rows.append(row)
    return rows


def verdict_sentence(summary: dict) -> str:
    """The comparison in words: which losses help, hurt, or are indistinguishable from the baseline."""
    if not summary.get("analysis"):
        g = summary["gate"]
        return (f"The teacher beat the baseline by {100 * g['gap']:.2f} points on validation data, short of the "
                f"required {100 * g['margin']:.1f}: no distilled student was trained and nothing is concluded.")
    cmp = summary["analysis"]["comparison"]
    groups = {v: [r for r in cmp["differences"] if r["verdict"] == v] for v in ("helps", "hurts", "indistinguishable")}

    def names(rows):
        return ", ".join(f"{short(r['arm'])} ({100 * r['difference']['mean']:+.2f})" for r in rows)

    n = len(cmp["seeds"])
    parts = []
    if groups["helps"]:
        parts.append(f"help: {names(groups['helps'])}")
    if groups["hurts"]:
        parts.append(f"hurt: {names(groups['hurts'])}")
    if groups["indistinguishable"]:
        parts.append(f"are indistinguishable from the baseline: {names(groups['indistinguishable'])}")
    gate = "" if summary["gate"]["applied"] else " (the gate is not applied in this profile)"
    return (f"Over {n} paired seeds, with Holm's correction at {cmp['alpha']:g} over {len(cmp['differences'])} "
            f"losses, the losses that " + "; those that ".join(parts) + f" (mean difference in points){gate}.")


def correlation_sentence(summary: dict) -> str:
    """The rank correlations in words: which intervals exclude zero, and with which sign."""
    cor = summary["analysis"]["correlations"]

    def describe(items):
        pos = [k for k, v in items if v["low"] > 0]
        neg = [k for k, v in items if v["high"] < 0]
        none = [k for k, v in items if v["low"] <= 0 <= v["high"]]
        out = []
        if pos:
            out.append("a larger distance goes with a larger error for " + ", ".join(pos))
        if neg:
            out.append("a larger distance goes with a *smaller* error for " + ", ".join(neg))
        if none:
            out.append("the interval contains 0 for " + ", ".join(none))
        return "; ".join(out)

    own = describe([(short(k), v) for k, v in cor["own_distance"].items()])
    terms = describe([(TERMS.get(k, k), v) for k, v in cor["bound_terms"].items()])
    return (f"Per loss, own distance against test error: {own or 'no loss had enough runs'}. Pooled over every "
            f"trained student, Theorem 3.1's terms against test error: {terms or 'no terms'}.")


def _pyplot():
    """pyplot with the book's style (:mod:`verification.plotting`): fonts of at least 10 pt."""
    plt = figure_setup()
    use_style()
    return plt


#: Markers of the series drawn with :func:`_series_style` (ten distinct ones).
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def _series_style(i: int) -> dict:
    """Colour, line style and marker of the i-th of up to ten series: no two alike (as the book's cycle,
    :data:`verification.plotting.CYCLE`, with a marker each)."""
    return {"color": COLORS[i % len(COLORS)], "ls": LINESTYLES[i % len(LINESTYLES)],
            "marker": _MARKERS[i % len(_MARKERS)]}


#: How a run is drawn in the bound figures: the untrained student, the CE-only student, a distilled one.
KIND_STYLE = {"untrained": {"color": "#999999", "marker": "x"}, "baseline": {"color": "#000000", "marker": "s"},
              "distilled": {"color": COLORS[1], "marker": "o"}}


def _plain_log(axis) -> None:
    """Ticks of a logarithmic axis at 1, 2 and 5 times powers of ten, written as plain numbers."""
    import matplotlib.ticker

    axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _kind(row: dict) -> str:
    return "untrained" if row["arm"] == "init" else "baseline" if row["arm"] == "baseline" else "distilled"


def _arm_label(arm: str) -> str:
    """A run name of ``margin_curves`` (``init``, ``baseline``, ``<metric>_rho<rho>``) for a legend."""
    if arm == "init":
        return "untrained"
    metric, _, rho = arm.rpartition("_rho")
    return short(metric) + f", ρ = {rho}" if metric else short(arm)


def fig_comparison(summary: dict):
    """Left: test accuracy per arm with its 95 % interval over the evaluation seeds (dashed: the
    teacher). Right: the paired difference to the baseline per loss with its 95 % interval (colour: the
    Holm verdict), and the paper's single-run differences per dataset (hollow marks) for scale."""
    plt = _pyplot()
    cmp = summary["analysis"]["comparison"]
    rows = cmp["differences"]
    names = ["baseline"] + [r["arm"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 0.36 * len(names) + 2.0), sharey=True, layout="constrained")
    ax = axes[0]
    ax.axvspan(100 * cmp["accuracy"]["baseline"]["lower"], 100 * cmp["accuracy"]["baseline"]["upper"],
               color="black", alpha=0.08)
    for i, name in enumerate(names):
        iv = cmp["accuracy"][name]
        color = "black" if name == "baseline" else VERDICT_COLORS[rows[i - 1]["verdict"]]
        ax.errorbar(100 * iv["estimate"], i, xerr=[[100 * (iv["estimate"] - iv["lower"])],
                                                   [100 * (iv["upper"] - iv["estimate"])]], fmt="o", color=color,
                    ms=6, capsize=2)
    ax.axvline(100 * summary["teacher"]["test_accuracy"], color=COLORS[0], ls="--", lw=1.5, label="teacher")
    ax.set_yticks(range(len(names)), [short(n) for n in names])
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set(xlabel="test accuracy (%)", title=f"{len(cmp['seeds'])} seeds, 95 % intervals")
    ax = axes[1]
    paper = summary["paper"]
    base = next(r["values"] for r in paper["rows"] if r["arm"] == "baseline")
    marks = {"svhn": "s", "cifar10": "^", "cifar100": "D"}
    for i, row in enumerate(rows, start=1):
        d = row["difference"]
        ax.errorbar(100 * d["mean"], i, xerr=[[100 * (d["mean"] - d["low"])], [100 * (d["high"] - d["mean"])]],
                    fmt="o", color=VERDICT_COLORS[row["verdict"]], ms=6, capsize=2)
        for pr in paper["rows"]:
            if pr["arm"] == row["arm"]:
                for c, v, b in zip(paper["columns"][:3], pr["values"], base):
                    ax.scatter(v - b, i + 0.28, marker=marks[c], s=28, facecolors="none", edgecolors=COLORS[0])
    ax.axvline(0, color="black", lw=1)
    ax.set(xlabel="accuracy − baseline (points)", title=f"paired difference, Holm at {cmp['alpha']:g}")
    handles = [axes[0].get_legend_handles_labels()[0][0]]
    labels = ["teacher (left)"]
    for verdict, color in VERDICT_COLORS.items():
        handles.append(ax.scatter([], [], c=color, s=30))
        labels.append(f"ours: {'≈ baseline' if verdict == 'indistinguishable' else verdict}")
    for c, m in marks.items():
        handles.append(ax.scatter([], [], marker=m, s=28, facecolors="none", edgecolors=COLORS[0]))
        labels.append(f"paper, {c}")
    fig.legend(handles, labels, loc="outside lower center", ncol=4)
    return fig


def fig_selection(summary: dict):
    """Validation accuracy over the rho grid, per loss (points: selection seeds; line: their mean;
    ring: the selected rho), with the CE-only student's validation accuracy (dashed); two panels a row."""
    plt = _pyplot()
    grid = {m: v for m, v in summary["validation_grid"].items() if v}
    base = [r["val_accuracy"] for r in summary["curves"]["runs"] if r["rho"] == 0]
    nrows = max(1, int(np.ceil(len(grid) / 2)))
    fig, axes = plt.subplots(nrows, 2, figsize=(WIDTH, 1.9 * nrows + 1.1), squeeze=False, sharey=True, sharex=True,
                             layout="constrained")
    for ax, (m, pts) in zip(axes.flat, grid.items()):
        rho = np.array([p["rho"] for p in pts])
        acc = 100 * np.array([p["val_accuracy"] for p in pts])
        grid_rhos = sorted(set(rho.tolist()))
        ax.scatter(rho, acc, s=18, color=COLORS[1], alpha=0.8, label="one selection seed")
        ax.plot(grid_rhos, [acc[rho == r].mean() for r in grid_rhos], "-", color=COLORS[1], lw=1.5,
                label="mean over seeds")
        sel = summary["selection"][m]["rho"]
        ax.scatter([sel], [acc[rho == sel].mean()], s=110, facecolors="none", edgecolors="black", linewidths=1.5,
                   label="selected ρ")
        if base:
            ax.axhline(100 * np.mean(base), color="black", ls="--", lw=1.2, label="CE-only student")
        ax.set_xscale("log")
        ax.set_xticks(grid_rhos, [f"{r:g}" for r in grid_rhos])
        ax.minorticks_off()
        ax.set_title(short(m))
    for ax in list(axes.flat)[len(grid):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("validation acc. (%)")
    for ax in axes[-1]:
        ax.set_xlabel("ρ (λ = ρ · CE₀ / D₀)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4)
    return fig


def fig_sweep(summary: dict):
    """Fig. 2 analogue: training CE, distance D and validation accuracy per epoch for each rho of
    the grid, one loss, one selection seed, with the CE-only student (two panels a row; the legend in
    the fourth cell)."""
    plt = _pyplot()
    curves = summary["curves"]
    runs = curves["runs"]
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH, 5.6), layout="constrained")
    axes = axes.ravel()
    for i, run in enumerate(runs):
        epochs = [h["epoch"] for h in run["history"]]
        label = "CE only (λ = 0)" if run["rho"] == 0 else f"ρ = {run['rho']:g}"
        style = {"color": "black", "ls": "-"} if run["rho"] == 0 else {
            k: v for k, v in _series_style(i - 1).items() if k != "marker"}
        axes[0].plot(epochs, [h["train_ce"] for h in run["history"]], lw=1.5, label=label, **style)
        if run["rho"] > 0:
            axes[1].plot(epochs, [h["train_distance"] for h in run["history"]], lw=1.5, **style)
        axes[2].plot(epochs, [100 * h["val_accuracy"] for h in run["history"]], lw=1.5, **style)
    axes[0].set(title="classification loss (train CE)", xlabel="epoch", yscale="log")
    axes[1].set(title="distillation loss D (train)", xlabel="epoch", yscale="log")
    axes[2].set(title="validation accuracy (%)", xlabel="epoch")
    for ax in axes[:2]:
        _plain_log(ax.yaxis)
    lo = min(100 * h["val_accuracy"] for run in runs for h in run["history"][len(run["history"]) // 3:])
    axes[2].set_ylim(max(0, lo - 2), 100)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[3].axis("off")
    axes[3].legend(handles, labels, loc="center", title=f"{short(curves['metric'])}, seed {curves['seed']}")
    return fig


def fig_correlations(summary: dict):
    """Spearman's rho (95 % Fisher-z interval) between held-out error and, per loss, its own
    held-out distance; and, pooled over every trained student, each Theorem 3.1 term."""
    plt = _pyplot()
    cor = summary["analysis"]["correlations"]
    items = [(f"own D: {short(m)}", v, "own") for m, v in cor["own_distance"].items()]
    items += [(f"pooled: {TERMS.get(k, k)}", v, "pooled") for k, v in cor["bound_terms"].items()]
    fig, ax = plt.subplots(figsize=(WIDTH, 0.32 * len(items) + 1.6), layout="constrained")
    style = {"own": ("o", COLORS[4]), "pooled": ("s", COLORS[0])}
    for i, (name, v, kind) in enumerate(items):
        marker, color = style[kind]
        ax.errorbar(v["rho"], i, xerr=[[v["rho"] - v["low"]], [v["high"] - v["rho"]]], fmt=marker, color=color,
                    ms=6, capsize=2)
        ax.text(1.02, i, f"n = {v['n']}", va="center", transform=ax.get_yaxis_transform())
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(range(len(items)), [n for n, _, _ in items])
    ax.set_ylim(max(len(items), 1) - 0.5, -0.5)
    if not items:
        ax.text(0, 0, f"fewer than {MIN_RUNS} runs per correlation", ha="center", va="center")
    ax.set(xlim=(-1, 1), xlabel="Spearman ρ with the held-out error (95 % interval)")
    return fig


def fig_features(summary: dict, arms=None):
    """Fig. 3 analogue: teacher and student held-out features on the teacher's first two principal
    axes, before distillation (the untrained student) and after, for the baseline and each loss; two
    panels a row, the same axes in every panel."""
    plt = _pyplot()
    proj = summary["projection"]
    teacher = np.asarray(proj["teacher"]["points"])
    panels = [("untrained student", proj["init"])]
    names = arms or list(proj["students"])
    panels += [(short(a), proj["students"][a]) for a in names]
    rows = int(np.ceil(len(panels) / 2))
    fig, axes = plt.subplots(rows, 2, figsize=(WIDTH, 2.1 * rows + 0.6), squeeze=False, sharex=True, sharey=True,
                             layout="constrained")
    every = np.concatenate([teacher] + [np.asarray(pts) for _, pts in panels])
    lo, hi = np.percentile(every, 0.5, axis=0), np.percentile(every, 99.5, axis=0)
    pad = 0.08 * (hi - lo)
    for ax, (title, pts) in zip(axes.flat, panels):
        pts = np.asarray(pts)
        ax.scatter(teacher[:, 0], teacher[:, 1], s=6, color=COLORS[0], alpha=0.5, marker="o", linewidths=0,
                   label="teacher")
        ax.scatter(pts[:, 0], pts[:, 1], s=8, color=COLORS[1], alpha=0.6, marker="^", linewidths=0, label="student")
        ax.set_title(title)
        ax.set(xlim=(lo[0] - pad[0], hi[0] + pad[0]), ylim=(lo[1] - pad[1], hi[1] + pad[1]), xticks=[], yticks=[])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, markerscale=2.5)
    return fig


def fig_bounds(summary: dict):
    """Hybrid-vs-teacher CE gap against three bound terms, one point per run (student or untrained):
    the class-conditional and coupling bounds must hold (points under y = x); the marginal form may not.
    Fourth panel: the margin bound as a function of gamma per run of the first seed (dotted: the
    hybrid's error, which every curve must stay above)."""
    plt = _pyplot()
    rows = summary["bounds"]
    gap = np.array([r["gap_subsample"] for r in rows])
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH, 7.4), layout="constrained")
    axes = axes.ravel()
    terms = (("L_w1_conditional", r"$L\,\Sigma_c\,p_c W_1$(class $c$), must hold"),
             ("L_coupling", r"$L\,\mathrm{E}\|\phi_S-\phi_T\|$, must hold"),
             ("L_w1_marginal", r"$L\,W_1$(marginals), may fail"))
    kinds = np.array([_kind(r) for r in rows])
    for ax, (key, label) in zip(axes, terms):
        x = np.array([r[key] for r in rows])
        for kind, style in KIND_STYLE.items():
            sel = kinds == kind
            if sel.any():
                ax.scatter(x[sel], gap[sel], s=22, label=kind, alpha=0.8, **style)
        pos = np.concatenate([x[x > 0], gap[gap > 0]])
        lo, hi = (pos.min() / 2, pos.max() * 2) if len(pos) else (1e-3, 1)
        ax.plot([lo, hi], [lo, hi], color="black", ls="--", lw=1, label="y = x")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel=label)
        ax.set_ylabel(r"$|\mathrm{CE}(h_T\phi_S)-\mathrm{CE}(h_T\phi_T)|$")
    ax = axes[3]
    for i, (arm, curve) in enumerate(summary["margin_curves"].items()):
        style = _series_style(i)
        ax.plot(curve["gammas"], curve["bound"], lw=1.3, color=style["color"], ls=style["ls"], marker=style["marker"],
                ms=4, markevery=max(1, len(curve["gammas"]) // 6), label=_arm_label(arm))
        ax.axhline(curve["hybrid_error"], color=style["color"], lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="γ", ylabel="margin bound (axis cut at 10)", ylim=(1e-3, 10))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=4)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, title="margin bound (bottom right), per run")
    return fig


def fig_terms(summary: dict):
    """Distribution terms per arm (first seed): marginal and class-conditional W1, the null W1 of two
    disjoint teacher samples (the plug-in bias floor), and the mean coupling distance."""
    plt = _pyplot()
    s0 = summary["seeds"][0]
    rows = [r for r in summary["bounds"] if r["seed"] == s0]
    names = ["untrained" if r["arm"] == "init" else short(r["metric"] or r["arm"]) for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(WIDTH, 4.4), layout="constrained")
    hatches = (None, "//", "..", "xx")
    for k, (key, label) in enumerate((("w1_marginal", "$W_1$ marginal"), ("w1_conditional", "$W_1$ class-conditional"),
                                      ("coupling_mean", r"$\mathrm{E}\|\phi_S-\phi_T\|$"),
                                      ("w1_null", "$W_1$(teacher, teacher′), null"))):
        ax.bar(x + (k - 1.5) * 0.2, [r[key] for r in rows], width=0.2, label=label, color=COLORS[k],
               hatch=hatches[k], edgecolor="white", linewidth=0.5)
    ax.set_xticks(x, names, rotation=35, ha="right")
    values = [r[k] for r in rows for k in ("w1_marginal", "w1_conditional", "coupling_mean", "w1_null") if r[k] > 0]
    ax.set(yscale="log", ylabel="feature units", title=f"distribution and coupling terms, seed {s0}",
           ylim=(min(values) / 1.5, max(values) * 1.3))
    _plain_log(ax.yaxis)
    fig.legend(loc="outside lower center", ncol=2)
    return fig


def fig_kernel_head(summary: dict):
    """Left: the kernel-head form of Lemma 1 per run: the gap |E_S l - E_T l|, the bound
    sum_c ||g_c||^2 MMD_k and the trivial bound sum_c ||g_c||^2. Right: every bound divided by the value
    it has to beat (chance log C for the hybrid CE, 1 for the hybrid error, the trivial bound for the
    kernel head): above 1 the bound says nothing."""
    plt = _pyplot()
    rows = summary["bounds"]
    kinds = [_kind(r) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 4.4), layout="constrained")
    ax = axes[0]
    heads = [(i, r["kernel_head"], kinds[i]) for i, r in enumerate(rows) if r.get("kernel_head")]
    order = sorted(heads, key=lambda t: t[1]["bound"])
    x = np.arange(len(order))
    if order:
        ax.scatter(x, [h["trivial"] for _, h, _ in order], marker="s", s=20, facecolors="none",
                   edgecolors=COLORS[0], label=r"trivial $\Sigma_c\|g_c\|^2$")
        ax.scatter(x, [h["bound"] for _, h, _ in order], marker="^", s=20, color=COLORS[0],
                   label=r"bound $\Sigma_c\|g_c\|^2\,\mathrm{MMD}_k$")
        ax.scatter(x, [max(h["gap"], 1e-300) for _, h, _ in order], s=16, marker="o", color=COLORS[1],
                   label=r"gap $|\mathrm{E}_S\ell-\mathrm{E}_T\ell|$")
        ax.set_yscale("log")
    ax.set(xlabel="run (sorted by bound)", title="kernel-head Lemma 1", xticks=x if len(x) <= 12 else [])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1)
    ax = axes[1]
    names = (("ce", "hybrid CE\n/ log C"), ("margin", "hybrid error\n/ 1"), ("kernel_head", "kernel head\n/ trivial"))
    for j, (key, _) in enumerate(names):
        pts = [(r["vacuity"][key]["bound"] / r["vacuity"][key]["trivial"], kinds[i]) for i, r in enumerate(rows)
               if key in r.get("vacuity", {}) and r["vacuity"][key]["trivial"] > 0]
        if not pts:
            continue
        jitter = np.linspace(-0.18, 0.18, len(pts)) if len(pts) > 1 else np.zeros(1)
        for kind, style in KIND_STYLE.items():
            sel = [i for i, (_, k) in enumerate(pts) if k == kind]
            if sel:
                ax.scatter(j + jitter[sel], [pts[i][0] for i in sel], s=18, alpha=0.8, **style)
    ax.axhline(1.0, color="#D55E00", lw=1.2, ls="--")
    ax.text(2.45, 1.08, "vacuous above", color="#D55E00", ha="right", va="bottom")
    ax.set_xticks(range(len(names)), [label for _, label in names])
    ax.set(yscale="log", xlim=(-0.5, 2.5), ylabel="bound / what it must beat", title="vacuity, one point per run")
    handles = [ax.scatter([], [], s=18, **style) for style in KIND_STYLE.values()]
    ax.legend(handles, list(KIND_STYLE), loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3)
    return fig


def save_all(summary: dict, out) -> list[Path]:
    """Write ``fig2_lambda_sweep.png``, ``fig3_features.png``, ``bounds.png``, ``terms.png``,
    ``kernel_head.png`` and (unless the gate failed) ``comparison.png``, ``selection.png`` and
    ``correlations.png`` to ``out``."""
    plt = _pyplot()
    out = Path(out)
    paths = []
    figs = (("fig2_lambda_sweep", fig_sweep), ("fig3_features", fig_features), ("bounds", fig_bounds),
            ("terms", fig_terms), ("kernel_head", fig_kernel_head))
    if summary.get("analysis"):
        figs += (("comparison", fig_comparison), ("selection", fig_selection), ("correlations", fig_correlations))
    for name, fn in figs:
        fig = fn(summary)
        path = out / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
