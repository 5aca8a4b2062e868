"""The exact quantities of verification/ against independent computations (N-version checks), the
metric facts behind the bound chain, the Gaussian closed forms of B1 and the statistics helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.integrate import quad

from kd2m_ref.reference import class_conditional_wasserstein, joint_wasserstein
from kd2m_ref.reference import mmd as reference_mmd
from kd2m_ref.reference.kernel import kernel_matrix
from kd2m_ref.testing.strategies import point_cloud, weights
from verification.distances import (SQRT2, class_conditional_w1, euclidean_distance, joint_w1, kernel_distance, mmd,
                                    ot_cost)
from verification.functions import KernelExpansion
from verification.synthetic.closed_forms import euclidean_sandwich, expected_kernel, gaussian_mmd
from verification.stats import empirical_bernstein, hoeffding, mean_interval, verdict, w1_lower, w1_upper


@given(n=st.integers(1, 8), m=st.integers(1, 8), d=st.integers(1, 3), sigma=st.floats(0.2, 5.0), data=st.data())
def test_mmd_matches_the_package_v_statistic(n, m, d, sigma, data):
    xs, xt = data.draw(point_cloud(n, d)), data.draw(point_cloud(m, d))
    ref = reference_mmd(xs, xt, kernel="gaussian", bandwidth=sigma)  # float64 block form, uniform weights
    assert mmd(xs, xt, sigma) ** 2 == pytest.approx(ref, rel=1e-9, abs=1e-14)


@given(n=st.integers(1, 6), d=st.integers(1, 3), sigma=st.floats(0.2, 5.0), data=st.data())
def test_weighted_mmd_is_the_norm_of_the_mean_embedding_difference(n, d, sigma, data):
    xs, xt = data.draw(point_cloud(n, d)), data.draw(point_cloud(n, d))
    a, b = data.draw(weights(n)), data.draw(weights(n))
    a, b = a / a.sum(), b / b.sum()
    z = np.concatenate([xs, xt])
    c = np.concatenate([a, -b])
    direct = float(c @ kernel_matrix(z, z, kernel="gaussian", bandwidth=sigma) @ c)  # w^T K w
    assert mmd(xs, xt, sigma, a, b) ** 2 == pytest.approx(direct, rel=1e-7, abs=1e-13)


@given(n=st.integers(1, 8), d=st.integers(1, 3), data=st.data(), weighted=st.booleans())
def test_class_conditional_and_joint_w1_match_the_package(n, d, data, weighted):
    zs, zt = data.draw(point_cloud(n, d)), data.draw(point_cloud(n, d))
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 2)))
    w = data.draw(weights(n)) if weighted else None
    cond = class_conditional_w1(zs, zt, y, euclidean_distance, w)
    ref = class_conditional_wasserstein(zs, zt, ys=y, a=w, b=w, p=1, weights="prior")
    assert cond == pytest.approx(ref, rel=1e-6, abs=1e-7)
    beta = data.draw(st.floats(0, 20))
    joint = joint_w1(zs, zt, y, euclidean_distance, beta, w)
    # the package's one-hot label cost is 2 * 1[y != y']
    assert joint == pytest.approx(joint_wasserstein(zs, zt, ys=y, a=w, b=w, p=1, beta=beta / 2), rel=1e-6, abs=1e-7)


@given(n=st.integers(1, 10), d=st.integers(1, 3), sigma=st.floats(0.2, 5.0), data=st.data())
def test_kernel_distance_is_sqrt_2_minus_2k_and_a_metric(n, d, sigma, data):
    x = data.draw(point_cloud(n, d))
    dk = kernel_distance(x, x, sigma)
    k = kernel_matrix(x, x, kernel="gaussian", bandwidth=sigma)
    np.testing.assert_allclose(dk**2, 2 - 2 * k, atol=1e-12)
    assert np.all(dk <= SQRT2)
    # triangle inequality on every triple; d_k = 0 only for equal points (Gaussian kernel is strictly p.d.)
    assert np.all(dk[:, None, :] <= dk[:, :, None] + dk[None, :, :] + 1e-12)
    eu = euclidean_distance(x, x)
    assert np.all((dk > 0) | (eu == 0))


def test_even_polynomial_kernel_distance_is_only_a_pseudometric():
    z = np.array([[1.0, -2.0]])
    k = kernel_matrix(np.r_[z, -z], np.r_[z, -z], kernel="polynomial", degree=2, offset=0.0)
    d2 = k[0, 0] + k[1, 1] - 2 * k[0, 1]
    assert d2 == 0.0  # Phi(z) = Phi(-z): d_k(z, -z) = 0 with z != -z


@given(n=st.integers(1, 8), d=st.integers(1, 3), data=st.data())
def test_linear_kernel_mmd_is_the_mean_gap(n, d, data):
    xs, xt = data.draw(point_cloud(n, d)), data.draw(point_cloud(n, d))
    assert math.sqrt(reference_mmd(xs, xt, kernel="linear")) == pytest.approx(
        float(np.linalg.norm(xs.mean(0) - xt.mean(0))), rel=1e-6, abs=1e-6)


@given(d=st.integers(1, 3), data=st.data())
def test_squared_expansion_is_g_squared_pointwise(d, data):
    sigma = data.draw(st.floats(0.3, 3.0))
    g = KernelExpansion(data.draw(point_cloud(3, d)), np.array([0.7, -0.4, 0.2]), sigma)
    z = data.draw(point_cloud(5, d))
    np.testing.assert_allclose(g.squared()(z), g(z) ** 2, rtol=1e-9, atol=1e-15)


def test_difference_is_accurate_where_the_naive_one_cancels():
    f = KernelExpansion(np.array([[0.3, -0.2]]), np.array([1.0]), 0.5)
    s = np.array([[1.0, 1.0]])
    t = s + np.array([[1e-12, 0.0]])
    grad = -f(s)[0] * (s[0, 0] - 0.3) / 0.25  # d/dz1 of exp(-|z-u|^2 / 2 sigma^2) at s
    # f(s) - f(s + h e1) = -grad h + O(h^2): relative accuracy 1e-6 at h = 1e-12, where f(s) - f(t)
    # in float64 would keep at most 4 significant digits
    assert f.difference(s, t)[0] == pytest.approx(-grad * 1e-12, rel=1e-6)


def test_expected_kernel_matches_quadrature_in_one_dimension():
    delta, var, sigma = 0.7, 0.6, 0.8
    integrand = lambda u: math.exp(-u * u / (2 * sigma**2)) * math.exp(-(u - delta) ** 2 / (2 * var)) / math.sqrt(
        2 * math.pi * var)
    value, _ = quad(integrand, -20, 20, epsabs=1e-13)
    assert expected_kernel([delta], [[var]], sigma) == pytest.approx(value, rel=1e-10)


def test_gaussian_mmd_of_point_masses_is_the_discrete_mmd():
    m1, m2 = np.array([0.3, -1.0]), np.array([1.1, 0.4])
    zero = np.zeros((2, 2))
    assert gaussian_mmd(m1, zero, m2, zero, 0.9) == pytest.approx(mmd(m1[None], m2[None], 0.9), rel=1e-12)


def test_euclidean_sandwich_is_ordered():
    rng = np.random.default_rng(3)
    a_t, a_s = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    b_t, b_s = rng.normal(size=2), rng.normal(size=2)
    s = euclidean_sandwich(b_s, a_s @ a_s.T, b_t, a_t @ a_t.T, (a_s - a_t) @ (a_s - a_t).T)
    assert s["mean_gap"] <= s["w2_bures"] <= s["coupling_rms"]


def test_w1_lower_potential_is_lipschitz_and_dual_optimal():
    rng = np.random.default_rng(4)
    zs, zt = rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 0.4
    iv = w1_lower(zs, zt, zs, zt, euclidean_distance, 10.0, 0.05)
    # evaluated on the same half, the c-transform potential attains W1 (dual optimality)
    assert iv.estimate == pytest.approx(ot_cost(euclidean_distance(zs, zt)), rel=1e-9)
    assert w1_upper(1.0, 2.0, 50, 0.05) == pytest.approx(1.0 + 2.0 * math.sqrt(2 * math.log(20) / 50))


def test_mean_intervals_contain_the_mean_and_bernstein_is_tighter_for_small_variance():
    x = np.random.default_rng(5).uniform(0.45, 0.55, 4000)
    h, b = hoeffding(x, 1.0, 0.05), empirical_bernstein(x, 1.0, 0.05)
    assert h.lower < 0.5 < h.upper and b.lower < 0.5 < b.upper
    assert b.upper - b.lower < h.upper - h.lower
    m = mean_interval(x, 1.0, 0.05)  # the tighter of the two, each at alpha / 2 (union bound)
    b2 = empirical_bernstein(x, 1.0, 0.025)
    assert (m.lower, m.upper) == (b2.lower, b2.upper)


def test_verdict_rule():
    assert verdict(0.1, 0.05, 0.2, 0.3) == "holds"
    assert verdict(0.5, 0.4, 0.1, 0.3) == "violated"
    assert verdict(0.25, 0.1, 0.2, 0.3) == "inconclusive"
