"""Optimal transport between class histograms with a class cost, in torch; see
:mod:`kd2m_ref.reference.histogram` (same conventions and defaults).

Exact: one LP per row (:func:`kd2m_ref.torch.wasserstein.exact_ot`, gradients through the dual
potentials). Converged entropic: one ε-scaled solve per row (:mod:`kd2m_ref.torch.sinkhorn`: envelope
gradients for "ot_eps" and "dual", implicit ones for "plan_cost"). Fixed iterations: all rows at once,
differentiated through the iterations, as training code is.
"""

from __future__ import annotations

import torch

from .._checks import check_logits
from .._conventions import check_histogram_ot_params, warn_unconverged
from ._common import as_tensor, check_tensor, float32_for_low_precision
from .sinkhorn import _entropic_cost, fixed_iterations
from .wasserstein import exact_ot


def _probabilities(u: torch.Tensor, name: str, inputs: str, temperature: float) -> torch.Tensor:
    if inputs == "logits":
        return torch.softmax(u / temperature, dim=1)
    if bool((u < 0).any()):
        raise ValueError(f"{name}: probability rows must be non-negative (inputs='probabilities'); its smallest "
                         f"entry is {float(u.min())!r}")
    total = u.sum(1, keepdim=True)
    if bool((total <= 0).any()):
        raise ValueError(f"{name}: row {int(total.argmin())} has no mass (inputs='probabilities')")
    return u / total


def _costs(cost, batch: int, k: int, like: torch.Tensor) -> torch.Tensor:
    """(B, K, K) costs in ``like``'s dtype and device; see :func:`kd2m_ref.reference.histogram.check_cost`."""
    if cost is None:
        c = 1 - torch.eye(k, dtype=like.dtype, device=like.device)
    else:
        c = as_tensor(cost, "cost", like).to(like.dtype)
        if tuple(c.shape) not in ((k, k), (batch, k, k)):
            raise ValueError(f"cost must have shape ({k}, {k}) or ({batch}, {k}, {k}) for {batch} rows of {k} "
                             f"classes; got {tuple(c.shape)}")
        if not bool(torch.isfinite(c).all()):
            raise ValueError("cost contains NaN or inf")
        if bool((c < 0).any()):
            raise ValueError(f"cost must be non-negative; its smallest entry is {float(c.min())!r}")
    return c.expand(batch, k, k)


@float32_for_low_precision
def histogram_ot(logits_student, logits_teacher, *, cost=None, inputs: str = "logits", temperature: float = 1.0,
                 epsilon: float = 0.0, value: str = "ot_eps", n_iter: int | None = None, max_iter: int = 1000,
                 tol: float = 1e-9) -> torch.Tensor:
    r"""Batch mean of OT between the class histograms of the rows of ``logits_student`` (student, rows of the
    plan) and ``logits_teacher`` (teacher), with a class cost; see
    :func:`kd2m_ref.reference.histogram_ot`.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import histogram_ot
    >>> p_s = torch.tensor([[1.0, 1.0]])  # histogram (1/2, 1/2)
    >>> p_t = torch.tensor([[1.0, 3.0]])  # histogram (1/4, 3/4)
    >>> round(histogram_ot(p_s, p_t, inputs="probabilities").item(), 4)
    0.25
    >>> round(histogram_ot(p_s, p_t, inputs="probabilities", epsilon=0.5,
    ...                    n_iter=10, value="plan_cost").item(), 4)
    0.2668
    """
    check_histogram_ot_params(cost, inputs, temperature, epsilon, value, n_iter, max_iter, tol)
    check_logits(check_tensor(logits_student, "logits_student"), "logits_student")
    check_logits(check_tensor(logits_teacher, "logits_teacher"), "logits_teacher", like=logits_student)
    if logits_teacher.dtype != logits_student.dtype or logits_teacher.device != logits_student.device:
        raise ValueError(f"logits_student and logits_teacher must share dtype and device; got "
                         f"{logits_student.dtype}/{logits_student.device} and "
                         f"{logits_teacher.dtype}/{logits_teacher.device}")
    ps = _probabilities(logits_student, "logits_student", inputs, temperature)
    pt = _probabilities(logits_teacher, "logits_teacher", inputs, temperature)
    batch, k = ps.shape
    costs = _costs(cost, batch, k, logits_student)
    if epsilon > 0 and n_iter is not None:
        return fixed_iterations(costs, ps, pt, float(epsilon), int(n_iter), value).mean()
    values, unconverged = [], None
    for c, a, b in zip(costs, ps, pt):
        if not epsilon > 0:
            values.append(exact_ot(c, a, b))
            continue
        out, failed = _entropic_cost(c, a, b, float(epsilon), int(max_iter), tol, value=value)
        values.append(out)
        unconverged = unconverged or failed
    if unconverged:
        warn_unconverged(int(max_iter), *unconverged, value=value)
    return torch.stack(values).mean()
