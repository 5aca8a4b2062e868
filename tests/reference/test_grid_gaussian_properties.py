"""Properties of ``grid_gaussian_wasserstein`` (WKD-F) and of the ``mean_weight`` of
``gaussian_wasserstein`` on the float64 reference, checked against the mpmath oracle and closed forms.

The value is a mean of squared W2 over images and cells, accurate in absolute terms (~u times the data's
squared size); ``_close`` compares two values to 1e-12 of that size.
"""

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kd2m_ref import oracle as O
from kd2m_ref import reference as R
from kd2m_ref._conventions import grid_cells
from kd2m_ref.testing.strategies import gaussian_example, grid_gaussian_wasserstein_example


def _size(*maps, weight=1.0):
    """The squared size of the data: C (1 + w) max|x|^2 (bounds every term of the value)."""
    return maps[0].shape[1] * (1 + weight) * max(float(np.abs(m).max()) for m in maps) ** 2


def _close(v1, v2, size):
    return abs(v1 - v2) <= 1e-12 * (size + abs(v2))


def _cells(x, grid, estimator):
    """The (pixels, C) clouds of every image and cell of x, image-major."""
    b, c, h, w = x.shape
    return [x[i, :, r, s].reshape(c, -1).T for i in range(b) for r, s in grid_cells(h, w, grid, estimator)]


@settings(max_examples=20)
@given(grid_gaussian_wasserstein_example(small=True))
def test_oracle(ex):
    """covers("grid_gaussian_wasserstein", "oracle"): the reference agrees with the 50-digit oracle to 1e-12
    relative (an exact 0 for identical maps)."""
    ref = ex.call(R.grid_gaussian_wasserstein)
    with mp.workdps(50):
        exact = ex.call(O.grid_gaussian_wasserstein)
        assert abs(mp.mpf(ref) - exact) <= 1e-12 * abs(exact), (ref, exact)


@given(grid_gaussian_wasserstein_example())
def test_grid_one_is_pixel_cloud(ex):
    """covers("grid_gaussian_wasserstein", "grid_one_is_pixel_cloud"): grid=1 is gaussian_wasserstein of each
    image's (H W, C) pixel cloud, averaged over the images."""
    xs, xt = ex.args
    kw = {**ex.kwargs, "grid": 1}
    b, c = xs.shape[:2]
    pixels = [R.gaussian_wasserstein(xs[i].reshape(c, -1).T, xt[i].reshape(c, -1).T,
                                     **{k: v for k, v in kw.items() if k != "grid"}) for i in range(b)]
    assert _close(R.grid_gaussian_wasserstein(xs, xt, **kw), float(np.mean(pixels)),
                  _size(xs, xt, weight=kw["mean_weight"]))


@given(grid_gaussian_wasserstein_example(), grid_gaussian_wasserstein_example())
def test_batch_mean(ex1, ex2):
    """covers("grid_gaussian_wasserstein", "batch_mean"): the value of two batches stacked is the mean of
    their values weighted by their sizes (a mean over images, not a sum)."""
    (xs, xt), kw = ex1.args, ex1.kwargs
    ys, yt = (np.resize(y, (len(y),) + xs.shape[1:]) for y in ex2.args)  # ex2's images, in ex1's shape
    b1, b2 = len(xs), len(ys)
    stacked = R.grid_gaussian_wasserstein(np.concatenate([xs, ys]), np.concatenate([xt, yt]), **kw)
    parts = (b1 * R.grid_gaussian_wasserstein(xs, xt, **kw) + b2 * R.grid_gaussian_wasserstein(ys, yt, **kw)) / (b1 + b2)
    assert _close(stacked, parts, _size(xs, xt, ys, yt, weight=kw["mean_weight"]))


@pytest.mark.parametrize("size, g, bounds", [(4, 2, [(0, 2), (2, 4)]), (5, 2, [(0, 3), (2, 5)]),
                                             (5, 3, [(0, 2), (1, 4), (3, 5)]), (3, 3, [(0, 1), (1, 2), (2, 3)]),
                                             (2, 1, [(0, 2)])])
def test_cells_adaptive_pooling(size, g, bounds):
    """covers("grid_gaussian_wasserstein", "cells_adaptive_pooling"): cell i spans floor(i H / g) ..
    ceil((i + 1) H / g), row-major; cells overlap when g does not divide H."""
    cells = grid_cells(size, size, g)
    assert [(r.start, r.stop) for r, _ in cells[::g]] == bounds
    assert [(c.start, c.stop) for _, c in cells[:g]] == bounds


@given(grid_gaussian_wasserstein_example(), st.sampled_from([0.0, 0.5, 3.0, 10.0]))
def test_mean_weight_linear(ex, w):
    """covers("grid_gaussian_wasserstein", "mean_weight_linear"): value(w) = value(0) + w M, with M the mean
    over images and cells of ||mu_S - mu_T||^2 computed directly; value(0) has no mean term."""
    xs, xt = ex.args
    kw = dict(ex.kwargs)
    means = [np.sum((s.mean(0) - t.mean(0)) ** 2)
             for s, t in zip(_cells(xs, kw["grid"], kw["estimator"]), _cells(xt, kw["grid"], kw["estimator"]))]
    base = R.grid_gaussian_wasserstein(xs, xt, **{**kw, "mean_weight": 0.0})
    assert _close(R.grid_gaussian_wasserstein(xs, xt, **{**kw, "mean_weight": w}), base + w * np.mean(means),
                  _size(xs, xt, weight=w))


@given(gaussian_example(), st.sampled_from([0.0, 0.5, 2.0, 4.0]))
def test_gaussian_wasserstein_mean_weight_linear(ex, w):
    """covers("gaussian_wasserstein", "mean_weight_linear"): value(w) = value(0) + w ||mu_S - mu_T||^2 with
    the weighted means; the default mean_weight=1 is the plain W2."""
    xs, xt = ex.args
    kw = dict(ex.kwargs)
    a, b = kw.get("a"), kw.get("b")
    wa = np.full(len(xs), 1 / len(xs)) if a is None else a / a.sum()
    wb = np.full(len(xt), 1 / len(xt)) if b is None else b / b.sum()
    mean_term = float(np.sum((wa @ xs - wb @ xt) ** 2))
    base = R.gaussian_wasserstein(xs, xt, **{**kw, "mean_weight": 0.0})
    size = xs.shape[1] * (1 + w) * max(np.abs(xs).max(), np.abs(xt).max()) ** 2
    assert _close(R.gaussian_wasserstein(xs, xt, **{**kw, "mean_weight": w}), base + w * mean_term, size)
    del kw["mean_weight"]
    assert R.gaussian_wasserstein(xs, xt, **kw) == R.gaussian_wasserstein(xs, xt, mean_weight=1.0, **kw)


@given(grid_gaussian_wasserstein_example())
def test_diag_closed_form(ex):
    """covers("grid_gaussian_wasserstein", "diag_closed_form"): the diagonal value is the mean over images
    and cells of w ||mu_S - mu_T||^2 + ||sqrt(var_S + eps) - sqrt(var_T + eps)||^2 (np.var per channel)."""
    xs, xt = ex.args
    kw = {**ex.kwargs, "covariance": "diag"}
    ddof = 1 if kw["estimator"] == "unbiased" else 0
    terms = [kw["mean_weight"] * np.sum((s.mean(0) - t.mean(0)) ** 2)
             + np.sum((np.sqrt(s.var(0, ddof=ddof) + kw["eps"]) - np.sqrt(t.var(0, ddof=ddof) + kw["eps"])) ** 2)
             for s, t in zip(_cells(xs, kw["grid"], kw["estimator"]), _cells(xt, kw["grid"], kw["estimator"]))]
    assert _close(R.grid_gaussian_wasserstein(xs, xt, **kw), float(np.mean(terms)), _size(xs, xt, weight=kw["mean_weight"]))


@given(grid_gaussian_wasserstein_example())
def test_zero_iff_equal(ex):
    """covers("grid_gaussian_wasserstein", "zero_iff_equal"): exactly 0 for identical maps (and for maps whose
    cells have the same means and variances); > 0 when a cell's moments differ by more than rounding."""
    xs, xt = ex.args
    kw = ex.kwargs
    assert R.grid_gaussian_wasserstein(xs, xs.copy(), **kw) == 0.0
    flipped = xs[..., ::-1, ::-1] if kw["grid"] == 1 else xs  # pixels reordered: same moments with one cell
    assert _close(R.grid_gaussian_wasserstein(xs, flipped.copy(), **kw), 0.0, _size(xs))
    gap = max(max(np.abs(s.mean(0) - t.mean(0)).max(), np.abs(s.std(0) - t.std(0)).max())
              for s, t in zip(_cells(xs, kw["grid"], kw["estimator"]), _cells(xt, kw["grid"], kw["estimator"])))
    if gap > 1e-6:
        assert R.grid_gaussian_wasserstein(xs, xt, **kw) > 0


@given(grid_gaussian_wasserstein_example(), st.lists(st.sampled_from([-2.5, -1.0, 0.25, 3.0]), min_size=4, max_size=4))
def test_translation(ex, v):
    """covers("grid_gaussian_wasserstein", "translation"): a per-channel constant added to the teacher moves
    the mean term only (the value at mean_weight=0 is unchanged); added to both, nothing changes."""
    xs, xt = ex.args
    kw = ex.kwargs
    shift = np.asarray(v[: xs.shape[1]])[None, :, None, None]
    size = _size(xs + shift, xt + shift, weight=kw["mean_weight"])
    assert _close(R.grid_gaussian_wasserstein(xs + shift, xt + shift, **kw), R.grid_gaussian_wasserstein(xs, xt, **kw),
                  size)
    no_mean = {**kw, "mean_weight": 0.0}
    assert _close(R.grid_gaussian_wasserstein(xs, xt + shift, **no_mean), R.grid_gaussian_wasserstein(xs, xt, **no_mean),
                  size)
