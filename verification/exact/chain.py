r"""The inequality chain on exact weighted discrete measures.

Theorem 3.1 holds for *any* input law, in particular for :math:`P=\sum_i w_i\delta_{x_i}`; encoders
enter only through the paired clouds :math:`(z_i^S, z_i^T) = (\phi_S(x_i), \phi_T(x_i))`. So every
term below is a finite sum or an exact LP, and every inequality must hold to solver tolerance.
Distances: :mod:`verification.distances`; test functions: :mod:`verification.functions`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..distances import (SQRT2, class_conditional_w1, euclidean_distance, joint_w1, kernel_distance, mmd,
                         normalised_weights, ot_cost, paired_kernel_distance, squared_euclidean_distance)
from ..functions import KernelExpansion, LinearHead, mmd_witness

#: Tolerances: ``atol=1e-8, rtol=1e-6``; ``atol=1e-7`` where a HiGHS LP is solved (weighted
#: measures); uniform weights use the exact Hungarian algorithm.
ATOL, RTOL, ATOL_LP = 1e-8, 1e-6, 1e-7


# --------------------------------------------------------------------------- instances and the chain


@dataclass(frozen=True)
class Instance:
    """One discrete verification instance: paired clouds, weights (None = uniform), labels, bandwidth,
    and the test functions F1 (``f1``), F2 (``g``, with ``g.squared()`` the loss), F4 (``head``, ``c0``)."""

    zs: np.ndarray
    zt: np.ndarray
    w: np.ndarray | None
    y: np.ndarray
    sigma: float
    f1: KernelExpansion
    g: KernelExpansion
    head: LinearHead
    c0: int
    kind: str = "independent"

    @property
    def weights(self) -> np.ndarray:
        return normalised_weights(self.w, len(self.zs))


@dataclass(frozen=True)
class Check:
    """``lhs <= rhs`` (relation ``le``) or ``lhs == rhs`` (``eq``), to ``atol + RTOL*|rhs|``.
    ``must_hold=False`` marks data (the marginal form, which can fail)."""

    name: str
    lhs: float
    rhs: float
    relation: str = "le"
    atol: float = ATOL
    must_hold: bool = True

    @property
    def violated(self) -> bool:
        if self.relation == "le":
            return not self.lhs <= self.rhs + self.atol + RTOL * abs(self.rhs)
        return not abs(self.lhs - self.rhs) <= self.atol + RTOL * max(abs(self.lhs), abs(self.rhs))

    @property
    def ratio(self) -> float | None:
        """Tightness ``lhs / rhs`` (None when ``rhs`` is 0 to roundoff)."""
        return self.lhs / self.rhs if self.rhs > 1e-12 else None


def _worst(name, lhs, rhs, atol, **kw) -> Check:
    lhs, rhs = np.atleast_1d(np.asarray(lhs, float)), np.atleast_1d(np.asarray(rhs, float))
    i = int(np.argmax(lhs - rhs - RTOL * np.abs(rhs)))
    return Check(name, float(lhs[i]), float(rhs[i]), atol=atol, **kw)


def terms(inst: Instance) -> dict[str, float]:
    """Every term of the chain for one instance (floats), by name."""
    zs, zt, y, s = inst.zs, inst.zt, np.asarray(inst.y), inst.sigma
    w = inst.weights
    a = None if inst.w is None else w
    eu = euclidean_distance(zs, zt)
    dk = kernel_distance(zs, zt, s)
    pe = np.sqrt(np.sum((zs - zt) ** 2, axis=1))
    pk = paired_kernel_distance(zs, zt, s)
    head, L = inst.head, inst.head.lipschitz
    ell = inst.g.squared()
    t = {
        "mmd": mmd(zs, zt, s, w, w),
        "w1_dk": ot_cost(dk, a, a),
        "w1": ot_cost(eu, a, a),
        "w2_sq": ot_cost(squared_euclidean_distance(zs, zt), a, a),  # the LP returns W2^2; its square root amplifies LP roundoff
        "mean_dk": float(w @ pk), "max_dk": float(pk[w > 0].max()),
        "mean_eu": float(w @ pe), "ms_eu": float(w @ pe**2),
        "f1_norm": inst.f1.norm(), "f1_gap": float(w @ inst.f1.difference(zs, zt)),
        "f2_norm": ell.norm(), "f2_gap": float(w @ ell.difference(zs, zt)), "g_norm": inst.g.norm(),
        "lipschitz": L,
        "ce_gap_free": float(w @ (head.cross_entropy(zs, inst.c0) - head.cross_entropy(zt, inst.c0))),
        "ce_gap_tied": float(w @ (head.cross_entropy(zs, y) - head.cross_entropy(zt, y))),
        "cond": class_conditional_w1(zs, zt, y, euclidean_distance, a),
        "diam": float(eu.max()),
    }
    t["dk_excess"] = dk - np.minimum(SQRT2, eu / s)  # C4 pointwise (array, reduced in chain())
    return t


JOINT_BETAS = (0.0, 0.25, 0.5, 1.0, 2.0)  # multiples of max_ij ||z_i^S - z_j^T||


def chain(inst: Instance) -> list[Check]:
    """The checks C1-C9 and E1-E3 for one instance, and the marginal form of the
    label-tied bound (``must_hold=False``: it needs assumption (A*), and fails for label scrambles)."""
    t = terms(inst)
    atol = ATOL if inst.w is None else ATOL_LP
    a = None if inst.w is None else inst.weights
    L, s = t["lipschitz"], inst.sigma
    eu_ground = euclidean_distance
    joints = [joint_w1(inst.zs, inst.zt, inst.y, eu_ground, m * t["diam"], a) for m in JOINT_BETAS]
    dk = kernel_distance(inst.zs, inst.zt, s)
    bound4 = np.minimum(SQRT2, euclidean_distance(inst.zs, inst.zt) / s)
    checks = [
        Check("C1.F1", abs(t["f1_gap"]), t["f1_norm"] * t["mmd"], atol=atol),
        Check("C1.F2", abs(t["f2_gap"]), t["f2_norm"] * t["mmd"], atol=atol),
        Check("C2", t["mmd"], t["w1_dk"], atol=atol),
        Check("C3.mean", t["w1_dk"], t["mean_dk"], atol=atol),
        Check("C3.max", t["mean_dk"], t["max_dk"], atol=atol),
        _worst("C4.pointwise", dk.ravel(), bound4.ravel(), atol),
        Check("C4.w1", t["w1_dk"], t["w1"] / s, atol=atol),
        # W1 <= W2 <= (sum w |dz|^2)^(1/2), compared as squares: W2^2 is the LP's value, and a square
        # root would turn its roundoff eps into sqrt(eps) near 0
        Check("C5.w1_w2", t["w1"] ** 2, t["w2_sq"], atol=atol),
        Check("C5.w2_coupling", t["w2_sq"], t["ms_eu"], atol=atol),
        Check("C5.w1_coupling", t["w1"], t["mean_eu"], atol=atol),
        Check("C6", abs(t["ce_gap_free"]), L * t["w1"], atol=atol),
        Check("C7.gap_cond", abs(t["ce_gap_tied"]), L * t["cond"], atol=atol),
        Check("C7.cond_coupling", t["cond"], t["mean_eu"], atol=atol),
        Check("C7.marg_cond", t["w1"], t["cond"], atol=atol),
        _worst("C8.marg_joint", [t["w1"]] * len(joints), joints, atol),
        _worst("C8.joint_cond", joints, [t["cond"]] * len(joints), atol),
        _worst("C8.monotone", joints[:-1], joints[1:], atol),
        Check("C8.beta0", joints[0], t["w1"], relation="eq", atol=atol),
        Check("C8.large_beta", joints[-1], t["cond"], relation="eq", atol=atol),
        Check("C9", t["f2_norm"], t["g_norm"] ** 2, atol=atol),
        Check("marginal_form", abs(t["ce_gap_tied"]), L * t["w1"], atol=atol, must_hold=False),
    ]
    if t["mmd"] >= 1e-3:  # the witness is defined for MMD > 0; below 1e-3 its 1/MMD coefficients amplify roundoff
        wit = mmd_witness(inst.zs, inst.zt, s, inst.weights, t["mmd"])
        checks.append(Check("E1", float(inst.weights @ wit.difference(inst.zs, inst.zt)), t["mmd"], "eq", atol))
    if np.array_equal(inst.zs, inst.zt):
        every = max(abs(t[k]) for k in ("mmd", "w1_dk", "w1", "w2_sq", "mean_dk", "max_dk", "f1_gap", "f2_gap",
                                        "ce_gap_free", "ce_gap_tied", "cond", "mean_eu"))
        checks.append(Check("E2", every, 0.0, "eq", atol))
    if len(inst.zs) == 1:
        checks.append(Check("E3.w1_mean", t["w1_dk"], t["mean_dk"], "eq", atol))
        checks.append(Check("E3.mean_max", t["mean_dk"], t["max_dk"], "eq", atol))
    return checks


# --------------------------------------------------------------------------- random instances

KINDS = ("independent", "identical", "permuted", "perturbed", "duplicated")
KIND_PROBS = (0.4, 0.1, 0.2, 0.2, 0.1)


def random_expansion(rng: np.random.Generator, zs, zt, sigma: float, radius: float) -> KernelExpansion:
    """1-4 centres near the data (a data point plus noise of scale sigma), normal coefficients, norm ``radius``."""
    pool = np.concatenate([zs, zt])
    j = int(rng.integers(1, 5))
    centers = pool[rng.integers(0, len(pool), j)] + sigma * rng.normal(size=(j, pool.shape[1]))
    f = KernelExpansion(centers, rng.normal(size=j), sigma)
    return f.scaled_to(radius) if f.norm() > 1e-6 else KernelExpansion(centers[:1], np.array([radius]), sigma)


def random_instance(rng: np.random.Generator) -> Instance:
    r"""An instance drawn as the Hypothesis strategy of the tests:
    :math:`n\in[1,25]`, :math:`d\in[1,4]`, coordinates uniform in :math:`[-5,5]` times a scale in
    :math:`[0.1,3]`, uniform or Dirichlet weights, :math:`C\in[1,4]` labels, :math:`\sigma` log-uniform in
    :math:`[0.2,5]`; kinds: independent, identical, permuted (uniform weights: a label scramble),
    perturbed (:math:`10^{-3}`), duplicated rows."""
    n, d, n_cls = int(rng.integers(1, 26)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    scale = rng.uniform(0.1, 3.0)
    kind = str(rng.choice(KINDS, p=KIND_PROBS))
    zs = rng.uniform(-5, 5, (n, d)) * scale
    if kind == "identical":
        zt = zs.copy()
    elif kind == "permuted":
        zt = zs[rng.permutation(n)]
    elif kind == "perturbed":
        zt = zs + 1e-3 * scale * rng.uniform(-5, 5, (n, d))
    else:
        zt = rng.uniform(-5, 5, (n, d)) * scale
    if kind == "duplicated":
        idx = rng.integers(0, n, n)
        zs, zt = zs[idx], zt[idx]
    w = None if kind == "permuted" or rng.random() < 0.5 else rng.dirichlet(np.ones(n))
    y = rng.integers(0, n_cls, n)
    sigma = float(np.exp(rng.uniform(np.log(0.2), np.log(5.0))))
    f1 = random_expansion(rng, zs, zt, sigma, rng.uniform(0.1, 1.0))
    g = random_expansion(rng, zs, zt, SQRT2 * sigma, rng.uniform(0.1, 1.0))
    n_out = max(n_cls, 2)
    head = LinearHead(rng.normal(size=(n_out, d)), rng.normal(size=n_out))
    return Instance(zs, zt, w, y, sigma, f1, g, head, int(rng.integers(0, n_out)), kind)


def class_swap_instance(zt, y, head: LinearHead, sigma: float = 1.0) -> Instance:
    r"""(E4) the label scramble: the student's features are the teacher's, permuted
    across classes (a cyclic shift of the class order), uniform weights. The marginals are equal, so
    MMD = W1 = 0, while the label-tied risks differ."""
    zt, y = np.asarray(zt, np.float64), np.asarray(y)
    classes = np.unique(y)
    idx = np.argsort(y, kind="stable")
    perm = np.roll(idx, -int(np.sum(y == classes[0])))  # row i of the student gets a row of another class
    zs = np.empty_like(zt)
    zs[idx] = zt[perm]
    f = KernelExpansion(zt[:1], np.array([0.5]), sigma)
    return Instance(zs, zt, None, y, sigma, f, KernelExpansion(zt[:1], np.array([0.5]), SQRT2 * sigma), head, 0,
                    "class_swap")
