"""Hypothesis profiles (DESIGN.md §6): ``ci`` (derandomised, bounded; default when CI=true) and
``deep`` (many examples; ``HYPOTHESIS_PROFILE=deep pytest``), ``dev`` otherwise."""

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
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


import pytest  # noqa: E402


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
