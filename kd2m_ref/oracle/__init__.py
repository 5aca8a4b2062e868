"""mpmath oracles (50 digits, small n and d): the closed forms evaluated so that rounding cannot matter."""

from .ot import class_conditional_wasserstein, joint_wasserstein, sliced_wasserstein, wasserstein, wasserstein_1d

__all__ = ["class_conditional_wasserstein", "joint_wasserstein", "sliced_wasserstein", "wasserstein",
           "wasserstein_1d"]

from .kernel import mmd, set_mmd  # noqa: E402
from .logit import hinton_kd  # noqa: E402

__all__ += ["hinton_kd", "mmd", "set_mmd"]

from .gaussian import (  # noqa: E402
    class_conditional_gaussian_kl,
    class_conditional_gaussian_wasserstein,
    gaussian_kl,
    gaussian_kl_from_moments,
    gaussian_wasserstein,
    gaussian_wasserstein_from_moments,
    grid_gaussian_wasserstein,
)

__all__ += ["class_conditional_gaussian_kl", "class_conditional_gaussian_wasserstein", "gaussian_kl",
            "gaussian_kl_from_moments", "gaussian_wasserstein", "gaussian_wasserstein_from_moments",
            "grid_gaussian_wasserstein"]
from .histogram import histogram_ot  # noqa: E402
__all__ += ["histogram_ot"]
