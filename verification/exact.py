r"""Exact quantities on weighted discrete measures and the inequality chain of THEORY.md §4.1.

Theorem 3.1 holds for *any* input law, in particular for :math:`P=\sum_i w_i\delta_{x_i}`; encoders
enter only through the paired clouds :math:`(z_i^S, z_i^T) = (\phi_S(x_i), \phi_T(x_i))`. So every
term below is a finite sum or an exact LP, and every inequality must hold to solver tolerance.

Numerics. Kernel distances use :math:`d_k=\sqrt{-2\,\mathrm{expm1}(-r^2/2\sigma^2)}` (no
cancellation near 0). MMD uses the energy form of the V-statistic in extended precision (below).
RKHS test functions are evaluated, and their norms computed, in ``np.longdouble``; differences
:math:`f(z^S_i)-f(z^T_i)` use :math:`k(u,s)-k(u,t)=e^{-B}\,\mathrm{expm1}(B-A)` with
:math:`B-A=\langle s-t,\,2u-s-t\rangle/2\sigma^2`, accurate relative to :math:`\|s-t\|`.
Optimal transport is ``kd2m_ref.reference.wasserstein.ot_plan`` (Hungarian for uniform weights,
HiGHS otherwise) for any cost matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from kd2m_ref._conventions import class_blocks
from kd2m_ref.reference.wasserstein import cost_matrix, ot_plan

SQRT2 = math.sqrt(2.0)
#: Tolerances of THEORY.md §4.1: ``atol=1e-8, rtol=1e-6``; ``atol=1e-7`` where a HiGHS LP is solved
#: (weighted measures); uniform weights use the exact Hungarian algorithm.
ATOL, RTOL, ATOL_LP = 1e-8, 1e-6, 1e-7
LD = np.longdouble


# --------------------------------------------------------------------------- distances


def euclidean_distance(x, y) -> np.ndarray:
    r"""Matrix :math:`\|x_i-y_j\|_2`, from explicit differences."""
    return np.sqrt(cost_matrix(np.asarray(x, np.float64), np.asarray(y, np.float64), 2))


def kernel_distance(x, y, sigma: float) -> np.ndarray:
    r"""Gaussian-kernel metric matrix :math:`d_k(x_i,y_j)=\sqrt{-2\,\mathrm{expm1}(-\|x_i-y_j\|^2/2\sigma^2)}`.

    Equal to :math:`\|\Phi(x)-\Phi(y)\|_{\mathcal H_k}=\sqrt{2-2k(x,y)}`, computed without the
    cancellation of :math:`2-2k` for close points; clamped at 0, bounded by :math:`\sqrt2`.
    """
    sq = cost_matrix(np.asarray(x, np.float64), np.asarray(y, np.float64), 2)
    return np.sqrt(np.maximum(-2.0 * np.expm1(-sq / (2.0 * sigma**2)), 0.0))


def _sq_dist_ld(x, y) -> np.ndarray:
    x, y = np.asarray(x, LD), np.asarray(y, LD)
    diff = x[:, None, :] - y[None, :, :]
    return np.sum(diff * diff, axis=-1)


def normalised_weights(w, n: int) -> np.ndarray:
    """``w / sum(w)``, or uniform weights ``1/n`` when ``w`` is None."""
    return np.full(n, 1.0 / n) if w is None else np.asarray(w, np.float64) / np.sum(w)


def mmd_gaussian(xs, xt, sigma: float, a=None, b=None) -> float:
    r"""Exact :math:`\mathrm{MMD}_k` (not squared) between weighted discrete measures, Gaussian kernel.

    Energy form of the V-statistic (with :math:`\sum a=\sum b=1` and :math:`k=1-d_k^2/2`):

    .. math:: \mathrm{MMD}_k^2 = \sum_{ij}a_ib_j d_k^2(x_i,y_j) - \tfrac12\sum_{ij}a_ia_j d_k^2(x_i,x_j)
              - \tfrac12\sum_{ij}b_ib_j d_k^2(y_i,y_j),

    evaluated in ``np.longdouble`` with :math:`d_k^2=-2\,\mathrm{expm1}(\cdot)`. Equal measures
    (identical or permuted clouds) give exactly 0; otherwise the absolute error of MMD^2 is a few
    units of longdouble roundoff (1e-19 on x86) times the largest :math:`d_k^2\le2`, i.e. < 1e-9 on
    MMD. This is the weighted MMD of the verification; ``kd2m_ref.reference.mmd`` (uniform
    weights, float64 V-statistic) is checked against it in the tests.
    """
    xs, xt = np.asarray(xs, np.float64), np.asarray(xt, np.float64)
    a = normalised_weights(a, len(xs)).astype(LD)
    b = normalised_weights(b, len(xt)).astype(LD)
    s2 = LD(2.0) * LD(sigma) ** 2

    def d2(u, v):
        return LD(-2.0) * np.expm1(-_sq_dist_ld(u, v) / s2)

    value = (np.sum(np.outer(a, b) * d2(xs, xt)) - np.sum(np.outer(a, a) * d2(xs, xs)) / 2
             - np.sum(np.outer(b, b) * d2(xt, xt)) / 2)
    return float(np.sqrt(max(value, LD(0.0))))


def w1(cost: np.ndarray, a=None, b=None) -> float:
    r"""Exact :math:`W_1^c=\min_{\gamma\in U(a,b)}\sum_{ij}\gamma_{ij}c_{ij}` for a metric cost matrix
    (Euclidean, :math:`d_k`, or feature + label cost): ``ot_plan`` of the reference (Hungarian when
    the weights are uniform and the sizes equal, HiGHS otherwise)."""
    cost = np.asarray(cost, np.float64)
    return float(np.sum(ot_plan(cost, a, b) * cost))


def class_conditional_w1(zs, zt, y, ground, w=None) -> float:
    r""":math:`\sum_c \hat p_c\,W_1^d(\hat P_S^c,\hat P_T^c)` with :math:`\hat p_c=\sum_{i:y_i=c}w_i`
    (``prior`` weights of :func:`kd2m_ref._conventions.class_blocks`); ``ground(x, y)`` returns the cost matrix."""
    total = 0.0
    for blk in class_blocks(np.asarray(y), None, len(zs), len(zt), weights="prior", a=w):
        sub = None if w is None else np.asarray(w, np.float64)[blk.index_s]
        total += blk.weight * w1(ground(zs[blk.index_s], zt[blk.index_t]), sub, sub)
    return total


def joint_w1(zs, zt, y, ground, beta: float, w=None) -> float:
    r"""Joint :math:`W_1` between :math:`(\phi_S,y)\sharp\hat P` and :math:`(\phi_T,y)\sharp\hat P` for the
    cost :math:`d(z,z')+\beta\,1[y\ne y']` (THEORY.md §3.3, C8). For :math:`\beta\ge\max_{ij}d_{ij}`
    it equals the class-conditional term: rerouting any cycle of cross-class mass inside the
    classes saves :math:`\beta` per unit and costs at most :math:`\max d`."""
    y = np.asarray(y)
    cost = ground(zs, zt) + beta * (y[:, None] != y[None, :])
    return w1(cost, w, w)


# --------------------------------------------------------------------------- test functions


@dataclass(frozen=True)
class KernelExpansion:
    r"""An RKHS function :math:`f=\sum_j c_j k_\sigma(u_j,\cdot)` of the Gaussian kernel
    :math:`k_\sigma(u,z)=e^{-\|u-z\|^2/2\sigma^2}`, with exact norm :math:`\|f\|^2=c^\top K_{uu}c`."""

    centers: np.ndarray
    coef: np.ndarray
    sigma: float

    def _k(self, z):
        return np.exp(-_sq_dist_ld(z, self.centers) / (LD(2.0) * LD(self.sigma) ** 2))

    def __call__(self, z) -> np.ndarray:
        """Values :math:`f(z_i)`."""
        return (self._k(np.atleast_2d(z)) @ self.coef.astype(LD)).astype(np.float64)

    def norm(self) -> float:
        r""":math:`\|f\|_{\mathcal H_k}=\sqrt{c^\top K_{uu}c}` (longdouble)."""
        c = self.coef.astype(LD)
        return float(np.sqrt(max(c @ self._k(self.centers) @ c, LD(0.0))))

    def difference(self, zs, zt) -> np.ndarray:
        r"""Rows :math:`f(z^S_i)-f(z^T_i)` via :math:`k(u,s)-k(u,t)=e^{-A}-e^{-B}`, written as
        :math:`-e^{-A}\mathrm{expm1}(A-B)` (B >= A) or :math:`e^{-B}\mathrm{expm1}(B-A)` (B < A) with
        :math:`B-A=\langle s-t, 2u-s-t\rangle/2\sigma^2` (no cancellation when :math:`s\approx t`, no overflow)."""
        s, t, u = (np.asarray(v, LD) for v in (zs, zt, self.centers))
        two_s2 = LD(2.0) * LD(self.sigma) ** 2
        delta = s - t                                           # (n, d)
        mid = 2 * u[None, :, :] - s[:, None, :] - t[:, None, :]  # (n, J, d)
        b_minus_a = np.einsum("nd,njd->nj", delta, mid) / two_s2
        b = _sq_dist_ld(t, u) / two_s2
        a = _sq_dist_ld(s, u) / two_s2
        # e^{-A} - e^{-B}, factored on the smaller exponent so that nothing overflows
        diff = np.where(b_minus_a >= 0, -np.exp(-a) * np.expm1(-np.abs(b_minus_a)),
                        np.exp(-b) * np.expm1(-np.abs(b_minus_a)))
        return (diff @ self.coef.astype(LD)).astype(np.float64)

    def scaled_to(self, radius: float) -> "KernelExpansion":
        """The same direction with norm ``radius``."""
        return KernelExpansion(self.centers, self.coef * (radius / self.norm()), self.sigma)

    def squared(self) -> "KernelExpansion":
        r""":math:`g^2` as an expansion of :math:`k_{\sigma/\sqrt2}` (THEORY.md §2):

        .. math:: g(z)^2=\sum_{j,l}c_jc_l\sqrt{k_\sigma(u_j,u_l)}\;k_{\sigma/\sqrt2}\big(\tfrac{u_j+u_l}2,z\big),

        so :meth:`norm` of the result is the exact :math:`\|g^2\|_{\mathcal H_{k^2}}` (C9: at most :math:`\|g\|^2`).
        """
        u, c = self.centers, self.coef
        mid = (u[:, None, :] + u[None, :, :]) / 2
        k_uu = np.exp(-cost_matrix(u, u, 2) / (2 * self.sigma**2))
        beta = np.outer(c, c) * np.sqrt(k_uu)
        return KernelExpansion(mid.reshape(-1, u.shape[1]), beta.ravel(), self.sigma / SQRT2)


def mmd_witness(zs, zt, sigma: float, w=None, mmd_value: float | None = None) -> KernelExpansion:
    r"""(F3) the unit-norm witness :math:`f^\*=(\mu_{\hat P_S}-\mu_{\hat P_T})/\mathrm{MMD}_k`, which attains C1."""
    w = normalised_weights(w, len(zs))
    m = mmd_gaussian(zs, zt, sigma, w, w) if mmd_value is None else mmd_value
    return KernelExpansion(np.concatenate([zs, zt]), np.concatenate([w, -w]) / m, sigma)


@dataclass(frozen=True)
class LinearHead:
    r"""(F4) softmax cross-entropy of a linear head, :math:`\mathrm{CE}(Wz+b,y)`, which is
    :math:`L=\sqrt2\,\|W\|_{op}`-Lipschitz in :math:`z` for every label (THEORY.md §3.4)."""

    weight: np.ndarray  # (C, d)
    bias: np.ndarray    # (C,)

    @property
    def lipschitz(self) -> float:
        r""":math:`\sqrt2\,\|W\|_{op}`."""
        return SQRT2 * float(np.linalg.norm(self.weight, 2))

    def cross_entropy(self, z, y) -> np.ndarray:
        r"""Rows :math:`\mathrm{logsumexp}(Wz_i+b)-(Wz_i+b)_{y_i}` (``y`` an int or an array)."""
        logits = np.asarray(z, np.float64) @ self.weight.T + self.bias
        y = np.broadcast_to(np.asarray(y), (len(logits),))
        return logsumexp(logits, axis=1) - logits[np.arange(len(logits)), y]


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
    ``must_hold=False`` marks data (the marginal form of §3.3, which can fail)."""

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
    pk = np.sqrt(np.maximum(-2.0 * np.expm1(-pe**2 / (2 * s**2)), 0.0))
    head, L = inst.head, inst.head.lipschitz
    ell = inst.g.squared()
    t = {
        "mmd": mmd_gaussian(zs, zt, s, w, w),
        "w1_dk": w1(dk, a, a),
        "w1": w1(eu, a, a),
        "w2_sq": w1(cost_matrix(zs, zt, 2), a, a),  # the LP returns W2^2; its square root amplifies LP roundoff
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
    """The checks C1-C9 and E1-E3 of THEORY.md §4.1 for one instance, and the marginal form of the
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
    r"""An instance drawn as the Hypothesis strategy of the tests (THEORY.md §4.1 generators):
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
    r"""(E4) the label scramble of THEORY.md §3.3: the student's features are the teacher's, permuted
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
