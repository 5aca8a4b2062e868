r"""Confidence bounds for population claims, the verdict rule and family-wise levels.

Every function takes the error probability ``alpha`` of the statement it makes (an interval, or a
one-sided bound): a family of :math:`m` statements made at ``bonferroni(alpha, m)`` each is
simultaneously correct with probability at least :math:`1-\alpha`, and then so is every verdict
built from them. Samples are *paired*: the student and teacher features of the same inputs
:math:`x_1..x_n\sim P` (i.i.d.).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import ot

from .distances import SQRT2


@dataclass(frozen=True)
class Interval:
    """An estimate with a lower and an upper confidence bound."""

    estimate: float
    lower: float
    upper: float

    def as_dict(self) -> dict:
        return {"estimate": self.estimate, "lower": self.lower, "upper": self.upper}

    @classmethod
    def point(cls, value: float) -> Interval:
        """A degenerate interval (lower = upper = estimate): an exact value."""
        return cls(value, value, value)

    def shifted(self, offset: float) -> Interval:
        """The interval of the quantity plus ``offset``."""
        return Interval(self.estimate + offset, self.lower + offset, self.upper + offset)


def bonferroni(alpha: float, m: int) -> float:
    r"""Error probability of each of ``m`` statements for a family-wise level :math:`1-\alpha`
    (union bound): :math:`\alpha/m`."""
    if m < 1:
        raise ValueError(f"a family needs at least one statement; got m={m}")
    return alpha / m


def hoeffding(values, value_range: float, alpha: float) -> Interval:
    r"""Two-sided Hoeffding interval for the mean of i.i.d. values in an interval of length ``value_range``:
    :math:`\bar X\pm R\sqrt{\log(2/\alpha)/2n}`."""
    x = np.asarray(values, np.float64)
    half = value_range * math.sqrt(math.log(2 / alpha) / (2 * len(x)))
    m = float(x.mean())
    return Interval(m, m - half, m + half)


def empirical_bernstein(values, value_range: float, alpha: float) -> Interval:
    r"""Two-sided empirical-Bernstein interval (Maurer & Pontil 2009, Thm 4, each side at
    :math:`\alpha/2`), for i.i.d. values in an interval of length :math:`R`:

    .. math:: \bar X\pm\Big(\sqrt{2V_n\log(4/\alpha)/n}+\tfrac{7R\log(4/\alpha)}{3(n-1)}\Big),

    with :math:`V_n` the unbiased sample variance."""
    x = np.asarray(values, np.float64)
    n = len(x)
    log_term = math.log(4 / alpha)
    half = math.sqrt(2 * x.var(ddof=1) * log_term / n) + 7 * value_range * log_term / (3 * (n - 1))
    m = float(x.mean())
    return Interval(m, m - half, m + half)


def mean_interval(values, value_range: float | None, alpha: float) -> Interval:
    r"""The tighter of Hoeffding and empirical Bernstein, each at :math:`\alpha/2` (a union bound keeps
    the level :math:`1-\alpha`). ``value_range=None`` (unbounded values): the CLT interval
    :math:`\bar X\pm z_{1-\alpha/2}\,s/\sqrt n`, approximate."""
    x = np.asarray(values, np.float64)
    if value_range is None:
        from scipy.stats import norm

        half = float(norm.ppf(1 - alpha / 2)) * x.std(ddof=1) / math.sqrt(len(x))
        m = float(x.mean())
        return Interval(m, m - half, m + half)
    h, b = hoeffding(x, value_range, alpha / 2), empirical_bernstein(x, value_range, alpha / 2)
    return Interval(h.estimate, max(h.lower, b.lower), min(h.upper, b.upper))


def abs_upper(iv: Interval) -> float:
    """Upper confidence bound of ``|mean|`` from a two-sided interval of the mean."""
    return max(abs(iv.lower), abs(iv.upper))


def abs_lower(iv: Interval) -> float:
    """Lower confidence bound of ``|mean|``: 0 when the interval contains 0."""
    return 0.0 if iv.lower <= 0 <= iv.upper else min(abs(iv.lower), abs(iv.upper))


def w1_upper(plug_in: float, diameter: float, n: int, alpha: float) -> float:
    r"""UCB of :math:`W_1(P_S,P_T)` from the plug-in value on :math:`n` *paired* samples.

    :math:`\mathbb E\,W_1(\hat P_S,\hat P_T)\ge W_1(P_S,P_T)` (joint convexity), and changing one input
    :math:`x_i` moves both empirical measures, so :math:`W_1` by at most :math:`2D/n`; McDiarmid:

    .. math:: W_1(P_S,P_T)\le W_1(\hat P_S,\hat P_T)+D\sqrt{2\log(1/\alpha)/n}.

    (With independent samples of S and T the constant is :math:`D\sqrt{\log(1/\alpha)/n}`.)
    One-sided: wrong with probability at most ``alpha``.
    """
    return plug_in + diameter * math.sqrt(2 * math.log(1 / alpha) / n)


def w1_lower(zs_a, zt_a, zs_b, zt_b, ground, diameter: float, alpha: float) -> Interval:
    r"""LCB of :math:`W_1(P_S,P_T)` by sample splitting (one-sided, at ``alpha``).

    On half A solve the dual LP (POT's network simplex, ``ot.emd(log=True)``):
    :math:`\max\sum_i a_iu_i+\sum_jb_jv_j` s.t. :math:`u_i+v_j\le c(z^S_i,z^T_j)`, and extend by the
    c-transform :math:`f(z)=\min_j[c(z,z^T_j)-v_j]`, which is 1-Lipschitz for the metric :math:`c`
    everywhere, with oscillation at most the diameter :math:`D`. On half B,
    :math:`D_i=f(z^S_i)-f(z^T_i)\in[-D,D]` are i.i.d. with mean :math:`\mathbb E_{P_S}f-\mathbb E_{P_T}f\le W_1`,
    so the one-sided Hoeffding bound :math:`\bar D-D\sqrt{2\log(1/\alpha)/n_B}` is a valid LCB.
    Returns the interval (estimate = :math:`\bar D`, upper = inf).
    """
    cost = ground(zs_a, zt_a)
    n, m = cost.shape
    _, log = ot.emd(np.full(n, 1 / n), np.full(m, 1 / m), cost, log=True)
    v = np.asarray(log["v"], np.float64)

    def f(z):
        return np.min(ground(z, zt_a) - v[None, :], axis=1)

    d = f(zs_b) - f(zt_b)
    mean = float(d.mean())
    return Interval(mean, mean - diameter * math.sqrt(2 * math.log(1 / alpha) / len(d)), math.inf)


def mmd_lower(plug_in: float, n: int, alpha: float, diameter: float = SQRT2) -> float:
    r"""LCB of :math:`\mathrm{MMD}_k(P_S,P_T)` from the biased (V) plug-in on :math:`n` paired samples.

    Derivation (bounded kernel metric, :math:`d_k\le D`, :math:`D=\sqrt2` for a Gaussian kernel):
    :math:`\widehat{\mathrm{MMD}}=\|\frac1n\sum_i\xi_i\|` with :math:`\xi_i=\Phi(z^S_i)-\Phi(z^T_i)`,
    :math:`\|\xi_i\|\le D`. Changing one :math:`x_i` changes it by at most :math:`2D/n` (McDiarmid:
    deviation :math:`D\sqrt{2\log(1/\alpha)/n}`), and
    :math:`|\mathbb E\widehat{\mathrm{MMD}}-\mathrm{MMD}|\le\mathbb E\|\bar\xi-\mathbb E\xi\|\le D/\sqrt n`. So

    .. math:: \mathrm{MMD}\ge\widehat{\mathrm{MMD}}-D\sqrt{2\log(1/\alpha)/n}-D/\sqrt n.
    """
    return plug_in - diameter * math.sqrt(2 * math.log(1 / alpha) / n) - diameter / math.sqrt(n)


def mmd_upper(plug_in: float, n: int, alpha: float, diameter: float = SQRT2) -> float:
    r"""UCB of :math:`\mathrm{MMD}_k`, the mirror of :func:`mmd_lower`."""
    return plug_in + diameter * math.sqrt(2 * math.log(1 / alpha) / n) + diameter / math.sqrt(n)


def verdict(gap_upper: float, gap_lower: float, bound_lower: float, bound_upper: float) -> str:
    r"""The reporting rule of a claim :math:`|\text{gap}|\le\text{bound}`: ``"holds"`` iff
    UCB(|gap|) <= LCB(bound) (certified at the level of the intervals), ``"violated"`` iff
    LCB(|gap|) > UCB(bound), else ``"inconclusive"``. Exact values enter as degenerate intervals."""
    if gap_upper <= bound_lower:
        return "holds"
    if gap_lower > bound_upper:
        return "violated"
    return "inconclusive"


def compare(gap: Interval, bound: Interval, scale: float = 1.0) -> str:
    r""":func:`verdict` of :math:`|\text{gap}|\le\text{scale}\cdot\text{bound}` from an interval of the
    (signed) gap and one of the bound term; a missing (NaN) side of the bound is :math:`\mp\infty`."""
    lo = bound.lower if math.isfinite(bound.lower) else -math.inf
    hi = bound.upper if math.isfinite(bound.upper) else math.inf
    return verdict(abs_upper(gap), abs_lower(gap), scale * lo, scale * hi)


# Comparing trained networks across seeds: one value per seed (a final accuracy, a gap), few seeds, so
# exact small-sample (Student-t) intervals, paired tests, Holm's family-wise correction and rank correlation.


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}")


def _sample(values, name: str, min_n: int) -> np.ndarray:
    """``values`` as a 1-D float64 array of at least ``min_n`` finite values, else a ValueError naming it."""
    x = np.asarray(values, np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {x.shape}")
    if len(x) < min_n:
        raise ValueError(f"{name} needs at least {min_n} values; got {len(x)}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has a non-finite value: {x[~np.isfinite(x)][0]}")
    return x


def _pair(a, b, names: tuple[str, str], min_n: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = _sample(a, names[0], min_n), _sample(b, names[1], min_n)
    if len(x) != len(y):
        raise ValueError(f"{names[0]} and {names[1]} must have equal lengths (paired); got {len(x)} and {len(y)}")
    return x, y


def t_interval(values, alpha: float = 0.05) -> Interval:
    r"""Two-sided :math:`1-\alpha` Student-t interval of the mean of :math:`n\ge2` i.i.d. normal values:

    .. math:: \bar X\pm t_{1-\alpha/2,\,n-1}\,s/\sqrt n,\qquad s^2=\tfrac1{n-1}\sum_i(X_i-\bar X)^2.

    Exact for normal values, approximate otherwise. ValueError (naming ``values``) if :math:`n<2` or a
    value is not finite."""
    from scipy.stats import t

    _check_alpha(alpha)
    x = _sample(values, "values", 2)
    n = len(x)
    m = float(x.mean())
    half = float(t.ppf(1 - alpha / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(m, m - half, m + half)


def paired_test(a, b, alpha: float = 0.05) -> dict:
    r"""Paired Student t-test of the mean of :math:`d_i=a_i-b_i` (the same seed in ``a[i]`` and ``b[i]``):

    .. math:: t=\bar d\,/\,(s_d/\sqrt n),\qquad p=2\,P(T_{n-1}\ge|t|),

    with the :func:`t_interval` of :math:`\bar d` at ``alpha`` as ``low``/``high``. Returns
    ``{"n", "mean", "sd", "low", "high", "t", "p"}``.

    When every difference is equal (:math:`s_d=0`) the t statistic is :math:`0/0` or :math:`\pm c/0`
    and says nothing (``scipy.stats.ttest_rel`` returns NaN): ``p`` is then that of the exact sign-flip
    test, ``1.0`` if the common difference is 0, else :math:`2^{1-n}` (all :math:`n` differences of one
    sign is the most extreme of the :math:`2^n` sign patterns, counted on both sides), with
    ``t = 0`` or ``±inf`` and the interval collapsed to the mean (``low = high = mean``).
    ValueError (naming ``a`` or ``b``) for unequal lengths, :math:`n<2` or a non-finite value."""
    from scipy.stats import t as student_t

    _check_alpha(alpha)
    x, y = _pair(a, b, ("a", "b"), 2)
    d = x - y
    n = len(d)
    if np.all(d == d[0]):
        m = float(d[0])
        t = 0.0 if m == 0 else math.copysign(math.inf, m)
        return {"n": n, "mean": m, "sd": 0.0, "low": m, "high": m, "t": t, "p": 1.0 if m == 0 else 2.0 ** (1 - n)}
    iv = t_interval(d, alpha)
    sd = float(d.std(ddof=1))
    t = iv.estimate / (sd / math.sqrt(n))
    p = float(2 * student_t.sf(abs(t), n - 1))
    return {"n": n, "mean": iv.estimate, "sd": sd, "low": iv.lower, "high": iv.upper, "t": t, "p": p}


def holm(p_values, alpha: float = 0.05) -> dict:
    r"""Holm–Bonferroni step-down correction of :math:`m` p-values (family-wise error at most
    :math:`\alpha` under any dependence). With :math:`p_{(1)}\le\dots\le p_{(m)}` sorted,

    .. math:: \tilde p_{(i)}=\min\Big(1,\ \max_{j\le i}\,(m-j+1)\,p_{(j)}\Big),

    and hypothesis :math:`i` is rejected iff :math:`\tilde p_i\le\alpha` (the same as stepping down
    :math:`p_{(i)}\le\alpha/(m-i+1)` until the first failure). Returns ``{"adjusted": [...],
    "reject": [...]}`` in the input order; empty input gives empty lists. ValueError for a p-value
    outside :math:`[0,1]` or NaN."""
    _check_alpha(alpha)
    p = np.asarray(p_values, np.float64).reshape(-1)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p_values must lie in [0, 1]; got {p[~((p >= 0) & (p <= 1))][0]}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    steps = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = steps
    return {"adjusted": [float(v) for v in adjusted], "reject": [bool(v <= alpha) for v in adjusted]}


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the average of the ranks they span."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2)[inverse]


def spearman(x, y, alpha: float = 0.05) -> dict:
    r"""Spearman rank correlation :math:`\rho` (Pearson correlation of the ranks, ties at average ranks)
    with an approximate :math:`1-\alpha` interval by the Fisher transform with the
    Fieller–Hartley–Pearson variance:

    .. math:: \tanh\Big(\operatorname{artanh}\rho\mp z_{1-\alpha/2}\sqrt{1.06/(n-3)}\Big),\qquad
              p=2\,\Phi\Big(-|\operatorname{artanh}\rho|\big/\sqrt{1.06/(n-3)}\Big),

    ``p`` the two-sided p-value of :math:`\rho=0` from the same normal approximation. Returns
    ``{"n", "rho", "low", "high", "p"}``. :math:`\rho=\pm1` exactly: interval :math:`[\rho,\rho]`,
    ``p = 0.0``. A constant ``x`` or ``y`` leaves :math:`\rho` undefined: ``rho = nan``, the interval is
    the whole :math:`[-1,1]` and ``p = 1.0`` (no warning). ValueError (naming ``x`` or ``y``) for
    :math:`n<4`, unequal lengths or a non-finite value."""
    from scipy.stats import norm

    _check_alpha(alpha)
    a, b = _pair(x, y, ("x", "y"), 4)
    n = len(a)
    if np.all(a == a[0]) or np.all(b == b[0]):
        return {"n": n, "rho": math.nan, "low": -1.0, "high": 1.0, "p": 1.0}
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    rho = float(np.clip(np.dot(ra, rb) / math.sqrt(np.dot(ra, ra) * np.dot(rb, rb)), -1.0, 1.0))
    if abs(rho) == 1.0:
        return {"n": n, "rho": rho, "low": rho, "high": rho, "p": 0.0}
    z, se = math.atanh(rho), math.sqrt(1.06 / (n - 3))
    half = float(norm.ppf(1 - alpha / 2)) * se
    p = float(2 * norm.sf(abs(z) / se))
    return {"n": n, "rho": rho, "low": math.tanh(z - half), "high": math.tanh(z + half), "p": p}
