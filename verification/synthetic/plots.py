"""Figures of ``verify synthetic``, drawn from the payload (or the ``synthetic.json`` written from it).

Each ``fig_*`` function returns a matplotlib figure in the book's style (:mod:`verification.plotting`:
at most :data:`verification.plotting.WIDTH` inches wide, fonts of at least 10 pt, at most two panels
per row, legends outside the data); :func:`figures` saves them all as PNG beside the JSON, and the
book shows the same figures with :func:`verification.plotting.show`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plotting import COLORS, LINESTYLES, WIDTH, use_style
from ..results import clean, figure_setup

FIGURES = ("fig1_convergence", "fig2_tightness", "fig3_plugin_bias", "fig4_label_scramble", "fig5_training",
           "fig6_certificates")
#: Verdict colours of Figure 6 (Okabe-Ito green and vermilion; grey for "the sample cannot tell").
VERDICT_COLORS = {"holds": "#009E73", "inconclusive": "#BBBBBB", "violated": "#D55E00"}
#: Ratios and terms below these are drawn at the axis edge (logarithmic axes).
TERM_FLOOR, RATIO_FLOOR = 1e-4, 1e-3
#: Markers and colours of the chain terms in Figures 1 and 2.
_TERM_STYLE = {"gap": ("*", "#000000"), "mmd": ("o", COLORS[0]), "w1_dk": ("s", COLORS[1]),
               "mean_dk": ("^", COLORS[2])}
_TERM_LABEL = {"gap": r"$|\mathrm{gap}_{f_1}|\,/\,\|f_1\|$", "mmd": "MMD", "w1_dk": r"$W_1^{d_k}$ (plug-in)",
               "mean_dk": r"$\mathrm{E}\,d_k(\phi_S,\phi_T)$"}


def _pyplot():
    plt = figure_setup()
    use_style()
    return plt


def _est(iv):
    return np.nan if iv is None or iv["estimate"] is None else iv["estimate"]


def _value(x, exact: bool):
    return x if exact else _est(x)


def _payload(payload: dict) -> dict:
    return clean({k: payload[k] for k in ("b1", "b2", "bias", "b4", "b3", "claims", "family") if k in payload})


def _terms(rows, exp):
    """|gap_f1| / ||f1|| and the three kernel terms per instance (B1: gap and MMD in closed form)."""
    exact = exp == "b1"
    nf = np.array([r["norms"]["f1"] for r in rows])
    return {"gap": np.abs([_value(r["gap"]["f1"], exact) for r in rows]) / nf,
            "mmd": np.array([_value(r["mmd"], exact) for r in rows], float),
            "w1_dk": np.array([_est(r["w1_dk"]) for r in rows], float),
            "mean_dk": np.array([_est(r["mean_dk"]) for r in rows], float)}


def fig_convergence(payload: dict):
    """Figure 1: every term of the chain against the distance 1 - t of the student to the teacher, one
    point per random instance, B1 (closed-form gap and MMD) and B2 (estimates); log-log axes, values
    below :data:`TERM_FLOOR` at the bottom edge."""
    plt = _pyplot()
    p = _payload(payload)
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.6), sharey=True, layout="constrained")
    for ax, exp in zip(axes, ("b1", "b2")):
        rows = p[exp]["instances"]
        s = np.array([r["one_minus_t"] for r in rows])
        for key, y in _terms(rows, exp).items():
            marker, color = _TERM_STYLE[key]
            ax.scatter(s, np.clip(y, TERM_FLOOR, None), marker=marker, s=14 if key != "gap" else 22, color=color,
                       label=_TERM_LABEL[key], alpha=0.7, linewidths=0)
        ax.set(xscale="log", yscale="log", xlabel="1 − t (student to teacher)", ylim=(TERM_FLOOR * 0.8, 3))
        ax.set_title(f"{exp.upper()}: {len(rows)} instances" + (" (gap, MMD exact)" if exp == "b1" else ""))
    axes[0].set_ylabel("term")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, markerscale=1.5)
    return fig


def fig_tightness(payload: dict):
    """Figure 2: the tightness ratio |gap_f1| / (||f1|| term) per instance for the three kernel terms;
    logarithmic axis, not clipped above (a ratio above 1 would be a failure of the bound, or, in B2,
    of the point estimates); the dashed line at 1 is the bound."""
    plt = _pyplot()
    p = _payload(payload)
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.6), sharey=True, layout="constrained")
    top = 2.0
    for ax, exp in zip(axes, ("b1", "b2")):
        rows = p[exp]["instances"]
        s = np.array([r["one_minus_t"] for r in rows])
        t = _terms(rows, exp)
        for key in ("mmd", "w1_dk", "mean_dk"):
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = t["gap"] / t[key]
            ok = np.isfinite(ratio)
            marker, color = _TERM_STYLE[key]
            label = {"mmd": "term = MMD", "w1_dk": r"term = $W_1^{d_k}$",
                     "mean_dk": r"term = $\mathrm{E}\,d_k$"}[key]
            ax.scatter(s[ok], np.clip(ratio[ok], RATIO_FLOOR, None), marker=marker, s=14, color=color, alpha=0.7,
                       linewidths=0, label=label)
            if ok.any():
                top = max(top, float(np.max(ratio[ok])) * 1.5)
        ax.axhline(1, color="black", lw=1.2, ls="--")
        ax.set(xscale="log", yscale="log", xlabel="1 − t (student to teacher)")
        ax.set_title(exp.upper() + (" (gap, MMD exact)" if exp == "b1" else " (estimates)"))
    axes[0].set_ylim(RATIO_FLOOR * 0.8, top)
    axes[0].text(axes[0].get_xlim()[0], 1.08, " bound: ratio 1", va="bottom", ha="left")
    axes[0].set_ylabel(r"$|\mathrm{gap}_{f_1}|\,/\,(\|f_1\|\cdot$ term$)$")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, markerscale=1.5)
    return fig


def fig_plugin_bias(payload: dict):
    """Figure 3: the plug-in W1 between N(0.5 e1, I_d) and N(0, I_d) against n, for each dimension d, and
    the null W1 between two samples of one law (the bias floor); mean ± sd over repetitions."""
    plt = _pyplot()
    p = _payload(payload)
    rows = p["bias"]["rows"]
    fig, ax = plt.subplots(figsize=(WIDTH, 4.6), layout="constrained")
    for i, d in enumerate(sorted({r["d"] for r in rows})):
        sub = sorted((r for r in rows if r["d"] == d), key=lambda r: r["n"])
        ns = [r["n"] for r in sub]
        c = COLORS[i % len(COLORS)]
        ax.errorbar(ns, [r["plug_in_mean"] for r in sub], [r["plug_in_sd"] for r in sub], color=c, marker="o",
                    ms=5, ls="-", capsize=2, label=f"plug-in $W_1$, d = {d}")
        ax.errorbar(ns, [r["null_mean"] for r in sub], [r["null_sd"] for r in sub], color=c, marker="x", ms=6,
                    ls="--", capsize=2, label=f"null $W_1(P_T, P_T')$, d = {d}")
    w1 = p["bias"]["setup"]["population_w1"]
    ax.axhline(w1, color="black", lw=1.2, ls=":", label=f"population $W_1$ = {w1:g}")
    ax.set(xscale="log", yscale="log", xlabel="sample size n", ylabel="$W_1$")
    ax.set_xticks(sorted({r["n"] for r in rows}), [str(n) for n in sorted({r["n"] for r in rows})])
    ax.minorticks_off()
    fig.legend(loc="outside lower center", ncol=3)
    return fig


def fig_label_scramble(payload: dict):
    """Figure 4 (B4): against the rotation angle, the label-tied CE gap with its interval and the
    marginal, class-conditional, joint and coupling bound terms (top); the kernel terms (bottom)."""
    plt = _pyplot()
    p = _payload(payload)
    rows = p["b4"]["rows"]
    th = np.array([r["theta"] for r in rows])
    lip = p["b4"]["setup"]["lipschitz"]
    fig, axes = plt.subplots(2, 1, figsize=(WIDTH, 8.2), sharex=True, layout="constrained")
    ax = axes[0]
    gap = np.array([[abs(r["gap"]["estimate"]), r["gap"]["lower"], r["gap"]["upper"]] for r in rows], float)
    ax.fill_between(th, np.maximum(gap[:, 1], 0), gap[:, 2], color="black", alpha=0.15,
                    label="confidence interval of the gap")
    ax.plot(th, gap[:, 0], color="black", ls="-", marker="*", ms=8, label="|CE gap| (label-tied)")
    def term(r, key, field, scale):
        v = r[key] if field is None else r[key][field]
        return np.nan if v is None else scale * v

    series = ((("w1", "estimate", lip), COLORS[3], "-", "o", r"$L\,W_1$(marginals)"),
              (("w1", "upper", lip), COLORS[3], "--", None, r"$L\,W_1$(marginals), upper bound"),
              (("cond", "estimate", lip), COLORS[0], "-", "s", r"$L\,\Sigma_c\,p_c W_1$(class $c$)"),
              (("cond", "lower", lip), COLORS[0], "--", None, r"$L\,\Sigma_c\,p_c W_1$(class $c$), lower bound"),
              (("joint", None, 1.0), COLORS[2], "-.", "^", r"joint $W_1$, cost $L\,d + B\,1[y\neq y']$"),
              (("coupling_exact", None, lip), COLORS[4], ":", "D", r"$L\,\mathrm{E}\|\phi_S-\phi_T\|$"))
    for spec, color, ls, marker, label in series:
        ax.plot(th, [term(r, *spec) for r in rows], color=color, ls=ls, marker=marker, ms=5, label=label)
    ax.set(ylabel="risk gap and bound terms")
    ax.set_title("the gap grows; the marginal terms stay near 0", loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2)
    ax = axes[1]
    for (key, label), color, ls, marker in zip((("mmd", "MMD (marginals)"), ("w1_dk", r"$W_1^{d_k}$ (marginals)"),
                                                ("mean_dk", r"$\mathrm{E}\,d_k$ (coupling)")),
                                               (COLORS[3], COLORS[1], COLORS[4]), ("-", "--", ":"), ("o", "s", "D")):
        ax.plot(th, [r[key]["estimate"] for r in rows], color=color, ls=ls, marker=marker, ms=5, label=label)
        ax.fill_between(th, [r[key]["lower"] for r in rows], [r[key]["upper"] for r in rows], color=color,
                        alpha=0.15)
    ax.set(xlabel=r"rotation angle $\theta$ (radians)", ylabel="kernel term")
    ax.set_title("kernel terms: the marginal ones stay near 0, the coupling grows", loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    return fig


def fig_training(payload: dict):
    """Figure 5 (B3): the chain terms on held-out data over training steps, one panel per metric key
    (two per row), students trained with CE + lambda D."""
    import matplotlib.ticker

    plt = _pyplot()
    p = _payload(payload)
    runs = p["b3"]["runs"]
    keys = list(runs)
    nrows = -(-len(keys) // 2)
    fig, axes = plt.subplots(nrows, 2, figsize=(WIDTH, 1.95 * nrows + 1.1), squeeze=False, sharex=True,
                             sharey=True, layout="constrained")
    styles = (("gap", "|CE gap| ($h_T$)"), ("l_w1", r"$L\,W_1$(marginals)"),
              ("l_cond", r"$L\,\Sigma_c\,p_c W_1$(class $c$)"), ("l_coupling", r"$L\,\mathrm{E}\|\Delta\phi\|$"),
              ("mmd", "MMD"), ("w1_dk", r"$W_1^{d_k}$"))
    colors = ("#000000", COLORS[3], COLORS[0], COLORS[4], COLORS[2], COLORS[1])
    markers = ("*", "o", "s", "D", "^", "v")
    linestyles = [LINESTYLES[i % len(LINESTYLES)] for i in range(len(styles))]
    for ax, key in zip(axes.ravel(), keys):
        r = runs[key]
        for (name, label), color, ls, marker in zip(styles, colors, linestyles, markers):
            ax.plot(r["steps"], np.maximum(r[name], 1e-6), color=color, ls=ls, marker=marker, ms=4, label=label)
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"{key}, λ = {r['lambda']:.2g}", fontsize=10)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3)
    return fig


def fig_certificates(payload: dict):
    """Figure 6: per claim, the fraction of instances certified to hold, inconclusive, and certified
    violated (B4: of angles)."""
    plt = _pyplot()
    p = _payload(payload)
    claims = p["claims"]
    names = list(claims)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.27 * len(names) + 1.6), layout="constrained")
    left = np.zeros(len(names))
    for v in ("holds", "inconclusive", "violated"):
        frac = np.array([claims[k]["fractions"][v] for k in names])
        ax.barh(range(len(names)), frac, left=left, color=VERDICT_COLORS[v], height=0.75,
                hatch="//" if v == "violated" else None, edgecolor="white", linewidth=0.5,
                label="certified to hold" if v == "holds" else "certified violated" if v == "violated" else v)
        left += frac
    ax.set_yticks(range(len(names)), [k + (" (data)" if claims[k]["kind"] == "data" else "") for k in names])
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("fraction of instances (B4: of angles)")
    fam = p["family"]
    ax.set_title(f"{fam['method']}, family-wise level {fam['level']:.2f}\nover m = {fam['m']} intervals")
    fig.legend(loc="outside lower center", ncol=3)
    return fig


#: Each saved figure and the function that draws it.
DRAW = {"fig1_convergence": fig_convergence, "fig2_tightness": fig_tightness, "fig3_plugin_bias": fig_plugin_bias,
        "fig4_label_scramble": fig_label_scramble, "fig5_training": fig_training,
        "fig6_certificates": fig_certificates}


def figures(payload: dict, out: Path) -> None:
    """Save every figure of :data:`FIGURES` as ``<name>.png`` in ``out``."""
    plt = _pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        fig = DRAW[name](payload)
        fig.savefig(out / f"{name}.png")
        plt.close(fig)
