"""Differentiable torch versions of the KD2M distances: same names, conventions and defaults as
:mod:`kd2m_ref.reference`; 0-d results in the input's dtype and on its device."""

from .._conventions import SinkhornNotConverged  # noqa: F401  (documented with kd2m_ref.reference)
from .sinkhorn import sinkhorn, sinkhorn_divergence
from .wasserstein import class_conditional_wasserstein, joint_wasserstein, sliced_wasserstein, wasserstein

__all__ = [
    "class_conditional_wasserstein",
    "joint_wasserstein",
    "sinkhorn",
    "sinkhorn_divergence",
    "sliced_wasserstein",
    "wasserstein",
]

from .kernel import mmd, set_mmd  # noqa: E402
from .logit import hinton_kd  # noqa: E402
from .loss import KD2MLoss, KD2MTerms, calibrate_weight  # noqa: E402

__all__ += ["KD2MLoss", "KD2MTerms", "calibrate_weight", "hinton_kd", "mmd", "set_mmd"]

from .gaussian import (  # noqa: E402
    class_conditional_gaussian_kl,
    class_conditional_gaussian_wasserstein,
    fit_gaussian,
    gaussian_kl,
    gaussian_kl_from_moments,
    gaussian_wasserstein,
    gaussian_wasserstein_from_moments,
    grid_gaussian_wasserstein,
)

__all__ += ["class_conditional_gaussian_kl", "class_conditional_gaussian_wasserstein", "fit_gaussian", "gaussian_kl",
            "gaussian_kl_from_moments", "gaussian_wasserstein", "gaussian_wasserstein_from_moments",
            "grid_gaussian_wasserstein"]
from .histogram import histogram_ot  # noqa: E402
__all__ += ["histogram_ot"]
