"""The bound chain as property tests: the chain C1-C9 (zero violations), the equality cases E1-E3,
and E4, which asserts that the counterexample to the marginal form exists."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kd2m_ref.testing.strategies import paired_clouds, point_cloud, weights
from verification.distances import SQRT2, mmd
from verification.exact.chain import ATOL, Instance, chain, class_swap_instance
from verification.functions import KernelExpansion, LinearHead

FLOATS = st.floats(-3, 3, allow_nan=False, allow_infinity=False)


@st.composite
def expansions(draw, d: int, sigma: float):
    """A Gaussian-kernel expansion with 1-4 centres in the data box, rescaled to a norm in [0.1, 1]."""
    j = draw(st.integers(1, 4))
    centers = draw(point_cloud(j, d))
    coef = draw(hnp.arrays(np.float64, (j,), elements=st.floats(-1, 1).filter(lambda v: abs(v) > 1e-3)))
    radius = draw(st.floats(0.1, 1.0))
    f = KernelExpansion(centers, coef, sigma)
    return f.scaled_to(radius) if f.norm() > 1e-6 else KernelExpansion(centers[:1], np.array([radius]), sigma)


@st.composite
def instances(draw, n=st.integers(1, 25), identical: bool = False):
    """Paired clouds (independent / identical / permuted / perturbed, from kd2m_ref.testing), optionally
    with duplicated rows; uniform or positive weights; labels in 1-4 classes; sigma in [0.2, 5]; F1, F2, F4."""
    n, d = draw(n), draw(st.integers(1, 4))
    zs, zt = draw(paired_clouds(n, d))
    if identical:
        zt = zs.copy()
    if draw(st.booleans()):
        idx = np.asarray(draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n)))
        zs, zt = zs[idx], zt[idx]
    w = draw(weights(n)) if draw(st.booleans()) else None
    n_cls = draw(st.integers(1, 4))
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, n_cls - 1)))
    sigma = draw(st.floats(0.2, 5.0))
    n_out = max(n_cls, 2)
    head = LinearHead(draw(hnp.arrays(np.float64, (n_out, d), elements=FLOATS)),
                      draw(hnp.arrays(np.float64, (n_out,), elements=FLOATS)))
    return Instance(zs, zt, w, y, sigma, draw(expansions(d, sigma)), draw(expansions(d, SQRT2 * sigma)), head,
                    draw(st.integers(0, n_out - 1)))


def _assert_holds(checks, prefix):
    selected = [c for c in checks if c.name.split(".")[0] == prefix]
    assert selected, f"no check named {prefix}"
    bad = [c for c in selected if c.violated]
    assert not bad, "; ".join(f"{c.name}: lhs={c.lhs!r} > rhs={c.rhs!r}" for c in bad)


@pytest.mark.parametrize("group", ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"])
@given(inst=instances(n=st.integers(1, 16)))  # n up to 25: `kd2m-ref verify exact`
def test_chain_inequality_holds(group, inst):
    _assert_holds(chain(inst), group)


@given(inst=instances(n=st.integers(1, 12)), shift=st.floats(0.5, 3.0))
def test_e1_witness_attains_c1(inst, shift):
    inst = Instance(inst.zs, inst.zt + shift, inst.w, inst.y, inst.sigma, inst.f1, inst.g, inst.head, inst.c0)
    checks = {c.name: c for c in chain(inst)}
    assume("E1" in checks)  # MMD >= 1e-3 (the shift makes it rare to fail)
    assert not checks["E1"].violated, checks["E1"]
    assert math.isclose(checks["E1"].lhs, checks["C2"].lhs, rel_tol=1e-9)


@given(inst=instances(n=st.integers(1, 10), identical=True))
def test_e2_equal_features_make_every_term_zero(inst):
    checks = {c.name: c for c in chain(inst)}
    assert checks["E2"].lhs <= ATOL, checks["E2"]


@given(inst=instances(n=st.just(1)))
def test_e3_single_point_makes_c3_an_equality(inst):
    checks = {c.name: c for c in chain(inst)}
    assert not checks["E3.w1_mean"].violated and not checks["E3.mean_max"].violated


@st.composite
def separated_teacher(draw):
    """Teacher features in 2-4 well separated classes (centres 6 e_c, noise <= 0.5) and the head W = centres."""
    n_cls = draw(st.integers(2, 4))
    sizes = draw(st.lists(st.integers(1, 5), min_size=n_cls, max_size=n_cls))
    y = np.repeat(np.arange(n_cls), sizes)
    centres = 6.0 * np.eye(n_cls)
    noise = draw(hnp.arrays(np.float64, (len(y), n_cls), elements=st.floats(-0.5, 0.5)))
    return centres[y] + noise, y, LinearHead(centres, np.zeros(n_cls))


@given(teacher=separated_teacher(), sigma=st.floats(0.2, 5.0))
def test_e4_counterexample_exists(teacher, sigma):
    """The label scramble has equal marginals (MMD = W1 = 0) but a label-tied risk gap > 0: the
    marginal form of Theorem 3.1 is false without (A*); the class-conditional form still holds."""
    zt, y, head = teacher
    inst = class_swap_instance(zt, y, head, sigma)
    checks = {c.name: c for c in chain(inst)}
    assert checks["C2"].lhs <= ATOL and checks["C2"].rhs <= ATOL  # MMD, W1^{d_k} of the marginals
    assert checks["C7.marg_cond"].lhs <= ATOL  # Euclidean W1 of the marginals
    gap = checks["marginal_form"].lhs
    assert gap > 1.0  # wrong-class features under a confident head
    assert checks["marginal_form"].violated  # gap > L * W1(marginals) = 0
    assert not checks["C7.gap_cond"].violated  # the label-aware bound holds
    assert checks["C7.gap_cond"].rhs > 0


def test_e4_two_point_example():
    from verification.exact.experiment import e4_example

    ex = e4_example()
    assert ex["mmd"] == 0.0 and ex["w1_marginal"] == 0.0 and ex["w1_dk"] == 0.0
    assert ex["label_tied_gap"] > 0 and ex["marginal_form_fails"] and ex["corrected_bound_holds"]


def test_mmd_of_equal_measures_is_exactly_zero():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(9, 3))
    assert mmd(z, z[rng.permutation(9)], 0.7) == 0.0
