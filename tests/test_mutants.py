"""The checker against the mutant suite (tests/mutants.py) and the gallery (tests/gallery.py): every
wrong implementation is flagged, with the expected diagnosis; every correct one conforms in float64
and float32 (a false alarm fails here)."""

import pytest

pytest.importorskip("torch")

from gallery import GALLERY  # noqa: E402  (tests/ is on sys.path under pytest's default import mode)
from mutants import CASES, evaluate, evaluate_gallery  # noqa: E402


def test_suite_size():
    assert len(CASES) >= 20 and all(not c.correct for c in CASES)
    assert {c.metric for c in CASES} >= {"wasserstein", "class_conditional_wasserstein", "joint_wasserstein",
                                         "sinkhorn", "gaussian_wasserstein", "gaussian_kl", "mmd", "hinton_kd"}
    families = {}
    for e in GALLERY:
        families[e.family] = families.get(e.family, 0) + 1
    assert set(families) == {"ot", "gaussian", "kernel", "logit"} and min(families.values()) >= 3


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_mutant(case):
    row = evaluate(case)  # as many examples as the detection table (tests/mutants.py)
    assert row["flagged"] is True, row.get("report") or row["diagnosis"]
    if case.expect is not None:
        assert row["diagnosed"], f"expected {case.expect}; got: {row['diagnosis']}\n{row.get('report')}"


@pytest.mark.parametrize("entry", GALLERY, ids=[e.name for e in GALLERY])
def test_gallery_conforms(entry):
    row = evaluate_gallery(entry)
    assert row["flagged"] is False, row.get("report") or row["diagnosis"]
