"""The ``verification`` package lives at the repository root (not installed): make it importable
whatever the working directory and however pytest was started. ``one_thread``: torch on one CPU
thread for the duration of a test (modules opt in with ``pytest.mark.usefixtures``)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def one_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
