"""The checker against the mutant suite (verification/crosscheck/mutants.py) and the gallery
(verification/crosscheck/gallery.py): every
wrong implementation is flagged, with the expected diagnosis; every correct one conforms in float64
and float32 (a false alarm fails here)."""

import pytest

pytest.importorskip("torch")

from verification.crosscheck.gallery import GALLERY  # noqa: E402
from verification.crosscheck.mutants import CASES, evaluate, evaluate_gallery  # noqa: E402


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
    row = evaluate(case)  # as many examples as the committed detection table (verify crosscheck --profile full)
    assert row["flagged"] is True, row.get("report") or row["diagnosis"]
    if case.expect is not None:
        assert row["diagnosed"], f"expected {case.expect}; got: {row['diagnosis']}\n{row.get('report')}"


@pytest.mark.parametrize("entry", GALLERY, ids=[e.name for e in GALLERY])
def test_gallery_conforms(entry):
    row = evaluate_gallery(entry)
    assert row["flagged"] is False, row.get("report") or row["diagnosis"]


def test_verify_crosscheck_exits_1_on_a_miss_or_a_false_alarm(tmp_path, monkeypatch):
    """On a two-entry suite: 0 when the mutant is flagged and the gallery entry conforms; 1 when a
    correct implementation sits among the mutants (a miss) or a wrong one in the gallery (a false alarm)."""
    from kd2m_ref.cli import main
    from verification.crosscheck import gallery, mutants

    wrong = next(c for c in CASES if c.name == "w2_not_squared")
    right = next(e for e in GALLERY if e.metric == "wasserstein")
    monkeypatch.setattr(mutants, "CASES", [wrong])
    monkeypatch.setattr(gallery, "GALLERY", [right])
    args = ["verify", "crosscheck", "--profile", "smoke", "--out"]
    assert main(args + [str(tmp_path / "ok")]) == 0
    as_mutant = mutants.Case("correct_as_mutant", right.metric, right.fn, False, None, params=right.params)
    monkeypatch.setattr(mutants, "CASES", [as_mutant])
    assert main(args + [str(tmp_path / "miss")]) == 1
    monkeypatch.setattr(mutants, "CASES", [wrong])
    monkeypatch.setattr(gallery, "GALLERY", [gallery.Entry(wrong.name, wrong.metric, wrong.fn, family="ot")])
    assert main(args + [str(tmp_path / "false_alarm")]) == 1
