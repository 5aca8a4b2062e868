"""Committed results are pinned to clean code: each result file names a commit, written from a clean
tree, that is in this repository's history and contains the code that wrote the file."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Committed result files (patterns) and the code that writes them.
WRITERS = {
    "verification/results/*/exact.json": "verification/exact/experiment.py",
    "verification/results/*/synthetic.json": "verification/synthetic/experiment.py",
    "verification/results/*/distributed_bias.json": "verification/distributed_bias/experiment.py",
    "verification/results/*/crosscheck.json": "verification/crosscheck/experiment.py",
    "verification/results/*/resnet/*/*.json": "verification/resnet/experiment.py",
    "verification/results/*/resnet/*/runs/*.json": "verification/resnet/experiment.py",
    "verification/results/*/resnet/*/runs/*/*.json": "verification/resnet/experiment.py",
    "benchmarks/results/*/bench.json": "benchmarks/run.py",
    "benchmarks/results/precision_floor.json": "benchmarks/precision_floor.py",
}


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def writer_of(path: str) -> str | None:
    return next((code for pattern, code in WRITERS.items() if fnmatch.fnmatch(path, pattern)), None)


def problems(path: str, provenance: dict, has_file_at=None) -> list[str]:
    """Why the result file ``path`` with this ``provenance`` is not pinned to clean code (empty: it is).
    ``has_file_at(rev, file)`` says whether commit ``rev`` contains ``file`` and is an ancestor of HEAD."""
    has_file_at = has_file_at or _has_file_at
    code = writer_of(path)
    if code is None:
        return [f"{path}: no writer known (add it to WRITERS in tests/test_results_pinned.py)"]
    rev = provenance.get("git_revision")
    out = []
    if not (isinstance(rev, str) and re.fullmatch(r"[0-9a-f]{40}", rev)):
        return [f"{path}: no commit named (git_revision {rev!r})"]
    dirty = provenance["git_dirty"] if "git_dirty" in provenance else not provenance.get("tree_clean", False)
    if dirty is not False:
        out.append(f"{path}: written from a tree with uncommitted changes (git_dirty {dirty!r})")
    if not has_file_at(rev, code):
        out.append(f"{path}: commit {rev[:10]} is not in this history or lacks {code}, the code that wrote it")
    return out


def _has_file_at(rev: str, file: str) -> bool:
    return (_git("merge-base", "--is-ancestor", rev, "HEAD").returncode == 0
            and _git("cat-file", "-e", f"{rev}:{file}").returncode == 0)


def committed_results() -> list[str]:
    listed = _git("ls-files", "verification/results", "benchmarks/results")
    return [p for p in listed.stdout.split() if p.endswith(".json")]


needs_git = pytest.mark.skipif(_git("rev-parse", "HEAD").returncode != 0 or
                               _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true",
                               reason="needs a full git clone (the results name commits of its history)")


@needs_git
def test_every_committed_result_names_a_clean_commit_with_its_code():
    paths = committed_results()
    assert paths, "no committed result files found"
    bad = [msg for p in paths for msg in problems(p, json.loads((ROOT / p).read_text()).get("provenance", {}))]
    assert not bad, "\n".join(bad)


def test_the_check_fails_on_a_dirty_tree_a_foreign_commit_or_missing_code():
    ok = lambda rev, file: True  # noqa: E731
    clean = {"git_revision": "a" * 40, "git_dirty": False}
    assert problems("verification/results/full/exact.json", clean, ok) == []
    assert problems("verification/results/full/exact.json", {**clean, "git_dirty": True}, ok)
    assert problems("benchmarks/results/precision_floor.json", {"git_revision": "a" * 40, "tree_clean": False}, ok)
    assert problems("verification/results/full/exact.json", clean, lambda rev, file: False)
    assert problems("verification/results/full/exact.json", {"git_dirty": False}, ok)
    assert problems("verification/results/full/unknown.json", clean, ok)


@needs_git
def test_a_commit_before_the_writer_existed_is_refused():
    first = _git("rev-list", "--max-parents=0", "HEAD").stdout.split()[0]
    assert not _has_file_at(first, "verification/exact/experiment.py")
    assert _has_file_at(_git("rev-parse", "HEAD").stdout.strip(), "README.md")
