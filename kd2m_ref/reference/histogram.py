r"""Optimal transport between class histograms with a ground cost between classes, float64.

Wasserstein logit distillation compares the student's and the teacher's predicted class distributions
:math:`p_{S,b}, p_{T,b}` (softmax of the logits at a temperature) through OT with a cost :math:`C_{kl}`
between classes, so that mass moved to a similar class costs little. The value is the batch mean of
one OT problem per row, exact (``epsilon=0``) or entropic, where the entropic value is one of
:math:`\mathrm{OT}_\varepsilon`, the plan's cost :math:`\langle P, C\rangle` or the dual objective, either
converged (the ε-scaled solver of :mod:`kd2m_ref.reference.sinkhorn`) or after a fixed number of
iterations, which is what training code computes (:func:`kd2m_ref.reference.sinkhorn.fixed_iterations`).
"""

from __future__ import annotations

import numpy as np

from .._checks import as_array, check_logits
from .._conventions import check_histogram_ot_params, warn_unconverged
from .logit import _tempered_log_softmax
from .sinkhorn import fixed_iterations, solve_entropic
from .wasserstein import _ot_cost


def zero_one_cost(k: int) -> np.ndarray:
    """The cost 1[k != l] between k classes: exact OT is then the total variation 1/2 ||p - q||_1."""
    return 1.0 - np.eye(k)


def check_cost(cost, batch: int, k: int, name: str = "cost") -> np.ndarray:
    """A (K, K) cost shared by the rows, or (B, K, K) one per row: finite, non-negative; as (B, K, K)."""
    c = as_array(cost, name, np.float64)
    if c.shape not in ((k, k), (batch, k, k)):
        raise ValueError(f"{name} must have shape ({k}, {k}) or ({batch}, {k}, {k}) for {batch} rows of {k} classes; "
                         f"got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError(f"{name} contains NaN or inf")
    if np.any(c < 0):
        raise ValueError(f"{name} must be non-negative; its smallest entry is {c.min()!r}")
    return np.broadcast_to(c, (batch, k, k))


def histograms(logits_student, logits_teacher, *, inputs: str = "logits", temperature: float = 1.0):
    """``(log p_S, log p_T)``, each (B, K): log-softmax of the logits at ``temperature``, or the logs of the
    probability rows given (non-negative, each row normalised to sum 1)."""
    logits_student = as_array(logits_student, "logits_student")
    logits_teacher = as_array(logits_teacher, "logits_teacher")
    check_logits(logits_student, "logits_student")
    check_logits(logits_teacher, "logits_teacher", like=logits_student)
    if inputs == "logits":
        return _tempered_log_softmax(logits_student, temperature), _tempered_log_softmax(logits_teacher, temperature)
    out = []
    for name, p in (("logits_student", logits_student), ("logits_teacher", logits_teacher)):
        if np.any(p < 0):
            raise ValueError(f"{name}: probability rows must be non-negative (inputs='probabilities'); its "
                             f"smallest entry is {p.min()!r}")
        total = p.sum(1, keepdims=True)
        if np.any(total <= 0):
            raise ValueError(f"{name}: row {int(np.argmin(total))} has no mass (inputs='probabilities')")
        with np.errstate(divide="ignore"):
            out.append(np.log(p / total))
    return tuple(out)


def histogram_ot(logits_student, logits_teacher, *, cost=None, inputs: str = "logits", temperature: float = 1.0,
                 epsilon: float = 0.0, value: str = "ot_eps", n_iter: int | None = None, max_iter: int = 1000,
                 tol: float = 1e-9) -> float:
    r"""Batch mean of OT between the class histograms :math:`a_b = p_{S,b}`, :math:`b_b = p_{T,b}` of each row.

    .. math:: \frac1B\sum_{b=1}^B \min_{P \in U(a_b, b_b)} \langle P, C\rangle
              + \varepsilon\,\mathrm{KL}(P\,\|\,a_b\otimes b_b)

    ``logits_student``, ``logits_teacher``: (B, K) logits (``inputs="logits"``:
    :math:`p = \mathrm{softmax}(u/T)`, no :math:`T^2` factor) or probability rows
    (``inputs="probabilities"``). Rows of the plan are the student's classes. ``cost``: (K, K), or
    (B, K, K) per row; None is the 0-1 cost :math:`1[k\ne l]`, for which exact OT is the total variation.

    ``epsilon=0``: exact OT (a linear program). ``epsilon > 0`` (absolute, in cost units):

    - ``n_iter=None``: converged by the ε-scaled solver of :func:`kd2m_ref.reference.sinkhorn`
      (``max_iter``, ``tol``; :class:`SinkhornNotConverged` warns otherwise);
    - ``n_iter=L``: exactly L Sinkhorn iterations from :math:`u = \mathbb 1` (each
      :math:`v \leftarrow b/K^\top u` then :math:`u \leftarrow a/Kv`, :math:`K = e^{-C/\varepsilon}`),
      what training code computes; not converged, so not :math:`\mathrm{OT}_\varepsilon`.

    ``value``: ``"ot_eps"`` :math:`\langle P,C\rangle + \varepsilon\mathrm{KL}(P\|a\otimes b)`,
    ``"plan_cost"`` :math:`\langle P, C\rangle` (Wasserstein logit distillation's value), ``"dual"``
    :math:`\langle f,a\rangle + \langle g,b\rangle - \varepsilon(\sum P - 1)`, of the plan :math:`P` reached.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import histogram_ot
    >>> p_s = np.array([[1.0, 1.0]])  # histogram (1/2, 1/2)
    >>> p_t = np.array([[1.0, 3.0]])  # histogram (1/4, 3/4)
    >>> round(histogram_ot(p_s, p_t, inputs="probabilities"), 4)  # TV
    0.25
    >>> round(histogram_ot(p_s, p_t, inputs="probabilities", epsilon=0.5,
    ...                    n_iter=10, value="plan_cost"), 4)
    0.2668
    """
    check_histogram_ot_params(cost, inputs, temperature, epsilon, value, n_iter, max_iter, tol)
    log_s, log_t = histograms(logits_student, logits_teacher, inputs=inputs, temperature=temperature)
    batch, k = log_s.shape
    costs = check_cost(zero_one_cost(k) if cost is None else cost, batch, k)
    values, unconverged = [], None
    for c, la, lb in zip(costs, log_s, log_t):
        if not epsilon > 0:
            values.append(_ot_cost(c, np.exp(la), np.exp(lb)))
        elif n_iter is not None:
            values.append(fixed_iterations(c, la, lb, float(epsilon), int(n_iter))[value])
        else:
            sol = solve_entropic(c, la, lb, float(epsilon), int(max_iter), tol, gap_rule=value != "plan_cost")
            values.append(sol.select(value))
            if not sol.converged and unconverged is None:
                unconverged = (sol.marginal_error, sol.primal - sol.dual)
    if unconverged:
        warn_unconverged(int(max_iter), unconverged[0], tol, unconverged[1], stacklevel=2, value=value)
    return float(np.mean(values))
