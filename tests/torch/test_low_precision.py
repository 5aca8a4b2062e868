"""float16 / bfloat16 inputs are computed in float32 by every torch metric (never silently wrong in
half precision, never a dtype error from deep inside torch), with gradients back to the inputs."""

import warnings

import pytest

from conftest import call, valid_call
from kd2m_ref import METRICS

torch = pytest.importorskip("torch")
TORCH_KEYS = sorted(k for k, s in METRICS.items() if s.torch_path)


def _inputs(key, dtype):
    args, kwargs = valid_call(key)
    return [torch.tensor(a, dtype=dtype, requires_grad=True) for a in args], kwargs


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("key", TORCH_KEYS)
def test_low_precision_is_computed_in_float32(key, dtype):
    """covers("sinkhorn", "low_precision_in_float32"): the value from half-precision inputs is the
    float32 value of the same (rounded) inputs, returned as float32; the gradient reaches the inputs."""
    args, kwargs = _inputs(key, dtype)
    value = call(key, "torch", args, kwargs)
    assert value.dtype == torch.float32
    upcast = [a.detach().float() for a in args]
    assert float(value) == float(call(key, "torch", upcast, kwargs))
    value.backward()
    assert args[0].grad is not None and args[0].grad.dtype == dtype and bool(args[0].grad.float().isfinite().all())


def test_float16_sinkhorn_is_accurate():
    """Planted-error guard: Sinkhorn iterated in float16 itself stopped almost at once (its stopping
    tolerance follows the dtype's eps) and was 3-43 % off; in float32 it matches float64 closely."""
    args, kwargs = _inputs("sinkhorn_divergence", torch.float16)
    value = float(call("sinkhorn_divergence", "torch", args, kwargs))
    exact = float(call("sinkhorn_divergence", "torch", [a.detach().double() for a in args], kwargs))
    xs, xt = (a.detach().double() for a in args)
    cmax = float(torch.cdist(torch.cat([xs, xt]), torch.cat([xs, xt])).max() ** 2)
    float32_tol = 32 * len(xs) * torch.finfo(torch.float32).eps  # the stopping tolerance in float32
    assert abs(value - exact) <= 3 * float32_tol * cmax  # three terms, each certified to tol * max C
    # the planted error: the same iterations in float16 itself miss that bound by far
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = float(METRICS["sinkhorn_divergence"].torch.__wrapped__(*(a.detach() for a in args), **kwargs))
    assert abs(half - exact) > 3 * float32_tol * cmax


def test_autocast_does_not_lower_the_precision():
    """Under autocast a float32 call keeps float32 matmuls (the metric runs with autocast off)."""
    args, kwargs = _inputs("wasserstein", torch.float32)
    plain = float(call("wasserstein", "torch", args, kwargs))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = call("wasserstein", "torch", args, kwargs)
    assert value.dtype == torch.float32 and float(value) == plain
