"""NumPy/SciPy float64 reference implementations of every KD2M distance (no torch import here)."""

from .sinkhorn import SinkhornNotConverged, sinkhorn, sinkhorn_divergence
from .wasserstein import (
    class_conditional_wasserstein,
    joint_wasserstein,
    sliced_wasserstein,
    wasserstein,
    wasserstein_1d,
)

__all__ = [
    "SinkhornNotConverged",
    "class_conditional_wasserstein",
    "joint_wasserstein",
    "sinkhorn",
    "sinkhorn_divergence",
    "sliced_wasserstein",
    "wasserstein",
    "wasserstein_1d",
]

from .kernel import mmd, set_mmd  # noqa: E402
from .logit import hinton_kd  # noqa: E402

__all__ += ["hinton_kd", "mmd", "set_mmd"]

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
