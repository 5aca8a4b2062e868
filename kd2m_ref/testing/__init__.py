"""For users: Hypothesis strategies of valid inputs, tolerance models, and (later) the checker."""

from .examples import Example

__all__ = ["Example"]
