"""Public Hypothesis strategies of valid metric inputs, one per registry key (``MetricSpec.strategy``).

Each returns :class:`~kd2m_ref.testing.examples.Example` values and shrinks towards small, readable
inputs. ``small=True`` keeps to what the mpmath oracle handles (n = m <= 6 with uniform weights, or
d = 1 with any weights). Use them in your own suite::

    from hypothesis import given
    from kd2m_ref.testing.strategies import ot_example

    @given(ot_example())
    def test_mine(ex):
        ...
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .examples import Example

# Coordinates are 0 or of magnitude >= 1e-8: squared gaps of tinier numbers underflow float64
# (below ~1e-308), outside the domain where any float64 implementation can be accurate.
COORD = st.floats(-5, 5, allow_nan=False, allow_infinity=False, width=64).filter(lambda v: v == 0 or abs(v) >= 1e-8)


@st.composite
def point_cloud(draw, n: int, d: int, scale: float = 1.0):
    """(n, d) float64 coordinates in [-5, 5] times ``scale``."""
    return draw(hnp.arrays(np.float64, (n, d), elements=COORD)) * scale


@st.composite
def weights(draw, n: int):
    """Positive weights (not normalised; the metrics normalise)."""
    return draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.05, 1.0)))


@st.composite
def paired_clouds(draw, n: int, d: int):
    """(xs, xt): independent clouds, or a special case: identical, a row permutation, or duplicates."""
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    xs = draw(point_cloud(n, d, scale))
    kind = draw(st.sampled_from(["independent", "identical", "permuted", "perturbed"]))
    if kind == "identical":
        return xs, xs.copy()
    if kind == "permuted":
        return xs, xs[draw(st.permutations(range(n)))]
    if kind == "perturbed":
        return xs, xs + 1e-3 * draw(point_cloud(n, d))
    return xs, draw(point_cloud(n, d, scale))


@st.composite
def ot_example(draw, small: bool = False):
    """Inputs of ``wasserstein``: two weighted clouds, n != m allowed, p in {1, 1.5, 2}."""
    d = draw(st.integers(1, 4))
    p = draw(st.sampled_from([2.0, 1.0, 1.5]))
    if small and d > 1:
        n = m = draw(st.integers(1, 6))
        xs, xt = draw(paired_clouds(n, d))
        return Example((xs, xt), {"p": p})
    n = draw(st.integers(1, 10))
    same = draw(st.booleans())
    m = n if same else draw(st.integers(1, 10))
    xs, xt = draw(paired_clouds(n, d)) if same else (draw(point_cloud(n, d)), draw(point_cloud(m, d)))
    kwargs = {"p": p}
    if draw(st.booleans()):
        kwargs["a"], kwargs["b"] = draw(weights(n)), draw(weights(m))
    return Example((xs, xt), kwargs)


@st.composite
def sinkhorn_example(draw, small: bool = False):
    """Inputs of ``sinkhorn``: as :func:`ot_example`, with epsilon between 0.05 and 1 times the mean cost."""
    ex = draw(ot_example(small))
    xs, xt = ex.args
    mean_cost = float(np.mean(np.sum((xs[:, None] - xt[None]) ** 2, -1) ** (ex.kwargs["p"] / 2)))
    ex.kwargs["epsilon"] = draw(st.sampled_from([0.05, 0.2, 1.0])) * max(mean_cost, 1e-2)
    ex.kwargs["max_iter"] = 20_000
    return ex


@st.composite
def sliced_example(draw, small: bool = False):
    """Inputs of ``sliced_wasserstein``: as :func:`ot_example`, with a few seeded projections."""
    ex = draw(ot_example(small=False))
    ex.kwargs["n_projections"] = draw(st.integers(1, 4 if small else 16))
    ex.kwargs["seed"] = draw(st.integers(0, 2**16))
    return ex


@st.composite
def labelled_clouds(draw, small: bool = False):
    """Paired student/teacher clouds of one batch with class labels ``ys`` (``yt`` = ``ys``)."""
    d = draw(st.integers(1, 3))
    n = draw(st.integers(1, 6 if small else 12))
    k = draw(st.integers(1, 3))
    xs, xt = draw(paired_clouds(n, d))
    ys = np.asarray(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int64)
    return xs, xt, ys


@st.composite
def class_conditional_example(draw, small: bool = False):
    """Inputs of ``class_conditional_wasserstein``: labelled paired clouds, a class-weight option."""
    xs, xt, ys = draw(labelled_clouds(small))
    kwargs = {"ys": ys, "p": draw(st.sampled_from([2.0, 1.0])),
              "weights": draw(st.sampled_from(["uniform", "prior", "sum"]))}
    if not small and draw(st.booleans()):
        kwargs["a"], kwargs["b"] = draw(weights(len(xs))), draw(weights(len(xt)))
    return Example((xs, xt), kwargs)


@st.composite
def joint_example(draw, small: bool = False):
    """Inputs of ``joint_wasserstein``: labelled paired clouds, beta, and a label cost."""
    xs, xt, ys = draw(labelled_clouds(small))
    label_cost = draw(st.sampled_from(["onehot", "soft", "cross_entropy"]))
    kwargs = {"ys": ys, "p": draw(st.sampled_from([2.0, 1.0])), "beta": draw(st.sampled_from([0.0, 0.5, 4.0])),
              "label_cost": label_cost}
    if label_cost == "cross_entropy":
        k = int(ys.max()) + 2
        logits = draw(hnp.arrays(np.float64, (len(xt), k), elements=st.floats(-3, 3)))
        prob = np.exp(logits - logits.max(1, keepdims=True))
        kwargs["yt"] = prob / prob.sum(1, keepdims=True)
        kwargs["num_classes"] = k
    return Example((xs, xt), kwargs)
