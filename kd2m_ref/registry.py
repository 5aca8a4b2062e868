"""The metric registry: one :class:`MetricSpec` per metric key, the single table everything iterates over.

Tests, the cross-check kit, the CLI and the book loop over :data:`METRICS`. Callables are named by
dotted paths and resolved on first use, so ``import kd2m_ref`` needs neither torch nor hypothesis.
Adding a metric is adding one spec here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable


def resolve(path: str | None) -> Callable | None:
    """Import ``"package.module:attribute"`` (or ``package.module.attribute``) and return the attribute."""
    if path is None:
        return None
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Param:
    """A keyword parameter that changes the number: its default and what it means."""

    default: Any
    doc: str


@dataclass(frozen=True)
class MetricSpec:
    """Everything the package knows about one metric key.

    ``reference``, ``torch``, ``oracle``, ``strategy`` and ``tolerance`` are dotted paths, resolved
    lazily by the properties of the same name without the ``_path`` suffix.
    ``strategy(small=False)`` returns a Hypothesis strategy of :class:`kd2m_ref.testing.Example`
    (``small=True``: sizes the oracle can handle). ``tolerance(example, dtype)`` returns
    ``(rtol, atol)`` for comparing a computation in ``dtype`` with the float64 reference evaluated
    on the same (rounded) inputs. ``properties`` name the property tests that cover the metric
    (each name appears in ``tests/`` as ``covers("<key>", "<name>")``).
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


_R, _T, _O, _S, _TOL = ("kd2m_ref.reference:", "kd2m_ref.torch:", "kd2m_ref.oracle:",
                        "kd2m_ref.testing.strategies:", "kd2m_ref.testing.tolerance:")

_P = Param(2.0, "ground-cost exponent: cost ||x - y||^p, value W_p^p")
_AB = {"a": Param(None, "source sample weights (normalised; uniform if None)"),
       "b": Param(None, "target sample weights (normalised; uniform if None)")}
_WEIGHTS = Param("uniform", "class weights: 'uniform' (1/K present classes, paper), 'prior' (n_c/n, theory), "
                            "'sum' (1 each, paper's code)")
_SINKHORN = {"epsilon": Param(0.1, "entropic regularisation, in cost units"),
             "max_iter": Param(1000, "iteration cap; a SinkhornNotConverged warning when reached"),
             "tol": Param(1e-9, "stop when the marginal L1 error is below tol")}

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
        strategy_path=_S + "sinkhorn_example", tolerance_path=_TOL + "sinkhorn_tolerance", returns="OT_eps",
        params={"p": _P, **_SINKHORN, **_AB},
        properties=("tends_to_exact", "ge_exact", "gradcheck", "small_epsilon_finite"),
    ),
    MetricSpec(
        key="sinkhorn_divergence", family="optimal transport", title="Debiased Sinkhorn divergence",
        formula=r"S_\varepsilon=\mathrm{OT}_\varepsilon(a,b)-\tfrac12\mathrm{OT}_\varepsilon(a,a)"
                r"-\tfrac12\mathrm{OT}_\varepsilon(b,b)",
        reference_path=_R + "sinkhorn_divergence", torch_path=_T + "sinkhorn_divergence", oracle_path=None,
        strategy_path=_S + "sinkhorn_example", tolerance_path=_TOL + "sinkhorn_tolerance", returns="S_eps",
        params={"p": _P, **_SINKHORN, **_AB},
        properties=("nonnegative", "zero_at_equality", "symmetry", "tends_to_exact", "gradcheck"),
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

METRICS: dict[str, MetricSpec] = {spec.key: spec for spec in _SPECS}


def family_markdown(family: str) -> str:
    """A Markdown section per metric of ``family``: formula, what it returns, parameters with defaults,
    and the property tests that cover it (used by the book's metric pages)."""
    out = []
    for spec in (s for s in METRICS.values() if s.family == family):
        layers = ", ".join(name for name, path in (("reference", spec.reference_path), ("torch", spec.torch_path),
                                                   ("oracle", spec.oracle_path)) if path)
        out += [f"### `{spec.key}`: {spec.title}", "", f"$$\n{spec.formula}\n$$", "",
                f"Returns **{spec.returns}**. Layers: {layers}."
                + (f" Needs: {', '.join(spec.needs)}." if spec.needs else ""), "",
                "| parameter | default | meaning |", "|---|---|---|"]
        out += [f"| `{name}` | `{param.default!r}` | {param.doc} |" for name, param in spec.params.items()]
        out += ["", "Property tests: " + ", ".join(f"`{p}`" for p in spec.properties) + ".", ""]
    return "\n".join(out)
