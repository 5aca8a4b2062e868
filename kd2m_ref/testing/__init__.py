"""For users: Hypothesis strategies of valid inputs, tolerance models and precision floors, and the
checker (:func:`check`: your implementation against the reference, with a verdict and a diagnosis of
its convention)."""

from .check import CheckError, CheckInternalError, CheckReport, MismatchError, PrecisionLossWarning, check
from .examples import Example

__all__ = ["CheckError", "CheckInternalError", "CheckReport", "Example", "MismatchError", "PrecisionLossWarning",
           "check"]
