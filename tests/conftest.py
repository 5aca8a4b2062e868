"""Hypothesis profiles: ``ci`` (derandomised, bounded; the default when CI=true), ``dev`` (random,
the default otherwise: must pass on any seed, ``make fuzz`` runs many) and ``deep`` (many examples;
``HYPOTHESIS_PROFILE=deep pytest``). Shared inputs of the registry-driven tests."""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from kd2m_ref import METRICS

# filter_too_much: the coordinate strategy filters out tiny magnitudes on purpose (squares that underflow),
# and an (n, d) array of up to ~300 entries trips the check on some random seeds.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=40, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=40, **_COMMON)
settings.register_profile("deep", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev"))


def _backends() -> list[str]:
    try:
        import torch  # noqa: F401
    except ImportError:
        return ["reference"]
    return ["reference", "torch"]


#: Layers every bad-input test runs on: the reference, and torch when it is installed.
BACKENDS = _backends()


def covers(key: str, prop: str):
    """Mark a test as covering property ``prop`` of metric ``key`` (checked against the registry)."""
    def mark(fn):
        fn.covers = getattr(fn, "covers", ()) + ((key, prop),)
        return fn
    return mark


COVERS_RE = re.compile(r'covers\("([a-z_]+)", "([a-z_0-9]+)"\)')


def covered_properties() -> set[tuple[str, str]]:
    """(key, property) pairs named by ``covers(...)`` anywhere under tests/."""
    found = set()
    for path in Path(__file__).parent.rglob("test_*.py"):
        found.update(COVERS_RE.findall(path.read_text()))
    return found



# One valid call of every registry key, and one converter to each layer's types (the bad-input table
# and the low-precision tests start from these).
RNG = np.random.default_rng(0)
XS, XT = RNG.normal(size=(8, 3)), RNG.normal(size=(8, 3))
YS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
US, UT = RNG.normal(size=(4, 5)), RNG.normal(size=(4, 5))


def valid_call(key: str) -> tuple[list, dict]:
    """A call of ``key`` that succeeds: NumPy positional inputs and keywords."""
    spec = METRICS[key]
    if "logits" in spec.needs:
        return [US, UT], {}
    if "feature_maps" in spec.needs:  # (B, C, H, W) maps: 2 images of 2 channels on a 2 x 3 grid
        return [XS[:6].reshape(2, 3, 3)[:, :, :, None].repeat(2, 3), XT[:6].reshape(2, 3, 3)[:, :, :, None].repeat(2, 3)], {}
    kwargs = {"ys": YS} if "labels" in spec.needs else {}
    if "epsilon" in spec.params:
        kwargs.update(epsilon=0.1, relative_epsilon=True)  # converges well within the default budget
    if "kl" in key:
        kwargs["eps"] = 0.1  # nonsingular per-class covariances; singularity has its own test
    return [XS, XT], kwargs


@dataclass(frozen=True)
class Raw:
    """An input passed to the layer exactly as it is (e.g. a NumPy array into the torch layer)."""

    value: object


def to_layer(value, backend: str):
    """NumPy arrays become tensors for the torch layer; everything else passes as it is."""
    if isinstance(value, Raw):
        return value.value
    if backend == "torch" and isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        import torch

        return torch.tensor(value)
    return value


def call(key: str, backend: str, args, kwargs):
    spec = METRICS[key]
    fn = spec.reference if backend == "reference" else spec.torch
    return fn(*(to_layer(v, backend) for v in args), **{k: to_layer(v, backend) for k, v in kwargs.items()})


@pytest.fixture(scope="session", params=["cpu", "cuda"])
def device(request):
    """Every torch comparison runs on the CPU and, when one is present, on a CUDA device."""
    if request.param == "cuda":
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("no CUDA device on this machine (torch.cuda.is_available() is False)")
    return request.param


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module of tiny problems (two threads on a busy 2-core machine
    make them ~10x slower); restored afterwards. Use with ``pytest.mark.usefixtures("one_thread")``."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
