"""Statistics for comparing trained networks across seeds: the Student-t interval and the paired t-test
agree with scipy and cover at their level (where a z-interval would not), Holm's step-down correction on a
hand-computed example, and the Spearman rank correlation with its Fisher-z interval."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from verification import stats

ALPHA = 0.05


def _coverage(interval, draw, truth: float, reps: int, seed: int) -> float:
    """Fraction of ``reps`` samples ``draw(rng)`` whose ``interval(sample)`` (low, high) contains ``truth``."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        low, high = interval(*draw(rng))
        hits += low <= truth <= high
    return hits / reps


# --- Student-t interval and paired t-test --------------------------------------------------------------

A = [0.912, 0.905, 0.921, 0.899, 0.915, 0.908]  # e.g. final accuracies of six seeds
B = [0.903, 0.901, 0.910, 0.902, 0.904, 0.899]


def test_t_interval_matches_scipy():
    x = np.asarray(A)
    for alpha in (ALPHA, 0.01, 0.2):
        iv = stats.t_interval(x, alpha)
        low, high = sps.t.interval(1 - alpha, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
        assert iv.estimate == pytest.approx(x.mean(), abs=1e-12)
        assert iv.lower == pytest.approx(low, abs=1e-12) and iv.upper == pytest.approx(high, abs=1e-12)
    # two values: the widest case, t_{0.975,1} = 12.706
    iv = stats.t_interval([1.0, 3.0])
    assert iv.upper - iv.estimate == pytest.approx(sps.t.ppf(0.975, 1) * 1.0, abs=1e-12)


def test_paired_test_matches_scipy():
    res = stats.paired_test(A, B, ALPHA)
    ref = sps.ttest_rel(A, B)
    d = np.subtract(A, B)
    low, high = sps.t.interval(1 - ALPHA, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    assert res["n"] == len(d)
    assert res["mean"] == pytest.approx(d.mean(), abs=1e-12) and res["sd"] == pytest.approx(d.std(ddof=1), abs=1e-12)
    assert res["t"] == pytest.approx(ref.statistic, abs=1e-12) and res["p"] == pytest.approx(ref.pvalue, abs=1e-12)
    assert res["low"] == pytest.approx(low, abs=1e-12) and res["high"] == pytest.approx(high, abs=1e-12)
    # antisymmetric in (a, b)
    rev = stats.paired_test(B, A, ALPHA)
    assert rev["t"] == pytest.approx(-res["t"], abs=1e-12) and rev["p"] == pytest.approx(res["p"], abs=1e-12)
    # paired, not two-sample: the seed effect shared by a and b cancels
    assert res["p"] < sps.ttest_ind(A, B).pvalue


def test_paired_test_with_zero_variance():
    """Equal differences: no t-test exists; p is the exact sign-flip p-value 2^(1-n), never 0 (two
    seeds that both gain one test image must not count as certain)."""
    same = stats.paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same == {"n": 3, "mean": 0.0, "sd": 0.0, "low": 0.0, "high": 0.0, "t": 0.0, "p": 1.0}
    up = stats.paired_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert up == {"n": 3, "mean": 1.0, "sd": 0.0, "low": 1.0, "high": 1.0, "t": math.inf, "p": 0.25}
    down = stats.paired_test([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    assert down["t"] == -math.inf and down["p"] == 0.25 and down["low"] == down["high"] == down["mean"] == -0.5
    assert stats.paired_test([0.51, 0.52], [0.50, 0.51])["p"] == 0.5


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: stats.t_interval([1.0]), "values"),
        (lambda: stats.t_interval([1.0, math.nan]), "values"),
        (lambda: stats.t_interval([1.0, math.inf, 2.0]), "values"),
        (lambda: stats.paired_test([1.0, 2.0], [1.0, 2.0, 3.0]), "a and b"),
        (lambda: stats.paired_test([1.0], [2.0]), "a "),
        (lambda: stats.paired_test([1.0, 2.0], [2.0, -math.inf]), "b "),
        (lambda: stats.paired_test([math.nan, 2.0], [2.0, 1.0]), "a "),
    ],
)
def test_t_errors_name_the_argument(call, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        call()


def _normal_sample(rng, n: int = 5, mean: float = 1.3, sd: float = 2.0):
    return (rng.normal(mean, sd, n),)


def _t_coverage(interval, seed: int = 11) -> float:
    def bounds(x):
        iv = interval(x)
        return iv.lower, iv.upper

    return _coverage(bounds, _normal_sample, 1.3, 4000, seed)


def test_t_interval_covers_at_its_level_where_a_z_interval_does_not():
    assert 0.93 <= _t_coverage(lambda x: stats.t_interval(x, ALPHA)) <= 0.97
    # the harness has power: the normal-quantile interval (z_{0.975} = 1.96 instead of t_{0.975,4} = 2.78)
    # covers about 0.88 at n = 5
    assert _t_coverage(lambda x: stats.mean_interval(x, None, ALPHA)) < 0.93


# --- Holm --------------------------------------------------------------------------------------------------

P = [0.01, 0.04, 0.03, 0.005]


def test_holm_on_a_hand_computed_example():
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> running max 0.06
    res = stats.holm(P, ALPHA)
    np.testing.assert_allclose(res["adjusted"], [0.03, 0.06, 0.06, 0.02], rtol=0, atol=1e-15)
    assert res["reject"] == [True, False, False, True]
    # unadjusted p rejects all four; plain Bonferroni multiplies every p by 4
    assert [p <= ALPHA for p in P] == [True, True, True, True]
    np.testing.assert_allclose([min(1.0, 4 * p) for p in P], [0.04, 0.16, 0.12, 0.02], rtol=0, atol=1e-15)
    # Holm is uniformly more powerful: at alpha = 0.035 it still rejects p = 0.01, Bonferroni does not
    assert stats.holm(P, 0.035)["reject"] == [True, False, False, True]
    assert [p <= stats.bonferroni(0.035, len(P)) for p in P] == [False, False, False, True]


def test_holm_caps_at_one_keeps_order_and_edge_cases():
    res = stats.holm([0.5, 0.2, 0.9], ALPHA)
    # sorted 0.2 * 3 = 0.6, 0.5 * 2 = 1.0, 0.9 * 1 -> max 1.0
    np.testing.assert_allclose(res["adjusted"], [1.0, 0.6, 1.0], rtol=0, atol=1e-15)
    assert res["reject"] == [False, False, False]
    assert stats.holm([0.04], ALPHA) == {"adjusted": [0.04], "reject": [True]}
    assert stats.holm([], ALPHA) == {"adjusted": [], "reject": []}
    # ties keep their input positions
    assert stats.holm([0.01, 0.01], ALPHA)["adjusted"] == [0.02, 0.02]
    for bad in ([0.1, -0.01], [1.2], [0.1, math.nan]):
        with pytest.raises(ValueError, match="p_values"):
            stats.holm(bad, ALPHA)


# --- Spearman ----------------------------------------------------------------------------------------------


def test_spearman_rho_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    examples = [
        ([1, 2, 2, 3, 4, 4, 4, 5], [2, 1, 3, 3, 5, 4, 6, 6]),
        (rng.integers(0, 4, 30), rng.integers(0, 5, 30)),
        (rng.normal(size=25).round(1), rng.normal(size=25).round(1)),
    ]
    for x, y in examples:
        res = stats.spearman(x, y, ALPHA)
        assert res["n"] == len(x)
        assert res["rho"] == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
        # interval and p from the Fisher transform with variance 1.06 / (n - 3)
        z, se = math.atanh(res["rho"]), math.sqrt(1.06 / (len(x) - 3))
        q = sps.norm.ppf(1 - ALPHA / 2)
        assert res["low"] == pytest.approx(math.tanh(z - q * se), abs=1e-12)
        assert res["high"] == pytest.approx(math.tanh(z + q * se), abs=1e-12)
        assert res["p"] == pytest.approx(2 * sps.norm.sf(abs(z) / se), abs=1e-12)


def test_spearman_is_invariant_to_monotone_transforms():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=15), rng.normal(size=15)
    res = stats.spearman(x, y)
    assert stats.spearman(np.exp(3 * x), y) == res
    assert stats.spearman(x, y**3 - 2) == res
    flipped = stats.spearman(-x, y)
    assert flipped["rho"] == -res["rho"] and flipped["p"] == res["p"]
    assert flipped["low"] == pytest.approx(-res["high"], abs=1e-15)
    # Pearson, by contrast, is not rank-based
    assert np.corrcoef(np.exp(3 * x), y)[0, 1] != pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-3)


def test_spearman_degenerate_cases():
    x = np.arange(6.0)
    assert stats.spearman(x, x**3) == {"n": 6, "rho": 1.0, "low": 1.0, "high": 1.0, "p": 0.0}
    assert stats.spearman(x, -x) == {"n": 6, "rho": -1.0, "low": -1.0, "high": -1.0, "p": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for a, b in ((x, np.ones(6)), (np.full(6, 2.5), x), (np.zeros(4), np.zeros(4))):
            res = stats.spearman(a, b)
            assert math.isnan(res["rho"])
            assert (res["n"], res["low"], res["high"], res["p"]) == (len(a), -1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="^x needs at least 4"):
        stats.spearman([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    with pytest.raises(ValueError, match="^x and y"):
        stats.spearman(x, x[:5])
    with pytest.raises(ValueError, match="^y "):
        stats.spearman(x, np.append(x[:5], math.nan))


R = 0.6
RHO_S = 6 / math.pi * math.asin(R / 2)  # Spearman's rho of a bivariate normal with correlation R


def _bivariate_normal(rng, n: int = 20):
    x, e = rng.standard_normal(n), rng.standard_normal(n)
    return x, R * x + math.sqrt(1 - R**2) * e


def _spearman_coverage(alpha: float, reps: int = 2000, seed: int = 13) -> float:
    def interval(x, y):
        res = stats.spearman(x, y, alpha)
        return res["low"], res["high"]

    return _coverage(interval, _bivariate_normal, RHO_S, reps, seed)


def test_spearman_interval_covers_at_its_level():
    assert 0.92 <= _spearman_coverage(ALPHA) <= 0.98
    # the band has power on both sides: an 80% interval covers below it, a 99.9% interval above it
    assert _spearman_coverage(0.2, reps=500) < 0.92
    assert _spearman_coverage(0.001, reps=500) > 0.98
