"""Three layers of truth, driven by the registry: oracle -> reference -> torch."""

import mpmath as mp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kd2m_ref import METRICS
from kd2m_ref.testing.compare import compare_example

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
    """The shipped engine (also behind ``check`` and ``kd2m-ref selftest``) on the package's torch layer."""
    torch = pytest.importorskip("torch")
    spec = METRICS[key]
    ex = data.draw(spec.strategy())
    cmp = compare_example(spec, ex, lambda inputs: inputs.call(spec.torch), dtype=dtype, device=device)
    out = cmp.output
    assert out.shape == () and out.dtype == getattr(torch, dtype) and out.device.type == device
    assert cmp.ok, f"{key} {dtype} on {device}: torch " + cmp.message()
