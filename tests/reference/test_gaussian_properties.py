"""Properties of the Gaussian family on the float64 reference, checked against
the mpmath oracle where a closed form is involved.

W2 is accurate in absolute terms: the error of sqrt(value) is ~u * scale with
scale = sqrt(tr Σ_S + tr Σ_T) (+ the size of the means), so the checks below compare W2 itself,
with ``w2_close``, rather than W2^2 relatively.
"""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import special_ortho_group

from kd2m_ref import oracle as O
from kd2m_ref import reference as R
from kd2m_ref.reference.gaussian import exp_minus_one_minus
from kd2m_ref.testing.strategies import gaussian_example, gaussian_kl_example, nonsingular_cloud

U64 = np.finfo(np.float64).eps / 2


def _scale(xs, xt):
    return math.sqrt(np.trace(np.cov(xs.T, bias=True).reshape(xs.shape[1], -1))
                     + np.trace(np.cov(xt.T, bias=True).reshape(xt.shape[1], -1))) + np.abs(xs).max() + np.abs(xt).max()


def w2_close(v1, v2, scale, k=100.0):
    """|sqrt(v1) - sqrt(v2)| <= k u scale: W2 agrees to k units of roundoff of the data's size."""
    return abs(math.sqrt(max(v1, 0)) - math.sqrt(max(v2, 0))) <= k * U64 * scale


def _plain(ex):
    """(xs, xt, kwargs without weights) of an example."""
    xs, xt = ex.args
    return xs, xt, {k: v for k, v in ex.kwargs.items() if k not in ("a", "b")}


def _near_equal_ladder():
    rng = np.random.default_rng(3)
    d = 6
    x = rng.normal(size=(16, d))
    sym = rng.normal(size=(d, d))
    sym = (sym + sym.T) / 2
    for delta in (1e-1, 1e-3, 1e-5, 1e-7, 1e-8):
        for n in (16, 4):  # n = 4 < d: rank-deficient covariances
            yield x[:n], x[:n] @ (np.eye(d) + delta * sym) + delta * rng.normal(size=d)


# ------------------------------------------------------------------------------------- oracle checks

def test_accuracy_near_equal_against_oracle():
    """covers("gaussian_wasserstein", "oracle") covers("gaussian_wasserstein", "accuracy_near_equal"):
    the issue's target, |W2 - W2_exact| <= 10 u sqrt(tr Σ_S + tr Σ_T), on near-equal covariances down to
    W2 ~ 1e-8 scale, full rank and n < d."""
    for xs, xt in _near_equal_ladder():
        ref = R.gaussian_wasserstein(xs, xt)
        with mp.workdps(50):
            exact = O.gaussian_wasserstein(xs, xt)
            err = abs(mp.sqrt(exact) - mp.sqrt(ref))
        scale = math.sqrt(np.trace(np.cov(xs.T, bias=True)) + np.trace(np.cov(xt.T, bias=True)))
        assert err <= 10 * U64 * scale, f"W2 error {float(err):.2e} > 10 u scale ({10 * U64 * scale:.2e})"


@settings(max_examples=15)
@given(gaussian_kl_example(small=True))
def test_moments_forms_match_oracle_and_samples(ex):
    """covers("gaussian_wasserstein", "moments_form") covers("gaussian_kl", "moments_form") covers("gaussian_kl", "oracle"):
    the parameter-level forms (means, covariances in) agree with the sample-level ones and with the oracle."""
    xs, xt = ex.args
    kw = ex.kwargs
    fit = dict(estimator=kw.get("estimator", "mle"), covariance=kw["covariance"], eps=kw["eps"])
    ms, cs = R.fit_gaussian(xs, a=kw.get("a"), **fit)
    mt, ct = R.fit_gaussian(xt, a=kw.get("b"), **fit)
    w2 = R.gaussian_wasserstein_from_moments(ms, mt, cs, ct)
    assert w2_close(w2, ex.call(lambda *a, **k: R.gaussian_wasserstein(*a, **{q: v for q, v in k.items() if q != "direction"})),
                    _scale(xs, xt), k=1000)
    with mp.workdps(50):
        exact = O.gaussian_wasserstein_from_moments(ms, mt, cs, ct)
        assert abs(mp.sqrt(exact) - mp.sqrt(w2)) <= 100 * U64 * _scale(xs, xt)
        kl = R.gaussian_kl_from_moments(ms, mt, cs, ct, direction=kw["direction"])
        exact_kl = O.gaussian_kl_from_moments(ms, mt, cs, ct, direction=kw["direction"])
        assert abs(kl - exact_kl) <= 1e-11 * (abs(exact_kl) + 1e-300)
    assert abs(kl - ex.call(R.gaussian_kl)) <= 1e-10 * (abs(kl) + 1e-300)


# ---------------------------------------------------------------------------------------- W2 properties

@given(gaussian_example())
def test_symmetry(ex):
    """covers("gaussian_wasserstein", "symmetry")"""
    xs, xt = ex.args
    kw = dict(ex.kwargs)
    a, b = kw.pop("a", None), kw.pop("b", None)
    assert w2_close(R.gaussian_wasserstein(xs, xt, a=a, b=b, **kw), R.gaussian_wasserstein(xt, xs, a=b, b=a, **kw),
                    _scale(xs, xt))


@given(gaussian_example(), st.integers(0, 100))
def test_zero_iff_equal(ex, seed):
    """covers("gaussian_wasserstein", "zero_iff_equal"): exactly 0 for identical samples, ~u for a row
    permutation (same measure), > 0 when the fitted moments differ."""
    xs, xt, kw = _plain(ex)
    assert R.gaussian_wasserstein(xs, xs.copy(), **kw) == 0.0
    perm = xs[np.random.default_rng(seed).permutation(len(xs))]
    assert w2_close(R.gaussian_wasserstein(xs, perm, **kw), 0.0, _scale(xs, xs))
    kw.pop("estimator", None)
    ms, cs = R.fit_gaussian(xs, covariance=kw["covariance"])
    mt, ct = R.fit_gaussian(xt, covariance=kw["covariance"])
    var = lambda c: np.diag(c) if c.ndim == 2 else c  # noqa: E731
    if max(np.abs(ms - mt).max(), np.abs(np.sqrt(var(cs)) - np.sqrt(var(ct))).max()) > 1e-6:
        assert R.gaussian_wasserstein(xs, xt, **kw) > 0  # moments differ by more than rounding


@given(gaussian_example(), st.lists(st.floats(-5, 5), min_size=4, max_size=4))
def test_translation(ex, v):
    """covers("gaussian_wasserstein", "translation")"""
    xs, xt, kw = _plain(ex)
    v = np.asarray(v[: xs.shape[1]])
    assert w2_close(R.gaussian_wasserstein(xs + v, xt + v, **kw), R.gaussian_wasserstein(xs, xt, **kw),
                    _scale(xs, xt) + 2 * np.abs(v).max())


@given(gaussian_example(), st.sampled_from([-3.0, -0.5, 0.25, 7.0]))
def test_scaling(ex, c):
    """covers("gaussian_wasserstein", "scaling"): W2(cX, cY) = |c| W2(X, Y) (eps scales as c^2)."""
    xs, xt, kw = _plain(ex)
    kw2 = dict(kw, eps=kw["eps"] * c * c)
    assert w2_close(R.gaussian_wasserstein(c * xs, c * xt, **kw2), c * c * R.gaussian_wasserstein(xs, xt, **kw),
                    abs(c) * _scale(xs, xt))


@given(gaussian_example(), st.integers(0, 1000))
def test_orthogonal_invariance(ex, seed):
    """covers("gaussian_wasserstein", "orthogonal_invariance") (full covariance; the diagonal form is not invariant)"""
    xs, xt, kw = _plain(ex)
    kw["covariance"] = "full"
    d = xs.shape[1]
    q = special_ortho_group.rvs(d, random_state=seed) if d > 1 else np.array([[-1.0]])
    assert w2_close(R.gaussian_wasserstein(xs @ q, xt @ q, **kw), R.gaussian_wasserstein(xs, xt, **kw), _scale(xs, xt))


@given(st.integers(1, 5), st.integers(0, 1000))
def test_diag_equals_full_on_diagonal(d, seed):
    """covers("gaussian_wasserstein", "diag_equals_full_on_diagonal"): full Bures on diagonal covariances
    = the diagonal formula = |Δμ|^2 + |σ_S - σ_T|^2, and the same for the sample-level form on
    axis-aligned samples (rows ±s_j e_j: diagonal covariance)."""
    rng = np.random.default_rng(seed)
    ms, mt = rng.normal(size=d), rng.normal(size=d)
    vs, vt = rng.uniform(0, 3, d), rng.uniform(0, 3, d)
    vs[0] = 0.0  # a singular one too
    expected = np.sum((ms - mt) ** 2) + np.sum((np.sqrt(vs) - np.sqrt(vt)) ** 2)
    full = R.gaussian_wasserstein_from_moments(ms, mt, np.diag(vs), np.diag(vt))
    diag = R.gaussian_wasserstein_from_moments(ms, mt, vs, vt)
    assert abs(full - expected) <= 1e-12 * (1 + expected) and abs(diag - expected) <= 1e-13 * (1 + expected)
    eye = np.vstack([np.eye(d), -np.eye(d)])
    xs, xt = eye * np.sqrt(d * vs) + ms, eye * np.sqrt(d * vt) + mt
    assert abs(R.gaussian_wasserstein(xs, xt) - R.gaussian_wasserstein(xs, xt, covariance="diag")) <= 1e-12 * (1 + expected)
    assert abs(R.gaussian_wasserstein(xs, xt) - expected) <= 1e-12 * (1 + expected)


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=12), st.lists(st.floats(-5, 5), min_size=1, max_size=12))
def test_one_d_closed_form(u, v):
    """covers("gaussian_wasserstein", "one_d_closed_form"): (m1 - m2)^2 + (s1 - s2)^2 with 1/n std."""
    u, v = np.asarray(u), np.asarray(v)
    expected = (u.mean() - v.mean()) ** 2 + (u.std() - v.std()) ** 2
    for cov in ("full", "diag"):
        got = R.gaussian_wasserstein(u[:, None], v[:, None], covariance=cov)
        assert w2_close(got, expected, 1 + np.abs(u).max() + np.abs(v).max(), k=50)


@settings(max_examples=25)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(0, 10_000))
def test_gelbrich(n, d, seed):
    """covers("gaussian_wasserstein", "gelbrich"): exact empirical W2^2 >= W2^2 of the 1/n Gaussians >=
    diagonal Gaussian W2^2 (any clouds, equal or unequal sizes, weights)."""
    rng = np.random.default_rng(seed)
    m = n if seed % 2 else int(rng.integers(1, 7))
    xs, xt = rng.normal(size=(n, d)) * rng.uniform(0.1, 3), rng.normal(size=(m, d)) + rng.normal(size=d)
    a, b = (None, None) if seed % 3 else (rng.uniform(0.1, 1, n), rng.uniform(0.1, 1, m))
    exact = R.wasserstein(xs, xt, a=a, b=b)
    gauss = R.gaussian_wasserstein(xs, xt, a=a, b=b)
    diag = R.gaussian_wasserstein(xs, xt, a=a, b=b, covariance="diag")
    slack = 1e-9 * (1 + exact)
    assert exact + slack >= gauss and gauss + slack >= diag


@settings(max_examples=25)
@given(st.integers(1, 7), st.integers(1, 4), st.integers(0, 10_000))
def test_equality_case(n, d, seed):
    """covers("gaussian_wasserstein", "equality_case"): for xt = m + (xs - x̄) A with A symmetric PSD,
    exact LP W2^2 = Bures W2^2 = |x̄ - m|^2 + tr((I - A) Σ (I - A))."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(n, d)) * rng.uniform(0.2, 2, d)
    g = rng.normal(size=(d, d))
    a_mat = g @ g.T / d if seed % 4 else np.diag(rng.uniform(0, 2, d)) * (rng.uniform(size=d) > 0.3)
    m = rng.normal(size=d)
    bar = xs.mean(0)
    xt = m + (xs - bar) @ a_mat
    sigma = np.cov(xs.T, bias=True).reshape(d, d)
    closed = np.sum((bar - m) ** 2) + np.trace((np.eye(d) - a_mat) @ sigma @ (np.eye(d) - a_mat))
    lp, bures = R.wasserstein(xs, xt), R.gaussian_wasserstein(xs, xt)
    assert abs(lp - closed) <= 1e-9 * (1 + closed) and abs(bures - closed) <= 1e-9 * (1 + closed)


@given(gaussian_example(), gaussian_example())
def test_triangle(ex1, ex2):
    """covers("gaussian_wasserstein", "triangle"): W2 (the square root) is a metric on Gaussians."""
    x, y, kw = _plain(ex1)
    kw.pop("estimator", None)  # z may have a single row
    z = ex2.args[0]
    if z.shape[1] != x.shape[1]:
        z = np.resize(z, (len(z), x.shape[1]))
    w = lambda p, q: math.sqrt(R.gaussian_wasserstein(p, q, **kw))  # noqa: E731
    assert w(x, z) <= w(x, y) + w(y, z) + 100 * U64 * (_scale(x, y) + _scale(y, z))


@pytest.mark.slow
def test_empirical_tends_to_gaussian_1d():
    """Statistical: for large Gaussian samples in 1-D, exact empirical W2^2 (sorted samples) is close to
    the Gaussian W2^2 of the fitted moments (both estimate (m1 - m2)^2 + (s1 - s2)^2)."""
    rng = np.random.default_rng(0)
    u, v = rng.normal(0, 1, 20_000), rng.normal(1, 2, 20_000)
    lp = np.mean((np.sort(u) - np.sort(v)) ** 2)
    gauss = R.gaussian_wasserstein(u[:, None], v[:, None])
    assert abs(lp - gauss) <= 0.02 * gauss and abs(gauss - 2.0) <= 0.1


# ------------------------------------------------------------------------------------------ KL properties

@given(gaussian_kl_example())
def test_kl_nonnegative_zero_iff_equal(ex):
    """covers("gaussian_kl", "nonnegative_zero_iff_equal")"""
    xs, xt, kw = _plain(ex)
    assert ex.call(R.gaussian_kl) >= 0
    assert R.gaussian_kl(xs, xs.copy(), **kw) == 0.0
    ms, cs = R.fit_gaussian(xs, covariance=kw["covariance"], eps=kw["eps"])
    mt, ct = R.fit_gaussian(xt, covariance=kw["covariance"], eps=kw["eps"])
    if np.abs(ms - mt).max() > 1e-4 * (1 + np.abs(ms).max()) or np.abs(cs - ct).max() > 1e-4 * (1 + np.abs(cs).max()):
        assert R.gaussian_kl(xs, xt, **{k: v for k, v in kw.items() if k != "estimator"}) > 0


@given(gaussian_kl_example())
def test_kl_direction(ex):
    """covers("gaussian_kl", "direction"): teacher_student swaps the roles; the default is KL(student || teacher)."""
    xs, xt, kw = _plain(ex)
    kw.pop("direction")
    st_, ts = R.gaussian_kl(xs, xt, **kw), R.gaussian_kl(xs, xt, direction="teacher_student", **kw)
    assert st_ == R.gaussian_kl(xs, xt, direction="student_teacher", **kw)
    assert abs(ts - R.gaussian_kl(xt, xs, **kw)) <= 1e-12 * (1 + ts)
    if kw["eps"] == 0 and kw["covariance"] == "full" and kw.get("estimator", "mle") == "mle":
        (ms, cs), (mt, ct) = R.fit_gaussian(xs), R.fit_gaussian(xt)
        ti, dm = np.linalg.inv(ct), mt - ms  # the textbook formula, independent of the eigen route
        direct = 0.5 * (np.trace(ti @ cs) + dm @ ti @ dm - len(ms) + np.linalg.slogdet(ct)[1] - np.linalg.slogdet(cs)[1])
        assert abs(st_ - direct) <= 1e-8 * (1 + direct)


def test_kl_asymmetric():
    """covers("gaussian_kl", "direction"): generically KL(S||T) != KL(T||S)."""
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(20, 3)), 2 * rng.normal(size=(20, 3))
    assert abs(R.gaussian_kl(xs, xt) - R.gaussian_kl(xt, xs)) > 0.1


@given(gaussian_kl_example(), st.integers(0, 1000))
def test_kl_affine_invariance(ex, seed):
    """covers("gaussian_kl", "affine_invariance"): invariant under z -> zA + v for any invertible A
    (full covariance); the diagonal formula under diagonal A and coordinate permutations."""
    xs, xt, kw = _plain(ex)
    if kw["eps"] > 0:
        kw["eps"] = 0.0
        xs, xt = np.vstack([xs, xs.mean(0) + np.eye(xs.shape[1]) * 3, xs.mean(0) - np.eye(xs.shape[1]) * 3]), \
            np.vstack([xt, xt.mean(0) + np.eye(xt.shape[1]) * 3, xt.mean(0) - np.eye(xt.shape[1]) * 3])
    rng = np.random.default_rng(seed)
    d = xs.shape[1]
    if kw["covariance"] == "full":
        lin = np.eye(d) + 0.4 * rng.normal(size=(d, d)) / math.sqrt(d)
    else:
        lin = np.diag(rng.uniform(0.3, 3, d) * rng.choice([-1, 1], d))[:, rng.permutation(d)]
    v = rng.normal(size=d)
    base = R.gaussian_kl(xs, xt, **kw)
    moved = R.gaussian_kl(xs @ lin + v, xt @ lin + v, **kw)
    cond = np.linalg.cond(lin) ** 2
    assert abs(moved - base) <= 1e-9 * cond * (1 + base)


@given(gaussian_kl_example())
def test_kl_equal_covariances(ex):
    """covers("gaussian_kl", "equal_covariances"): equal covariances give ½ Δμᵀ Σ⁻¹ Δμ (also diag)."""
    xs, _, kw = _plain(ex)
    shift = np.linspace(-1, 2, xs.shape[1])
    xt = xs + shift
    _, cov = R.fit_gaussian(xs, covariance=kw["covariance"], eps=kw["eps"], estimator=kw.get("estimator", "mle"))
    inv = np.linalg.inv(np.atleast_2d(cov) if cov.ndim == 2 else np.diag(cov))
    expected = 0.5 * shift @ inv @ shift
    kw["direction"] = "student_teacher"
    assert abs(R.gaussian_kl(xs, xt, **kw) - expected) <= 1e-9 * (1 + expected) * np.linalg.cond(inv)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 1000))
def test_additivity_over_blocks(d1, d2, seed):
    """covers("gaussian_kl", "additivity"): for block-diagonal covariances KL and W2^2 are sums over blocks."""
    rng = np.random.default_rng(seed)

    def spd(d):
        g = rng.normal(size=(d, d))
        return g @ g.T + 0.3 * np.eye(d)

    def blockdiag(p, q):
        out = np.zeros((len(p) + len(q),) * 2)
        out[: len(p), : len(p)], out[len(p):, len(p):] = p, q
        return out

    (s1, s2, t1, t2), (ms, mt) = [spd(d) for d in (d1, d2, d1, d2)], (rng.normal(size=d1 + d2), rng.normal(size=d1 + d2))
    for fn in (R.gaussian_kl_from_moments, R.gaussian_wasserstein_from_moments):
        whole = fn(ms, mt, blockdiag(s1, s2), blockdiag(t1, t2))
        parts = fn(ms[:d1], mt[:d1], s1, t1) + fn(ms[d1:], mt[d1:], s2, t2)
        assert abs(whole - parts) <= 1e-10 * (1 + whole)


@given(st.lists(st.floats(-5, 5), min_size=3, max_size=12, unique=True),
       st.lists(st.floats(-5, 5), min_size=3, max_size=12, unique=True))
def test_kl_one_d_closed_form(u, v):
    """covers("gaussian_kl", "one_d_closed_form"): ln(s_T/s_S) + (s_S^2 + (m_S - m_T)^2) / (2 s_T^2) - 1/2."""
    u, v = np.asarray(u), np.asarray(v)
    if min(u.std(), v.std()) < 1e-3:
        return
    with mp.workdps(40):
        su, sv = mp.sqrt(mp.fsum((mp.mpf(x) - mp.fsum(u) / len(u)) ** 2 for x in u) / len(u)), \
            mp.sqrt(mp.fsum((mp.mpf(x) - mp.fsum(v) / len(v)) ** 2 for x in v) / len(v))
        dm = mp.fsum(u) / len(u) - mp.fsum(v) / len(v)
        expected = float(mp.log(sv / su) + (su ** 2 + dm ** 2) / (2 * sv ** 2) - mp.mpf(1) / 2)
    for cov in ("full", "diag"):
        got = R.gaussian_kl(u[:, None], v[:, None], covariance=cov)
        assert abs(got - expected) <= 1e-12 * (1 + expected) * (1 + 25 / min(u.var(), v.var()))


@given(gaussian_kl_example())
def test_talagrand(ex):
    """covers("gaussian_kl", "talagrand"): W2^2(N_S, N_T) <= 2 λmax(Σ_T) KL(N_S || N_T)."""
    xs, xt, kw = _plain(ex)
    kw.pop("direction")
    kw["covariance"] = "full"
    _, ct = R.fit_gaussian(xt, eps=kw["eps"], estimator=kw.get("estimator", "mle"))
    w2 = R.gaussian_wasserstein(xs, xt, **kw)
    kl = R.gaussian_kl(xs, xt, **kw)
    assert w2 <= 2 * np.linalg.eigvalsh(ct).max() * kl * (1 + 1e-9) + 1e-12 * _scale(xs, xt) ** 2


def test_exp_minus_one_minus_accurate():
    """g(z) = e^z - 1 - z, the cancellation-free per-eigenvalue KL term, against mpmath."""
    z = np.concatenate([-np.logspace(-12, 1, 40), np.logspace(-12, 1, 40), [0.0, 0.49999, 0.5, -0.5]])
    with mp.workdps(40):
        exact = [mp.expm1(mp.mpf(v)) - mp.mpf(v) for v in z]
    got = exp_minus_one_minus(z)
    for g, e in zip(got, exact):
        assert abs(mp.mpf(g) - e) <= 4 * U64 * abs(e)


@pytest.mark.parametrize("n", [2, 3])
def test_kl_singular_raises_and_eps_regularises(n):
    """covers("gaussian_kl", "singular_raises"): n <= d gives a singular covariance: ValueError suggesting
    eps; with eps > 0 the KL is finite and matches the oracle."""
    rng = np.random.default_rng(n)
    xs, xt = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    with pytest.raises(ValueError, match="eps"):
        R.gaussian_kl(xs, xt)
    with pytest.raises(ValueError, match="eps"):
        R.class_conditional_gaussian_kl(xs, xt, ys=np.zeros(n, dtype=np.int64))
    kl = R.gaussian_kl(xs, xt, eps=0.1)
    with mp.workdps(50):
        assert np.isfinite(kl) and abs(kl - O.gaussian_kl(xs, xt, eps=0.1)) <= 1e-12 * kl


# ------------------------------------------------------------------------------------ class-conditional

def _labelled(seed, k=3, per=(5, 7, 6), d=2):
    rng = np.random.default_rng(seed)
    ys = np.repeat(np.arange(k), per[:k])
    xs = rng.normal(size=(len(ys), d)) + ys[:, None]
    xt = xs @ (np.eye(d) + 0.3 * rng.normal(size=(d, d))) + 0.5
    order = rng.permutation(len(ys))
    return xs[order], xt[order], ys[order]


@pytest.mark.parametrize("weights", ["uniform", "prior", "sum"])
def test_class_conditional_sum_of_blocks(weights):
    """covers("class_conditional_gaussian_wasserstein", "sum_of_blocks")
    covers("class_conditional_gaussian_kl", "sum_of_blocks")
    covers("class_conditional_gaussian_wasserstein", "oracle") covers("class_conditional_gaussian_kl", "oracle"):
    sum_c w_c D(class c) with the three weightings, in the reference and the oracle."""
    xs, xt, ys = _labelled(0)
    counts = np.bincount(ys)
    w = {"uniform": np.full(3, 1 / 3), "prior": counts / counts.sum(), "sum": np.ones(3)}[weights]
    for cc, fn, orc in ((R.class_conditional_gaussian_wasserstein, R.gaussian_wasserstein,
                         O.class_conditional_gaussian_wasserstein),
                        (R.class_conditional_gaussian_kl, R.gaussian_kl, O.class_conditional_gaussian_kl)):
        expected = sum(w[c] * fn(xs[ys == c], xt[ys == c]) for c in range(3))
        got = cc(xs, xt, ys=ys, weights=weights)
        assert abs(got - expected) <= 1e-13 * expected
        with mp.workdps(50):
            assert abs(got - orc(xs, xt, ys=ys, weights=weights)) <= 1e-12 * got


def test_class_conditional_one_class_and_balanced():
    """covers("class_conditional_gaussian_wasserstein", "one_class_is_marginal")
    covers("class_conditional_gaussian_kl", "one_class_is_marginal")
    covers("class_conditional_gaussian_wasserstein", "uniform_equals_prior_balanced")"""
    xs, xt, ys = _labelled(1)
    zeros = np.zeros(len(ys), dtype=np.int64)
    for w in ("uniform", "prior", "sum"):
        assert R.class_conditional_gaussian_wasserstein(xs, xt, ys=zeros, weights=w) == R.gaussian_wasserstein(xs, xt)
        assert R.class_conditional_gaussian_kl(xs, xt, ys=zeros, weights=w) == R.gaussian_kl(xs, xt)
    xs, xt, ys = _labelled(2, per=(6, 6, 6))
    uni = R.class_conditional_gaussian_wasserstein(xs, xt, ys=ys, weights="uniform")
    assert abs(uni - R.class_conditional_gaussian_wasserstein(xs, xt, ys=ys, weights="prior")) <= 1e-14 * uni
    assert abs(3 * uni - R.class_conditional_gaussian_wasserstein(xs, xt, ys=ys, weights="sum")) <= 1e-13 * uni


def test_nonsingular_cloud_is_well_conditioned():
    """The KL strategies' building block keeps covariances invertible (condition number <= 100)."""
    @settings(max_examples=30)
    @given(st.integers(1, 4).flatmap(lambda d: nonsingular_cloud(d)))
    def check(x):
        lam = np.linalg.eigvalsh(np.cov(x.T, bias=True).reshape(x.shape[1], -1))
        assert lam.min() > 0 and lam.max() / lam.min() <= 100

    check()
