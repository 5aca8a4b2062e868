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
