"""kd2m-ref: reference implementations of the distances used in knowledge distillation by
distribution matching (KD2M), their torch versions, an mpmath oracle, and a cross-check kit.

``import kd2m_ref`` is light (no torch): :data:`METRICS` maps each metric key to its
:class:`~kd2m_ref.registry.MetricSpec`; ``kd2m_ref.reference`` holds the NumPy versions and
``kd2m_ref.torch`` the differentiable ones.
"""

from .registry import METRICS, MetricSpec

__version__ = "0.1.0"
__all__ = ["METRICS", "MetricSpec", "__version__"]
