"""Figures of ``verify synthetic`` (PNG, about 800 px wide at the default resolution)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..results import clean, figure_setup

FIGURES = ("fig1_convergence", "fig2_tightness", "fig3_plugin_bias", "fig4_label_scramble", "fig5_training",
           "fig6_certificates")
WIDTH = 7.3  # inches: 800 px at 110 dpi
COLORS = {"holds": "tab:green", "inconclusive": "0.75", "violated": "tab:red"}


def _est(iv):
    return np.nan if iv is None or iv["estimate"] is None else iv["estimate"]


def _convergence(ax, rows, exp):
    s = np.array([r["one_minus_t"] for r in rows])
    nf = np.array([r["norms"]["f1"] for r in rows])
    if exp == "b1":
        gap = np.abs([r["gap"]["f1"] for r in rows]) / nf
        mmd = np.array([r["mmd"] for r in rows])
    else:
        gap = np.abs([_est(r["gap"]["f1"]) for r in rows]) / nf
        mmd = np.array([_est(r["mmd"]) for r in rows])
    series = [(gap, "k*", "|gap_f1| / ||f1||"), (mmd, "o", "MMD"),
              (np.array([_est(r["w1_dk"]) for r in rows]), "s", "W1^{d_k} (plug-in)"),
              (np.array([_est(r["mean_dk"]) for r in rows]), "^", "E d_k")]
    for (y, marker, label), color in zip(series, ("black", "tab:blue", "tab:orange", "tab:green")):
        ax.scatter(s, np.maximum(y, 1e-6), marker=marker[-1], s=10, color=color, label=label, alpha=0.7)
    ax.set(xscale="log", yscale="log", xlabel="1 - t (student to teacher)", ylim=(1e-4, 3),
           title=f"{exp.upper()}: {len(rows)} random instances" + (" (gap, MMD exact)" if exp == "b1" else ""))


def _tightness(ax, rows, exp):
    s = np.array([r["one_minus_t"] for r in rows])
    nf = np.array([r["norms"]["f1"] for r in rows])
    gap = np.abs([r["gap"]["f1"] if exp == "b1" else _est(r["gap"]["f1"]) for r in rows]) / nf
    mmd = np.array([r["mmd"] if exp == "b1" else _est(r["mmd"]) for r in rows])
    for term, marker, color, label in ((mmd, "o", "tab:blue", "|gap| / (||f|| MMD)"),
                                       (np.array([_est(r["w1_dk"]) for r in rows]), "s", "tab:orange",
                                        "|gap| / (||f|| W1^{d_k})"),
                                       (np.array([_est(r["mean_dk"]) for r in rows]), "^", "tab:green",
                                        "|gap| / (||f|| E d_k)")):
        with np.errstate(divide="ignore", invalid="ignore"):
            ax.scatter(s, gap / term, marker=marker, s=10, color=color, label=label, alpha=0.7)
    ax.axhline(1, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="1 - t", ylim=(0, 1.5), title=exp.upper())


def _certificates(plt, p, out):
    claims = p["claims"]
    names = list(claims)[::-1]
    fig, ax = plt.subplots(figsize=(WIDTH, 0.22 * len(names) + 1.4))
    left = np.zeros(len(names))
    for v in ("holds", "inconclusive", "violated"):
        frac = np.array([claims[k]["fractions"][v] for k in names])
        ax.barh(range(len(names)), frac, left=left, color=COLORS[v], label=f"certified {v}" if v != "inconclusive"
                else v, height=0.75)
        left += frac
    ax.set_yticks(range(len(names)), [f"{k} ({claims[k]['kind']}, n={claims[k]['n']})" for k in names], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of instances (B4: of angles)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.4, -0.045 - 4.0 / len(names) / 10))
    fam = p["family"]
    fig.suptitle(f"Figure 6: certificates per claim type\n{fam['method']}, family-wise level {fam['level']:.2f} "
                 f"over m = {fam['m']} intervals; controls: + must hold, - must not", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fig6_certificates.png")
    plt.close(fig)


def figures(payload: dict, out: Path) -> None:
    plt = figure_setup()
    import matplotlib.ticker
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p = clean({k: payload[k] for k in ("b1", "b2", "bias", "b4", "b3", "claims", "family")})
    # Figure 1: every term against 1 - t, one point per instance
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.4), sharey=True)
    for ax, exp in zip(axes, ("b1", "b2")):
        _convergence(ax, p[exp]["instances"], exp)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Figure 1: chain terms per random instance (all go to 0 as t -> 1)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "fig1_convergence.png")
    plt.close(fig)
    # Figure 2: tightness ratios
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.2), sharey=True)
    for ax, exp in zip(axes, ("b1", "b2")):
        _tightness(ax, p[exp]["instances"], exp)
    axes[0].set_ylabel("tightness ratio (f1)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Figure 2: tightness ratios per instance (<= 1 is the bound; plug-in estimates in B2)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "fig2_tightness.png")
    plt.close(fig)
    # Figure 3: plug-in bias
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8))
    rows = p["bias"]["rows"]
    for i, d in enumerate(sorted({r["d"] for r in rows})):
        sub = [r for r in rows if r["d"] == d]
        ns = [r["n"] for r in sub]
        c = f"C{i}"
        ax.errorbar(ns, [r["plug_in_mean"] for r in sub], [r["plug_in_sd"] for r in sub], color=c, marker="o",
                    ms=3, label=f"plug-in W1, d={d}")
        ax.errorbar(ns, [r["null_mean"] for r in sub], [r["null_sd"] for r in sub], color=c, marker="x", ms=3,
                    ls="--", label=f"null W1(P_T, P_T'), d={d}")
    ax.axhline(p["bias"]["setup"]["population_w1"], color="k", lw=1, label="population W1 = 0.5")
    ax.set(xscale="log", yscale="log", xlabel="n", ylabel="W1")
    ax.set_title("Figure 3: plug-in W1 is biased upward; the null baseline is the bias floor", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "fig3_plugin_bias.png")
    plt.close(fig)
    # Figure 4: B4
    rows = p["b4"]["rows"]
    th = [r["theta"] for r in rows]
    lip = p["b4"]["setup"]["lipschitz"]
    fig, axes = plt.subplots(2, 1, figsize=(WIDTH, 6.4), sharex=True)
    ax = axes[0]
    gap = np.array([[abs(r["gap"]["estimate"]), r["gap"]["lower"], r["gap"]["upper"]] for r in rows])
    ax.plot(th, gap[:, 0], "k*-", ms=4, label="|CE gap| (label-tied)")
    ax.fill_between(th, np.maximum(gap[:, 1], 0), gap[:, 2], color="k", alpha=0.15, label="CI of the gap")
    ax.plot(th, [lip * r["w1"]["estimate"] for r in rows], "o-", color="tab:red", ms=3, label="L W1(marginals)")
    ax.plot(th, [lip * r["w1"]["upper"] for r in rows], "--", color="tab:red", label="L W1(marginals) UCB")
    ax.plot(th, [lip * r["cond"]["estimate"] for r in rows], "s-", color="tab:blue", ms=3,
            label="L sum_c p_c W1(class c)")
    ax.plot(th, [lip * r["cond"]["lower"] for r in rows], "--", color="tab:blue", label="... LCB")
    ax.plot(th, [r["joint"] for r in rows], "^-", color="tab:green", ms=3, label="joint W1, cost L d + B 1[y != y']")
    ax.plot(th, [lip * r["coupling_exact"] for r in rows], ":", color="tab:brown", label="L E||phi_S - phi_T||")
    ax.set_title("risk gap vs. marginal / conditional / joint / coupling terms", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1]
    for key, color, label in (("mmd", "tab:red", "MMD (marginals)"), ("w1_dk", "tab:orange", "W1^{d_k} (marginals)"),
                              ("mean_dk", "tab:brown", "E d_k (coupling)")):
        ax.plot(th, [r[key]["estimate"] for r in rows], "o-", ms=3, color=color, label=label)
        ax.fill_between(th, [r[key]["lower"] for r in rows], [r[key]["upper"] for r in rows], color=color, alpha=0.15)
    ax.set(xlabel="rotation angle theta")
    ax.set_title("kernel terms: the marginal ones stay ~0, the coupling grows", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("Figure 4 (B4): label scrambles leave the marginal terms at 0 while the gap grows", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "fig4_label_scramble.png")
    plt.close(fig)
    # Figure 5: B3
    runs = p["b3"]["runs"]
    keys = list(runs)
    cols = 3
    nrows = -(-len(keys) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(WIDTH, 2.0 * nrows + 1.0), squeeze=False, sharey=True)
    styles = (("gap", "k*-", "|CE gap| (h_T)"), ("l_w1", "o-", "L W1(marg)"), ("l_cond", "s-", "L sum_c p_c W1(c)"),
              ("l_coupling", ":", "L E||dphi||"), ("mmd", "-", "MMD"), ("w1_dk", "--", "W1^{d_k}"))
    for ax, key in zip(axes.ravel(), keys):
        r = runs[key]
        for (name, style, label), color in zip(styles, ("black", "tab:red", "tab:blue", "tab:brown", "tab:purple",
                                                        "tab:orange")):
            ax.plot(r["steps"], np.maximum(r[name], 1e-6), style.replace("k", ""), ms=2, color=color, label=label)
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"{key}\nlambda = {r['lambda']:.2g}", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, ncol=3, loc="lower center")
    fig.suptitle("Figure 5 (B3): chain terms on held-out data, students trained with CE + lambda D", fontsize=9)
    fig.subplots_adjust(left=0.07, right=0.99, top=1 - 0.75 / fig.get_figheight(), bottom=0.9 / fig.get_figheight(),
                        hspace=0.55, wspace=0.08)
    fig.savefig(out / "fig5_training.png")
    plt.close(fig)
    _certificates(plt, p, out)
