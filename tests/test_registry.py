"""The registry is the single table: every spec resolves, and every listed property has a test."""

import subprocess
import sys

import pytest

from conftest import covered_properties
from kd2m_ref import METRICS

OT_KEYS = {"wasserstein", "class_conditional_wasserstein", "joint_wasserstein", "sinkhorn",
           "sinkhorn_divergence", "sliced_wasserstein"}


def test_ot_family_registered():
    assert OT_KEYS <= set(METRICS)


@pytest.mark.parametrize("key", sorted(METRICS))
def test_spec_resolves(key):
    spec = METRICS[key]
    assert spec.key == key
    for name in ("reference", "strategy", "tolerance"):
        assert callable(getattr(spec, name)), name
    assert spec.torch is None or callable(spec.torch)
    assert spec.oracle is None or callable(spec.oracle)
    assert spec.reference.__doc__ and spec.formula


@pytest.mark.parametrize("key", sorted(METRICS))
def test_every_listed_property_has_a_test(key):
    missing = {p for p in METRICS[key].properties if (key, p) not in covered_properties()}
    assert not missing, f"{key}: properties listed in the registry without a covers(...) test: {missing}"


def test_import_without_torch():
    """``kd2m_ref`` and ``kd2m_ref.reference`` must import with torch unavailable."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import kd2m_ref, kd2m_ref.reference, kd2m_ref.oracle\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "print(sorted(kd2m_ref.METRICS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def _cross_imports(source: str, other: str) -> list[str]:
    """The modules of ``kd2m_ref.<other>`` that a module of a sibling layer imports."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = ("kd2m_ref." if node.level == 2 else "") + (node.module or "")
            if module == f"kd2m_ref.{other}" or module.startswith(f"kd2m_ref.{other}."):
                found.append(module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(f"kd2m_ref.{other}")]
    return found


def test_layers_do_not_import_each_other():
    """reference/ and torch/ share rules through kd2m_ref._conventions only, never import each other."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "kd2m_ref"
    for layer, other in (("reference", "torch"), ("torch", "reference")):
        for path in (root / layer).glob("*.py"):
            assert _cross_imports(path.read_text(), other) == [], path
    # planted: the import the torch layer used to make is caught
    assert _cross_imports("from ..reference.sinkhorn import SinkhornNotConverged", "reference")
