"""Input validation shared by the reference (NumPy) and torch layers.

Every check raises ``ValueError`` naming the offending argument, so bad input never turns into a
silent NaN or a wrong number. The functions are duck-typed: they accept NumPy arrays and torch
tensors (on any device) without importing torch.
"""

from __future__ import annotations

import numpy as np


def _all_finite(x) -> bool:
    """One fast reduction first: a finite sum implies finite entries (NaN or inf would propagate); only
    a non-finite sum (a bad entry, or an overflow of finite ones) pays for the elementwise test."""
    if hasattr(x, "isfinite") and not isinstance(x, np.ndarray):  # torch.Tensor
        x = x.detach()
        return bool(x.sum().isfinite()) or bool(x.isfinite().all())
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(x))) or bool(np.isfinite(x).all())


def _is_floating(x) -> bool:
    if isinstance(x, np.ndarray):
        return np.issubdtype(x.dtype, np.floating)
    return bool(getattr(x, "is_floating_point", lambda: False)())


def _is_integer(x) -> bool:
    if isinstance(x, np.ndarray):
        return np.issubdtype(x.dtype, np.integer)
    return not _is_floating(x) and str(x.dtype) != "torch.bool" and "complex" not in str(x.dtype)


def check_points(x, name: str, *, dim: int | None = None, min_rows: int = 1):
    """Check a (n, d) array of samples: 2-D, floating, finite, at least ``min_rows`` rows."""
    if getattr(x, "ndim", None) != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); got shape "
            f"{tuple(getattr(x, 'shape', ()))}"
        )
    if not _is_floating(x):
        raise ValueError(f"{name} must have a floating dtype; got {x.dtype}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} row(s); got shape {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {tuple(x.shape)})")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(
            f"{name} has {x.shape[1]} features but the other input has {dim}: feature dimensions must match"
        )
    if not _all_finite(x):
        raise ValueError(f"{name} contains NaN or inf")
    return x


def check_sets(x, name: str, *, like=None, min_rows: int = 1):
    """Check a batch of sample sets (B, n, *sample_shape): floating, finite, B >= 1, at least ``min_rows``
    samples per set, the batch size and the flattened sample size d of ``like`` (the student's) when given.
    Returns the (B, n, d) view (samples flattened)."""
    shape = tuple(getattr(x, "shape", ()))
    if getattr(x, "ndim", 0) < 3:
        raise ValueError(f"{name} must be a batch of sample sets of shape (B, n, *sample_shape), at least 3-D: "
                         f"(B, n, d) points or (B, C, H, W) feature maps; got shape {shape}")
    if not _is_floating(x):
        raise ValueError(f"{name} must have a floating dtype; got {x.dtype}")
    d = int(np.prod(shape[2:]))
    if shape[0] == 0 or shape[1] < min_rows or d == 0:
        raise ValueError(f"{name} must have at least one set, {min_rows} sample(s) per set and one feature; "
                         f"got shape {shape}")
    if like is not None and shape[0] != like.shape[0]:
        raise ValueError(f"{name} has {shape[0]} sets but xs has {like.shape[0]}: the batch sizes B must match")
    if like is not None and d != like.shape[2]:
        raise ValueError(f"{name} has samples of {d} features (shape {shape}) but xs has {like.shape[2]}: the "
                         "flattened sample sizes must match")
    if not _all_finite(x):
        raise ValueError(f"{name} contains NaN or inf")
    return x.reshape(shape[0], shape[1], d)


def check_weights(w, name: str, n: int):
    """Check sample weights: 1-D of length n, finite, non-negative, positive total."""
    if w is None:
        return None
    if getattr(w, "ndim", None) != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array of length {n}; got shape {tuple(getattr(w, 'shape', ()))}")
    if not _all_finite(w):
        raise ValueError(f"{name} contains NaN or inf")
    if bool((w < 0).any()):
        raise ValueError(f"{name} has negative weights")
    if not float(w.sum()) > 0:
        raise ValueError(f"{name} sums to zero: weights must have a positive total")
    return w


def check_labels(y, name: str, n: int):
    """Check labels: class indices of shape (n,) or probability rows of shape (n, C)."""
    if y is None:
        raise ValueError(f"{name} is required by this metric (class indices or probability rows)")
    if getattr(y, "ndim", None) not in (1, 2) or y.shape[0] != n:
        raise ValueError(
            f"{name} must have {n} rows (one label per sample) as class indices (n,) or probabilities (n, C); "
            f"got shape {tuple(getattr(y, 'shape', ()))}"
        )
    if y.ndim == 1:
        if not _is_integer(y):
            raise ValueError(f"{name} as a 1-D array must hold integer class indices; got dtype {y.dtype}")
        if n and bool((y < 0).any()):
            raise ValueError(f"{name} has negative class indices")
    else:
        if not _all_finite(y):
            raise ValueError(f"{name} contains NaN or inf")
        if bool((y < 0).any()) or not np.allclose(np.asarray(_to_numpy(y.sum(1)), float), 1.0, atol=1e-5):
            raise ValueError(f"{name} as a 2-D array must hold probability rows (non-negative, summing to 1)")
    return y


def check_hard_labels(y, name: str, n: int):
    """Like :func:`check_labels` but only class indices are allowed."""
    check_labels(y, name, n)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D integer class indices for this metric; got shape {tuple(y.shape)}")
    return y


def as_array(x, name: str, dtype=None) -> np.ndarray:
    """A NumPy array from an array, a nested list or a torch tensor (detached, copied to the CPU: the
    reference computes a value, never a gradient); ValueError naming ``name`` otherwise."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers; got {type(x).__name__} ({exc})") from None


def _to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    return x.detach().cpu().numpy()


def check_logits(u, name: str, like=None):
    """(batch, classes) floating, finite logits; the same shape as ``like`` when given."""
    if getattr(u, "ndim", None) != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (batch, n_classes); got shape "
                         f"{tuple(getattr(u, 'shape', ()))}")
    if not _is_floating(u):
        raise ValueError(f"{name} must have a floating dtype; got {u.dtype}")
    if u.shape[0] == 0 or u.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one class; got shape {tuple(u.shape)}")
    if like is not None and tuple(u.shape) != tuple(like.shape):
        raise ValueError(f"{name} has shape {tuple(u.shape)} but logits_student has {tuple(like.shape)}: "
                         "one row per sample and the same classes on both sides")
    if not _all_finite(u):
        raise ValueError(f"{name} contains NaN or inf")
    return u


def check_moments(mean_s, mean_t, cov_s, cov_t):
    """Means (d,) and covariances (d, d) symmetric PSD, or variances (d,) >= 0, finite; returns float64
    NumPy copies (the torch layer validates through them and keeps its tensors)."""
    mean_s, mean_t = as_array(mean_s, "mean_s", np.float64), as_array(mean_t, "mean_t", np.float64)
    cov_s, cov_t = as_array(cov_s, "cov_s", np.float64), as_array(cov_t, "cov_t", np.float64)
    if mean_s.ndim != 1:
        raise ValueError(f"mean_s must be a 1-D array of length d; got shape {mean_s.shape}")
    d = mean_s.shape[0]
    if mean_t.shape != (d,):
        raise ValueError(f"mean_t must have shape ({d},) like mean_s; got {mean_t.shape}")
    for name, cov in (("cov_s", cov_s), ("cov_t", cov_t)):
        if cov.shape not in ((d,), (d, d)):
            raise ValueError(f"{name} must have shape ({d}, {d}) (full) or ({d},) (variances); got {cov.shape}")
        if not _all_finite(cov):
            raise ValueError(f"{name} contains NaN or inf")
    if cov_s.ndim != cov_t.ndim:
        raise ValueError("cov_s and cov_t must both be full (d, d) matrices or both variance vectors (d,)")
    for name, m in (("mean_s", mean_s), ("mean_t", mean_t)):
        if not _all_finite(m):
            raise ValueError(f"{name} contains NaN or inf")
    for name, cov in (("cov_s", cov_s), ("cov_t", cov_t)):
        if cov.ndim == 1:
            if np.any(cov < 0):
                raise ValueError(f"{name} has negative variances")
            continue
        scale = max(np.abs(cov).max(), np.finfo(float).tiny)
        if np.abs(cov - cov.T).max() > 1e-12 * scale:
            raise ValueError(f"{name} must be symmetric")
        if np.linalg.eigvalsh(cov).min() < -1e-12 * d * scale:
            raise ValueError(f"{name} must be positive semi-definite (it has a negative eigenvalue)")
    return mean_s, mean_t, cov_s, cov_t


def check_feature_maps(x, name: str, like=None, like_name: str = "xs"):
    """A (batch, channels, height, width) floating, finite feature map, of the shape of ``like`` when given."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"{name} must be a 4-D array of shape (batch, channels, height, width); got shape "
                         f"{tuple(getattr(x, 'shape', ()))}")
    if not _is_floating(x):
        raise ValueError(f"{name} must have a floating dtype; got {x.dtype}")
    if 0 in tuple(x.shape):
        raise ValueError(f"{name} must have at least one image, channel and pixel; got shape {tuple(x.shape)}")
    if like is not None and tuple(x.shape) != tuple(like.shape):
        raise ValueError(f"{name} has shape {tuple(x.shape)} but {like_name} has {tuple(like.shape)}: student and "
                         "teacher feature maps must have the same batch, channels, height and width")
    if not _all_finite(x):
        raise ValueError(f"{name} contains NaN or inf")
    return x
