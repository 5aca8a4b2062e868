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
