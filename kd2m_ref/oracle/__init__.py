"""mpmath oracles (50 digits, small n and d): the closed forms evaluated so that rounding cannot matter."""

from .ot import class_conditional_wasserstein, joint_wasserstein, sliced_wasserstein, wasserstein, wasserstein_1d

__all__ = ["class_conditional_wasserstein", "joint_wasserstein", "sliced_wasserstein", "wasserstein",
           "wasserstein_1d"]
