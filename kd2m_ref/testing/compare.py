"""The one comparison engine: an implementation's value against the float64 reference, under the
metric's tolerance model.

:func:`compare_example` is used by the package's own tests (``tests/test_layers.py``), by
:func:`kd2m_ref.testing.check` (a user's implementation) and by ``kd2m-ref selftest`` (the package's
torch layer on the user's device), so the comparison exists once.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .examples import Example


class Rejected(Exception):
    """The reference refuses the example (``ValueError``): not a valid input for this metric."""


class ErrorMeasures:
    """``error``, ``tolerance`` and ``rel_error`` of a value against a reference under ``atol + rtol|ref|``
    (mixed into dataclasses that have ``value``, ``reference``, ``rtol`` and ``atol``)."""

    @property
    def error(self) -> float:
        return abs(self.value - self.reference) if math.isfinite(self.value) else math.inf

    @property
    def tolerance(self) -> float:
        return self.atol + self.rtol * abs(self.reference)

    @property
    def rel_error(self) -> float:
        return self.error / abs(self.reference) if self.reference != 0 else (0.0 if self.error == 0 else math.inf)


@dataclass
class Comparison(ErrorMeasures):
    """One example compared: the implementation's ``value`` against ``reference`` on ``example`` (the
    inputs as rounded to the computation's dtype), with the tolerance ``atol + rtol * |reference|``."""

    example: Example
    value: float
    reference: float
    rtol: float
    atol: float
    output: Any = None

    @property
    def ratio(self) -> float:
        """error / tolerance: <= 1 passes."""
        if self.error == 0:
            return 0.0
        return self.error / self.tolerance if self.tolerance > 0 else math.inf

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance

    def message(self, label: str = "value") -> str:
        return (f"{label} {self.value!r} vs reference {self.reference!r}: error {self.error:.3e} "
                f"(relative {self.rel_error:.3e}) > tolerance {self.tolerance:.3e} "
                f"(atol {self.atol:.2e} + rtol {self.rtol:.2e}*|ref|)")


def reference_value(spec, example: Example, dtype: str = "float64", *,
                    reject_unconverged: bool = False) -> tuple[Example, float]:
    """``(rounded, value)``: the example's inputs rounded to ``dtype`` and the float64 reference on them.

    Raises :class:`Rejected` when the reference refuses the inputs (``ValueError``), or, with
    ``reject_unconverged``, when Sinkhorn does not converge on them.
    """
    rounded = example.rounded(dtype)
    try:
        with warnings.catch_warnings():
            if reject_unconverged:
                warnings.simplefilter("error", _sinkhorn_warning())
            return rounded, float(rounded.call(spec.reference))
    except (ValueError, _sinkhorn_warning()) as exc:
        raise Rejected(str(exc)) from exc


def _sinkhorn_warning():
    from ..reference.sinkhorn import SinkhornNotConverged

    return SinkhornNotConverged


def output_to_float(out) -> float:
    """The scalar an implementation returned, as a Python float (a 0-d or one-element array or tensor)."""
    if hasattr(out, "detach"):  # torch.Tensor
        if out.numel() != 1:
            raise TypeError(f"returned a tensor of shape {tuple(out.shape)}; a loss must be a scalar")
        return float(out.detach().cpu().double().reshape(()))
    if isinstance(out, (tuple, list, dict)):
        raise TypeError(f"returned a {type(out).__name__}; pass a function that returns the loss alone")
    arr = np.asarray(out)
    if arr.size != 1 or arr.dtype.kind not in "fiu":
        raise TypeError(f"returned {type(out).__name__} {arr.shape}; a loss must be a real scalar")
    return float(arr.reshape(()))


def compare_example(spec, example: Example, call: Callable[[Example], Any], *, dtype: str = "float64",
                    device: str | None = None, backend: str = "torch", rtol: float | None = None,
                    atol: float | None = None, reject_unconverged: bool = False) -> Comparison:
    """Compare ``call`` on ``example`` with the reference of ``spec``.

    Parameters
    ----------
    spec : MetricSpec
    example : Example
        float64 inputs; they are rounded to ``dtype`` for both sides.
    call : callable
        ``call(inputs)`` returns the implementation's value; ``inputs`` is the example as torch
        tensors of ``dtype`` on ``device`` (``backend="torch"``) or as NumPy arrays of ``dtype``.
    rtol, atol : float, optional
        Replace the metric's tolerance model.

    Raises :class:`Rejected` when the reference refuses the example; exceptions of ``call`` propagate.
    """
    rounded, ref = reference_value(spec, example, dtype, reject_unconverged=reject_unconverged)
    model_rtol, model_atol = spec.tolerance(rounded, dtype)
    if backend == "torch":
        import torch

        inputs = rounded.to_torch(getattr(torch, dtype), device or "cpu")
    else:
        inputs = rounded._map(lambda v: v.astype(dtype) if v.dtype.kind == "f" else v)
    out = call(inputs)
    return Comparison(rounded, output_to_float(out), ref, model_rtol if rtol is None else rtol,
                      model_atol if atol is None else atol, out)
