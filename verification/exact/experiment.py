r"""``kd2m-ref verify exact``: the chain C1-C9 / E1-E3 on N random discrete instances, and E5 on an
extremal instance where the cross-entropy bound is attained.

For each check: the number of instances where it applies, violations (must be 0), quantiles of the
tightness ratio lhs/rhs, and the worst case (largest ratio, with the instance that gave it). The
marginal form of the label-tied bound (``marginal_form``) is reported as data: it can fail, and
does for label-scrambling instances (it needs assumption (A*): labels a function of the features).
Output: ``exact.json`` and ``exact_tightness.png`` in the results folder; ``kd2m-ref verify exact``
exits 1 when a must-hold check is violated.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .. import RESULTS_DIR
from ..functions import LinearHead
from ..results import Timer, figure_setup, provenance, write_json
from .chain import ATOL, ATOL_LP, KIND_PROBS, KINDS, RTOL, Check, Instance, chain, class_swap_instance, random_instance
from ..functions import KernelExpansion

PROFILES = {"smoke": 24, "quick": 300, "full": 20000}
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
DESCRIPTIONS = {
    "C1.F1": "|E_S f - E_T f| <= ||f||_H MMD_k (F1: kernel expansion)",
    "C1.F2": "|E_S l - E_T l| <= ||l||_H MMD_k (F2: l = g^2, exact product norm)",
    "C2": "MMD_k <= W1^{d_k}",
    "C3.mean": "W1^{d_k} <= sum_i w_i d_k(z_i^S, z_i^T)",
    "C3.max": "sum_i w_i d_k(z_i^S, z_i^T) <= max_i d_k(z_i^S, z_i^T)",
    "C4.pointwise": "d_k <= min(sqrt 2, ||.||/sigma) (worst pair)",
    "C4.w1": "W1^{d_k} <= W1^{||.||} / sigma",
    "C5.w1_w2": "W1 <= W2 (Euclidean; compared as W1^2 <= W2^2, the LP's value)",
    "C5.w2_coupling": "W2 <= (sum_i w_i ||z_i^S - z_i^T||^2)^{1/2} (compared as squares)",
    "C5.w1_coupling": "W1 <= sum_i w_i ||z_i^S - z_i^T||",
    "C6": "|CE gap, label-free| <= L W1 (F4, L = sqrt2 ||W||_op)",
    "C7.gap_cond": "|CE gap, label-tied| <= L sum_c p_c W1(class c)",
    "C7.cond_coupling": "sum_c p_c W1(class c) <= sum_i w_i ||z_i^S - z_i^T||",
    "C7.marg_cond": "W1(marginals) <= sum_c p_c W1(class c)",
    "C8.marg_joint": "W1(marginals) <= W1^{joint, beta} (worst beta)",
    "C8.joint_cond": "W1^{joint, beta} <= sum_c p_c W1(class c) (worst beta)",
    "C8.monotone": "W1^{joint, beta} non-decreasing in beta (worst step)",
    "C8.beta0": "W1^{joint, 0} = W1(marginals)",
    "C8.large_beta": "W1^{joint, beta} = sum_c p_c W1(class c) for beta >= max d",
    "C9": "||g^2||_{H_{k'^2}} <= ||g||^2_{H_k'}",
    "E1": "witness f* attains C1: E_S f* - E_T f* = MMD_k (instances with MMD >= 1e-3)",
    "E2": "z^S = z^T: every term and gap is 0",
    "E3.w1_mean": "n = 1: W1^{d_k} = d_k(z^S, z^T)",
    "E3.mean_max": "n = 1: mean = max",
    "E5": "saturated softmax head: |CE gap| = L W1 (the Lipschitz constant sqrt2 ||W||_op is attained)",
    "marginal_form": "DATA: |CE gap, label-tied| <= L W1(marginals); needs (A*), may fail",
}


def saturated_instance(gamma: float = 2.0, a: float = 8.0, delta: float = 0.5) -> Instance:
    r"""One point, two classes, head :math:`W=\gamma(-e_1,e_1)` (:math:`L=\sqrt2\|W\|_{op}=2\gamma`),
    label 0, teacher feature :math:`(a,0)`, student :math:`(a+\delta,0)`. Deep in the region the head
    assigns to class 1, :math:`\mathrm{CE}=\log(1+e^{2\gamma z_1})\approx2\gamma z_1`: the gap is
    :math:`L\,W_1` up to :math:`e^{-2\gamma a}`, so a constant smaller than :math:`L` breaks C6."""
    zt = np.array([[a, 0.0]])
    zs = zt + np.array([[delta, 0.0]])
    f = KernelExpansion(zt, np.array([0.5]), 1.0)
    head = LinearHead(gamma * np.array([[-1.0, 0.0], [1.0, 0.0]]), np.zeros(2))
    return Instance(zs, zt, None, np.array([0]), 1.0, f, KernelExpansion(zt, np.array([0.5]), 2 ** 0.5), head, 0,
                    "saturated")


def extremal_checks() -> list[Check]:
    """The chain on two extremal instances: :func:`saturated_instance`, with E5 (there the bound of C6
    is attained, so a constant loosened or tightened by a factor fails E5 or C6), and the label
    scramble of :func:`e4_example` (equal marginals, different label-tied risks: the class-conditional
    bound must hold where the marginal form fails)."""
    checks = chain(saturated_instance())
    c6 = next(c for c in checks if c.name == "C6")
    return checks + [Check("E5", c6.lhs, c6.rhs, relation="eq", atol=1e-9)] + chain(_label_swap_instance())


def _label_swap_instance() -> Instance:
    zt = np.array([[-1.0, 0.0], [1.0, 0.0]])
    head = LinearHead(np.array([[-2.0, 0.0], [2.0, 0.0]]), np.zeros(2))
    return class_swap_instance(zt, np.array([0, 1]), head)


def e4_example() -> dict:
    """The two-point counterexample to the marginal form, on the chain's own functions."""
    checks = {c.name: c for c in chain(_label_swap_instance())}
    return {"description": "P = (delta_x1 + delta_x2)/2, labels 0, 1; teacher features a, b; student b, a; "
                           "linear head separating a from b",
            "mmd": checks["C2"].lhs, "w1_dk": checks["C2"].rhs, "w1_marginal": checks["C7.marg_cond"].lhs,
            "label_tied_gap": checks["marginal_form"].lhs, "L_times_w1_marginal": checks["marginal_form"].rhs,
            "L_times_conditional": checks["C7.gap_cond"].rhs,
            "marginal_form_fails": checks["marginal_form"].violated,
            "corrected_bound_holds": not checks["C7.gap_cond"].violated}


def evaluate(seed: int, index: int):
    """Instance ``index`` (drawn from ``default_rng([seed, index])``, so instances are independent of
    the order and number of worker processes) and its checks."""
    inst = random_instance(np.random.default_rng([seed, index]))
    meta = {"kind": inst.kind, "n": len(inst.zs), "d": inst.zs.shape[1],
            "weights": "uniform" if inst.w is None else "dirichlet", "sigma": inst.sigma}
    return meta, chain(inst)


def _evaluate_star(args):
    return evaluate(*args)


def run(profile: str = "quick", seed: int = 0, out: Path | None = None, command: str = "", jobs: int = 1) -> dict:
    from tqdm import tqdm

    n_inst = PROFILES[profile]
    out = Path(out) if out else RESULTS_DIR / profile
    records: dict[str, dict] = {}
    kinds = {k: 0 for k in KINDS}
    with Timer() as timer:
        tasks = [(seed, i) for i in range(n_inst)]
        if jobs > 1:
            import multiprocessing

            pool = multiprocessing.get_context("fork").Pool(jobs)
            results = pool.imap(_evaluate_star, tasks, chunksize=20)
        else:
            pool, results = None, map(_evaluate_star, tasks)
        for index, (meta, checks) in enumerate(tqdm(results, total=n_inst, desc=f"verify exact ({profile})",
                                                    unit="instance")):
            kinds[meta["kind"]] += 1
            for c in checks:
                rec = records.setdefault(c.name, {"n": 0, "violations": 0, "ratios": [], "worst": None,
                                                  "must_hold": c.must_hold, "first_violation": None})
                rec["n"] += 1
                ratio = c.ratio
                if c.violated:
                    rec["violations"] += 1
                    if rec["first_violation"] is None:
                        rec["first_violation"] = {"instance": index, "lhs": c.lhs, "rhs": c.rhs, **meta}
                if ratio is not None and c.relation == "le":
                    rec["ratios"].append(ratio)
                    if rec["worst"] is None or ratio > rec["worst"]["ratio"]:
                        rec["worst"] = {"ratio": ratio, "instance": index, "lhs": c.lhs, "rhs": c.rhs, **meta}
                if c.relation == "eq":
                    dev = abs(c.lhs - c.rhs)
                    if rec["worst"] is None or dev > rec["worst"]["abs_deviation"]:
                        rec["worst"] = {"abs_deviation": dev, "instance": index, "lhs": c.lhs, "rhs": c.rhs, **meta}
        if pool is not None:
            pool.close()
            pool.join()
        for c in extremal_checks():
            rec = records.setdefault(c.name, {"n": 0, "violations": 0, "ratios": [], "worst": None,
                                              "must_hold": c.must_hold, "first_violation": None})
            rec["n"] += 1
            if c.violated:
                rec["violations"] += 1
                if rec["first_violation"] is None:
                    rec["first_violation"] = {"instance": "extremal", "lhs": c.lhs, "rhs": c.rhs}
        example = e4_example()
    checks = {}
    for name, rec in records.items():
        ratios = np.asarray(rec.pop("ratios"))
        rec["description"] = DESCRIPTIONS.get(name, name)
        rec["relation"] = "eq" if name.startswith(("E", "C8.beta0", "C8.large_beta")) else "le"
        if len(ratios):
            rec["ratio_quantiles"] = dict(zip([f"q{int(q * 100)}" for q in QUANTILES], np.quantile(ratios, QUANTILES)))
            rec["ratio_histogram"] = _histogram(ratios)
        checks[name] = rec
    chain_violations = sum(r["violations"] for r in checks.values() if r["must_hold"])
    payload = {
        "experiment": "exact discrete-measure checks",
        "instances": n_inst,
        "extremal": "a saturated-head instance (checked by the whole chain and by E5) and the two-point label "
                    "scramble (the whole chain); verification.exact.experiment.extremal_checks",
        "kinds": kinds,
        "generator": {"n": [1, 25], "d": [1, 4], "coordinates": "uniform [-5, 5] x scale in [0.1, 3]",
                      "sigma": "log-uniform [0.2, 5]", "classes": [1, 4], "kinds": dict(zip(KINDS, KIND_PROBS)),
                      "weights": "uniform or Dirichlet(1) (50/50; permuted instances uniform)"},
        "reproduce": "instance i is verification.exact.random_instance(numpy.random.default_rng([seed, i]))",
        "tolerance": {"atol": ATOL, "atol_lp": ATOL_LP, "rtol": RTOL,
                      "rule": "lhs <= rhs + atol + rtol |rhs|; atol_lp where HiGHS solves a weighted LP"},
        "chain_violations": chain_violations,
        "marginal_form_failures": checks.get("marginal_form", {}).get("violations", 0),
        "e4_counterexample": example,
        "checks": checks,
    }
    figures(payload, out)
    payload["provenance"] = provenance(command=command or " ".join(sys.argv), profile=profile, seed=seed,
                                       wall_time_s=timer.seconds)
    write_json(out / "exact.json", payload)
    return payload


BINS = np.linspace(0.0, 1.0, 41)


def _histogram(ratios: np.ndarray) -> dict:
    """Counts of ratios in 40 bins on [0, 1], and the count above 1 (ratios > 1 are only possible
    within tolerance for chain checks, and are data for ``marginal_form``)."""
    counts, _ = np.histogram(np.clip(ratios, 0, 1), bins=BINS)
    return {"edges": BINS, "counts": counts, "above_one": int(np.sum(ratios > 1))}


def violations(payload: dict) -> int:
    """Violations of the must-hold checks (``kd2m-ref verify exact`` exits 1 when > 0); the marginal
    form's failures are data and do not count."""
    return int(payload["chain_violations"])


def _pyplot():
    """pyplot with the book's style (:mod:`verification.plotting`): fonts of at least 10 pt."""
    from ..plotting import use_style

    plt = figure_setup()
    use_style()
    return plt


#: Ratios below this are drawn at it (the tightness figure's x axis is logarithmic).
RATIO_FLOOR = 1e-3


def no_ratio_failures(rec: dict) -> int:
    """A lower bound on the violations of a check whose right-hand side is 0 (to 1e-12): there lhs/rhs is
    infinite and is left out of the ratio statistics (``ratio_quantiles``, ``worst``), which are taken over
    the instances with rhs > 1e-12. Every violation with a finite ratio has a ratio above 1, so at least
    ``violations - above_one`` violations have no ratio; all of them when no finite ratio exceeds 1."""
    hist = rec.get("ratio_histogram") or {}
    return max(0, rec["violations"] - hist.get("above_one", 0))


def tightness_figure(payload: dict):
    """The tightness ratio lhs / rhs of every inequality, one row per check, on a logarithmic axis that
    is not clipped at 1: a thin line from the smallest to the largest ratio, a medium one over the 5-95 %
    quantiles, a thick one over the quartiles, a dot at the median; the dashed line at 1 is the bound.
    Must-hold checks in blue, the marginal form (data, may fail) in vermilion, with the violations that
    have rhs = 0 (infinite ratio) drawn as a triangle at the right edge. Returns the figure."""
    from ..plotting import COLORS, WIDTH

    plt = _pyplot()
    checks = payload["checks"]
    names = [k for k in DESCRIPTIONS if k in checks and checks[k].get("ratio_quantiles")]
    top = max([1.0] + [checks[k]["ratio_quantiles"]["q100"] for k in names])
    right = max(100.0, 10 ** np.ceil(np.log10(top * 1.5)))
    fig, ax = plt.subplots(figsize=(WIDTH, 0.3 * len(names) + 1.6), layout="constrained")
    for i, name in enumerate(names):
        rec, q = checks[name], checks[name]["ratio_quantiles"]
        color = COLORS[0] if rec["must_hold"] else COLORS[3]
        v = {k: max(x, RATIO_FLOOR) for k, x in q.items()}
        ax.plot([v["q0"], v["q100"]], [i, i], color=color, lw=1, ls="-", solid_capstyle="butt")
        ax.plot([v["q5"], v["q95"]], [i, i], color=color, lw=4, ls="-", solid_capstyle="butt", alpha=0.55)
        ax.plot([v["q25"], v["q75"]], [i, i], color=color, lw=8, ls="-", solid_capstyle="butt")
        ax.plot([v["q50"]], [i], "o", ms=5, mfc="white", mec="black", mew=1, ls="none")
        inf = no_ratio_failures(rec) if not rec["must_hold"] else 0
        if inf:
            ax.plot([right / 1.25], [i], ">", ms=8, color=color, ls="none")
            at_least = "" if inf == rec["violations"] else "≥ "
            ax.text(right / 1.1, i + 0.75, f"{at_least}{inf} with rhs = 0 (ratio ∞)",
                    ha="right", va="center", fontsize=10, color=color)
        tag = f"{rec['violations']} / {rec['n']}"
        ax.text(1.02, i, tag, transform=ax.get_yaxis_transform(), va="center", ha="left", fontsize=10,
                color=color if rec["violations"] else "black")
    ax.axvline(1.0, color="black", lw=1.2, ls="--")
    ax.text(1.0, -0.9, "bound: ratio 1 ", ha="right", va="center", fontsize=10)
    ax.set_yticks(range(len(names)), [n if checks[n]["must_hold"] else "marginal form" for n in names])
    ax.set_ylim(len(names) + 0.3, -1.4)
    ax.set_xscale("log")
    ax.set_xlim(RATIO_FLOOR, right)
    ax.grid(axis="y", visible=False)
    ax.text(1.02, -1.0, "violations\n/ instances", transform=ax.get_yaxis_transform(), va="center", ha="left",
            fontsize=10)
    ax.set_xlabel(f"tightness ratio lhs / rhs (log scale; ratios below {RATIO_FLOOR:g} drawn at {RATIO_FLOOR:g})")
    ax.set_title(f"{payload['instances']} random instances: range, 5–95 %, quartiles, median", loc="left")
    return fig


def figures(payload: dict, out: Path) -> None:
    """``exact_tightness.png``: :func:`tightness_figure` (a function of the JSON)."""
    path = Path(out) / "exact_tightness.png"
    plt = _pyplot()
    fig = tightness_figure(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def summary(payload: dict) -> str:
    """One paragraph for the terminal."""
    worst = {k: v["worst"]["ratio"] for k, v in payload["checks"].items()
             if v["must_hold"] and v["worst"] and "ratio" in v["worst"]}
    top = max(worst, key=worst.get) if worst else None
    return (f"verify exact ({payload['provenance']['profile']}): {payload['instances']} instances, "
            f"{payload['chain_violations']} chain violations over {sum(1 for v in payload['checks'].values() if v['must_hold'])} "
            f"checks; worst tightness {top} = {worst.get(top, float('nan')):.6g}; marginal form failed on "
            f"{payload['marginal_form_failures']} instances (expected: label scrambles); "
            f"{payload['provenance']['wall_time_s']} s")
