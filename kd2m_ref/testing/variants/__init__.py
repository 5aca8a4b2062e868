"""Known convention variants: what other implementations of each metric compute instead.

One table per metric key, named after the key (``kd2m_ref.testing.variants:<key>`` is the default
``MetricSpec.variants_path``), one module per family as in :mod:`kd2m_ref.reference`. A table maps
a variant name to ``(description, fn)``: ``fn(example)`` computes that variant in float64 from the
same inputs through the reference, or raises :class:`NotApplicable` where the variant coincides
with the metric (e.g. "ignores the weights" without weights) or cannot be evaluated reliably (an
entropic solve that does not converge). The checker evaluates them on a counterexample
(:func:`evaluate`) and reports which one the user's function matches.
"""

from ._common import NotApplicable, evaluate
from .gaussian import (
    class_conditional_gaussian_kl,
    class_conditional_gaussian_wasserstein,
    gaussian_kl,
    gaussian_wasserstein,
    grid_gaussian_wasserstein,
)
from .histogram import histogram_ot
from .kernel import mmd, set_mmd
from .logit import hinton_kd
from .sinkhorn import sinkhorn, sinkhorn_divergence
from .wasserstein import class_conditional_wasserstein, joint_wasserstein, sliced_wasserstein, wasserstein

__all__ = [
    "NotApplicable",
    "class_conditional_gaussian_kl",
    "class_conditional_gaussian_wasserstein",
    "class_conditional_wasserstein",
    "evaluate",
    "gaussian_kl",
    "gaussian_wasserstein",
    "grid_gaussian_wasserstein",
    "hinton_kd",
    "histogram_ot",
    "joint_wasserstein",
    "mmd",
    "set_mmd",
    "sinkhorn",
    "sinkhorn_divergence",
    "sliced_wasserstein",
    "wasserstein",
]
