r"""``kd2m-ref verify synthetic``: population checks of Lemma 1 and Theorem 3.1 on random instances.

* B1: linear encoders of Gaussian inputs; gap, MMD, its Jensen bound and the Euclidean sandwich in
  closed form, :math:`W_1^{d_k}` and :math:`\mathbb E\,d_k` from paired samples.
* B2: Gaussian-mixture inputs, tanh MLP encoders, student parameters interpolated toward the teacher;
  every term from paired samples.
* bias: the plug-in :math:`W_1` against n and d, next to a null baseline (data).
* B4: label scrambles (rotations of a disc), where the marginal terms vanish (data, and two
  must-hold claims).
* B3: a student MLP trained with CE + lambda D for every registry key (:mod:`.training`).

B1 and B2 are populations of random instances; instance ``i`` is drawn from
``np.random.default_rng([seed, tag, i])`` so that it does not depend on the others. The claims, their
kinds and the family-wise level are in :mod:`.claims`. Output: ``synthetic.json`` and the figures
of :mod:`.plots` in the results folder.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist

from .. import RESULTS_DIR
from ..distances import (
    SQRT2,
    class_conditional_w1,
    euclidean_distance,
    joint_w1,
    ot_cost,
)
from ..functions import KernelExpansion, LinearHead
from ..results import Timer, provenance, write_json
from ..stats import Interval, bonferroni, compare, mean_interval, w1_lower, w1_upper
from .claims import ALPHA, INTERVALS, NEGATIVE_FACTOR, exact, failures, tally
from .closed_forms import (
    euclidean_sandwich,
    expectation,
    gaussian_mmd,
    kernel_coupling_jensen,
)
from .plots import figures
from .population import kernel_terms

TAGS = {"b1": 1, "b2": 2, "bias": 3, "b4": 4, "b3": 5}
PROFILES = {
    "smoke": {"b1": {"instances": 6, "n": 160}, "b2": {"instances": 6, "n": 160},
              "bias": {"ns": [16, 64], "ds": [1, 2], "reps": 2},
              "b4": {"n": 300, "grid": 3}, "b3": {"steps": 10, "every": 5, "n_test": 60, "batch": 48}},
    "quick": {"b1": {"instances": 40, "n": 400}, "b2": {"instances": 40, "n": 400},
              "bias": {"ns": [16, 64, 256, 512], "ds": [1, 2, 4, 8], "reps": 3},
              "b4": {"n": 1500, "grid": 7}, "b3": {"steps": 120, "every": 20, "n_test": 240, "batch": 48}},
    "full": {"b1": {"instances": 200, "n": 600}, "b2": {"instances": 200, "n": 600},
             "bias": {"ns": [16, 64, 256, 1024], "ds": [1, 2, 4, 8], "reps": 5},
             "b4": {"n": 2400, "grid": 10}, "b3": {"steps": 300, "every": 25, "n_test": 450, "batch": 96}},
}


def _log_uniform(rng, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(math.log(lo), math.log(hi))))


def _iv(iv: Interval) -> dict:
    return iv.as_dict()


# --------------------------------------------------------------------------- B1


def b1_instance(seed: int, i: int, n: int, alpha: float) -> dict:
    r"""One random linear-Gaussian instance: :math:`x\sim N(0,I_p)`, :math:`\phi_T=A_Tx+b_T`,
    :math:`\phi_S=\phi_T+s(\phi_0-\phi_T)` with a random start :math:`\phi_0`, :math:`s=1-t` log-uniform
    in [0.01, 1]; random bandwidth; two random RKHS functions (``f1``, and ``f2`` = :math:`g^2`);
    ``n`` paired samples for the sample-based terms, whose intervals are each at ``alpha``."""
    rng = np.random.default_rng([seed, TAGS["b1"], i])
    p, d = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    sigma, s = _log_uniform(rng, 0.5, 2.0), _log_uniform(rng, 0.01, 1.0)
    a_t, a_0 = rng.normal(size=(d, p)) / math.sqrt(p), rng.normal(size=(d, p)) / math.sqrt(p)
    b_t, b_0 = 0.5 * rng.normal(size=d), 0.5 * rng.normal(size=d)
    a_s, b_s = a_t + s * (a_0 - a_t), b_t + s * (b_0 - b_t)
    cov_s, cov_t = a_s @ a_s.T, a_t @ a_t.T
    delta, m = b_s - b_t, (a_s - a_t) @ (a_s - a_t).T
    j1, j2 = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    f1 = KernelExpansion(rng.normal(size=(j1, p)) @ a_t.T + b_t, rng.normal(size=j1), sigma)
    ell = KernelExpansion(rng.normal(size=(j2, p)) @ a_t.T + b_t, rng.normal(size=j2), SQRT2 * sigma).squared()
    funcs = {"f1": f1, "f2": ell}
    norms = {k: f.norm() for k, f in funcs.items()}
    gap = {k: expectation(f, b_s, cov_s) - expectation(f, b_t, cov_t) for k, f in funcs.items()}
    mmd = gaussian_mmd(b_s, cov_s, b_t, cov_t, sigma)
    jensen = kernel_coupling_jensen(delta, m, sigma)
    eu = euclidean_sandwich(b_s, cov_s, b_t, cov_t, m)
    x = rng.normal(size=(n, p))
    zs, zt = x @ a_s.T + b_s, x @ a_t.T + b_t
    kt = kernel_terms(zs, zt, sigma, alpha, rng)
    mc = mean_interval(f1.difference(zs, zt), 2 * SQRT2 * norms["f1"], alpha)  # |f(u) - f(v)| <= sqrt2 ||f||
    point = Interval.point
    v = {}
    for k in ("f1", "f2"):
        v[f"b1:{k}<=mmd"] = exact(abs(gap[k]), norms[k] * mmd)
        v[f"b1:{k}<=w1_dk"] = compare(point(gap[k]), kt["w1_dk"], norms[k])
        v[f"b1:{k}<=mean_dk"] = compare(point(gap[k]), kt["mean_dk"], norms[k])
    v["b1:mmd<=jensen"] = exact(mmd, jensen)
    v["b1:mean_gap<=w2"] = exact(eu["mean_gap"], eu["w2_bures"])
    v["b1:w2<=coupling_rms"] = exact(eu["w2_bures"], eu["coupling_rms"])
    v["b1:mmd<=w1_dk"] = compare(point(mmd), kt["w1_dk"])
    v["b1:mmd<=mean_dk"] = compare(point(mmd), kt["mean_dk"])
    v["b1:mc_f1=exact"] = compare(mc.shifted(-gap["f1"]), point(0.0))
    v["b1:control+:mc_f1<=sqrt2"] = compare(mc, point(SQRT2 * norms["f1"]))
    # E d_k <= jensen, so on these instances |gap| > ||f|| E d_k / K by a factor >= 2
    false_claim = abs(gap["f1"]) >= 2 * norms["f1"] * jensen / NEGATIVE_FACTOR
    v["b1:control-:f1<=mean_dk/K"] = (compare(point(gap["f1"]), kt["mean_dk"], norms["f1"] / NEGATIVE_FACTOR)
                                      if false_claim else None)
    return {"i": i, "p": p, "d": d, "sigma": sigma, "one_minus_t": s, "centres": [j1, j2], "norms": norms,
            "gap": gap, "mmd": mmd, "jensen": jensen, "euclidean": eu,
            **{k: _iv(kt[k]) for k in ("w1_dk", "mean_dk")}, "mc_f1": _iv(mc), "verdicts": v}


def _population(instance, cfg: dict, seed: int, alpha: float, progress) -> list[dict]:
    """``cfg["instances"]`` draws of ``instance(seed, i, n, alpha)``, ticking ``progress`` after each."""
    rows = []
    for i in range(cfg["instances"]):
        rows.append(instance(seed, i, cfg["n"], alpha))
        if progress:
            progress.update()
    return rows


def b1(cfg: dict, seed: int, alpha: float, progress=None) -> dict:
    rows = _population(b1_instance, cfg, seed, alpha, progress)
    return {"setup": {
        "instances": cfg["instances"], "n": cfg["n"], "alpha_per_interval": alpha,
        "draw": "p in 1..5, d in 1..4, A_T, A_0 ~ N(0, 1/p), b_T, b_0 ~ N(0, 1/4), sigma log-uniform [0.5, 2], "
                "1 - t log-uniform [0.01, 1]; phi_S = phi_T + (1 - t)(phi_0 - phi_T); x ~ N(0, I_p)",
        "functions": "f1: 1-4 Gaussian-kernel centres drawn from P_T, N(0,1) coefficients; f2 = g^2, g with 1-3 "
                     "centres at bandwidth sqrt2 sigma (so f2 is in H_k); exact RKHS norms",
        "exact": "gap, MMD, sqrt(2 - 2 E k) and the Euclidean sandwich in closed form",
        "sampled": "W1^{d_k}: plug-in on n paired samples, UCB McDiarmid, LCB split dual potentials; E d_k: "
                   "Hoeffding; gap_f1 also by Monte Carlo (Hoeffding / empirical Bernstein)"},
        "instances": rows}


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


def b2_instance(seed: int, i: int, n: int, alpha: float) -> dict:
    r"""One random instance: a C-component Gaussian mixture in :math:`\mathbb R^p` (label = component),
    a teacher and a student-start tanh MLP :math:`p\to h\to d` with random widths and scales, the student
    :math:`\theta_T+s(\theta_0-\theta_T)` with :math:`s=1-t` log-uniform in [0.01, 1], a bandwidth
    around the median teacher distance, two random RKHS functions and the least-squares teacher head;
    every term from ``n`` paired samples, each interval at ``alpha``."""
    rng = np.random.default_rng([seed, TAGS["b2"], i])
    p, hidden, d, classes = (int(rng.integers(lo, hi)) for lo, hi in ((2, 7), (4, 33), (1, 5), (2, 5)))
    means, std = 2.0 * rng.normal(size=(classes, p)), float(rng.uniform(0.5, 1.0))
    net = NumpyMLP(p, hidden, d)
    th_t, th_0 = net.random(rng, rng.uniform(1.0, 2.5)), net.random(rng, rng.uniform(1.0, 2.5))
    s = _log_uniform(rng, 0.01, 1.0)
    th_s = th_t + s * (th_0 - th_t)
    x_fit, y_fit = mixture(rng, 300, means, std)
    zt_fit = net(th_t, x_fit)
    sigma = float(np.median(pdist(zt_fit))) * _log_uniform(rng, 0.5, 2.0)
    coef = np.linalg.lstsq(np.c_[zt_fit, np.ones(len(zt_fit))], 3.0 * (np.eye(classes)[y_fit] - 1 / classes),
                           rcond=None)[0]
    head = LinearHead(coef[:-1].T, coef[-1])
    lip = head.lipschitz
    j1, j2 = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    f1 = KernelExpansion(zt_fit[:j1], rng.normal(size=j1), sigma)
    ell = KernelExpansion(zt_fit[j1:j1 + j2], rng.normal(size=j2), SQRT2 * sigma).squared()
    norms = {"f1": f1.norm(), "f2": ell.norm()}
    x, y = mixture(rng, n, means, std)
    zs, zt = net(th_s, x), net(th_t, x)
    kt = kernel_terms(zs, zt, sigma, alpha, rng)
    ce = head.cross_entropy(zs, y) - head.cross_entropy(zt, y)
    dist = np.linalg.norm(zs - zt, axis=1)
    gaps = {"f1": mean_interval(f1.difference(zs, zt), 2 * SQRT2 * norms["f1"], alpha),
            "f2": mean_interval(ell.difference(zs, zt), 2 * norms["f2"], alpha),  # 0 <= l <= ||l||
            "ce": mean_interval(ce, None, alpha)}
    mean_eu = mean_interval(dist, None, alpha)
    v = {"b2:sample:f1<=mmd": exact(abs(gaps["f1"].estimate), norms["f1"] * kt["mmd"].estimate),
         "b2:sample:mmd<=w1_dk": exact(kt["mmd"].estimate, kt["w1_dk"].estimate),
         "b2:sample:w1_dk<=mean_dk": exact(kt["w1_dk"].estimate, kt["mean_dk"].estimate),
         "b2:sample:ce<=L*mean_eu": exact(abs(gaps["ce"].estimate), lip * mean_eu.estimate)}
    for k in ("f1", "f2"):
        for term in ("mmd", "w1_dk", "mean_dk"):
            v[f"b2:{k}<={term}"] = compare(gaps[k], kt[term], norms[k])
    v["b2:ce<=L*mean_eu"] = compare(gaps["ce"], mean_eu, lip)
    v["b2:control+:f1<=sqrt2"] = compare(gaps["f1"], Interval.point(SQRT2 * norms["f1"]))
    v["b2:control-:mean_eu<=sigma*mean_dk/K"] = compare(mean_eu, kt["mean_dk"], sigma / NEGATIVE_FACTOR)
    return {"i": i, "p": p, "hidden": hidden, "d": d, "classes": classes, "sigma": sigma, "one_minus_t": s,
            "centres": [j1, j2], "lipschitz": lip, "norms": norms, "gap": {k: _iv(g) for k, g in gaps.items()},
            **{k: _iv(val) for k, val in kt.items()}, "mean_eu": _iv(mean_eu), "verdicts": v}


def b2(cfg: dict, seed: int, alpha: float, progress=None) -> dict:
    rows = _population(b2_instance, cfg, seed, alpha, progress)
    return {"setup": {
        "instances": cfg["instances"], "n": cfg["n"], "alpha_per_interval": alpha,
        "draw": "p in 2..6 inputs, C in 2..4 mixture components (means ~ N(0, 4 I), std U[0.5, 1]), tanh MLP "
                "p -> h -> d with h in 4..32, d in 1..4, weight scales U[1, 2.5]; student theta_T + (1 - t)"
                "(theta_0 - theta_T), 1 - t log-uniform [0.01, 1]; sigma = median teacher distance x "
                "log-uniform [0.5, 2]",
        "functions": "f1: 1-4 centres at teacher features; f2 = g^2 (g: 1-3 centres, bandwidth sqrt2 sigma); "
                     "teacher head: least squares on teacher features, L = sqrt2 ||W||_op",
        "intervals": "gaps of f1, f2: Hoeffding / empirical Bernstein; CE gap and E||phi_S - phi_T||: CLT "
                     "(approximate, the features are unbounded); MMD, W1^{d_k}, E d_k as in B1"},
        "instances": rows}


# --------------------------------------------------------------------------- plug-in bias


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
                plug.append(ot_cost(euclidean_distance(a + shift, b)))
                null.append(ot_cost(euclidean_distance(c, b)))
            out.append({"d": d, "n": n, "plug_in_mean": np.mean(plug), "plug_in_sd": np.std(plug, ddof=1),
                        "null_mean": np.mean(null), "null_sd": np.std(null, ddof=1)})
    return {"setup": {"population_w1": 0.5, "reps": cfg["reps"]}, "rows": out}


# --------------------------------------------------------------------------- B4


def b4(cfg: dict, rng: np.random.Generator, alpha: float) -> dict:
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
        gap = mean_interval(head.cross_entropy(zs, y) - head.cross_entropy(zt, y), 2 * bound, alpha)
        kt = kernel_terms(zs, zt, sigma, alpha, rng)
        marg = ot_cost(euclidean_distance(zs, zt))
        w1 = Interval(marg, math.nan, w1_upper(marg, 2.0, n, alpha))
        cond_lcb = 0.0
        for c in (0, 1):  # class-wise split LCB, each at alpha / 2; population class weights are 1/2
            idx = np.flatnonzero(y == c)
            h = len(idx) // 2
            lo = w1_lower(zs[idx[:h]], zt[idx[:h]], zs[idx[h:]], zt[idx[h:]], euclidean_distance, 2.0, alpha / 2)
            cond_lcb += 0.5 * max(lo.lower, 0.0)
        cond = Interval(class_conditional_w1(zs, zt, y, euclidean_distance), cond_lcb, math.nan)
        coupling = 2 * math.sin(theta / 2) * 2 / 3  # E||R x - x|| = 2 sin(theta/2) E|x|, E|x| = 2/3
        joint = joint_w1(zs, zt, y, lambda u, v: lip * euclidean_distance(u, v), bound)
        rows.append({"theta": theta, "gap": _iv(gap), **{k: _iv(val) for k, val in kt.items()}, "w1": _iv(w1),
                     "cond": _iv(cond), "coupling_exact": coupling, "joint": joint,
                     "verdicts": {"b4:ce<=L*cond_w1": compare(gap, cond, lip),
                                  "b4:ce<=L*mean_eu": compare(gap, Interval.point(coupling), lip),
                                  "b4:ce<=L*w1": compare(gap, w1, lip)}})
    return {"setup": {"n": n, "grid": cfg["grid"], "gamma": gamma, "sigma": sigma, "lipschitz": lip,
                      "ce_bound": bound, "alpha_per_interval": alpha,
                      "joint": "plug-in W1 for the cost L||z - z'|| + B 1[y != y'] (no CI)",
                      "marginals": "population marginal terms are exactly 0 (rotation-invariant P)",
                      "kernel_terms": "MMD, W1^{d_k}, E d_k with intervals at the same level, shown, not claimed"},
            "rows": rows}


# --------------------------------------------------------------------------- driver


def family_size(cfg: dict) -> int:
    """Number of confidence intervals that the claims of a profile use (the Bonferroni m)."""
    return (len(INTERVALS["b1"]) * cfg["b1"]["instances"] + len(INTERVALS["b2"]) * cfg["b2"]["instances"]
            + len(INTERVALS["b4"]) * cfg["b4"]["grid"])


def run(profile: str = "quick", seed: int = 0, out: Path | None = None, command: str = "", **options) -> dict:
    """Run B1, B2, bias, B4, B3; write ``synthetic.json`` and the figures into ``out``."""
    from tqdm import tqdm

    from .training import b3

    if options:
        raise TypeError(f"verify synthetic takes no options; got {sorted(options)}")
    cfg = PROFILES[profile]
    out = Path(out) if out else RESULTS_DIR / profile
    m = family_size(cfg)
    alpha_i = bonferroni(ALPHA, m)
    payload = {"experiment": "synthetic population checks of Lemma 1 and Theorem 3.1", "alpha": ALPHA,
               "family": {"method": "Bonferroni", "level": 1 - ALPHA, "m": m, "alpha_per_interval": alpha_i,
                          "intervals_per_unit": {k: list(v) for k, v in INTERVALS.items()},
                          "scope": "every confidence interval used by a population or control claim of B1, B2 "
                                   "and B4; all their certificates are simultaneously correct with probability "
                                   ">= 1 - alpha (CLT intervals of B2: approximately)"}}
    total = cfg["b1"]["instances"] + cfg["b2"]["instances"] + 3
    with Timer() as timer, tqdm(total=total, desc=f"verify synthetic ({profile})", unit="unit") as bar:
        payload["b1"] = b1(cfg["b1"], seed, alpha_i, bar)
        payload["b2"] = b2(cfg["b2"], seed, alpha_i, bar)
        payload["bias"] = bias(cfg["bias"], np.random.default_rng([seed, TAGS["bias"]]))
        bar.update()
        payload["b4"] = b4(cfg["b4"], np.random.default_rng([seed, TAGS["b4"]]), alpha_i)
        bar.update()
        payload["b3"] = b3(cfg["b3"], np.random.default_rng([seed, TAGS["b3"]]))
        bar.update()
    payload["claims"] = {**tally(payload["b1"]["instances"], "b1:"), **tally(payload["b2"]["instances"], "b2:"),
                         **tally(payload["b4"]["rows"], "b4:")}
    payload["failures"] = failures(payload["claims"], _b3_failures(payload))
    figures(payload, out)
    payload["provenance"] = provenance(command=command or " ".join(sys.argv), profile=profile, seed=seed,
                                       wall_time_s=timer.seconds)
    write_json(out / "synthetic.json", payload)
    return payload


def _b3_failures(payload: dict) -> int:
    return sum(r["checks"]["gap_le_L_cond_violations"] + r["checks"]["cond_le_coupling_violations"]
               + r["checks"]["lambda_not_positive"] for r in payload["b3"]["runs"].values())


def violations(payload: dict) -> int:
    """Failed exact claims, certified violations of must-hold population claims, failed controls and B3
    check failures (recounted from the claim counts; the B4 marginal form is data and never counts)."""
    return failures(payload["claims"], _b3_failures(payload))["total"]


def summary(payload: dict) -> str:
    """A headline (violations, family-wise level, counts per kind of claim) and one line per claim type."""
    fam, claims, fail = payload["family"], payload["claims"], payload["failures"]
    prov = payload.get("provenance", {})
    lam = [r["lambda"] for r in payload["b3"]["runs"].values()]

    def total(kind, key):
        return sum(c[key] for c in claims.values() if c["kind"] == kind)

    pos = [c for c in claims.values() if c["kind"] == "positive"]
    marg = claims["b4:ce<=L*w1"]
    head = (f"verify synthetic ({prov.get('profile')}, seed {prov.get('seed')}): {fail['total']} violation(s); "
            f"family-wise level {fam['level']:.2f} ({fam['method']}, m = {fam['m']} intervals at "
            f"{fam['alpha_per_interval']:.2g} each); B1 {payload['b1']['setup']['instances']} + B2 "
            f"{payload['b2']['setup']['instances']} random instances, B4 {len(payload['b4']['rows'])} angles: "
            f"exact claims {total('exact', 'holds')}/{total('exact', 'n')} hold; population claims "
            f"{total('population', 'holds')} certified holds, {total('population', 'inconclusive')} inconclusive, "
            f"{total('population', 'violated')} certified violated; positive controls certified "
            + ", ".join(f"{c['holds']}/{c['n']}" for c in pos) + f" (need >= 90% each); negative controls certified "
            f"{total('negative', 'holds')}/{total('negative', 'n')} (must be 0); B4 marginal form (data) violated "
            f"at {marg['violated']}/{marg['n']} angles; B3 {len(lam)} losses trained with CE + lambda D (lambda "
            f"{min(lam):.2g}..{max(lam):.2g}), {fail['b3']} check failures; {prov.get('wall_time_s')} s")
    lines = [head, f"  {'claim type':38s} {'kind':10s} {'n':>4s} {'holds':>6s} {'inconcl.':>8s} {'violated':>8s}"]
    for name, c in claims.items():
        lines.append(f"  {name:38s} {c['kind']:10s} {c['n']:4d} {c['holds']:6d} {c['inconclusive']:8d} "
                     f"{c['violated']:8d}")
    lines.append("  violations by source: " + ", ".join(f"{k} {v}" for k, v in fail.items() if k != "total"))
    return "\n".join(lines)
