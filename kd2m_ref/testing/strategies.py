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
    """(n, d) float64 coordinates in [-5, 5] times ``scale``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import point_cloud
    >>> @settings(max_examples=5, database=None)
    ... @given(point_cloud(3, 2, scale=2.0))
    ... def test_it(x):
    ...     assert x.shape == (3, 2) and abs(x).max() <= 10
    >>> test_it()
    """
    return draw(hnp.arrays(np.float64, (n, d), elements=COORD)) * scale


@st.composite
def weights(draw, n: int):
    """Positive weights (not normalised; the metrics normalise).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import weights
    >>> @settings(max_examples=5, database=None)
    ... @given(weights(4))
    ... def test_it(w):
    ...     assert w.shape == (4,) and (w > 0).all()
    >>> test_it()
    """
    return draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.05, 1.0)))


@st.composite
def paired_clouds(draw, n: int, d: int):
    """(xs, xt): independent clouds, or a special case: identical, a row permutation, or duplicates.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import paired_clouds
    >>> @settings(max_examples=5, database=None)
    ... @given(paired_clouds(3, 2))
    ... def test_it(clouds):
    ...     assert clouds[0].shape == clouds[1].shape == (3, 2)
    >>> test_it()
    """
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
    """Inputs of ``wasserstein``: two weighted clouds, n != m allowed, p in {1, 1.5, 2}.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.reference import wasserstein
    >>> from kd2m_ref.testing.strategies import ot_example
    >>> @settings(max_examples=5, database=None)
    ... @given(ot_example())
    ... def test_it(ex):
    ...     assert ex.kwargs["p"] in (1.0, 1.5, 2.0)
    ...     assert ex.call(wasserstein) >= 0
    >>> test_it()
    """
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
def sinkhorn_example(draw, small: bool = False, values=("ot_eps", "plan_cost", "dual")):
    """Inputs of ``sinkhorn``: as :func:`ot_example`, with epsilon 0.1, 0.3 or 1 times the largest cost.

    Sinkhorn contracts by about tanh^2(max C / 4 epsilon) per iteration: smaller epsilon relative to
    the cost range needs 1e5+ iterations, a cost of the algorithm, not of an implementation. The ratio
    is kept in ``meta``; :func:`within_range` restores it when p or epsilon is fixed afterwards.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import sinkhorn_example
    >>> @settings(max_examples=5, database=None)
    ... @given(sinkhorn_example())
    ... def test_it(ex):
    ...     assert ex.meta["epsilon_over_max_cost"] in (0.1, 0.3, 1.0)
    ...     assert ex.kwargs["epsilon"] > 0
    >>> test_it()
    """
    ex = draw(ot_example(small))
    ratio = draw(st.sampled_from([0.1, 0.3, 1.0]))
    ex.kwargs["epsilon"] = ratio * max(_max_cost(ex), 1e-2)
    ex.kwargs["max_iter"] = 20_000
    if values:
        ex.kwargs["value"] = draw(st.sampled_from(values))
    return Example(ex.args, ex.kwargs, {"epsilon_over_max_cost": ratio})


def sinkhorn_divergence_example(small: bool = False):
    """Inputs of ``sinkhorn_divergence``: :func:`sinkhorn_example` without ``value``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import sinkhorn_divergence_example
    >>> @settings(max_examples=5, database=None)
    ... @given(sinkhorn_divergence_example())
    ... def test_it(ex):
    ...     assert "value" not in ex.kwargs
    >>> test_it()
    """
    return sinkhorn_example(small, values=())


def _max_cost(ex) -> float:
    from ..reference.wasserstein import cost_matrix

    return float(cost_matrix(*ex.args, float(ex.kwargs.get("p", 2.0))).max())


def within_range(ex: Example, fixed=()) -> Example:
    """``ex`` back in its strategy's documented range after parameters were changed (a checker fixes
    the parameters a user's function does not take): for Sinkhorn, epsilon = ratio x max C under the
    p actually used, or, when epsilon itself is in ``fixed``, the clouds scaled so that it is.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.strategies import within_range
    >>> xs, xt = np.zeros((1, 1)), np.full((1, 1), 2.0)  # max C = 2 for p = 1
    >>> ex = Example((xs, xt), {"p": 1.0, "epsilon": 0.4},
    ...              {"epsilon_over_max_cost": 0.1})
    >>> within_range(ex).kwargs["epsilon"]  # 0.1 max C
    0.2
    >>> within_range(ex, fixed={"epsilon"}).args[1].tolist()  # clouds scaled
    [[4.0]]
    """
    ratio = ex.meta.get("epsilon_over_max_cost")
    if ratio is None or ex.kwargs.get("relative_epsilon"):
        return ex
    cmax = _max_cost(ex)
    if "epsilon" not in fixed or cmax == 0:
        return Example(ex.args, {**ex.kwargs, "epsilon": ratio * max(cmax, 1e-2)}, ex.meta)
    p = float(ex.kwargs.get("p", 2.0))
    factor = (float(ex.kwargs.get("epsilon", 0.1)) / (ratio * cmax)) ** (1 / p)
    return Example(tuple(v * factor for v in ex.args), ex.kwargs, ex.meta)


@st.composite
def sliced_example(draw, small: bool = False):
    """Inputs of ``sliced_wasserstein``: as :func:`ot_example`, with a few seeded projections.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import sliced_example
    >>> @settings(max_examples=5, database=None)
    ... @given(sliced_example(small=True))
    ... def test_it(ex):
    ...     assert 1 <= ex.kwargs["n_projections"] <= 4
    >>> test_it()
    """
    ex = draw(ot_example(small=False))
    ex.kwargs["n_projections"] = draw(st.integers(1, 4 if small else 16))
    ex.kwargs["seed"] = draw(st.integers(0, 2**16))
    return ex


@st.composite
def labelled_clouds(draw, small: bool = False):
    """Paired student/teacher clouds of one batch with class labels ``ys`` (``yt`` = ``ys``).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import labelled_clouds
    >>> @settings(max_examples=5, database=None)
    ... @given(labelled_clouds())
    ... def test_it(clouds):
    ...     assert len(clouds[0]) == len(clouds[1]) == len(clouds[2])
    >>> test_it()
    """
    d = draw(st.integers(1, 3))
    n = draw(st.integers(1, 6 if small else 12))
    k = draw(st.integers(1, 3))
    xs, xt = draw(paired_clouds(n, d))
    ys = np.asarray(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int64)
    return xs, xt, ys


@st.composite
def class_conditional_example(draw, small: bool = False):
    """Inputs of ``class_conditional_wasserstein``: labelled paired clouds, a class-weight option.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import class_conditional_example
    >>> @settings(max_examples=5, database=None)
    ... @given(class_conditional_example())
    ... def test_it(ex):
    ...     assert ex.kwargs["weights"] in ("uniform", "prior", "sum")
    >>> test_it()
    """
    xs, xt, ys = draw(labelled_clouds(small))
    kwargs = {"ys": ys, "p": draw(st.sampled_from([2.0, 1.0])),
              "weights": draw(st.sampled_from(["uniform", "prior", "sum"]))}
    if not small and draw(st.booleans()):
        kwargs["a"], kwargs["b"] = draw(weights(len(xs))), draw(weights(len(xt)))
    return Example((xs, xt), kwargs)


@st.composite
def joint_example(draw, small: bool = False):
    """Inputs of ``joint_wasserstein``: labelled paired clouds, beta, and a label cost.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.reference import joint_wasserstein
    >>> from kd2m_ref.testing.strategies import joint_example
    >>> @settings(max_examples=5, database=None)
    ... @given(joint_example())
    ... def test_it(ex):
    ...     assert ex.call(joint_wasserstein) >= 0
    >>> test_it()
    """
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


# --- kernel (MMD) and logit (Hinton KD) baselines -------------------------------------------------


def _same_measure(xs, xt) -> bool:
    """Uniform empirical measures of the rows are equal (same atoms with the same masses)."""
    from fractions import Fraction

    def atoms(x):
        rows, counts = np.unique(x, axis=0, return_counts=True)
        return {tuple(r): Fraction(int(c), len(x)) for r, c in zip(rows, counts)}

    return atoms(xs) == atoms(xt)


@st.composite
def kernel_params(draw, kernel: str):
    """The parameters of ``kernel`` an MMD call draws: a bandwidth (number or rule) and whether it is
    detached for the shift-invariant kernels, degree and offset for the polynomial one.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import kernel_params
    >>> @settings(max_examples=5, database=None)
    ... @given(kernel_params("polynomial"))
    ... def test_it(params):
    ...     assert set(params) == {"degree", "offset"}
    >>> test_it()
    """
    if kernel in ("gaussian", "laplacian"):
        return {"bandwidth": draw(st.sampled_from(["mean", "median", 0.5, 2.0])),
                "detach_bandwidth": draw(st.booleans())}
    if kernel == "polynomial":
        return {"degree": draw(st.integers(1, 3)), "offset": draw(st.sampled_from([0.0, 1.0]))}
    return {}


@st.composite
def mmd_example(draw, small: bool = False):
    """Inputs of ``mmd``: paired or independent clouds, a kernel, a bandwidth (number or rule), an estimator.

    ``small=True``: n, m <= 5 and only examples that float64 resolves to 1e-12 relative: MMD^2 is a
    difference of kernel sums, so its rounding error is u times the kernel mass (see
    :func:`kd2m_ref.reference.kernel.mmd_condition`); kept are equal measures (V = 0 exactly) and
    examples with ``mass <= 1e3·|MMD^2|``. Nearly equal clouds, outside that, are checked against the
    oracle with the absolute bound in ``tests/reference/test_mmd_kd_properties.py``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.reference import mmd
    >>> from kd2m_ref.testing.strategies import mmd_example
    >>> @settings(max_examples=5, database=None)
    ... @given(mmd_example())
    ... def test_it(ex):
    ...     assert ex.kwargs["estimator"] == "unbiased" or ex.call(mmd) >= 0
    >>> test_it()
    """
    from hypothesis import assume

    d = draw(st.integers(1, 4))
    kernel = draw(st.sampled_from(["gaussian", "laplacian", "linear", "polynomial"]))
    estimator = draw(st.sampled_from(["biased", "unbiased"]))
    low, high = (2 if estimator == "unbiased" else 1), (5 if small else 10)
    n = draw(st.integers(low, high))
    if draw(st.booleans()):
        xs, xt = draw(paired_clouds(n, d))
    else:
        xs, xt = draw(point_cloud(n, d)), draw(point_cloud(draw(st.integers(low, high)), d))
    kwargs = {"kernel": kernel, "estimator": estimator}
    kwargs.update(draw(kernel_params(kernel)))
    if small:
        from ..reference.kernel import mmd_condition

        exact_zero = estimator == "biased" and _same_measure(xs, xt)
        value, mass = mmd_condition(xs, xt, **kwargs)
        assume(exact_zero or mass <= 1e3 * abs(value))
    return Example((xs, xt), kwargs)


@st.composite
def sample_sets(draw, b: int, n: int, m: int, sample_shape: tuple):
    """(xs, xt) of shapes ``(b, n, *sample_shape)`` and ``(b, m, *sample_shape)``; when n = m each set pair is
    independent, identical, row-permuted, perturbed, or its rows scaled by powers of two (equal after
    normalisation).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import sample_sets
    >>> @settings(max_examples=5, database=None)
    ... @given(sample_sets(2, 3, 4, (2, 2)))
    ... def test_it(sets):
    ...     assert sets[0].shape == (2, 3, 2, 2)
    ...     assert sets[1].shape == (2, 4, 2, 2)
    >>> test_it()
    """
    d = int(np.prod(sample_shape))
    pairs = []
    for _ in range(b):
        if n != m:
            pairs.append((draw(point_cloud(n, d)), draw(point_cloud(m, d))))
        elif draw(st.booleans()):
            xs = draw(point_cloud(n, d))
            pairs.append((xs, xs * 2.0 ** draw(hnp.arrays(np.int64, (n, 1), elements=st.integers(-2, 2)))))
        else:
            pairs.append(draw(paired_clouds(n, d)))
    return tuple(np.stack([p[i] for p in pairs]).reshape(b, -1, *sample_shape) for i in (0, 1))


@st.composite
def set_mmd_example(draw, small: bool = False):
    """Inputs of ``set_mmd``: B = 1..3 sets as (B, n, d) points or (B, C, H, W) feature maps, n != m allowed,
    every parameter drawn (``normalize`` included; NST's polynomial kernel in half the examples).

    ``small=True``: n, m <= 4, d <= 4, and, as in :func:`mmd_example`, only examples that float64
    resolves to 1e-12 relative: every set's measures equal after normalisation (V = 0 exactly), or the mean
    kernel mass, normalisation included (:func:`kd2m_ref.testing.tolerance.set_mmd_error_parts`), at most
    1e3 x ``|value|``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import set_mmd_example
    >>> @settings(max_examples=5, database=None)
    ... @given(set_mmd_example())
    ... def test_it(ex):
    ...     assert ex.args[0].ndim in (3, 4) and len(ex.args[0]) <= 3
    >>> test_it()
    """
    from hypothesis import assume

    kernel = "polynomial" if draw(st.booleans()) else draw(st.sampled_from(["gaussian", "laplacian", "linear"]))
    estimator = draw(st.sampled_from(["biased", "unbiased"]))
    low, high = (2 if estimator == "unbiased" else 1), (4 if small else 6)
    b, n = draw(st.integers(1, 3)), draw(st.integers(low, high))
    m = n if draw(st.booleans()) else draw(st.integers(low, high))
    if draw(st.booleans()):
        sample_shape = (draw(st.integers(1, 4)),)
    else:
        sample_shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2 if small else 4)))
    xs, xt = draw(sample_sets(b, n, m, sample_shape))
    kwargs = {"kernel": kernel, "estimator": estimator, "normalize": draw(st.sampled_from(["l2", "none"]))}
    kwargs.update(draw(kernel_params(kernel)))
    if small:
        from ..reference.kernel import mmd_condition, set_inputs, set_mmd
        from .tolerance import set_mmd_error_parts

        ex = Example((xs, xt), kwargs)
        sets = zip(*set_inputs(xs, xt, **kwargs))
        exact_zero = estimator == "biased" and all(_same_measure(u, v) for u, v in sets)
        value = ex.call(set_mmd)
        mass = sum(mmd_condition(part.args[0], part.args[1], **part.kwargs)[1] + extra
                   for part, extra in set_mmd_error_parts(ex)) / b
        assume(exact_zero or mass <= 1e3 * abs(value))
    return Example((xs, xt), kwargs)


@st.composite
def logit_pair(draw, b: int, c: int):
    """(student, teacher) logits of shape (b, c): independent, identical, shifted by a per-row constant
    (same softmax), perturbed by 1e-3, or large (saturated softmax).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import logit_pair
    >>> @settings(max_examples=5, database=None)
    ... @given(logit_pair(2, 5))
    ... def test_it(logits):
    ...     assert logits[0].shape == logits[1].shape == (2, 5)
    >>> test_it()
    """
    scale = draw(st.sampled_from([0.3, 1.0, 4.0]))
    teacher = draw(point_cloud(b, c, scale))
    kind = draw(st.sampled_from(["independent", "identical", "shifted", "perturbed"]))
    if kind == "identical":
        return teacher.copy(), teacher
    if kind == "shifted":
        return teacher + draw(point_cloud(b, 1, scale)), teacher
    if kind == "perturbed":
        return teacher + 1e-3 * draw(point_cloud(b, c)), teacher
    return draw(point_cloud(b, c, scale)), teacher


@st.composite
def hinton_kd_example(draw, small: bool = False):
    """Inputs of ``hinton_kd``: (logits_student, logits_teacher), a temperature and a direction.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.reference import hinton_kd
    >>> from kd2m_ref.testing.strategies import hinton_kd_example
    >>> @settings(max_examples=5, database=None)
    ... @given(hinton_kd_example())
    ... def test_it(ex):
    ...     assert ex.call(hinton_kd) >= 0
    >>> test_it()
    """
    b, c = draw(st.integers(1, 4 if small else 8)), draw(st.integers(1, 5 if small else 10))
    student, teacher = draw(logit_pair(b, c))
    return Example((student, teacher), {"temperature": draw(st.sampled_from([0.5, 1.0, 2.0, 4.0])),
                                        "direction": draw(st.sampled_from(["teacher_student", "student_teacher"]))})


@st.composite
def class_cost(draw, k: int):
    """A (k, k) class cost in [0, 2] with a zero diagonal: the 0-1 cost 1[k != l] (explicit, so a function
    that requires a cost gets one), quarter-integer symmetric or not, or 1 - cosine similarity of random
    class embeddings (Wasserstein logit distillation's choice).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import class_cost
    >>> @settings(max_examples=5, database=None)
    ... @given(class_cost(3))
    ... def test_it(c):
    ...     assert c.shape == (3, 3) and (c.diagonal() == 0).all()
    ...     assert 0 <= c.min() and c.max() <= 2
    >>> test_it()
    """
    kind = draw(st.sampled_from(["zero_one", "quarter", "asymmetric", "cosine"]))
    if kind == "zero_one":
        return 1.0 - np.eye(k)
    if kind in ("quarter", "asymmetric"):
        c = draw(hnp.arrays(np.float64, (k, k), elements=st.integers(0, 8).map(lambda v: v / 4)))
        c = (c + c.T) / 2 if kind == "quarter" else c / 4 * 2  # in [0, 2], as 1 - cosine
        np.fill_diagonal(c, 0.0)
        return c
    emb = draw(point_cloud(k, 3))
    emb[np.linalg.norm(emb, axis=1) == 0] = 1.0
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    c = np.clip(1.0 - emb @ emb.T, 0.0, None)
    np.fill_diagonal(c, 0.0)  # 1 - e.e rounds to a few 1e-16 on the diagonal
    return c


@st.composite
def histogram_ot_example(draw, small: bool = False):
    """Inputs of ``histogram_ot``: (B, K) logits (or their softmax rows), a class cost, exact or entropic.

    Entropic: epsilon is 0.05, 0.2 or 1 times the largest cost, converged (``n_iter=None``; not below
    0.2 with ``small=True``, where the 50-digit oracle iterates) or after 1, 3, 10 or 30 iterations.
    ``small=True``: entropic only (the oracle has no LP), B <= 2, K <= 3, values at least 1e-2 max C
    (the whole domain is compared with the oracle in absolute terms in the property tests).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import histogram_ot_example
    >>> @settings(max_examples=5, database=None)
    ... @given(histogram_ot_example())
    ... def test_it(ex):
    ...     assert ex.args[0].shape == ex.args[1].shape
    >>> test_it()
    """
    b, k = draw(st.integers(1, 2 if small else 3)), draw(st.integers(2 if small else 1, 3 if small else 5))
    us, ut = draw(logit_pair(b, k))
    cost = draw(class_cost(k))
    cmax = max(float(cost.max()), 1e-2)
    kwargs = {"cost": cost, "inputs": draw(st.sampled_from(["logits", "probabilities"]))}
    if kwargs["inputs"] == "logits":
        kwargs["temperature"] = draw(st.sampled_from([0.5, 1.0, 2.0, 4.0]))
    else:
        us, ut = _softmax_rows(us), _softmax_rows(ut)
    if small or draw(st.booleans()):
        kwargs["n_iter"] = draw(st.sampled_from([None, 1, 3, 10, 30]))
        ratios = [0.2, 1.0] if small and kwargs["n_iter"] is None else [0.05, 0.2, 1.0]
        kwargs["epsilon"] = draw(st.sampled_from(ratios)) * cmax
        kwargs["value"] = draw(st.sampled_from(["ot_eps", "plan_cost", "dual"]))
        kwargs["max_iter"] = 20_000
        if small and kwargs["n_iter"] is None:
            kwargs["tol"] = 1e-13  # the oracle comparison is of the algorithm, not of the stopping rule
    if small:  # relative comparisons: values are sums of O(max C) terms, so keep them away from 0
        from hypothesis import assume

        from ..reference.histogram import histogram_ot

        assume(abs(histogram_ot(us, ut, **kwargs)) >= 1e-2 * cmax)
    return Example((us, ut), kwargs)


def _softmax_rows(u):
    e = np.exp(u - u.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# ----------------------------------------------------------------------------------- Gaussian family
# Coordinates are quarter-integers times a scale (no tiny spread hidden under a large offset, where any
# float implementation loses digits in the mean); perturbed pairs differ by 1e-1 relative in
# ``small`` mode, where the oracle comparison is relative (W2 is accurate in absolute terms, ~u * scale:
# the near-equal ladder down to 1e-8 is in tests/reference/test_gaussian_properties.py, with that bound).

QUARTER = st.integers(-8, 8).map(lambda k: k / 4)


@st.composite
def _quarter_array(draw, shape):
    return draw(hnp.arrays(np.float64, shape, elements=QUARTER))


@st.composite
def nonsingular_cloud(draw, d: int, extra: int = 2):
    """(2d + k, d) samples whose 1/n covariance has condition number <= ~50: rows +-sqrt(d) e_j (covariance
    >= 2d I / n) plus up to ``extra`` quarter-integer rows, through a well-conditioned linear map, shifted.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> import numpy as np
    >>> from kd2m_ref.testing.strategies import nonsingular_cloud
    >>> @settings(max_examples=5, database=None)
    ... @given(nonsingular_cloud(2))
    ... def test_it(x):
    ...     assert np.linalg.cond(np.cov(x.T, bias=True)) <= 60
    >>> test_it()
    """
    k = draw(st.integers(0, extra))
    z = np.vstack([np.sqrt(d) * np.eye(d), -np.sqrt(d) * np.eye(d), draw(_quarter_array((k, d)))])
    skew = draw(_quarter_array((d, d)))
    norm = np.linalg.norm(skew, 2)
    lin = np.eye(d) + (0.3 * skew / norm if norm > 0 else 0.0)
    lin = lin * np.asarray(draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=d, max_size=d)))
    return z @ lin + draw(_quarter_array((1, d)))


@st.composite
def gaussian_pair(draw, n: int, m: int, d: int, small: bool, nonsingular: bool):
    """(xs, xt): independent, identical, affine image, perturbed (relative 1e-1 when ``small``, else 1e-2
    or 1e-6) or row-permuted (not ``small``: the oracle's zero is then not reproducible in float64).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import gaussian_pair
    >>> @settings(max_examples=5, database=None)
    ... @given(gaussian_pair(4, 4, 2, small=False, nonsingular=False))
    ... def test_it(pair):
    ...     assert pair[0].shape == pair[1].shape == (4, 2)
    >>> test_it()
    """
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    xs = (draw(nonsingular_cloud(d)) if nonsingular else draw(_quarter_array((n, d)))) * scale
    kinds = ["independent", "identical", "affine", "perturbed"] + ([] if small else ["permuted", "close"])
    kind = draw(st.sampled_from(kinds)) if len(xs) == m or nonsingular else "independent"
    if kind == "independent":
        xt = (draw(nonsingular_cloud(d)) if nonsingular else draw(_quarter_array((m, d)))) * scale
    elif kind == "identical":
        xt = xs.copy()
    elif kind == "permuted":
        xt = xs[draw(st.permutations(range(len(xs))))]
    elif kind == "affine":
        lin = np.eye(d) + 0.5 * draw(_quarter_array((d, d))) / max(1, d)
        if nonsingular and np.linalg.svd(lin, compute_uv=False).min() < 0.5:
            lin = np.eye(d)
        xt = xs @ lin + scale * draw(_quarter_array((1, d)))
    else:
        rel = (1e-1 if small else 1e-2) if kind == "perturbed" else 1e-6
        xt = xs + rel * scale * draw(_quarter_array(xs.shape))
    return _same_rows_identical(xs, xt) if small else (xs, xt)


def _same_rows_identical(xs, xt):
    """If xt holds the rows of xs in another order, make it identical: the oracle's exact 0 for equal
    measures is then reproducible in float64 (a permutation changes the rounding of the moments)."""
    if xs.shape == xt.shape and np.array_equal(np.unique(xs, axis=0, return_counts=True)[1],
                                               np.unique(xt, axis=0, return_counts=True)[1]) \
            and np.array_equal(np.unique(xs, axis=0), np.unique(xt, axis=0)):
        return xs, xs.copy()
    return xs, xt


@st.composite
def _gaussian_example(draw, small: bool, kl: bool):
    d = draw(st.integers(1, 3 if small else 4))
    n = draw(st.integers(1, 8 if small else 12))
    m = n if draw(st.booleans()) else draw(st.integers(1, 8 if small else 12))
    eps = draw(st.sampled_from([0.0, 0.0, 0.1]))
    xs, xt = draw(gaussian_pair(n, m, d, small, nonsingular=kl and eps == 0.0 or draw(st.booleans())))
    kwargs = {"covariance": draw(st.sampled_from(["full", "diag"])), "eps": eps}
    if min(len(xs), len(xt)) >= 2:
        kwargs["estimator"] = draw(st.sampled_from(["mle", "unbiased"]))
    if draw(st.booleans()):
        kwargs["a"], kwargs["b"] = _gaussian_weights(draw, xs, xt, small)
    if kl:
        kwargs["direction"] = draw(st.sampled_from(["student_teacher", "teacher_student"]))
    else:
        kwargs["mean_weight"] = draw(st.sampled_from(MEAN_WEIGHTS))
    return Example((xs, xt), kwargs)


MEAN_WEIGHTS = (1.0, 1.0, 2.0, 4.0, 0.5)  # 1: the W2; 2 and 4: WKD-F's published weights


def _gaussian_weights(draw, xs, xt, small):
    """Weights for both sides; in ``small`` mode identical clouds get identical weights (equal measures
    whose weights differ only by a factor are zero for the oracle but not bitwise equal in float64)."""
    a = draw(weights(len(xs)))
    return a, (a.copy() if small and np.array_equal(xs, xt) else draw(weights(len(xt))))


def gaussian_example(small: bool = False):
    """Inputs of ``gaussian_wasserstein``: n != m and n < d allowed (rank-deficient, even n = 1), full or
    diagonal, 1/n or unbiased moments, optional ridge ``eps`` and weights, a ``mean_weight``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.reference import gaussian_wasserstein
    >>> from kd2m_ref.testing.strategies import gaussian_example
    >>> @settings(max_examples=5, database=None)
    ... @given(gaussian_example())
    ... def test_it(ex):
    ...     assert ex.call(gaussian_wasserstein) >= 0
    >>> test_it()
    """
    return _gaussian_example(small, kl=False)


def gaussian_kl_example(small: bool = False):
    """Inputs of ``gaussian_kl``: as :func:`gaussian_example` with nonsingular covariances (or eps > 0) and
    a ``direction``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.reference import gaussian_kl
    >>> from kd2m_ref.testing.strategies import gaussian_kl_example
    >>> @settings(max_examples=5, database=None)
    ... @given(gaussian_kl_example())
    ... def test_it(ex):
    ...     assert ex.call(gaussian_kl) >= 0
    >>> test_it()
    """
    return _gaussian_example(small, kl=True)


@st.composite
def _class_conditional_gaussian_example(draw, small: bool, kl: bool):
    d = draw(st.integers(1, 2 if small else 3))
    k = draw(st.integers(1, 2 if small else 3))
    eps = draw(st.sampled_from([0.0, 0.1]))
    parts = [draw(gaussian_pair(2 * d + 2, 2 * d + 2, d, small, nonsingular=kl and eps == 0.0 or draw(st.booleans())))
             for _ in range(k)]
    sizes = [min(len(p[0]), len(p[1])) for p in parts]
    parts = [_same_rows_identical(p[0][:s], p[1][:s]) if small else (p[0][:s], p[1][:s])
             for p, s in zip(parts, sizes)]
    xs, xt = np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])
    ys = np.repeat(np.arange(k), sizes).astype(np.int64)
    order = np.asarray(draw(st.permutations(range(len(ys)))))
    kwargs = {"ys": ys[order], "weights": draw(st.sampled_from(["uniform", "prior", "sum"])),
              "covariance": draw(st.sampled_from(["full", "diag"])), "eps": eps,
              "estimator": draw(st.sampled_from(["mle", "unbiased"]))}
    if kl:
        kwargs["direction"] = draw(st.sampled_from(["student_teacher", "teacher_student"]))
    if draw(st.booleans()):
        kwargs["a"], kwargs["b"] = _gaussian_weights(draw, xs, xt, small)
    return Example((xs[order], xt[order]), kwargs)


def class_conditional_gaussian_example(small: bool = False):
    """Inputs of ``class_conditional_gaussian_wasserstein``: labelled paired clouds, a class-weight option.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.testing.strategies import (
    ...     class_conditional_gaussian_example)
    >>> @settings(max_examples=5, database=None)
    ... @given(class_conditional_gaussian_example())
    ... def test_it(ex):
    ...     assert len(ex.kwargs["ys"]) == len(ex.args[0])
    >>> test_it()
    """
    return _class_conditional_gaussian_example(small, kl=False)


def class_conditional_gaussian_kl_example(small: bool = False):
    """Inputs of ``class_conditional_gaussian_kl``: per-class nonsingular clouds (or eps > 0).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.reference import class_conditional_gaussian_kl
    >>> from kd2m_ref.testing.strategies import (
    ...     class_conditional_gaussian_kl_example)
    >>> @settings(max_examples=5, database=None)
    ... @given(class_conditional_gaussian_kl_example())
    ... def test_it(ex):
    ...     assert ex.call(class_conditional_gaussian_kl) >= 0
    >>> test_it()
    """
    return _class_conditional_gaussian_example(small, kl=True)


def _grid_fits(grid, height, width, estimator) -> bool:
    from .._conventions import grid_cells

    try:
        grid_cells(height, width, grid, estimator)
    except ValueError:
        return False
    return True


def _same_cells_identical(xs, xt, grid, estimator):
    """xs.copy() in place of an xt whose every cell holds the pixels of xs's cell in another order (the
    oracle's exact 0 is then reproducible in float64, as in :func:`_same_rows_identical`)."""
    from .._conventions import grid_cells

    b, c, h, w = xs.shape
    for i in range(b):
        for rows, cols in grid_cells(h, w, grid, estimator):
            ps, pt = (x[i, :, rows, cols].reshape(c, -1).T for x in (xs, xt))
            if not np.array_equal(*_same_rows_identical(ps, pt)):
                return xt
    return xs.copy()


@st.composite
def grid_gaussian_wasserstein_example(draw, small: bool = False):
    """Inputs of ``grid_gaussian_wasserstein``: (B, C, H, W) quarter-integer feature maps (B <= 3, C <= 4,
    H, W in 2..5; ``small``: B <= 2, C <= 3, H, W <= 3), a grid among 1, 2, 3, (2, 1), (1, 2), (3, 2)
    that fits (2 pixels per cell for the unbiased estimator), and drawn ``mean_weight``, ``eps`` (0, 1e-5,
    0.1), ``covariance`` and ``estimator``. Teacher maps: independent, identical, perturbed (relative 1e-1
    when ``small``, else 1e-2 or 1e-6), a per-channel positive scale and shift, or a per-channel shift.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from kd2m_ref.reference import grid_gaussian_wasserstein
    >>> from kd2m_ref.testing.strategies import (
    ...     grid_gaussian_wasserstein_example)
    >>> @settings(max_examples=5, database=None)
    ... @given(grid_gaussian_wasserstein_example())
    ... def test_it(ex):
    ...     assert ex.args[0].ndim == 4
    ...     assert ex.call(grid_gaussian_wasserstein) >= 0
    >>> test_it()
    """
    b, c = draw(st.integers(1, 2 if small else 3)), draw(st.integers(1, 3 if small else 4))
    h, w = (draw(st.integers(2, 3 if small else 5)) for _ in range(2))
    estimator = draw(st.sampled_from(["unbiased", "unbiased", "mle"]))
    grid = draw(st.sampled_from([g for g in (1, 2, (2, 1), (1, 2), 3, (3, 2)) if _grid_fits(g, h, w, estimator)]))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    xs = draw(_quarter_array((b, c, h, w))) * scale
    kind = draw(st.sampled_from(["independent", "identical", "perturbed", "affine", "shifted"]))
    if kind == "independent":
        xt = draw(_quarter_array((b, c, h, w))) * scale
    elif kind == "identical":
        xt = xs.copy()
    elif kind == "perturbed":
        rel = 1e-1 if small else draw(st.sampled_from([1e-2, 1e-6]))
        xt = xs + rel * scale * draw(_quarter_array(xs.shape))
    else:
        gain = np.asarray(draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=c, max_size=c)))
        xt = (xs * gain[:, None, None] if kind == "affine" else xs) + scale * draw(_quarter_array((1, c, 1, 1)))
    if small:
        xt = _same_cells_identical(xs, xt, grid, estimator)
    kwargs = {"grid": grid, "mean_weight": draw(st.sampled_from(MEAN_WEIGHTS[1:])),
              "covariance": draw(st.sampled_from(["diag", "diag", "full"])), "estimator": estimator,
              "eps": draw(st.sampled_from([0.0, 1e-5, 0.1]))}
    return Example((xs, xt), kwargs)
