"""Exact optimal transport between weighted empirical measures (paper eqs. 2-4), float64.

Solvers are deliberately not POT's network simplex, so that the torch layer (which uses POT) is
checked against an independent algorithm: ``scipy.optimize.linear_sum_assignment`` for uniform
weights and equal sizes (exact by Birkhoff's theorem), otherwise the transport LP by column
generation on HiGHS ``linprog`` (sparse, see :func:`ot_plan`).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment, linprog

from .._checks import as_array, check_labels, check_points, check_weights
from .._conventions import (LABEL_COSTS, check_choice, check_class_conditional_wasserstein_params,
                            check_joint_wasserstein_params, check_sliced_wasserstein_params,
                            check_wasserstein_params, class_blocks, num_classes_of, sliced_projections)


def _measure(xs, xt, a, b):
    xs = check_points(as_array(xs, "xs"), "xs")
    xt = check_points(as_array(xt, "xt"), "xt", dim=xs.shape[1])
    a = check_weights(None if a is None else as_array(a, "a", np.float64), "a", xs.shape[0])
    b = check_weights(None if b is None else as_array(b, "b", np.float64), "b", xt.shape[0])
    return xs.astype(np.float64), xt.astype(np.float64), a, b


def _labels(y):
    return None if y is None else as_array(y, "labels")


_BLOCK = 1 << 22  # elements in any (rows, columns) temporary of cost_matrix and the OT pricing
_START = 4  # the starting edge set holds each row's and each column's _START cheapest partners
_PRICE = 2  # each round adds (up to) the _PRICE most negative new edges of every row and column
_KEEP = 4  # restricted LPs above _KEEP (n + m) edges drop their worst idle ones (first rounds only)
_PRUNE_ROUNDS = 20  # ... after which edges are only added, so column generation terminates
_MAX_ROUNDS = 1000
_COST_UNIT = 1e6  # the LP sees costs scaled to max |C| = _COST_UNIT: HiGHS's absolute tolerances (1e-10)
#                  then resolve 1e-16 max|C|, so costs spanning many decades (1e-16 next to 1e-2) are told apart
_TOL = 1e-9  # reduced-cost tolerance in those units (1e-15 max|C|), above the rounding of C/scale - u - v
_FEASIBILITY = 1e-10  # HiGHS's absolute tolerance on each constraint, in units of 1 / max(n, m) of mass
#: Mass an exact plan may leave misplaced when leaf elimination cannot repair HiGHS's plan (rows or
#: columns lighter than this, e.g. saturated softmax classes): the value may then be off by this
#: times max C.
LP_MASS_TOL = 2 * _FEASIBILITY


def _row_blocks(n: int, width: int) -> list[tuple[int, int]]:
    """Ranges of rows ``[s, e)`` covering ``range(n)`` with at most ``_BLOCK`` elements of ``width`` each."""
    step = max(1, _BLOCK // max(1, width))
    return [(s, min(n, s + step)) for s in range(0, n, step)] or [(0, 0)]


def cost_matrix(xs, xt, p: float = 2.0) -> np.ndarray:
    r"""Ground cost :math:`C_{ij} = \|x_i - y_j\|_2^p`, computed from differences (no cancellation).

    Rows are done in blocks, so the difference temporary holds at most ``2**22`` elements whatever
    the sizes (memory O(nm + 2**22)); each entry is the same arithmetic as the unblocked formula.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference.wasserstein import cost_matrix
    >>> cost_matrix(np.array([[0.0], [1.0]]), np.array([[2.0]])).tolist()
    [[4.0], [1.0]]
    >>> cost_matrix(np.zeros((1, 2)), np.ones((1, 2)), p=1).round(4).tolist()
    [[1.4142]]
    """
    out = None
    for s, e in _row_blocks(len(xs), len(xt) * xs.shape[1]):
        diff = xs[s:e, None, :] - xt[None, :, :]
        sq = np.einsum("ijk,ijk->ij", diff, diff)
        block = sq if p == 2 else np.sqrt(sq) ** p
        if out is None:
            out = np.empty((len(xs), len(xt)), dtype=block.dtype)
        out[s:e] = block
    return out


def _northwest_corner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Flat indices ``i * m + j`` of the n + m - 1 cells of the north-west corner rule's staircase
    (rows and columns in the given order): they hold a feasible plan for the marginals ``a``, ``b``."""
    n, m = len(a), len(b)
    a, b = a.tolist(), b.tolist()
    i = j = 0
    left_a, left_b = a[0], b[0]
    cells = [0]
    while i < n - 1 or j < m - 1:
        if j == m - 1 or (i < n - 1 and left_a <= left_b):  # row i is exhausted: go down
            i += 1
            left_b -= left_a
            left_a = a[i]
        else:  # column j is exhausted: go right
            j += 1
            left_a -= left_b
            left_b = b[j]
        cells.append(i * m + j)
    return np.asarray(cells, dtype=np.int64)


def _smallest(values: np.ndarray, counts: np.ndarray, below: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the ``counts[r]`` smallest entries of each row ``r`` of ``values`` (only
    those ``< below`` when given)."""
    rows, width = values.shape
    k = int(min(width, counts.max(initial=0)))
    if rows == 0 or k == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if k < width:
        idx = np.argpartition(values, k - 1, axis=1)[:, :k]
    else:
        idx = np.broadcast_to(np.arange(width), (rows, width))
    val = np.take_along_axis(values, idx, 1)
    order = np.argsort(val, axis=1, kind="stable")
    idx, val = np.take_along_axis(idx, order, 1), np.take_along_axis(val, order, 1)
    ok = np.arange(k)[None, :] < counts[:, None]
    if below is not None:
        ok &= val < below
    return np.nonzero(ok)[0], idx[ok]


def _pick(block, n: int, m: int, row_counts, col_counts, below=None) -> np.ndarray:
    """Flat indices of each row's ``row_counts[i]`` and each column's ``col_counts[j]`` smallest
    entries (``< below``) of the (n, m) matrix whose sub-blocks ``block(rows, cols)`` returns; the
    matrix is visited in row blocks then column blocks of at most ``_BLOCK`` elements."""
    found = []
    for s, e in _row_blocks(n, m):
        r, c = _smallest(block(slice(s, e), slice(None)), row_counts[s:e], below)
        found.append((r + s) * m + c)
    for s, e in _row_blocks(m, n):
        c, r = _smallest(block(slice(None), slice(s, e)).T, col_counts[s:e], below)
        found.append(r * m + c + s)
    return np.unique(np.concatenate(found))


def _polished(rows, cols, mass, slack, a, b):
    """The masses of an optimal plan recomputed from the marginals, to rounding. HiGHS meets the
    constraints only to its feasibility tolerance (between two histograms that differ by 1e-12 it may
    move no mass at all). The edges of positive mass, completed by tight edges (reduced cost
    ``slack`` ~ 0, so any plan on them is optimal too) into a spanning forest, carry the marginals
    in one way only: a row or column with one edge left sends its remaining mass along it (leaf
    elimination). When that fails (a cycle, or a negative mass), the LP's masses are kept."""
    n, m = len(a), len(b)
    parent = list(range(n + m))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    tree = []
    for e in np.concatenate([np.flatnonzero(mass > 0), np.flatnonzero((mass <= 0) & (np.abs(slack) <= _TOL))]):
        ri, ci = find(rows[e]), find(n + cols[e])
        if ri != ci or mass[e] > 0:
            parent[ri] = ci
            tree.append(e)
    left = np.concatenate([a, b]).astype(float)
    incident: dict = {}
    for e in tree:
        incident.setdefault(rows[e], set()).add(e)
        incident.setdefault(n + cols[e], set()).add(e)
    out = np.zeros(len(rows))
    leaves = [node for node, es in incident.items() if len(es) == 1]
    while leaves:
        node = leaves.pop()
        if len(incident[node]) != 1:
            continue
        (e,) = incident[node]
        other = n + cols[e] if node < n else rows[e]
        out[e] = left[node]
        left[other] -= out[e]
        incident[node].clear()
        incident[other].discard(e)
        if len(incident[other]) == 1:
            leaves.append(other)
    if any(incident.values()) or out.min() < -1e-14:
        return rows, cols, mass
    keep = out > 0
    return rows[keep], cols[keep], out[keep]


def _transport_lp(cost: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Exact OT by column generation on HiGHS (see :func:`ot_plan`); returns the support
    ``(rows, cols, mass)`` of an optimal plan."""
    n, m = cost.shape
    if n == 1 or m == 1:  # the only coupling
        rows, cols = np.divmod(np.arange(n * m), m)
        return rows, cols, (a[:, None] * b[None, :]).ravel()
    # HiGHS tolerances are absolute: costs are scaled to max |C| = _COST_UNIT and masses to mean ~1.
    top = float(np.abs(cost).max())
    scale = (top if top > 0 else 1.0) / _COST_UNIT
    unit = float(max(n, m))
    rhs = np.concatenate([a, b[:-1]]) * unit  # row sums = a, column sums = b (last one redundant)
    # Mass-proportional extra partners: a heavy row (weight a_i) is split over ~ a_i m columns.
    extra_rows = np.ceil(a * m).astype(np.int64)
    extra_cols = np.ceil(b * n).astype(np.int64)
    edges = np.union1d(_pick(lambda r, c: cost[r, c], n, m, _START + extra_rows, _START + extra_cols),
                       _northwest_corner(a, b))
    member = np.zeros(n * m, dtype=bool)
    member[edges] = True
    for rnd in range(_MAX_ROUNDS):
        rows, cols = np.divmod(edges, m)
        keep = cols < m - 1
        a_eq = sparse.csc_matrix(
            (np.ones(len(edges) + keep.sum()),
             (np.concatenate([rows, n + cols[keep]]), np.concatenate([np.arange(len(edges)), np.flatnonzero(keep)]))),
            shape=(n + m - 1, len(edges)))
        res = linprog(cost[rows, cols] / scale, A_eq=a_eq, b_eq=rhs, bounds=(0, None), method="highs",
                      options={"primal_feasibility_tolerance": _FEASIBILITY, "dual_feasibility_tolerance": 1e-10})
        if res.status != 0:
            raise RuntimeError(f"HiGHS failed to solve the transport LP ({n} x {m}, {len(edges)} edges, "
                               f"round {rnd}): status {res.status}, {res.message}")
        u = res.eqlin.marginals[:n]
        v = np.append(res.eqlin.marginals[n:], 0.0)  # the dropped column constraint has dual 0

        def reduced(r, c):  # C_ij / scale - u_i - v_j, +inf on edges already in the LP
            out = cost[r, c] / scale - u[r, None] - v[None, c]
            out[member.reshape(n, m)[r, c]] = np.inf
            return out

        new = _pick(reduced, n, m, _PRICE + extra_rows, _PRICE + extra_cols, below=-_TOL)
        if len(new) == 0:  # (u, v) is dual feasible for the full problem: the plan is optimal
            return _polished(rows, cols, np.maximum(res.x, 0.0) / unit, cost[rows, cols] / scale - u[rows] - v[cols],
                             a, b)
        if rnd < _PRUNE_ROUNDS and len(edges) > _KEEP * (n + m):
            # Drop the idle edges (zero mass) of largest reduced cost: the current plan stays feasible.
            slack = cost[rows, cols] / scale - u[rows] - v[cols]
            slack[res.x > 0] = -np.inf
            drop = np.argpartition(slack, _KEEP * (n + m) - 1)[_KEEP * (n + m):]
            drop = drop[res.x[drop] <= 0]
            member[edges[drop]] = False
            edges = np.delete(edges, drop)
        member[new] = True
        edges = np.concatenate([edges, new])
    raise RuntimeError(f"exact OT column generation did not converge in {_MAX_ROUNDS} rounds ({n} x {m})")


def _ot_support(cost: np.ndarray, a=None, b=None):
    """``(rows, cols, mass)`` of an exact optimal plan (see :func:`ot_plan`)."""
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if a is None and b is None and n == m:
        rows, cols = linear_sum_assignment(cost)
        return rows, cols, np.full(n, 1.0 / n)
    a = np.full(n, 1.0 / n) if a is None else np.asarray(a, dtype=np.float64) / np.sum(a)
    b = np.full(m, 1.0 / m) if b is None else np.asarray(b, dtype=np.float64) / np.sum(b)
    return _transport_lp(cost, a, b)


def ot_plan(cost: np.ndarray, a=None, b=None) -> np.ndarray:
    r"""Exact optimal plan for ``cost`` with marginals ``a``, ``b`` (normalised to sum 1; uniform if None).

    .. math:: \gamma^\star \in \arg\min_{\gamma \ge 0,\ \gamma 1 = a,\ \gamma^\top 1 = b} \sum_{ij} \gamma_{ij} C_{ij}

    Returns the dense (n, m) plan. Equal sizes with uniform weights: an optimal permutation from
    ``linear_sum_assignment`` (exact by Birkhoff's theorem). Otherwise the transport LP is solved by
    column generation: HiGHS solves it restricted to a sparse edge set (each row's and column's
    cheapest partners, more for heavy points, plus the north-west corner staircase, so the restricted
    LP is always feasible); the duals :math:`u, v` of that LP price **all** n·m edges in bounded
    blocks, the most negative reduced costs :math:`C_{ij} - u_i - v_j` of each row and column are
    added, and this repeats until none is below :math:`-10^{-15} \max|C|`. That is exact by LP
    duality: the restricted plan is feasible for the full problem, and :math:`(u, v)` is then dual
    feasible for it (to the tolerance), so :math:`\langle C, \gamma\rangle \ge \sum_i a_i u_i +
    \sum_j b_j v_j - 10^{-15}\max|C|` for every coupling :math:`\gamma`, and the right-hand side is the
    restricted optimum. Memory: the cost, one n·m boolean mask and O(n + m) edges per round (idle
    edges are dropped in the first rounds). No POT: it is the independent check of the torch layer.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference.wasserstein import ot_plan
    >>> cost = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> ot_plan(cost).tolist()
    [[0.5, 0.0], [0.0, 0.5]]
    >>> ot_plan(cost, b=[1.0, 3.0]).round(6).tolist()  # column sums 1/4, 3/4
    [[0.25, 0.25], [0.0, 0.5]]
    """
    cost = np.asarray(cost, dtype=np.float64)
    rows, cols, mass = _ot_support(cost, a, b)
    plan = np.zeros(cost.shape)
    plan[rows, cols] = mass
    return plan


def _ot_cost(cost, a, b) -> float:
    """``<plan, cost>`` of an exact optimal plan, summed over its support (no dense plan)."""
    cost = np.asarray(cost, dtype=np.float64)
    rows, cols, mass = _ot_support(cost, a, b)
    return float(np.dot(mass, cost[rows, cols]))


def wasserstein(xs, xt, *, a=None, b=None, p: float = 2.0) -> float:
    r"""Exact optimal transport cost :math:`W_p^p` between weighted empirical measures.

    .. math:: W_p^p(\hat P, \hat Q) = \min_{\gamma \in U(a, b)} \sum_{ij} \gamma_{ij} \|x_i - y_j\|_2^p

    Convention: returns the **p-th power** (for p = 2 the squared W2, as the paper's loss); weights
    are relative and normalised to sum 1 (uniform when omitted); ``n != m`` is allowed.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import wasserstein
    >>> xs, xt = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    >>> wasserstein(xs, xt)  # every point moves by 1
    1.0
    >>> wasserstein(xs, xt, a=[3.0, 1.0], p=1.0)  # half the mass moves by 2
    1.25
    """
    check_wasserstein_params(p)
    xs, xt, a, b = _measure(xs, xt, a, b)
    return _ot_cost(cost_matrix(xs, xt, p), a, b)


def class_conditional_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p: float = 2.0,
                                  weights: str = "uniform") -> float:
    r"""Class-conditional OT (paper eq. 3): :math:`\sum_c w_c\, W_p^p(\hat P_S^c, \hat P_T^c)`.

    ``yt`` defaults to ``ys`` (student and teacher features of the same inputs). ``weights``:
    ``"uniform"`` (default, :math:`1/K` over the K classes present: the paper's "where K is the number
    of classes"), ``"prior"`` (:math:`n_c/n`, the weights Theorem 3.1's label-aware form justifies,
    the theory) or ``"sum"`` (1 per class, the paper's code). Classes absent from the batch are
    skipped; a class on one side only raises ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import class_conditional_wasserstein
    >>> xs = np.array([[0.0], [1.0], [5.0], [6.0]])
    >>> xt = np.array([[0.0], [2.0], [7.0], [8.0]])
    >>> ys = np.array([0, 0, 1, 1])  # classes: W_2^2 = 0.5 and 4
    >>> [class_conditional_wasserstein(xs, xt, ys=ys, weights=w)
    ...  for w in ("uniform", "sum")]
    [2.25, 4.5]
    """
    check_class_conditional_wasserstein_params(p, weights)
    xs, xt, a, b = _measure(xs, xt, a, b)
    total = 0.0
    for blk in class_blocks(ys, yt, len(xs), len(xt), weights=weights, a=a, b=b):
        sub_a = None if a is None else a[blk.index_s]
        sub_b = None if b is None else b[blk.index_t]
        total += blk.weight * wasserstein(xs[blk.index_s], xt[blk.index_t], a=sub_a, b=sub_b, p=p)
    return total


def label_cost_matrix(ys, yt, label_cost: str, num_classes: int | None = None) -> np.ndarray:
    r"""Label cost :math:`L(y_i, y'_j)` between the rows of ``ys`` (source) and ``yt`` (target).

    ``onehot``: :math:`\|e_{y} - e_{y'}\|^2 = 2\cdot 1[y \ne y']` (hard labels);
    ``soft``: :math:`\|p - q\|^2` (probability rows; hard labels are one-hot encoded);
    ``cross_entropy``: :math:`-\sum_c y_c \log y'_c`, with ``ys`` the target distribution and ``yt``
    the predicted probabilities (JDOT); asymmetric, and ``yt`` must be positive where ``ys`` is.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference.wasserstein import label_cost_matrix
    >>> ys, yt = np.array([0, 1]), np.array([0, 0])
    >>> label_cost_matrix(ys, yt, "onehot").tolist()
    [[0.0, 0.0], [2.0, 2.0]]
    >>> probs = np.array([[0.5, 0.5]])  # a 50/50 prediction for class 0
    >>> label_cost_matrix(ys[:1], probs, "cross_entropy").round(4).tolist()
    [[0.6931]]
    """
    check_choice(label_cost, "label_cost", LABEL_COSTS)
    ys, yt = np.asarray(ys), np.asarray(yt)
    if label_cost == "onehot":
        if ys.ndim != 1 or yt.ndim != 1:
            raise ValueError("label_cost='onehot' needs class indices for ys and yt; use 'soft' for probabilities")
        return 2.0 * (ys[:, None] != yt[None, :])
    k = num_classes_of(ys, yt, num_classes)
    ps, pt = _probabilities(ys, k, "ys"), _probabilities(yt, k, "yt")
    if label_cost == "soft":
        diff = ps[:, None, :] - pt[None, :, :]
        return np.einsum("ijk,ijk->ij", diff, diff)
    if np.any((pt == 0)[None, :, :] & (ps > 0)[:, None, :]):
        raise ValueError("label_cost='cross_entropy' needs yt > 0 wherever ys > 0 (log 0); pass probabilities for yt")
    with np.errstate(divide="ignore"):
        log_pt = np.where(pt > 0, np.log(np.where(pt > 0, pt, 1.0)), 0.0)
    return -ps @ log_pt.T


def _probabilities(y, k: int, name: str) -> np.ndarray:
    if y.ndim == 2:
        if y.shape[1] != k:
            raise ValueError(f"{name} has {y.shape[1]} classes but {k} are expected")
        return y.astype(np.float64)
    return np.eye(k)[y]


def joint_wasserstein(xs, xt, *, ys, yt=None, a=None, b=None, p: float = 2.0, beta: float = 1.0,
                      label_cost: str = "onehot", num_classes: int | None = None) -> float:
    r"""Joint feature-label OT (paper eq. 4).

    .. math:: \min_{\gamma \in U(a,b)} \sum_{ij} \gamma_{ij}\big[\|x_i - y_j\|^p + \beta\, L(y_i, y'_j)\big]

    ``label_cost`` in ``onehot`` / ``soft`` / ``cross_entropy`` (see :func:`~kd2m_ref.reference.wasserstein.label_cost_matrix`);
    ``beta = 0`` gives :func:`wasserstein`; as ``beta`` grows it tends to the class-conditional value
    with ``prior`` weights (hard labels, equal class masses). ``yt`` defaults to ``ys``.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import joint_wasserstein
    >>> xs, xt = np.array([[0.0], [1.0]]), np.array([[1.0], [0.0]])
    >>> ys = np.array([0, 1])  # the label cost forbids the swap
    >>> [round(joint_wasserstein(xs, xt, ys=ys, beta=b), 4)
    ...  for b in (0.0, 1.0)]
    [0.0, 1.0]
    """
    check_joint_wasserstein_params(p, beta, label_cost, num_classes)
    xs, xt, a, b = _measure(xs, xt, a, b)
    ys = check_labels(_labels(ys), "ys", len(xs))
    if yt is None and len(xt) != len(xs):
        raise ValueError("yt is required when xs and xt have different numbers of rows")
    yt = ys if yt is None else check_labels(_labels(yt), "yt", len(xt))
    num_classes_of(ys, yt, num_classes)  # a given num_classes must cover the labels, whatever the cost
    cost = cost_matrix(xs, xt, p) + beta * label_cost_matrix(ys, yt, label_cost, num_classes)
    return _ot_cost(cost, a, b)


def _quantile_pairs(u, v, a, b):
    """The monotone (quantile) coupling of two 1-D measures: masses ``dt`` and the indices ``(i, j)``
    of the atoms of ``u`` and ``v`` that each piece pairs."""
    a = np.full(len(u), 1.0 / len(u)) if a is None else np.asarray(a, np.float64) / np.sum(a)
    b = np.full(len(v), 1.0 / len(v)) if b is None else np.asarray(b, np.float64) / np.sum(b)
    iu, iv = np.argsort(u, kind="stable"), np.argsort(v, kind="stable")
    cu, cv = np.cumsum(a[iu]), np.cumsum(b[iv])
    t = np.unique(np.concatenate([[0.0], cu[:-1], cv[:-1], [1.0]]))
    dt, mid = np.diff(t), 0.5 * (t[:-1] + t[1:])
    i = iu[np.minimum(np.searchsorted(cu, mid), len(u) - 1)]
    j = iv[np.minimum(np.searchsorted(cv, mid), len(v) - 1)]
    return dt, i, j


def wasserstein_1d(u, v, *, a=None, b=None, p: float = 2.0) -> float:
    r"""Exact 1-D :math:`W_p^p = \int_0^1 |F^{-1}(t) - G^{-1}(t)|^p\,dt` by merging quantile breakpoints.

    Examples
    --------
    >>> from kd2m_ref.reference import wasserstein_1d
    >>> wasserstein_1d([0.0, 1.0], [1.0, 2.0])
    1.0
    >>> wasserstein_1d([0.0, 1.0], [1.0, 2.0], a=[3.0, 1.0], p=1.0)
    1.25
    """
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    dt, i, j = _quantile_pairs(u, v, a, b)
    return float(np.sum(dt * np.abs(u[i] - v[j]) ** p))


def sliced_wasserstein(xs, xt, *, a=None, b=None, p: float = 2.0, n_projections: int = 50,
                       seed: int = 0) -> float:
    r"""Monte-Carlo sliced OT: :math:`\frac1K\sum_k W_p^p(\theta_k^\top \hat P, \theta_k^\top \hat Q)`.

    Directions :math:`\theta_k` are uniform on the sphere, drawn by ``sliced_projections`` (in ``kd2m_ref/_conventions.py``) from
    ``seed`` (the torch version uses the same directions); each 1-D problem is solved exactly.
    Returns the mean of the p-th powers (sliced :math:`SW_p^p`). The projections only decide the
    monotone coupling; each paired difference is :math:`\theta_k^\top(x_i-y_j)`, so that nearby
    points keep their relative precision (:math:`\theta^\top x-\theta^\top y` cancels).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import sliced_wasserstein
    >>> xs = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> xt = xs + [0.0, 1.0]  # a shift by 1: W_2^2 = 1
    >>> round(sliced_wasserstein(xs, xt), 4)  # 50 seeded directions
    0.5401
    >>> round(sliced_wasserstein(xs, xt, n_projections=5000), 2)  # -> 1 / d
    0.5
    """
    check_sliced_wasserstein_params(p, n_projections, seed)
    xs, xt, a, b = _measure(xs, xt, a, b)
    theta = sliced_projections(xs.shape[1], int(n_projections), seed)
    ps, pt = xs @ theta.T, xt @ theta.T
    total = 0.0
    for k, th in enumerate(theta):
        dt, i, j = _quantile_pairs(ps[:, k], pt[:, k], a, b)
        total += float(np.sum(dt * np.abs((xs[i] - xt[j]) @ th) ** p))
    return total / len(theta)
