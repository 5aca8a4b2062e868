r"""``kd2m-ref verify synthetic``: population-level experiments B1-B4 of THEORY.md §4.2.

* B1: linear encoders of Gaussian inputs; gap, MMD and Euclidean sandwich in closed form.
* B2: Gaussian-mixture inputs, MLP encoders, student parameters interpolated toward the teacher.
* bias: the plug-in :math:`W_1` against n and d, next to a null baseline (figure 3).
* B4: the label-scrambling family (rotations of a disc), where the marginal terms vanish.
* B3: a student MLP trained with ``KD2MLoss`` for every registry key (``verification.training``).

Statistics (``verification.stats``): pointwise confidence bounds at level 1 - alpha (alpha = 0.05),
verdict "holds" iff UCB(|gap|) <= LCB(bound term), "violated" iff LCB(|gap|) > UCB(bound term),
otherwise "inconclusive". Output: ``synthetic.json`` and ``fig1_convergence.png`` ...
``fig5_training.png`` in the results folder.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from . import RESULTS_DIR
from .closed_forms import (euclidean_sandwich, expectation, gaussian_mmd, kernel_coupling_jensen)
from .exact import SQRT2, KernelExpansion, LinearHead, euclidean_distance, w1
from .population import euclidean_terms, gap_interval, joint_term, kernel_terms
from .results import Timer, figure_setup, provenance, write_json
from .stats import abs_lower, abs_upper, verdict, w1_lower

ALPHA = 0.05
PROFILES = {
    "smoke": {"b1": {"n": 200, "grid": 4}, "b2": {"n": 200, "grid": 4},
              "bias": {"ns": [16, 64], "ds": [1, 2], "reps": 2},
              "b4": {"n": 300, "grid": 3}, "b3": {"steps": 10, "every": 5, "n_test": 60, "batch": 48}},
    "quick": {"b1": {"n": 800, "grid": 8}, "b2": {"n": 800, "grid": 8},
              "bias": {"ns": [16, 64, 256, 512], "ds": [1, 2, 4, 8], "reps": 3},
              "b4": {"n": 1500, "grid": 7}, "b3": {"steps": 120, "every": 20, "n_test": 240, "batch": 48}},
    "full": {"b1": {"n": 1500, "grid": 10}, "b2": {"n": 1500, "grid": 10},
             "bias": {"ns": [16, 64, 256, 1024], "ds": [1, 2, 4, 8], "reps": 5},
             "b4": {"n": 2400, "grid": 10}, "b3": {"steps": 300, "every": 25, "n_test": 450, "batch": 96}},
}


def _iv(iv) -> dict:
    return iv.as_dict()


def _verdicts(gap_iv, scale: float, terms: dict) -> dict:
    """Verdict of |gap| <= scale * term for each named term interval."""
    gu, gl = abs_upper(gap_iv), abs_lower(gap_iv)
    out = {}
    for name, iv in terms.items():
        lo = iv.lower if math.isfinite(iv.lower) else -math.inf
        hi = iv.upper if math.isfinite(iv.upper) else math.inf
        out[name] = verdict(gu, gl, scale * lo, scale * hi)
    return out


# --------------------------------------------------------------------------- B1


def b1(cfg: dict, rng: np.random.Generator) -> dict:
    r"""Linear-Gaussian path :math:`\phi_S^t=\phi_T+(1-t)(\phi_S^0-\phi_T)`, :math:`x\sim N(0,I_3)`, features in R^2."""
    p, d, sigma, n = 3, 2, 1.0, cfg["n"]
    a_t, b_t = rng.normal(size=(d, p)) / math.sqrt(p), 0.5 * rng.normal(size=d)
    a_s, b_s = rng.normal(size=(d, p)) / math.sqrt(p), 0.5 * rng.normal(size=d)
    cov_t = a_t @ a_t.T
    centres = rng.normal(size=(2, p)) @ a_t.T + b_t
    f1 = KernelExpansion(centres, rng.normal(size=2), sigma).scaled_to(1.0)
    g = KernelExpansion(centres, rng.normal(size=2), SQRT2 * sigma).scaled_to(1.0)
    ell = g.squared()
    norms = {"f1": f1.norm(), "f2": ell.norm()}
    grid = np.logspace(-2, 0, cfg["grid"])  # 1 - t
    rows = []
    x = rng.normal(size=(n, p))
    for s in grid:
        a_st, b_st = a_t + s * (a_s - a_t), b_t + s * (b_s - b_t)
        cov_s = a_st @ a_st.T
        delta, m = s * (b_s - b_t), s**2 * (a_s - a_t) @ (a_s - a_t).T
        gaps = {"f1": expectation(f1, b_st, cov_s) - expectation(f1, b_t, cov_t),
                "f2": expectation(ell, b_st, cov_s) - expectation(ell, b_t, cov_t)}
        mmd = gaussian_mmd(b_st, cov_s, b_t, cov_t, sigma)
        zs, zt = x @ a_st.T + b_st, x @ a_t.T + b_t
        kt = kernel_terms(zs, zt, sigma, ALPHA, rng)
        terms = {"mmd": type(kt["mmd"])(mmd, mmd, mmd), "w1_dk": kt["w1_dk"], "mean_dk": kt["mean_dk"]}
        row = {"one_minus_t": s, "gap": gaps, "mmd_exact": mmd, "mmd_sample": _iv(kt["mmd"]),
               "w1_dk": _iv(kt["w1_dk"]), "mean_dk": _iv(kt["mean_dk"]),
               "mean_dk_jensen": kernel_coupling_jensen(delta, m, sigma),
               "sup_dk": SQRT2 if np.any(a_s != a_t) else float(np.sqrt(-2 * np.expm1(-delta @ delta / 2 / sigma**2))),
               "euclidean": euclidean_sandwich(b_st, cov_s, b_t, cov_t, m),
               "verdicts": {}}
        for key in ("f1", "f2"):
            exact = type(kt["mmd"])(gaps[key], gaps[key], gaps[key])
            row["verdicts"][key] = _verdicts(exact, norms[key], terms)
        rows.append(row)
    return {"setup": {"p": p, "d": d, "sigma": sigma, "n": n, "alpha": ALPHA,
                      "f1": "2 centres, ||f||_H = 1", "f2": "l = g^2, ||g|| = 1 (bandwidth sqrt2 sigma)",
                      "gap": "closed form (exact)", "mmd": "closed form; sample V-statistic with CI also recorded",
                      "w1_dk": "plug-in on n paired samples, UCB (McDiarmid), LCB (split dual potentials)",
                      "mean_dk": "Monte Carlo, Hoeffding CI; Jensen closed-form upper bound"},
            "norms": norms, "rows": rows}


# --------------------------------------------------------------------------- B2


class NumpyMLP:
    r""":math:`\phi(x)=W_2\tanh(W_1x+b_1)+b_2` with a flat parameter vector (for interpolation)."""

    def __init__(self, p: int, hidden: int, d: int):
        self.shapes = [(hidden, p), (hidden,), (d, hidden), (d,)]

    def random(self, rng, scale: float = 1.0) -> np.ndarray:
        parts = [rng.normal(size=s) / math.sqrt(s[-1] if len(s) == 2 else 1.0) * scale for s in self.shapes]
        return np.concatenate([q.ravel() for q in parts])

    def __call__(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        parts, i = [], 0
        for s in self.shapes:
            k = int(np.prod(s))
            parts.append(theta[i:i + k].reshape(s))
            i += k
        w1_, b1_, w2_, b2_ = parts
        return np.tanh(x @ w1_.T + b1_) @ w2_.T + b2_


def mixture(rng, n: int, means: np.ndarray, std: float):
    y = rng.integers(0, len(means), n)
    return means[y] + std * rng.normal(size=(n, means.shape[1])), y


def b2(cfg: dict, rng: np.random.Generator) -> dict:
    """Mixture of 3 Gaussians in R^4 (label = component), MLP encoders R^4 -> 16 -> R^2, parameters
    interpolated from a random student toward the teacher; F1, F2 and the teacher head's CE."""
    p, hidden, d, sigma, n = 4, 16, 2, 1.0, cfg["n"]
    means = 2.5 * np.eye(3, p)
    net = NumpyMLP(p, hidden, d)
    th_t, th_s = net.random(rng, 2.0), net.random(rng, 2.0)
    xt_fit, y_fit = mixture(rng, 600, means, 0.7)
    zt_fit = net(th_t, xt_fit)
    # Teacher head: least squares to centred one-hot targets x 3 (a fixed linear head, no training loop)
    design = np.c_[zt_fit, np.ones(len(zt_fit))]
    target = 3.0 * (np.eye(3)[y_fit] - 1 / 3)
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    head = LinearHead(coef[:-1].T, coef[-1])
    f1 = KernelExpansion(zt_fit[:3], rng.normal(size=3), sigma).scaled_to(1.0)
    g = KernelExpansion(zt_fit[3:5], rng.normal(size=2), SQRT2 * sigma).scaled_to(1.0)
    ell = g.squared()
    norms = {"f1": f1.norm(), "f2": ell.norm()}
    x, y = mixture(rng, n, means, 0.7)
    zt = net(th_t, x)
    rows = []
    for s in np.logspace(-2, 0, cfg["grid"]):
        zs = net(th_t + s * (th_s - th_t), x)
        kt = kernel_terms(zs, zt, sigma, ALPHA, rng)
        et = euclidean_terms(zs, zt, y, ALPHA)
        gaps = {"f1": gap_interval(f1.difference(zs, zt), 4 * norms["f1"], ALPHA),
                "f2": gap_interval(ell.difference(zs, zt), 2 * norms["f2"], ALPHA),
                "ce": gap_interval(head.cross_entropy(zs, y) - head.cross_entropy(zt, y), None, ALPHA)}
        kterms = {"mmd": kt["mmd"], "w1_dk": kt["w1_dk"], "mean_dk": kt["mean_dk"]}
        rows.append({"one_minus_t": s, "gap": {k: _iv(v) for k, v in gaps.items()},
                     **{k: _iv(v) for k, v in kt.items()}, **{k: _iv(v) for k, v in et.items()},
                     "verdicts": {"f1": _verdicts(gaps["f1"], norms["f1"], kterms),
                                  "f2": _verdicts(gaps["f2"], norms["f2"], kterms),
                                  "ce": _verdicts(gaps["ce"], head.lipschitz, {"mean_eu": et["mean_eu"]})}})
    return {"setup": {"p": p, "hidden": hidden, "d": d, "sigma": sigma, "n": n, "alpha": ALPHA,
                      "inputs": "3-component Gaussian mixture in R^4 (means 2.5 e_c, std 0.7), label = component",
                      "encoders": "tanh MLP 4 -> 16 -> 2; student parameters theta_T + (1 - t)(theta_S0 - theta_T)",
                      "gap": "Monte Carlo on n paired samples; Hoeffding / empirical-Bernstein CI (F1, F2), CLT (CE)",
                      "head": "teacher head = least squares on teacher features, L = sqrt2 ||W||_op",
                      "ce_lipschitz": head.lipschitz},
            "norms": norms, "rows": rows}


# --------------------------------------------------------------------------- plug-in bias (figure 3)


def bias(cfg: dict, rng: np.random.Generator) -> dict:
    r"""Plug-in :math:`W_1(\hat P_S,\hat P_T)` for :math:`P_T=N(0,I_d)`, :math:`P_S=N(0.5e_1,I_d)`
    (population :math:`W_1=0.5` exactly: a translation), and the null :math:`W_1(\hat P_T,\hat P_T')`
    (population 0), from independent samples of size n."""
    out = []
    for d in cfg["ds"]:
        shift = np.zeros(d)
        shift[0] = 0.5
        for n in cfg["ns"]:
            plug, null = [], []
            for _ in range(cfg["reps"]):
                a, b, c = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(n, d))
                plug.append(w1(euclidean_distance(a + shift, b)))
                null.append(w1(euclidean_distance(c, b)))
            out.append({"d": d, "n": n, "plug_in_mean": np.mean(plug), "plug_in_sd": np.std(plug, ddof=1),
                        "null_mean": np.mean(null), "null_sd": np.std(null, ddof=1)})
    return {"setup": {"population_w1": 0.5, "reps": cfg["reps"]}, "rows": out}


# --------------------------------------------------------------------------- B4


def b4(cfg: dict, rng: np.random.Generator) -> dict:
    r"""Label scrambles: :math:`x` uniform on the unit disc, :math:`y=1[x_1>0]`, teacher features
    :math:`\phi_T=\mathrm{id}`, student :math:`\phi_S=\phi_T\circ R_\theta` (a rotation preserves P), linear
    head :math:`W=\gamma(-e_1,e_1)`. Marginal terms are 0 in the population for every :math:`\theta`."""
    n, gamma, sigma = cfg["n"], 4.0, 0.5
    head = LinearHead(gamma * np.array([[-1.0, 0.0], [1.0, 0.0]]), np.zeros(2))
    lip = head.lipschitz
    bound = math.log1p(math.exp(2 * gamma))  # CE <= B on the unit disc
    radius = np.sqrt(rng.random(n))
    angle = 2 * np.pi * rng.random(n)
    x = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    y = (x[:, 0] > 0).astype(int)
    rows = []
    for theta in np.linspace(0, np.pi, cfg["grid"]):
        rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        zs, zt = x @ rot.T, x
        gap = gap_interval(head.cross_entropy(zs, y) - head.cross_entropy(zt, y), 2 * bound, ALPHA)
        kt = kernel_terms(zs, zt, sigma, ALPHA, rng)
        et = euclidean_terms(zs, zt, y, ALPHA, diameter=2.0)
        cond_lcb = 0.0
        for c in (0, 1):  # class-wise split LCB, each at alpha / 2; population class weights are 1/2
            idx = np.flatnonzero(y == c)
            h = len(idx) // 2
            lo = w1_lower(zs[idx[:h]], zt[idx[:h]], zs[idx[h:]], zt[idx[h:]], euclidean_distance, 2.0, ALPHA / 2)
            cond_lcb += 0.5 * max(lo.lower, 0.0)
        cond = type(gap)(et["cond"].estimate, cond_lcb, math.nan)
        coupling = 2 * math.sin(theta / 2) * 2 / 3  # E||R x - x|| = 2 sin(theta/2) E|x|, E|x| = 2/3
        exact = type(gap)(coupling, coupling, coupling)
        joint = joint_term(zs, zt, y, lip, bound)
        rows.append({"theta": theta, "gap": _iv(gap), **{k: _iv(v) for k, v in kt.items()},
                     "w1": _iv(et["w1"]), "cond": _iv(cond), "mean_eu": _iv(et["mean_eu"]),
                     "coupling_exact": coupling, "joint": joint,
                     "verdicts": {"marginal_w1": _verdicts(gap, lip, {"w1": et["w1"]})["w1"],
                                  "conditional_w1": _verdicts(gap, lip, {"cond": cond})["cond"],
                                  "coupling": _verdicts(gap, lip, {"c": exact})["c"]}})
    return {"setup": {"n": n, "gamma": gamma, "sigma": sigma, "lipschitz": lip, "ce_bound": bound, "alpha": ALPHA,
                      "joint": "plug-in W1 for the cost L||z - z'|| + B 1[y != y'] (no CI)",
                      "marginals": "population marginal terms are exactly 0 (rotation-invariant P)"},
            "rows": rows}


# --------------------------------------------------------------------------- driver and figures


def run(profile: str = "quick", seed: int = 0, out: Path | None = None, command: str = "", jobs: int = 1) -> dict:
    """Run B1, B2, bias, B4, B3 (``jobs`` is accepted for a uniform CLI and ignored: one process)."""
    from tqdm import tqdm

    from .training import b3

    cfg = PROFILES[profile]
    out = Path(out) if out else RESULTS_DIR / profile
    payload = {"experiment": "synthetic population checks (THEORY.md §4.2)", "alpha": ALPHA,
               "confidence": "pointwise, level 1 - alpha per quantity and grid point (no Bonferroni)"}
    steps = [("b1", b1), ("b2", b2), ("bias", bias), ("b4", b4), ("b3", b3)]
    with Timer() as timer:
        for name, fn in tqdm(steps, desc=f"verify synthetic ({profile})", unit="experiment"):
            payload[name] = fn(cfg[name], np.random.default_rng([seed, len(name), ord(name[-1])]))
    payload["summary_verdicts"] = _count_verdicts(payload)
    figures(payload, out)
    payload["provenance"] = provenance(command=command or " ".join(sys.argv), profile=profile, seed=seed,
                                       wall_time_s=timer.seconds)
    write_json(out / "synthetic.json", payload)
    return payload


def _count_verdicts(payload: dict) -> dict:
    counts = {}
    for exp in ("b1", "b2", "b4"):
        for row in payload[exp]["rows"]:
            for key, val in row["verdicts"].items():
                items = val.items() if isinstance(val, dict) else [("", val)]
                for term, v in items:
                    name = f"{exp}:{key}" + (f"<={term}" if term else "")
                    counts.setdefault(name, {"holds": 0, "violated": 0, "inconclusive": 0})[v] += 1
    return counts


def summary(payload: dict) -> str:
    v = payload["summary_verdicts"]
    chain = {k: c for k, c in v.items() if not k.startswith("b4:marginal")}
    viol = sum(c["violated"] for c in chain.values())
    marg = v.get("b4:marginal_w1", {})
    return (f"verify synthetic ({payload['provenance']['profile']}): chain bounds certified violated "
            f"{viol} times; holds {sum(c['holds'] for c in chain.values())}, inconclusive "
            f"{sum(c['inconclusive'] for c in chain.values())}; B4 marginal form certified violated "
            f"{marg.get('violated', 0)} / {sum(marg.values()) if marg else 0} angles; "
            f"{payload['provenance']['wall_time_s']} s")


def _band(ax, x, rows, key, label, color, scale=1.0):
    est = np.array([r[key]["estimate"] for r in rows]) * scale
    lo = np.array([r[key]["lower"] if r[key]["lower"] is not None else np.nan for r in rows], float) * scale
    hi = np.array([r[key]["upper"] if r[key]["upper"] is not None else np.nan for r in rows], float) * scale
    ax.plot(x, est, "o-", color=color, label=label, ms=3)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if ok.any():
        ax.fill_between(np.asarray(x)[ok], np.maximum(lo[ok], 1e-6), hi[ok], color=color, alpha=0.2)


def _abs_rows(rows, key, scale):
    """Rows ``{"g": interval of |gap| / scale}`` from the interval of the gap (``row["gap"][key]``)."""
    out = []
    for r in rows:
        iv = r["gap"] if key is None else r["gap"][key]
        lo, hi = iv["lower"], iv["upper"]
        inside = lo <= 0 <= hi
        out.append({"g": {"estimate": abs(iv["estimate"]) / scale, "upper": max(abs(lo), abs(hi)) / scale,
                          "lower": 0.0 if inside else min(abs(lo), abs(hi)) / scale}})
    return out


def figures(payload: dict, out: Path) -> None:
    from .results import clean

    plt = figure_setup()
    out.mkdir(parents=True, exist_ok=True)
    p = clean({k: payload[k] for k in ("b1", "b2", "bias", "b4", "b3")})
    # Figure 1: convergence along t
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rows = p["b1"]["rows"]
    x = [r["one_minus_t"] for r in rows]
    ax = axes[0]
    ax.plot(x, [abs(r["gap"]["f1"]) / p["b1"]["norms"]["f1"] for r in rows], "k*-", label="|gap| / ||f|| (F1, exact)")
    ax.plot(x, [abs(r["gap"]["f2"]) / p["b1"]["norms"]["f2"] for r in rows], "kx--", label="|gap| / ||l|| (F2, exact)")
    ax.plot(x, [r["mmd_exact"] for r in rows], "s-", color="tab:blue", ms=3, label="MMD (exact)")
    _band(ax, x, rows, "w1_dk", "W1^{d_k} (plug-in, LCB-UCB)", "tab:orange")
    _band(ax, x, rows, "mean_dk", "E d_k (MC, Hoeffding)", "tab:green")
    ax.plot(x, [r["mean_dk_jensen"] for r in rows], ":", color="tab:green", label="E d_k Jensen bound")
    ax.plot(x, [r["sup_dk"] for r in rows], "-", color="tab:gray", label="sup d_k")
    for key, style in (("mean_gap", "--"), ("w2_bures", "-."), ("coupling_rms", ":")):
        ax.plot(x, [r["euclidean"][key] / p["b1"]["setup"]["sigma"] for r in rows], style, color="tab:purple",
                label=f"Euclid. {key} / sigma")
    ax.set(xscale="log", yscale="log", xlabel="1 - t", title="B1 linear-Gaussian", ylim=(1e-3, 10))
    ax.legend(fontsize=6)
    rows = p["b2"]["rows"]
    x = [r["one_minus_t"] for r in rows]
    ax = axes[1]
    _band(ax, x, _abs_rows(rows, "f1", p["b2"]["norms"]["f1"]), "g", "|gap| / ||f|| (F1, CI)", "black")
    _band(ax, x, rows, "mmd", "MMD (V-stat, CI)", "tab:blue")
    _band(ax, x, rows, "w1_dk", "W1^{d_k} (LCB-UCB)", "tab:orange")
    _band(ax, x, rows, "mean_dk", "E d_k (Hoeffding)", "tab:green")
    ax.plot(x, [r["max_dk"]["estimate"] for r in rows], "-", color="tab:gray", label="max d_k (sample)")
    _band(ax, x, rows, "w1", "Euclidean W1 (plug-in)", "tab:purple")
    _band(ax, x, rows, "mean_eu", "E||phi_S - phi_T|| (CLT)", "tab:brown")
    ax.set(xscale="log", yscale="log", xlabel="1 - t", title="B2 mixture inputs, MLP encoders", ylim=(1e-3, 10))
    ax.legend(fontsize=6)
    fig.suptitle("Figure 1: every term of the chain along the student path (all go to 0 as t -> 1)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "fig1_convergence.png")
    plt.close(fig)
    # Figure 2: tightness ratios
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, exp in zip(axes, ("b1", "b2")):
        rows = p[exp]["rows"]
        t = [1 - r["one_minus_t"] for r in rows]
        nf = p[exp]["norms"]["f1"]
        gap = [abs(r["gap"]["f1"] if exp == "b1" else r["gap"]["f1"]["estimate"]) / nf for r in rows]
        mmd = [r["mmd_exact"] if exp == "b1" else r["mmd"]["estimate"] for r in rows]
        ax.plot(t, np.array(gap) / np.array(mmd), "o-", ms=3, label="|gap| / (||f|| MMD)")
        w1p = np.array([r["w1_dk"]["estimate"] for r in rows])
        w1u = np.array([r["w1_dk"]["upper"] for r in rows])
        w1l = np.array([r["w1_dk"]["lower"] for r in rows])
        ax.plot(t, np.array(gap) / w1p, "s-", ms=3, label="|gap| / (||f|| W1^{d_k}) plug-in")
        ax.fill_between(t, np.array(gap) / w1u, np.minimum(np.array(gap) / np.maximum(w1l, 1e-12), 1.5),
                        alpha=0.2, color="tab:orange", label="using UCB..LCB of W1^{d_k}")
        ax.plot(t, np.array(gap) / np.array([r["mean_dk"]["estimate"] for r in rows]), "^-", ms=3,
                label="|gap| / (||f|| E d_k)")
        ax.set(xlabel="t", title=exp.upper(), ylim=(0, 1.5))
        ax.axhline(1, color="k", lw=0.8)
    axes[0].set_ylabel("tightness ratio (F1)")
    axes[0].legend(fontsize=6)
    fig.suptitle("Figure 2: tightness ratios along t (ratio <= 1 is the bound)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "fig2_tightness.png")
    plt.close(fig)
    # Figure 3: plug-in bias
    fig, ax = plt.subplots(figsize=(6, 3.8))
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
    ax.set(xscale="log", yscale="log", xlabel="n", ylabel="W1",
           title="Figure 3: plug-in W1 is biased upward; the null baseline is the bias floor")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "fig3_plugin_bias.png")
    plt.close(fig)
    # Figure 4: B4
    rows = p["b4"]["rows"]
    th = [r["theta"] for r in rows]
    lip = p["b4"]["setup"]["lipschitz"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    ax = axes[0]
    _band(ax, th, _abs_rows(rows, None, 1.0), "g", "|CE gap| (label-tied, CI)", "black")
    ax.plot(th, [lip * r["w1"]["estimate"] for r in rows], "o-", color="tab:red", ms=3, label="L W1(marginals) plug-in")
    ax.plot(th, [lip * r["w1"]["upper"] for r in rows], "--", color="tab:red", label="L W1(marginals) UCB")
    ax.plot(th, [lip * r["cond"]["estimate"] for r in rows], "s-", color="tab:blue", ms=3,
            label="L sum_c p_c W1(class c) plug-in")
    ax.plot(th, [lip * r["cond"]["lower"] for r in rows], "--", color="tab:blue", label="... LCB")
    ax.plot(th, [r["joint"] for r in rows], "^-", color="tab:green", ms=3, label="joint W1, cost L d + B 1[y != y']")
    ax.plot(th, [lip * r["coupling_exact"] for r in rows], ":", color="tab:brown", label="L E||phi_S - phi_T|| (exact)")
    ax.set(xlabel="rotation angle theta", title="risk gap vs. marginal / conditional / joint / coupling terms")
    ax.legend(fontsize=6)
    ax = axes[1]
    _band(ax, th, rows, "mmd", "MMD (CI)", "tab:red")
    _band(ax, th, rows, "w1_dk", "W1^{d_k} marginals (LCB-UCB)", "tab:orange")
    _band(ax, th, rows, "mean_dk", "E d_k (coupling)", "tab:brown")
    ax.set(xlabel="rotation angle theta", title="kernel terms: marginals stay ~0, the coupling grows")
    ax.legend(fontsize=6)
    fig.suptitle("Figure 4 (B4): label scrambles leave the marginal terms at 0 while the label-tied gap grows",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "fig4_label_scramble.png")
    plt.close(fig)
    # Figure 5: B3
    runs = p["b3"]["runs"]
    keys = list(runs)
    cols = 4
    nrows = -(-len(keys) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(12, 2.6 * nrows), squeeze=False, sharey=True)
    for ax, key in zip(axes.ravel(), keys):
        r = runs[key]
        st = r["steps"]
        ax.plot(st, r["gap"], "k*-", ms=3, label="|CE gap| h_T on S vs T")
        ax.plot(st, r["l_w1"], "o-", ms=3, color="tab:red", label="L W1(marg)")
        ax.plot(st, r["l_cond"], "s-", ms=3, color="tab:blue", label="L sum_c p_c W1(c)")
        ax.plot(st, r["l_coupling"], ":", color="tab:brown", label="L E||dphi||")
        ax.plot(st, r["mmd"], "-", color="tab:purple", label="MMD (fixed sigma)")
        ax.plot(st, r["w1_dk"], "--", color="tab:orange", label="W1^{d_k}")
        ax.set(yscale="log", title=key, xlabel="step")
        ax.tick_params(labelsize=7)
        ax.title.set_fontsize(8)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=5)
    fig.suptitle("Figure 5 (B3): chain terms on held-out data while a student is trained with each KD2M loss",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "fig5_training.png")
    plt.close(fig)
