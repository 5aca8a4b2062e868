"""The repository stands alone: no tracked text file points the reader to a document that does not
ship with it, to a path that does not exist, or to an issue number of the project's tracker (a reader
of the code or the book has neither). External projects' issues are cited by URL."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT = (".py", ".md", ".json", ".yml", ".yaml", ".toml", ".cff", ".sh", ".txt", ".cfg", ".ini")
#: A document: a file a reader would open to read (these must ship with the repository).
DOCUMENT = re.compile(r"(?<![\w/.-])([\w-]+(?:\.[\w-]+)*\.(?:md|rst|cff|ipynb|pdf|tex))\b")
#: A path with a folder (``verification/results/full/exact.json``): it must exist, unless a folder is a
#: placeholder in capitals (``OUT/bench.json``).
PATH = re.compile(r"(?<![\w/.:<>-])((?:[\w.-]+/)+[\w-]+(?:\.[\w-]+)*\.(?:md|py|json|ya?ml|toml|cff|sh|txt|png|svg))\b")
#: "issue 7", "issues 3 and 4", "#12" (not a colour such as "#000000"), a section sign.
ISSUE = re.compile(r"\b[Ii]ssues?\s+#?\d+|(?<![\w&#/])#\d{1,4}\b|§")


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.split()


def problems(name: str, text: str, files: set[str]) -> list[str]:
    """What ``text`` (the content of tracked file ``name``) cites that a reader of the repository lacks."""
    basenames = {Path(f).name for f in files}
    here = (ROOT / name).parent
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{name}:{number}"
        found += [f"{where}: issue number or section sign {m.group(0)!r}" for m in ISSUE.finditer(line)]
        found += [f"{where}: document not in the repository {m.group(1)!r}" for m in DOCUMENT.finditer(line)
                  if m.group(1) not in basenames]
        if not name.startswith("tests/"):  # tests name the temporary files they write
            found += [f"{where}: no such path {m.group(1)!r}" for m in PATH.finditer(line)
                      if m.group(1) not in files and not (ROOT / m.group(1)).exists()
                      and not any(part.isupper() for part in m.group(1).split("/")[:-1])
                      and not (here / m.group(1)).exists() and "://" not in line[:m.start()]]
    return found


def test_no_reference_outside_the_repository():
    files = tracked_files()
    found = []
    this = str(Path(__file__).resolve().relative_to(ROOT))  # it spells out what it looks for
    for name in files:
        if name != this and (name.endswith(TEXT) or name in ("Makefile", ".ci/run")):
            found += problems(name, (ROOT / name).read_text(errors="replace"), set(files))
    assert not found, "references a reader of the repository cannot follow:\n" + "\n".join(found)


@pytest.mark.parametrize("planted, kind", [
    ("The proof is in HANDBOOK.md.", "document"),
    ("as CONTRACT.md says", "document"),
    ("see section 3 of the design (§3.2)", "section sign"),
    ("fixed in issue 7", "issue number"),
    ("as summarised in Issue #12", "issue number"),
    ("tracked in #41", "issue number"),
    ("the script benchmarks/gpu.sh runs it", "no such path"),
])
def test_planted_references_are_found(planted, kind):
    found = problems("kd2m_ref/example.py", f"x = 1\n# {planted}\n", set(tracked_files()))
    assert len(found) == 1 and kind in found[0], found


@pytest.mark.parametrize("fine", [
    "see book/theory.md and README.md",
    "colours #0072B2 and '#000000', POT's issue https://github.com/PythonOT/POT/issues/773",
    "the committed verification/results/full/exact.json",
    "saved as teacher.pt in the run folder",
])
def test_references_that_exist_pass(fine):
    assert problems("kd2m_ref/example.py", f"# {fine}\n", set(tracked_files())) == []
