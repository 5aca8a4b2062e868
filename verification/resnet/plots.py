"""Table 1 / Fig. 2 / Fig. 3 analogues and bound-check figures, drawn from a ``summary.json``.

The command saves them as PNG beside the summary; the book calls the same functions on the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..results import figure_setup


def table_rows(summary: dict) -> list[dict]:
    """Table 1 analogue: accuracy (%) mean +- std over seeds per arm, the paired difference to the
    baseline, lambda, and the paper's numbers for the same dataset when it has them."""
    paper = summary["paper"].get(summary["paper"]["column"] or "", {})
    rows = []
    for row in summary["table"]:
        acc = row["accuracy"]
        d = row.get("delta_vs_baseline")
        ref = paper.get("teacher") if row["arm"] == "teacher" else paper.get("student") if row["arm"] == "baseline" \
            else paper.get("kd2m_about") if row.get("in_table1") else None
        rows.append({
            "arm": row["label"],
            "accuracy (%)": f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f}" if len(acc["values"]) > 1
            else f"{100 * acc['mean']:.2f}",
            "Δ vs baseline (points)": "" if d is None else f"{100 * d['mean']:+.2f} ± {100 * d['std']:.2f}",
            "λ (mean over seeds)": "" if not row.get("weight") or row["arm"] == "baseline"
            else f"{np.mean(row['weight']):.3g}",
            "in paper's Table 1": "yes" if row.get("in_table1") or row["arm"] in ("teacher", "baseline") else "no",
            "paper (%)": "" if ref is None else (f"≈ {ref:.1f}" if row["arm"] not in ("teacher", "baseline")
                                                 else f"{ref:.2f}"),
        })
    return rows


def fig_sweep(summary: dict):
    """Fig. 2 analogue: training CE, distance D and held-out accuracy per epoch for each rho."""
    plt = figure_setup()
    sweep = summary["sweep"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    cmap = plt.get_cmap("viridis")
    runs = sweep["runs"]
    for i, run in enumerate(runs):
        epochs = [h["epoch"] for h in run["history"]]
        label = "baseline (λ = 0)" if run["rho"] == 0 else f"ρ = {run['rho']:g} (λ = {run['weight']:.3g})"
        color = "black" if run["rho"] == 0 else cmap(i / max(1, len(runs) - 1))
        axes[0].plot(epochs, [h["train_ce"] for h in run["history"]], "o-", color=color, label=label, ms=3)
        if run["rho"] > 0:
            axes[1].plot(epochs, [h["train_distance"] for h in run["history"]], "o-", color=color, ms=3)
        axes[2].plot(epochs, [100 * h["test_accuracy"] for h in run["history"]], "o-", color=color, ms=3)
    axes[0].set(title="classification loss (train CE)", xlabel="epoch")
    axes[1].set(title=f"distillation loss D ({sweep['metric']}, train)", xlabel="epoch", yscale="log")
    axes[2].set(title="held-out accuracy (%)", xlabel="epoch")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"λ sweep, seed {sweep['seed']}: λ = ρ · CE₀ / D₀", fontsize=9)
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
    panels += [(("after: " + ("baseline, CE only" if a == "baseline" else a)), proj["students"][a]) for a in names]
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
    rows = [r for r in summary["bounds"] if r["seed"] == s0 and "_rho" not in r["arm"]]
    names = [r["arm"] for r in rows]
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
    ax.legend(fontsize=7, loc="lower right")
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
    """Write ``fig2_lambda_sweep.png``, ``fig3_features.png``, ``bounds.png``, ``terms.png`` and
    ``kernel_head.png`` to ``out``."""
    plt = figure_setup()
    out = Path(out)
    paths = []
    for name, fn in (("fig2_lambda_sweep", fig_sweep), ("fig3_features", fig_features), ("bounds", fig_bounds),
                     ("terms", fig_terms), ("kernel_head", fig_kernel_head)):
        fig = fn(summary)
        path = out / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
