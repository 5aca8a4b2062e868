"""Table 1 / Fig. 2 / Fig. 3 analogues, rho selection, correlations and bound-check figures, drawn
from a ``summary.json``.

The command saves them as PNG beside the summary; the book calls the same functions on the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..results import figure_setup


VERDICT_COLORS = {"helps": "tab:green", "hurts": "tab:red", "indistinguishable": "tab:gray"}
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
                     "verdict": {"indistinguishable": "≈ baseline"}.get(row["verdict"], row["verdict"])})
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


def fig_comparison(summary: dict):
    """Left: test accuracy per arm with its 95 % interval. Right: the paired difference to the
    baseline per loss with its 95 % interval (colour: Holm verdict), and the paper's single-run
    differences per dataset (hollow marks) for scale."""
    plt = figure_setup()
    cmp = summary["analysis"]["comparison"]
    rows = cmp["differences"]
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 0.4 * len(rows) + 1.9), gridspec_kw={"width_ratios": [1, 1.3]})
    ax = axes[0]
    names = ["baseline"] + [r["arm"] for r in rows]
    for i, name in enumerate(names):
        iv = cmp["accuracy"][name]
        color = "black" if name == "baseline" else VERDICT_COLORS[rows[i - 1]["verdict"]]
        ax.errorbar(100 * iv["estimate"], i, xerr=[[100 * (iv["estimate"] - iv["lower"])],
                                                   [100 * (iv["upper"] - iv["estimate"])]], fmt="o", color=color, ms=4)
    ax.axvline(100 * summary["teacher"]["test_accuracy"], color="tab:blue", ls="--", lw=1, label="teacher")
    ax.axvspan(100 * cmp["accuracy"]["baseline"]["lower"], 100 * cmp["accuracy"]["baseline"]["upper"],
               color="black", alpha=0.08)
    ax.set_yticks(range(len(names)), [short(n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="test accuracy (%)", title=f"{len(cmp['seeds'])} seeds, 95 % t-intervals")
    ax.legend(fontsize=7, loc="lower left")
    ax = axes[1]
    paper = summary["paper"]
    base = next(r["values"] for r in paper["rows"] if r["arm"] == "baseline")
    marks = {"svhn": "s", "cifar10": "^", "cifar100": "D"}
    for i, row in enumerate(rows, start=1):
        d = row["difference"]
        ax.errorbar(100 * d["mean"], i, xerr=[[100 * (d["mean"] - d["low"])], [100 * (d["high"] - d["mean"])]],
                    fmt="o", color=VERDICT_COLORS[row["verdict"]], ms=5)
        for pr in paper["rows"]:
            if pr["arm"] == row["arm"]:
                for c, v, b in zip(paper["columns"][:3], pr["values"], base):
                    ax.scatter(v - b, i + 0.25, marker=marks[c], s=14, facecolors="none", edgecolors="tab:blue")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(1, len(rows) + 1), [short(r["arm"]) for r in rows], fontsize=8)
    ax.set_ylim(len(rows) + 2.2, 0.3)  # room for the legend under the last row
    for verdict, color in VERDICT_COLORS.items():
        ax.scatter([], [], c=color, s=16, label=f"ours: {verdict}")
    for c, m in marks.items():
        ax.scatter([], [], marker=m, s=14, facecolors="none", edgecolors="tab:blue", label=f"paper, {c}")
    ax.legend(fontsize=6, loc="lower right", ncol=2)
    ax.set(xlabel="accuracy − baseline (points)",
           title=f"paired difference, Holm-corrected at {cmp['alpha']}")
    fig.tight_layout()
    return fig


def fig_selection(summary: dict):
    """Validation accuracy over the rho grid, per loss (points: selection seeds; line: their mean;
    ring: the selected rho), with the CE-only student's validation accuracy (dashed)."""
    plt = figure_setup()
    grid = {m: v for m, v in summary["validation_grid"].items() if v}
    base = [r["val_accuracy"] for r in summary["curves"]["runs"] if r["rho"] == 0]
    cols = 4
    nrows = max(1, int(np.ceil(len(grid) / cols)))
    fig, axes = plt.subplots(nrows, cols, figsize=(8.5, 2.2 * nrows + 0.5), squeeze=False, sharey=True)
    for ax, (m, pts) in zip(axes.flat, grid.items()):
        rho = np.array([p["rho"] for p in pts])
        acc = 100 * np.array([p["val_accuracy"] for p in pts])
        ax.scatter(rho, acc, s=10, c="tab:orange", alpha=0.7)
        grid_rhos = sorted(set(rho.tolist()))
        ax.plot(grid_rhos, [acc[rho == r].mean() for r in grid_rhos], "-", color="tab:orange", lw=1)
        sel = summary["selection"][m]["rho"]
        ax.scatter([sel], [acc[rho == sel].mean()], s=60, facecolors="none", edgecolors="black")
        if base:
            ax.axhline(100 * np.mean(base), color="black", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks(grid_rhos, [f"{r:g}" for r in grid_rhos])
        ax.minorticks_off()
        ax.set_title(short(m), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(grid):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("validation acc. (%)", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("ρ (λ = ρ · CE₀ / D₀)", fontsize=7)
    fig.suptitle("ρ selection on validation data (dashed: CE-only student; ring: selected)", fontsize=9)
    fig.tight_layout()
    return fig


def fig_sweep(summary: dict):
    """Fig. 2 analogue: training CE, distance D and validation accuracy per epoch for each rho of
    the grid, one loss, one selection seed, with the CE-only student."""
    plt = figure_setup()
    curves = summary["curves"]
    fig, axes = plt.subplots(1, 3, figsize=(8.5, 3.0))
    cmap = plt.get_cmap("viridis")
    runs = curves["runs"]
    for i, run in enumerate(runs):
        epochs = [h["epoch"] for h in run["history"]]
        label = "CE only (λ = 0)" if run["rho"] == 0 else f"ρ = {run['rho']:g}"
        color = "black" if run["rho"] == 0 else cmap(i / max(1, len(runs) - 1))
        axes[0].plot(epochs, [h["train_ce"] for h in run["history"]], "-", color=color, label=label, lw=1)
        if run["rho"] > 0:
            axes[1].plot(epochs, [h["train_distance"] for h in run["history"]], "-", color=color, lw=1)
        axes[2].plot(epochs, [100 * h["val_accuracy"] for h in run["history"]], "-", color=color, lw=1)
    axes[0].set(title="classification loss (train CE)", xlabel="epoch", yscale="log")
    axes[1].set(title="distillation loss D (train)", xlabel="epoch", yscale="log")
    axes[2].set(title="validation accuracy (%)", xlabel="epoch")
    lo = min(100 * h["val_accuracy"] for run in runs for h in run["history"][len(run["history"]) // 3:])
    axes[2].set_ylim(max(0, lo - 2), 100)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{curves['metric']}, seed {curves['seed']}: λ = ρ · CE₀ / D₀", fontsize=9)
    fig.tight_layout()
    return fig


def fig_correlations(summary: dict):
    """Spearman's rho (95 % Fisher-z interval) between held-out error and, per loss, its own
    held-out distance; and, pooled over every trained student, each Theorem 3.1 term."""
    plt = figure_setup()
    cor = summary["analysis"]["correlations"]
    items = [(f"own D: {short(m)}", v) for m, v in cor["own_distance"].items()]
    items += [(f"pooled: {TERMS.get(k, k)}", v) for k, v in cor["bound_terms"].items()]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(items) + 1.2))
    for i, (name, v) in enumerate(items):
        color = "tab:purple" if name.startswith("own") else "tab:blue"
        ax.errorbar(v["rho"], i, xerr=[[v["rho"] - v["low"]], [v["high"] - v["rho"]]], fmt="o", color=color, ms=4)
        ax.text(1.02, i, f"n = {v['n']}", fontsize=6, va="center", transform=ax.get_yaxis_transform())
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(items)), [n for n, _ in items], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(-1, 1), xlabel="Spearman ρ with the held-out error (95 % interval)")
    fig.tight_layout()
    return fig


def fig_features(summary: dict, arms=None):
    """Fig. 3 analogue: teacher and student held-out features on the teacher's first two principal
    axes, before distillation (the untrained student) and after, for the baseline and each loss."""
    plt = figure_setup()
    proj = summary["projection"]
    teacher = np.asarray(proj["teacher"]["points"])
    panels = [("before: untrained student", proj["init"])]
    names = arms or list(proj["students"])
    panels += [("after: " + short(a), proj["students"][a]) for a in names]
    cols = min(5, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.5 * rows), squeeze=False)
    lim = np.abs(teacher).max() * 1.6
    for ax, (title, pts) in zip(axes.flat, panels):
        pts = np.asarray(pts)
        ax.scatter(teacher[:, 0], teacher[:, 1], s=4, c="tab:blue", alpha=0.6, label="teacher")
        ax.scatter(pts[:, 0], pts[:, 1], s=4, c="tab:orange", alpha=0.6, label="student")
        ax.set_title(title, fontsize=7)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="lower left")
    fig.suptitle("held-out features, PCA of the teacher's (same axes in every panel)", fontsize=9)
    fig.tight_layout()
    return fig


def fig_bounds(summary: dict):
    """Hybrid-vs-teacher CE gap against three bound terms, one point per run (student or untrained):
    the class-conditional and coupling bounds must hold (points under y = x); the marginal form may not."""
    plt = figure_setup()
    rows = summary["bounds"]
    gap = np.array([r["gap_subsample"] for r in rows])
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.3))
    terms = (("L_w1_conditional", "L Σ p_c W1(class c)  [must hold]"),
             ("L_coupling", "L E‖φS − φT‖  [must hold]"),
             ("L_w1_marginal", "L W1(marginals)  [may fail]"))
    kinds = np.array(["init" if r["arm"] == "init" else "baseline" if r["arm"] == "baseline" else "KD" for r in rows])
    colors = {"init": "tab:gray", "baseline": "black", "KD": "tab:orange"}
    for ax, (key, label) in zip(axes, terms):
        x = np.array([r[key] for r in rows])
        for kind, color in colors.items():
            sel = kinds == kind
            if sel.any():
                ax.scatter(x[sel], gap[sel], s=14, c=color, label=kind, alpha=0.8)
        pos = np.concatenate([x[x > 0], gap[gap > 0]])
        lo, hi = (pos.min() / 2, pos.max() * 2) if len(pos) else (1e-3, 1)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel=label,
               ylabel="|CE(h_T φ_S) − CE(h_T φ_T)|")
    axes[0].legend(fontsize=7)
    ax = axes[3]
    for arm, curve in summary["margin_curves"].items():
        line, = ax.plot(curve["gammas"], curve["bound"], lw=1, label=arm if arm in ("init", "baseline") else None)
        ax.axhline(curve["hybrid_error"], color=line.get_color(), lw=0.6, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="γ", ylabel="margin bound (dotted: Err(h_T φ_S))",
           title="P(m_T ≤ γ) + L_m E‖Δφ‖ / γ", ylim=(1e-3, 10))
    ax.legend(fontsize=7)
    fig.suptitle("Theorem 3.1 on held-out data (subsample means; one point per run)", fontsize=9)
    fig.tight_layout()
    return fig


def fig_terms(summary: dict):
    """Distribution terms per arm (first seed): marginal and class-conditional W1, the null W1 of two
    disjoint teacher samples (the plug-in bias floor), and the mean coupling distance."""
    plt = figure_setup()
    s0 = summary["seeds"][0]
    rows = [r for r in summary["bounds"] if r["seed"] == s0]
    names = ["untrained" if r["arm"] == "init" else short(r["metric"] or r["arm"]) for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 3.4))
    for k, (key, label) in enumerate((("w1_marginal", "W1 marginal"), ("w1_conditional", "W1 class-conditional"),
                                      ("coupling_mean", "E‖φS − φT‖"), ("w1_null", "W1(teacher, teacher′) null"))):
        ax.bar(x + (k - 1.5) * 0.2, [r[key] for r in rows], width=0.2, label=label)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=7)
    ax.set(yscale="log", ylabel="Euclidean, feature units", title=f"distribution and coupling terms (seed {s0})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig_kernel_head(summary: dict):
    """Left: the kernel-head form of Lemma 1 per run: the gap |E_S l - E_T l|, the bound
    sum_c ||g_c||^2 MMD_k and the trivial bound sum_c ||g_c||^2. Right: every bound divided by the value
    it has to beat (chance log C for the hybrid CE, 1 for the hybrid error, the trivial bound for the
    kernel head): above 1 the bound says nothing."""
    plt = figure_setup()
    rows = summary["bounds"]
    kinds = ["init" if r["arm"] == "init" else "baseline" if r["arm"] == "baseline" else "KD" for r in rows]
    colors = {"init": "tab:gray", "baseline": "black", "KD": "tab:orange"}
    fig, axes = plt.subplots(1, 2, figsize=(7.3, 3.4))
    ax = axes[0]
    heads = [(i, r["kernel_head"], kinds[i]) for i, r in enumerate(rows) if r.get("kernel_head")]
    order = sorted(heads, key=lambda t: t[1]["bound"])
    x = np.arange(len(order))
    if order:
        ax.scatter(x, [h["trivial"] for _, h, _ in order], marker="s", s=18, facecolors="none",
                   edgecolors="tab:blue", label="trivial Σ‖g_c‖²")
        ax.scatter(x, [h["bound"] for _, h, _ in order], marker="^", s=18, c="tab:blue", label="Σ‖g_c‖² · MMD_k")
        ax.scatter(x, [max(h["gap"], 1e-300) for _, h, _ in order], s=14, c=[colors[k] for _, _, k in order],
                   label="gap |E_S ℓ − E_T ℓ|")
        ax.set_yscale("log")
    ax.set(xlabel="run (sorted by bound)", title="kernel-head Lemma 1 [must hold]", xticks=x if len(x) <= 12 else [])
    ax.legend(fontsize=7, loc="lower left")
    ax = axes[1]
    names = (("ce", "hybrid CE\n/ log C"), ("margin", "hybrid error\n/ 1"), ("kernel_head", "kernel head\n/ trivial"))
    for j, (key, _) in enumerate(names):
        pts = [(r["vacuity"][key]["bound"] / r["vacuity"][key]["trivial"], kinds[i]) for i, r in enumerate(rows)
               if key in r.get("vacuity", {}) and r["vacuity"][key]["trivial"] > 0]
        if not pts:
            continue
        jitter = np.linspace(-0.15, 0.15, len(pts)) if len(pts) > 1 else np.zeros(1)
        ax.scatter(j + jitter, [p for p, _ in pts], s=16, c=[colors[k] for _, k in pts], alpha=0.8)
    ax.axhline(1.0, color="tab:red", lw=1, ls="--")
    ax.text(-0.45, 1.0, "vacuous above", color="tab:red", fontsize=7, ha="left", va="bottom")
    ax.set_xticks(range(len(names)), [label for _, label in names], fontsize=8)
    ax.set(yscale="log", xlim=(-0.5, 2.5), ylabel="bound / what it must beat", title="vacuity, one point per run")
    for kind, color in colors.items():
        ax.scatter([], [], s=16, c=color, label=kind)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def save_all(summary: dict, out) -> list[Path]:
    """Write ``fig2_lambda_sweep.png``, ``fig3_features.png``, ``bounds.png``, ``terms.png``,
    ``kernel_head.png`` and (unless the gate failed) ``comparison.png``, ``selection.png`` and
    ``correlations.png`` to ``out``."""
    plt = figure_setup()
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
