"""The metric registry: one :class:`MetricSpec` per metric key, the single table everything iterates over.

Tests, the cross-check kit, the CLI and the book loop over :data:`METRICS`. Callables are named by
dotted paths and resolved on first use, so ``import kd2m_ref`` needs neither torch nor hypothesis.
Adding a metric is adding one spec here.

Examples
--------
>>> from kd2m_ref import METRICS
>>> METRICS["mmd"].title
'Maximum mean discrepancy (MMD², V- or U-statistic)'
>>> sorted({spec.family for spec in METRICS.values()})
['gaussian', 'kernel', 'logit', 'optimal transport']
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable


def resolve(path: str | None) -> Callable | None:
    """Import ``"package.module:attribute"`` (or ``package.module.attribute``) and return the attribute.

    Examples
    --------
    >>> from kd2m_ref.registry import resolve
    >>> resolve("kd2m_ref.reference:wasserstein").__module__
    'kd2m_ref.reference.wasserstein'
    >>> resolve(None) is None
    True
    """
    if path is None:
        return None
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Param:
    """A keyword parameter that changes the number: its default and what it means.

    Examples
    --------
    >>> from kd2m_ref import METRICS
    >>> param = METRICS["sinkhorn"].params["epsilon"]
    >>> param.default, param.doc[:23]
    (0.1, 'entropic regularisation')
    """

    default: Any
    doc: str


@dataclass(frozen=True)
class MetricSpec:
    """Everything the package knows about one metric key.

    ``reference``, ``torch``, ``oracle``, ``strategy`` and ``tolerance`` are dotted paths, resolved
    lazily by the properties of the same name without the ``_path`` suffix.
    ``strategy(small=False)`` returns a Hypothesis strategy of :class:`kd2m_ref.testing.examples.Example`
    (``small=True``: sizes the oracle can handle). ``tolerance(example, dtype)`` returns
    ``(rtol, atol)`` for comparing a computation in ``dtype`` with the float64 reference evaluated
    on the same (rounded) inputs. ``properties`` name the property tests that cover the metric
    (each name appears in ``tests/`` as ``covers("<key>", "<name>")``). ``variants_path`` names the
    table of known convention variants (see :attr:`variants`).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref import METRICS
    >>> spec = METRICS["class_conditional_wasserstein"]
    >>> spec.family, spec.needs, spec.layout
    ('optimal transport', ('labels',), 'features')
    >>> xs, xt, ys = np.zeros((2, 1)), np.ones((2, 1)), np.array([0, 1])
    >>> spec.reference(xs, xt, ys=ys)  # imported on first use
    1.0
    """

    key: str
    family: str
    title: str
    formula: str
    reference_path: str
    torch_path: str | None
    oracle_path: str | None
    strategy_path: str
    tolerance_path: str
    returns: str
    params: dict[str, Param] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()
    variants_path: str | None = None

    @property
    def layout(self) -> str:
        """The kind of the two inputs, read from ``needs``, one of "features" ((n, d) clouds), "logits"
        ((B, K)) or "feature_maps" ((B, n, ...) batches of sets, (B, C, H, W) maps)."""
        return next((n for n in ("logits", "feature_maps") if n in self.needs), "features")

    @property
    def reference(self) -> Callable:
        return resolve(self.reference_path)

    @property
    def torch(self) -> Callable | None:
        return resolve(self.torch_path)

    @property
    def oracle(self) -> Callable | None:
        return resolve(self.oracle_path)

    @property
    def strategy(self) -> Callable:
        return resolve(self.strategy_path)

    @property
    def tolerance(self) -> Callable:
        return resolve(self.tolerance_path)

    @property
    def variants(self) -> dict:
        """Known convention variants, ``{name: (description, fn(example) -> float)}``, for the checker's
        diagnosis: ``variants_path``, or by default the table named after the key in
        :mod:`kd2m_ref.testing.variants` ({} when there is none)."""
        path = self.variants_path or f"kd2m_ref.testing.variants:{self.key}"
        module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
        table = getattr(importlib.import_module(module), attr, None)
        return dict(table) if isinstance(table, dict) else {}


_R, _T, _O, _S, _TOL = ("kd2m_ref.reference:", "kd2m_ref.torch:", "kd2m_ref.oracle:",
                        "kd2m_ref.testing.strategies:", "kd2m_ref.testing.tolerance:")

_P = Param(2.0, "ground-cost exponent: cost ||x - y||^p, value W_p^p")
_AB = {"a": Param(None, "source sample weights (normalised; uniform if None)"),
       "b": Param(None, "target sample weights (normalised; uniform if None)")}
_WEIGHTS = Param("uniform", "class weights: 'uniform' (1/K present classes, paper), 'prior' (n_c/n, theory), "
                            "'sum' (1 each, paper's code)")
_SINKHORN = {"epsilon": Param(0.1, "entropic regularisation, in cost units (or relative, below)"),
             "relative_epsilon": Param(False, "True: epsilon in units of the batch's mean cost sum_ij a_i b_j C_ij "
                                              "(scale-free; no gradient through it)"),
             "max_iter": Param(1000, "iteration cap over the whole ε-scaling schedule; when reached, a "
                                     "SinkhornNotConverged warning states the certified gap of the upper bound returned"),
             "tol": Param(1e-9, "stop when the L1 marginal error (rows + columns) is at most tol, or the "
                                 "certified duality gap at most tol·max C")}
_VALUE = Param("ot_eps", "'ot_eps' <P,C> + ε KL(P || a⊗b); 'plan_cost' <P,C> of the entropic plan (Cuturi's "
                         "Sinkhorn distance, POT's sinkhorn2, Wasserstein logit distillation); 'dual' the dual "
                         "objective <f,a> + <g,b> (all equal OT_ε when converged, except plan_cost)")

_SPECS = [
    MetricSpec(
        key="wasserstein", family="optimal transport", title="Empirical Wasserstein (eq. 2)",
        formula=r"W_p^p(\hat P,\hat Q)=\min_{\gamma\in U(a,b)}\sum_{ij}\gamma_{ij}\|x_i-y_j\|_2^p",
        reference_path=_R + "wasserstein", torch_path=_T + "wasserstein", oracle_path=_O + "wasserstein",
        strategy_path=_S + "ot_example", tolerance_path=_TOL + "ot_tolerance", returns="W_p^p",
        params={"p": _P, **_AB},
        properties=("oracle", "pot", "symmetry", "zero_iff_equal", "translation", "mean_decomposition",
                    "scaling", "one_d_closed_form", "triangle", "paired_bound", "gradcheck",
                    "finite_grad_at_equality"),
    ),
    MetricSpec(
        key="class_conditional_wasserstein", family="optimal transport",
        title="Class-conditional Wasserstein (eq. 3)",
        formula=r"\sum_c w_c\,W_p^p(\hat P_S^c,\hat P_T^c)",
        reference_path=_R + "class_conditional_wasserstein", torch_path=_T + "class_conditional_wasserstein",
        oracle_path=_O + "class_conditional_wasserstein", strategy_path=_S + "class_conditional_example",
        tolerance_path=_TOL + "ot_tolerance", returns="sum_c w_c W_p^p", needs=("labels",),
        params={"p": _P, "weights": _WEIGHTS, **_AB},
        properties=("oracle", "marginal_le_conditional_le_paired", "one_class_is_marginal",
                    "uniform_equals_prior_balanced", "gradcheck", "finite_grad_at_equality"),
    ),
    MetricSpec(
        key="joint_wasserstein", family="optimal transport", title="Joint feature-label Wasserstein (eq. 4)",
        formula=r"\min_{\gamma\in U(a,b)}\sum_{ij}\gamma_{ij}\big[\|x_i-y_j\|^p+\beta L(y_i,y'_j)\big]",
        reference_path=_R + "joint_wasserstein", torch_path=_T + "joint_wasserstein",
        oracle_path=_O + "joint_wasserstein", strategy_path=_S + "joint_example",
        tolerance_path=_TOL + "ot_tolerance", returns="joint W_p^p", needs=("labels",),
        params={"p": _P, "beta": Param(1.0, "weight of the label cost"),
                "label_cost": Param("onehot", "'onehot' 2*1[y!=y'], 'soft' ||p-q||^2, "
                                              "'cross_entropy' -sum y log y' (ys target, yt predicted)"),
                **_AB},
        properties=("oracle", "beta_zero_is_marginal", "monotone_in_beta", "le_conditional",
                    "large_beta_is_conditional", "symmetry", "gradcheck"),
    ),
    MetricSpec(
        key="sinkhorn", family="optimal transport", title="Entropic OT (log-domain Sinkhorn)",
        formula=r"\mathrm{OT}_\varepsilon=\min_{\gamma\in U(a,b)}\langle\gamma,C\rangle+\varepsilon\,"
                r"\mathrm{KL}(\gamma\|a\otimes b)",
        reference_path=_R + "sinkhorn", torch_path=_T + "sinkhorn", oracle_path=None,
        strategy_path=_S + "sinkhorn_example", tolerance_path=_TOL + "sinkhorn_tolerance",
        returns="OT_eps, <P, C> or the dual value (value=); unconverged OT_eps: an upper bound",
        params={"p": _P, **_SINKHORN, "value": _VALUE, **_AB},
        properties=("tends_to_exact", "ge_exact", "gradcheck", "small_epsilon_finite", "unconverged_is_upper_bound",
                    "relative_epsilon_converges", "low_precision_in_float32", "values_ordered", "plan_cost_pot",
                    "plan_cost_gradcheck"),
    ),
    MetricSpec(
        key="sinkhorn_divergence", family="optimal transport", title="Debiased Sinkhorn divergence",
        formula=r"S_\varepsilon=\mathrm{OT}_\varepsilon(a,b)-\tfrac12\mathrm{OT}_\varepsilon(a,a)"
                r"-\tfrac12\mathrm{OT}_\varepsilon(b,b)",
        reference_path=_R + "sinkhorn_divergence", torch_path=_T + "sinkhorn_divergence", oracle_path=None,
        strategy_path=_S + "sinkhorn_divergence_example", tolerance_path=_TOL + "sinkhorn_tolerance",
        returns="S_eps (unconverged: an upper bound)",
        params={"p": _P, **_SINKHORN, **_AB},
        properties=("nonnegative", "zero_at_equality", "symmetry", "tends_to_exact", "gradcheck",
                    "near_diagonal_nonnegative"),
    ),
    MetricSpec(
        key="sliced_wasserstein", family="optimal transport", title="Sliced Wasserstein (Monte Carlo)",
        formula=r"\frac1K\sum_{k=1}^K W_p^p(\theta_k^\top\sharp\hat P,\theta_k^\top\sharp\hat Q)",
        reference_path=_R + "sliced_wasserstein", torch_path=_T + "sliced_wasserstein",
        oracle_path=_O + "sliced_wasserstein", strategy_path=_S + "sliced_example",
        tolerance_path=_TOL + "ot_tolerance", returns="SW_p^p",
        params={"p": _P, "n_projections": Param(50, "number of random directions"),
                "seed": Param(0, "seed of the directions (same directions in reference and torch)"), **_AB},
        properties=("oracle", "one_d_is_exact", "le_exact", "seeded", "gradcheck"),
    ),
]

_SPECS += [
    MetricSpec(
        key="histogram_ot", family="optimal transport",
        title="OT between class histograms with a class cost (Wasserstein logit distillation)",
        formula=r"\frac1B\sum_b\min_{P\in U(p_{S,b},\,p_{T,b})}\langle P,C\rangle+\varepsilon\,"
                r"\mathrm{KL}(P\|p_{S,b}\otimes p_{T,b}),\quad p=\mathrm{softmax}(u/T)",
        reference_path="kd2m_ref.reference.histogram:histogram_ot", torch_path="kd2m_ref.torch.histogram:histogram_ot",
        oracle_path="kd2m_ref.oracle.histogram:histogram_ot", strategy_path=_S + "histogram_ot_example",
        tolerance_path=_TOL + "histogram_ot_tolerance", returns="batch mean of OT (exact), OT_eps, <P, C> or dual",
        needs=("logits",),
        params={"cost": Param(None, "(K, K) class cost, or (B, K, K) per row; None: 1[k != l] (exact OT is then "
                                    "the total variation)"),
                "inputs": Param("logits", "'logits' p = softmax(u / T) (no T^2 factor), or 'probabilities' (rows "
                                          "normalised)"),
                "temperature": Param(1.0, "softmax temperature T of 'logits'"),
                "epsilon": Param(0.0, "0: exact OT; > 0: entropic, in cost units (Wasserstein logit "
                                      "distillation: 0.05)"),
                "value": _VALUE,
                "n_iter": Param(None, "None: converged (ε-scaling, max_iter, tol); L: exactly L Sinkhorn "
                                      "iterations from u = 1, v <- b / K^T u then u <- a / K v (training code; "
                                      "Wasserstein logit distillation: 10)"),
                "max_iter": _SINKHORN["max_iter"], "tol": _SINKHORN["tol"]},
        properties=("oracle", "pot", "total_variation", "zero_at_equality", "batch_mean", "temperature",
                    "values_ordered", "fixed_iterations_converge", "ge_exact", "gradcheck",
                    "finite_grad_at_equality"),
    ),
]

# Kernel and logit baselines.
_KERNEL = {"kernel": Param("gaussian", "'gaussian' exp(-‖x-y‖²/2s²), 'laplacian' exp(-‖x-y‖₂/s), "
                                       "'linear' x.y, 'polynomial' (x.y + offset)^degree"),
           "bandwidth": Param("mean", "s of gaussian/laplacian: a number, 'mean' (mean of the n^2+m^2+nm "
                                      "pairwise distances, the paper's code) or 'median' (median heuristic "
                                      "over pairs i<j of X u Y); a rule giving 0 gives s = 1"),
           "estimator": Param("biased", "'biased' V-statistic (>= 0, the paper's code), 'unbiased' "
                                        "U-statistic (i != j; needs n, m >= 2)"),
           "degree": Param(2, "degree of the polynomial kernel"),
           "offset": Param(1.0, "offset c >= 0 of the polynomial kernel"),
           "detach_bandwidth": Param(True, "torch: no gradient through a bandwidth rule (paper's code)")}
_SPECS += [
    MetricSpec(
        key="mmd", family="kernel", title="Maximum mean discrepancy (MMD², V- or U-statistic)",
        formula=r"\widehat{\mathrm{MMD}}^2_V=\frac1{n^2}\sum_{ij}k(x_i,x_j)+\frac1{m^2}\sum_{ij}k(y_i,y_j)"
                r"-\frac2{nm}\sum_{ij}k(x_i,y_j)",
        reference_path=_R + "mmd", torch_path=_T + "mmd", oracle_path=_O + "mmd",
        strategy_path=_S + "mmd_example", tolerance_path=_TOL + "mmd_tolerance", returns="MMD^2",
        params=dict(_KERNEL),
        properties=("oracle", "symmetry", "nonnegative_zero_at_equality", "linear_is_mean_difference",
                    "v_u_identity", "unbiased", "le_kernel_w1", "bandwidth_scaling", "translation",
                    "gradcheck", "finite_grad_at_equality"),
    ),
    MetricSpec(
        key="set_mmd", family="kernel", title="Per-set MMD² averaged over a batch of sets (NST)",
        formula=r"\frac1B\sum_{b=1}^B\widehat{\mathrm{MMD}}^2\big(\{\hat x_{bi}\}_{i\le n},"
                r"\{\hat y_{bj}\}_{j\le m}\big),\quad\hat x=x/\|x\|_2",
        reference_path=_R + "set_mmd", torch_path=_T + "set_mmd", oracle_path=_O + "set_mmd",
        strategy_path=_S + "set_mmd_example", tolerance_path=_TOL + "set_mmd_tolerance",
        returns="mean over the B sets of MMD^2", needs=("feature_maps",),
        params={**_KERNEL,
                "kernel": Param("polynomial", _KERNEL["kernel"].doc + " (NST: polynomial, degree 2, offset 0)"),
                "bandwidth": Param("mean", _KERNEL["bandwidth"].doc + "; a rule is evaluated per set, on the "
                                                                      "normalised samples"),
                "estimator": Param("biased", "'biased' V-statistic (>= 0, NST's code), 'unbiased' U-statistic "
                                             "(i != j; needs n, m >= 2)"),
                "offset": Param(0.0, "offset c >= 0 of the polynomial kernel (NST: 0)"),
                "normalize": Param("l2", "'l2' each sample divided by its Euclidean norm (NST's F.normalize over "
                                         "the H·W positions; a zero sample stays zero), or 'none'")},
        properties=("oracle", "one_set_is_mmd", "mean_over_sets", "scale_invariance",
                    "nonnegative_zero_at_equality", "layout_equivalence", "published_form", "gradcheck",
                    "finite_grad_at_equality"),
    ),
    MetricSpec(
        key="hinton_kd", family="logit", title="Hinton's logit distillation (T² · KL)",
        formula=r"\mathcal L_{KD}=\frac{T^2}{B}\sum_{b=1}^B\mathrm{KL}\big(\mathrm{softmax}(u_{T,b}/T)\,\|\,"
                r"\mathrm{softmax}(u_{S,b}/T)\big)",
        reference_path=_R + "hinton_kd", torch_path=_T + "hinton_kd", oracle_path=_O + "hinton_kd",
        strategy_path=_S + "hinton_kd_example", tolerance_path=_TOL + "hinton_kd_tolerance",
        returns="T^2 KL (batch mean)", needs=("logits",),
        params={"temperature": Param(1.0, "softmax temperature T > 0 (paper's code: 1; RepDistiller: 4)"),
                "direction": Param("teacher_student", "'teacher_student' KL(p_T ‖ p_S) (Hinton), "
                                                      "'student_teacher' KL(p_S ‖ p_T) (the paper's code)")},
        properties=("oracle", "nonnegative_zero_iff_shift", "row_constant_invariance", "closed_form_gradient",
                    "high_temperature_limit", "batchmean", "gradcheck", "finite_grad_at_equality"),
    ),
]

# Gaussian family (paper eqs. 5-6).
_GAUSS = {"covariance": Param("full", "'full' (d, d) covariance, or 'diag' variances only (the paper's code)"),
          "estimator": Param("mle", "'mle' 1/n moments (the paper's code; Gelbrich exact), or 'unbiased' "
                                    "1/(1 - sum w_i^2) (1/(n-1) when uniform)"),
          "eps": Param(0.0, "ridge: covariances Σ + eps I (off by default; KL needs it when n <= d)"), **_AB}
_DIRECTION = Param("student_teacher", "'student_teacher' KL(N_S || N_T) (the paper's code), "
                                      "'teacher_student' KL(N_T || N_S)")
_BURES = (r"W_2^2=w\,\|\mu_S-\mu_T\|^2+\mathrm{tr}\,\Sigma_S+\mathrm{tr}\,\Sigma_T"
          r"-2\,\mathrm{tr}\big(\Sigma_S^{1/2}\Sigma_T\Sigma_S^{1/2}\big)^{1/2}")
_MEAN_WEIGHT = Param(1.0, "weight w >= 0 of the mean term w ||mu_S - mu_T||^2 (1: the W2 itself; WKD-F: 2 to 4)")
_GKL = (r"\mathrm{KL}(N_S\|N_T)=\tfrac12\Big[\mathrm{tr}(\Sigma_T^{-1}\Sigma_S)+(\mu_T-\mu_S)^\top\Sigma_T^{-1}"
        r"(\mu_T-\mu_S)-d+\ln\frac{\det\Sigma_T}{\det\Sigma_S}\Big]")
_SPECS += [
    MetricSpec(
        key="gaussian_wasserstein", family="gaussian", title="Bures–Wasserstein between fitted Gaussians (eq. 5)",
        formula=_BURES, reference_path=_R + "gaussian_wasserstein",
        torch_path=_T + "gaussian_wasserstein", oracle_path=_O + "gaussian_wasserstein",
        strategy_path=_S + "gaussian_example", tolerance_path=_TOL + "gaussian_tolerance",
        returns="W_2^2 (squared; mean term times mean_weight)", params={**_GAUSS, "mean_weight": _MEAN_WEIGHT},
        properties=("oracle", "accuracy_near_equal", "moments_form", "symmetry", "zero_iff_equal", "translation",
                    "scaling", "orthogonal_invariance", "diag_equals_full_on_diagonal", "one_d_closed_form",
                    "gelbrich", "equality_case", "triangle", "gradcheck", "finite_grad_at_equality",
                    "finite_grad_rank_deficient", "mean_weight_linear", "mean_weight_gradcheck"),
    ),
    MetricSpec(
        key="gaussian_kl", family="gaussian", title="KL divergence between fitted Gaussians (eq. 6)",
        formula=_GKL, reference_path=_R + "gaussian_kl", torch_path=_T + "gaussian_kl",
        oracle_path=_O + "gaussian_kl", strategy_path=_S + "gaussian_kl_example",
        tolerance_path=_TOL + "gaussian_kl_tolerance", returns="KL", params={**_GAUSS, "direction": _DIRECTION},
        properties=("oracle", "moments_form", "nonnegative_zero_iff_equal", "direction", "affine_invariance",
                    "equal_covariances", "additivity", "one_d_closed_form", "talagrand", "singular_raises",
                    "gradcheck", "finite_grad_at_equality"),
    ),
    MetricSpec(
        key="class_conditional_gaussian_wasserstein", family="gaussian",
        title="Class-conditional Gaussian W2 (eqs. 3 + 5)", formula=r"\sum_c w_c\,W_2^2(N_S^c,N_T^c)",
        reference_path=_R + "class_conditional_gaussian_wasserstein",
        torch_path=_T + "class_conditional_gaussian_wasserstein",
        oracle_path=_O + "class_conditional_gaussian_wasserstein",
        strategy_path=_S + "class_conditional_gaussian_example", tolerance_path=_TOL + "gaussian_tolerance",
        returns="sum_c w_c W_2^2", needs=("labels",), params={"weights": _WEIGHTS, **_GAUSS},
        properties=("oracle", "sum_of_blocks", "one_class_is_marginal", "uniform_equals_prior_balanced",
                    "gradcheck"),
    ),
    MetricSpec(
        key="class_conditional_gaussian_kl", family="gaussian", title="Class-conditional Gaussian KL (eqs. 3 + 6)",
        formula=r"\sum_c w_c\,\mathrm{KL}(N_S^c\|N_T^c)",
        reference_path=_R + "class_conditional_gaussian_kl", torch_path=_T + "class_conditional_gaussian_kl",
        oracle_path=_O + "class_conditional_gaussian_kl",
        strategy_path=_S + "class_conditional_gaussian_kl_example", tolerance_path=_TOL + "gaussian_kl_tolerance",
        returns="sum_c w_c KL", needs=("labels",), params={"weights": _WEIGHTS, **_GAUSS, "direction": _DIRECTION},
        properties=("oracle", "sum_of_blocks", "one_class_is_marginal", "gradcheck"),
    ),
    MetricSpec(
        key="grid_gaussian_wasserstein", family="gaussian", title="Grid-averaged Gaussian W2 of feature maps (WKD-F)",
        formula=r"\frac1{B\,g_hg_w}\sum_{b=1}^B\sum_{k=1}^{g_hg_w}\Big[w\,\|\mu_S^{bk}-\mu_T^{bk}\|^2"
                r"+\|\sigma_S^{bk}-\sigma_T^{bk}\|^2\Big],\quad\sigma=\sqrt{\mathrm{var}+\varepsilon}",
        reference_path=_R + "grid_gaussian_wasserstein", torch_path=_T + "grid_gaussian_wasserstein",
        oracle_path=_O + "grid_gaussian_wasserstein", strategy_path=_S + "grid_gaussian_wasserstein_example",
        tolerance_path=_TOL + "gaussian_tolerance", returns="mean over images and cells of W_2^2",
        needs=("feature_maps",),
        params={"grid": Param(1, "g (g x g cells) or (gh, gw); adaptive-pooling cells floor(iH/g)..ceil((i+1)H/g), "
                                 "overlapping when g does not divide H (WKD-F: 1 to 4)"),
                "mean_weight": _MEAN_WEIGHT,
                "covariance": Param("diag", "'diag' per-channel std (WKD-F), or 'full' Bures per cell"),
                "estimator": Param("unbiased", "'unbiased' 1/(n-1) over a cell's n pixels (WKD-F, torch.var; "
                                               "needs 2 pixels per cell), or 'mle' 1/n"),
                "eps": Param(1e-5, "sigma = sqrt(var + eps) (WKD-F: 1e-5); full: covariance + eps I")},
        properties=("oracle", "grid_one_is_pixel_cloud", "batch_mean", "cells_adaptive_pooling", "mean_weight_linear",
                    "diag_closed_form", "zero_iff_equal", "translation", "gradcheck", "finite_grad_at_equality",
                    "eps_zero_constant_channel"),
    ),
]

#: Every metric key mapped to its :class:`MetricSpec` (also ``kd2m_ref.METRICS``).
METRICS: dict[str, MetricSpec] = {spec.key: spec for spec in _SPECS}


def family_markdown(family: str) -> str:
    """A Markdown section per metric of ``family``: formula, what it returns, parameters with defaults,
    and the property tests that cover it (used by the book's metric pages).

    Examples
    --------
    >>> from kd2m_ref.registry import family_markdown
    >>> print(family_markdown("logit").splitlines()[0])
    ### `hinton_kd`: Hinton's logit distillation (T² · KL)
    """
    out = []
    for spec in (s for s in METRICS.values() if s.family == family):
        layers = ", ".join(name for name, path in (("reference", spec.reference_path), ("torch", spec.torch_path),
                                                   ("oracle", spec.oracle_path)) if path)
        out += [f"### `{spec.key}`: {spec.title}", "", f"$$\n{spec.formula}\n$$", "",
                f"Returns **{spec.returns}**. Layers: {layers}."
                + (f" Needs: {', '.join(spec.needs)}." if spec.needs else ""), "",
                "| parameter | default | meaning |", "|---|---|---|"]
        out += [f"| `{name}` | `{param.default!r}` | {param.doc.replace('|', chr(92) + '|')} |"
                for name, param in spec.params.items()]
        out += ["", "Property tests: " + ", ".join(f"`{p}`" for p in spec.properties) + ".", ""]
    return "\n".join(out)
