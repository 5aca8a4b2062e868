"""The verification can fail: every planted error of ``planted_errors.PLANTED`` makes each check listed
for it fail (a smoke run exits 1, or a fast test raises)."""

from __future__ import annotations

import pytest

from planted_errors import PLANTED  # noqa: E402  (tests/verification is on sys.path under pytest)


@pytest.mark.parametrize("planted", PLANTED, ids=[p.name for p in PLANTED])
def test_planted_error_is_caught(planted, monkeypatch, tmp_path):
    if any("resnet" in c.label for c in planted.caught_by):
        pytest.importorskip("torchvision")
    planted.apply(monkeypatch)
    for i, check in enumerate(planted.caught_by):
        with pytest.raises((AssertionError, SystemExit)):
            check(tmp_path / str(i))


def test_the_list_covers_every_experiment_with_must_hold_claims():
    labels = " ".join(c.label for p in PLANTED for c in p.caught_by)
    for experiment in ("exact", "synthetic", "resnet"):
        assert f"verify {experiment} " in labels
    assert len(PLANTED) >= 12
