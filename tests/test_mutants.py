"""The checker against the mutant suite (tests/mutants.py): every wrong implementation is flagged, with
the expected diagnosis; no correct implementation is flagged."""

import pytest

pytest.importorskip("torch")

from mutants import CASES, evaluate  # noqa: E402  (tests/ is on sys.path under pytest's default import mode)


def test_suite_size():
    assert sum(not c.correct for c in CASES) >= 20 and sum(c.correct for c in CASES) >= 6
    assert {c.metric for c in CASES if not c.correct} >= {"wasserstein", "class_conditional_wasserstein",
                                                          "joint_wasserstein", "sinkhorn", "gaussian_wasserstein",
                                                          "gaussian_kl", "mmd", "hinton_kd"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_mutant(case):
    row = evaluate(case)  # as many examples as the detection table (tests/mutants.py)
    if case.correct:
        assert row["flagged"] is False, row.get("report") or row["diagnosis"]
    else:
        assert row["flagged"] is True, row.get("report") or row["diagnosis"]
        if case.expect is not None:
            assert row["diagnosed"], f"expected {case.expect}; got: {row['diagnosis']}\n{row.get('report')}"
