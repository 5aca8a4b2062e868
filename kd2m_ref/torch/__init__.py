"""Differentiable torch versions of the KD2M distances: same names, conventions and defaults as
:mod:`kd2m_ref.reference`; 0-d results in the input's dtype and on its device."""

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
