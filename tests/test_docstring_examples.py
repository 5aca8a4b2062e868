"""The ``>>>`` examples of the docstrings run and print what they show (doctest, one test per module).

Each example runs as a reader would paste it: with empty globals, so it must import what it uses.
The book's API page shows these examples; ``test_api_entries_have_examples`` checks that every
function and class it documents has one.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import kd2m_ref

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
MODULES = ["kd2m_ref"] + sorted(m.name for m in pkgutil.walk_packages(kd2m_ref.__path__, "kd2m_ref."))
API_PAGE = Path(__file__).resolve().parents[1] / "book" / "api.md"
#: Entries of the API page whose docstring lives in a file without examples yet (each is shown in use
#: by the example named here). Remove a name once its docstring has an ``Examples`` section.
SHOWN_ELSEWHERE = {
    "kd2m_ref.torch.KD2MTerms": "KD2MLoss.total returns it (kd2m_ref/torch/loss.py)",
}


class _Finder(doctest.DocTestFinder):
    """doctest's finder, also taking the functions of a module that a decorator defined elsewhere wraps
    (``float32_for_low_precision`` in the torch layer, Hypothesis' ``st.composite`` in the strategies):
    doctest skips those, since their ``__globals__`` are the decorator's module."""

    def _from_module(self, module, obj):
        if inspect.isfunction(obj) and getattr(obj, "__module__", None) == module.__name__:
            return True
        return super()._from_module(module, obj)

    def _find_lineno(self, obj, source_lines):
        return super()._find_lineno(inspect.unwrap(obj) if inspect.isfunction(obj) else obj, source_lines)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name.startswith("kd2m_ref.torch"):
        pytest.importorskip("torch")
    module = importlib.import_module(name)
    tests = [t for t in _Finder(exclude_empty=True).find(module, name, globs={}) if t.examples]
    if any("torch" in e.source for t in tests for e in t.examples):  # torch is an optional dependency
        pytest.importorskip("torch")
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in sorted(tests, key=lambda t: t.name):
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples of {name} fail:\n" + "".join(report)


def _api_entries() -> list[str]:
    """Dotted names of the functions and classes the API page documents (``autofunction``/``autoclass``)."""
    text = API_PAGE.read_text()
    return re.findall(r"^\.\. auto(?:function|class|exception):: *([\w.]+)", text, flags=re.MULTILINE)


def _resolve(dotted: str):
    module, _, attr = dotted.rpartition(".")
    while module:
        try:
            obj = importlib.import_module(module)
            break
        except ImportError:
            module, _, head = module.rpartition(".")
            attr = f"{head}.{attr}"
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def test_api_entries_have_examples():
    pytest.importorskip("torch")
    entries = _api_entries()
    assert len(entries) > 50, "the API page's autodoc entries were not found"
    missing = [e for e in entries if ">>>" not in (inspect.getdoc(_resolve(e)) or "") and e not in SHOWN_ELSEWHERE]
    assert not missing, "API entries without an example in their docstring: " + ", ".join(missing)
    assert set(SHOWN_ELSEWHERE) <= set(entries), "SHOWN_ELSEWHERE names an entry the API page no longer has"
