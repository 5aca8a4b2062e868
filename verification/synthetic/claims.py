r"""The claims of ``verify synthetic``, what each kind must do, and how failures are counted.

Every claim is a comparison :math:`|\text{gap}|\le\text{bound}` decided by
:func:`verification.stats.verdict` from two intervals (degenerate for exact values):

* ``exact``: both sides are closed forms, or deterministic facts about the paired sample; it must
  be certified "holds" on every instance (to a relative tolerance ``RTOL`` and an absolute ``ATOL``);
* ``population``: a population inequality compared through confidence intervals; a certified
  "violated" is a failure ("inconclusive" is not);
* ``positive``: a control true with a wide margin; it must be certified "holds" on at least
  ``POSITIVE_MIN`` of the instances, otherwise the intervals are too wide or the rule is broken;
* ``negative``: a control false by a factor ``NEGATIVE_FACTOR``; it must never be certified "holds";
* ``data``: reported, never counted (the marginal form of B4, expected to fail).

All confidence intervals of the experiment form one Bonferroni family: :math:`m` intervals, each at
:math:`\alpha/m`, so that every certificate ("holds" or "violated") of every population and control
claim is simultaneously correct with probability at least :math:`1-\alpha`.
"""

from __future__ import annotations

from ..stats import Interval, compare

ALPHA = 0.05
RTOL, ATOL = 1e-6, 1e-8          # exact claims: lhs <= rhs + ATOL + RTOL |rhs|
POSITIVE_MIN = 0.9                # fraction of instances a positive control must certify
NEGATIVE_FACTOR = 20.0            # the bound term of a negative control is divided by this
VERDICTS = ("holds", "inconclusive", "violated")

#: claim type -> (kind, statement). ``K`` is NEGATIVE_FACTOR.
CLAIMS = {
    "b1:f1<=mmd": ("exact", "|gap_f1| <= ||f1|| MMD (closed forms)"),
    "b1:f2<=mmd": ("exact", "|gap_l| <= ||l|| MMD, l = g^2 (closed forms)"),
    "b1:mmd<=jensen": ("exact", "MMD <= sqrt(2 - 2 E k(phi_S, phi_T)) (closed forms)"),
    "b1:mean_gap<=w2": ("exact", "||mu_S - mu_T|| <= W2 (Bures)"),
    "b1:w2<=coupling_rms": ("exact", "W2 (Bures) <= sqrt(tr M + ||delta||^2)"),
    "b1:f1<=w1_dk": ("population", "|gap_f1| <= ||f1|| W1^{d_k}"),
    "b1:f1<=mean_dk": ("population", "|gap_f1| <= ||f1|| E d_k(phi_S, phi_T)"),
    "b1:f2<=w1_dk": ("population", "|gap_l| <= ||l|| W1^{d_k}"),
    "b1:f2<=mean_dk": ("population", "|gap_l| <= ||l|| E d_k(phi_S, phi_T)"),
    "b1:mmd<=w1_dk": ("population", "MMD <= W1^{d_k}"),
    "b1:mmd<=mean_dk": ("population", "MMD <= E d_k(phi_S, phi_T)"),
    "b1:mc_f1=exact": ("population", "the Monte Carlo CI of gap_f1 contains the closed form (never 'holds')"),
    "b1:control+:mc_f1<=sqrt2": ("positive", "|gap_f1| (Monte Carlo CI) <= sqrt2 ||f1||"),
    "b1:control-:f1<=mean_dk/K": ("negative", ("|gap_f1| <= ||f1|| E d_k / K, where |gap_f1| >= 2 ||f1|| "
                                               "sqrt(2 - 2 E k) / K makes it false")),
    "b2:sample:f1<=mmd": ("exact", "on the paired sample: |mean f1(z_S) - f1(z_T)| <= ||f1|| MMD"),
    "b2:sample:mmd<=w1_dk": ("exact", "on the paired sample: MMD <= W1^{d_k}"),
    "b2:sample:w1_dk<=mean_dk": ("exact", "on the paired sample: W1^{d_k} <= mean d_k(z_S, z_T)"),
    "b2:sample:ce<=L*mean_eu": ("exact", "on the paired sample: |mean CE gap| <= L mean ||z_S - z_T||"),
    "b2:f1<=mmd": ("population", "|gap_f1| <= ||f1|| MMD"),
    "b2:f1<=w1_dk": ("population", "|gap_f1| <= ||f1|| W1^{d_k}"),
    "b2:f1<=mean_dk": ("population", "|gap_f1| <= ||f1|| E d_k(phi_S, phi_T)"),
    "b2:f2<=mmd": ("population", "|gap_l| <= ||l|| MMD"),
    "b2:f2<=w1_dk": ("population", "|gap_l| <= ||l|| W1^{d_k}"),
    "b2:f2<=mean_dk": ("population", "|gap_l| <= ||l|| E d_k(phi_S, phi_T)"),
    "b2:ce<=L*mean_eu": ("population", "|CE gap| <= L E||phi_S - phi_T||, L = sqrt2 ||W||_op"),
    "b2:control+:f1<=sqrt2": ("positive", "|gap_f1| <= sqrt2 ||f1||"),
    "b2:control-:mean_eu<=sigma*mean_dk/K": ("negative", ("E||phi_S - phi_T|| <= sigma E d_k / K (false: "
                                                          "sigma d_k <= ||.||)")),
    "b4:ce<=L*cond_w1": ("population", "|CE gap| <= L sum_c p_c W1(class c)"),
    "b4:ce<=L*mean_eu": ("population", "|CE gap| <= L E||phi_S - phi_T|| (closed form)"),
    "b4:ce<=L*w1": ("data", "|CE gap| <= L W1(marginals): the marginal form, expected to fail"),
}

#: confidence intervals each instance (B1, B2) or angle (B4) spends from the family
INTERVALS = {"b1": ("w1_dk", "mean_dk", "mc_f1"),
             "b2": ("gap_f1", "gap_f2", "gap_ce", "mmd", "w1_dk", "mean_dk", "mean_eu"),
             "b4": ("gap", "w1 (UCB)", "cond_w1 (LCB)")}


def exact(lhs: float, rhs: float) -> str:
    """Verdict of the exact claim ``lhs <= rhs`` (to ``ATOL + RTOL |rhs|``), through the verdict rule."""
    return compare(Interval.point(lhs), Interval.point(rhs + ATOL + RTOL * abs(rhs)))


def tally(instances: list[dict], prefix: str) -> dict:
    """Counts and fractions of the verdicts of every claim type starting with ``prefix`` (``None``:
    the claim does not apply to the instance)."""
    out = {}
    for name, (kind, statement) in CLAIMS.items():
        if not name.startswith(prefix):
            continue
        verdicts = [inst["verdicts"][name] for inst in instances if inst["verdicts"].get(name) is not None]
        counts = {v: sum(x == v for x in verdicts) for v in VERDICTS}
        n = len(verdicts)
        out[name] = {"kind": kind, "statement": statement, "n": n, **counts,
                     "fractions": {v: counts[v] / n if n else 0.0 for v in VERDICTS}}
    return out


def failures(claims: dict, b3_failures: int) -> dict:
    """What ``violations`` counts, per source: exact claims not certified, population claims certified
    violated, positive controls certified on fewer than ``POSITIVE_MIN`` of their instances (one each),
    negative controls certified "holds" (each time), and B3's deterministic check failures."""
    out = {"exact": 0, "population": 0, "positive_controls": 0, "negative_controls": 0, "b3": int(b3_failures)}
    for c in claims.values():
        if c["kind"] == "exact":
            out["exact"] += c["n"] - c["holds"]
        elif c["kind"] == "population":
            out["population"] += c["violated"]
        elif c["kind"] == "positive":
            out["positive_controls"] += int(c["n"] == 0 or c["holds"] < POSITIVE_MIN * c["n"])
        elif c["kind"] == "negative":
            out["negative_controls"] += c["holds"]
    out["total"] = sum(out.values())
    return out
