"""Three layers of truth, driven by the registry: oracle -> reference -> torch (DESIGN.md §4)."""

import mpmath as mp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kd2m_ref import METRICS

ORACLE_RTOL = 1e-12


def _keys(attr):
    return sorted(k for k, s in METRICS.items() if getattr(s, attr + "_path") is not None)


@pytest.mark.parametrize("key", _keys("oracle"))
@settings(max_examples=25)
@given(data=st.data())
def test_reference_matches_oracle(key, data):
    """covers("wasserstein", "oracle") covers("class_conditional_wasserstein", "oracle")
    covers("joint_wasserstein", "oracle") covers("sliced_wasserstein", "oracle")"""
    spec = METRICS[key]
    ex = data.draw(spec.strategy(small=True))
    ref = ex.call(spec.reference)
    with mp.workdps(50):
        exact = ex.call(spec.oracle)
        scale = max(abs(exact), mp.mpf(1e-300))
        err = abs(mp.mpf(ref) - exact)
    assert err <= ORACLE_RTOL * scale, f"{key}: reference {ref!r} vs oracle {exact} (err {float(err):.3e})"


DTYPES = ["float64", "float32"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", _keys("torch"))
@given(data=st.data())
def test_torch_matches_reference(key, dtype, data, device):
    torch = pytest.importorskip("torch")
    spec = METRICS[key]
    ex = data.draw(spec.strategy())
    tdtype = getattr(torch, dtype)
    rounded = ex.rounded(dtype)
    ref = rounded.call(spec.reference)
    out = ex.to_torch(tdtype, device).call(spec.torch)
    assert out.shape == () and out.dtype == tdtype and out.device.type == device
    rtol, atol = spec.tolerance(rounded, dtype)
    err = abs(float(out) - ref)
    assert err <= atol + rtol * abs(ref), (
        f"{key} {dtype} on {device}: torch {float(out)!r} vs reference {ref!r}; error {err:.3e} > "
        f"atol {atol:.2e} + rtol {rtol:.2e}*|ref|")
