"""pytest plugin (entry point ``pytest11``): a ``kd2m_check`` fixture and command-line options.

In your tests, either call :func:`kd2m_ref.testing.check` directly::

    from kd2m_ref.testing import check

    def test_my_loss():
        check(my_loss, "mmd", params={"estimator": "unbiased"})

or take the fixture, which applies ``--kd2m-examples`` and ``--kd2m-device`` from the command line::

    def test_my_loss(kd2m_check):
        kd2m_check(my_loss, "mmd", params={"estimator": "unbiased"})

A mismatch fails the test with the minimal counterexample and the diagnosis.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("kd2m-ref", "kd2m-ref cross-check kit")
    group.addoption("--kd2m-examples", type=int, default=None,
                    help="Hypothesis examples per kd2m_check call (default: check()'s 100)")
    group.addoption("--kd2m-device", default=None, help="torch device for kd2m_check (e.g. cuda)")


@pytest.fixture
def kd2m_check(request):
    """``check`` with the session's ``--kd2m-examples`` / ``--kd2m-device`` as defaults."""
    from .check import check

    examples = request.config.getoption("--kd2m-examples")
    device = request.config.getoption("--kd2m-device")

    def run(fn, metric, **kwargs):
        if examples is not None:
            kwargs.setdefault("max_examples", examples)
        if device is not None:
            kwargs.setdefault("device", device)
        return check(fn, metric, **kwargs)

    return run
