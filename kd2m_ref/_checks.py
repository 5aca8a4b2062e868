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


def check_choice(value, name: str, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}; got {value!r}")
    return value


def check_positive(value, name: str, *, strict: bool = True):
    ok = value > 0 if strict else value >= 0
    if not (np.isfinite(value) and ok):
        raise ValueError(f"{name} must be a finite {'positive' if strict else 'non-negative'} number; got {value!r}")
    return value


def _to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    return x.detach().cpu().numpy()


def check_p(p):
    """Ground-cost exponent: finite and >= 1 (W_p is a metric only for p >= 1)."""
    check_positive(p, "p")
    if p < 1:
        raise ValueError(f"p must be >= 1 for W_p to be a metric; got {p}")
    return p
