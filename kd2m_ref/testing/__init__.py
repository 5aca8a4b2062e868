"""For users: Hypothesis strategies of valid inputs, tolerance models, and the checker
(:func:`check`: your implementation against the reference, with a diagnosis of its convention)."""

from .check import CheckError, CheckReport, MismatchError, check
from .examples import Example

__all__ = ["CheckError", "CheckReport", "Example", "MismatchError", "check"]
