"""The cross-check kit: check(), its adapters, report and errors, the variant tables, the CLI and the
pytest plugin. The mutant suite is in test_mutants.py."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from kd2m_ref import METRICS, reference
from kd2m_ref.cli import main
from kd2m_ref.testing import CheckError, MismatchError, check
from kd2m_ref.testing.variants import evaluate

torch = pytest.importorskip("torch")
from kd2m_ref.torch import KD2MLoss  # noqa: E402


def w_root(xs, xt, p=2.0):
    return reference.wasserstein(xs, xt, p=p) ** (1 / p)


def test_correct_function_returns_a_report():
    report = check(lambda xs, xt, a=None, b=None, p=2.0: reference.wasserstein(xs, xt, a=a, b=b, p=p),
                   "wasserstein", max_examples=10)
    assert report.backend == "numpy" and report.examples >= 5
    assert 0 <= report.worst_ratio <= 1
    assert json.loads(json.dumps(report.to_dict()))["conforms"] is True


def test_mismatch_error_carries_everything():
    with pytest.raises(MismatchError) as info:
        check(w_root, "wasserstein", max_examples=10)
    err = info.value
    assert isinstance(err, AssertionError)
    assert err.abs_error > err.tolerance and err.rel_error > 0
    assert np.isclose(err.value, w_root(*err.example.args, **err.example.kwargs))
    assert np.isclose(err.reference, reference.wasserstein(*err.example.args, **err.example.kwargs))
    assert [n for n, _ in err.diagnosis.matches] == ["p_th_root"]
    assert "minimal counterexample" in str(err) and "p_th_root" in str(err)
    assert json.loads(json.dumps(err.to_dict()))["diagnosis"]["matches"] == ["p_th_root"]


def test_constant_factor_is_reported():
    with pytest.raises(MismatchError) as info:
        check(lambda logits_student, logits_teacher: 3 * reference.hinton_kd(logits_student, logits_teacher),
              "hinton_kd", max_examples=20)
    assert info.value.diagnosis.kind == "factor" and "times 3" in info.value.diagnosis.message


def test_exception_is_a_failure_with_the_reason():
    def broken(xs, xt):
        raise RuntimeError("boom")

    with pytest.raises(MismatchError) as info:
        check(broken, "wasserstein", max_examples=5)
    assert info.value.kind == "exception" and "RuntimeError: boom" in str(info.value)


def test_module_style_forward():
    """forward(features_student, features_teacher, labels, logits_student, logits_teacher)."""
    report = check(KD2MLoss("hinton_kd", weight=1.0, temperature=4.0), "hinton_kd", params={"temperature": 4.0},
                   max_examples=8)
    assert report.backend == "torch" and report.gradient_examples > 0 and report.equality_examples > 0
    with pytest.raises(MismatchError) as info:  # the paper's code sums the classes; the default is uniform
        check(KD2MLoss("class_conditional_wasserstein", weight=1.0, weights="sum"), "class_conditional_wasserstein",
              max_examples=20)
    assert "weights=sum" in [n for n, _ in info.value.diagnosis.matches]


def test_explicit_argmap():
    def kd(s_out, t_out, temp):
        return reference.hinton_kd(s_out, t_out, temperature=temp)

    report = check(kd, "hinton_kd", argmap={"xs": "s_out", "xt": "t_out", "temperature": "temp"},
                   params={"direction": "teacher_student"}, max_examples=10)
    assert report.examples >= 5 and "temperature" not in report.fixed
    report = check(lambda *z: reference.hinton_kd(z[0], z[1]), "hinton_kd", argmap={"xs": 0, "xt": 1},
                   max_examples=5)
    assert report.fixed == {"temperature": 1.0, "direction": "teacher_student"}


def test_labels_taken_by_name_or_position():
    def cc(fs, ft, targets):
        return reference.class_conditional_wasserstein(fs, ft, ys=targets)

    assert check(cc, "class_conditional_wasserstein", max_examples=10).examples >= 5
    with pytest.raises(CheckError, match="needs labels"):
        check(lambda xs, xt: 0.0, "class_conditional_wasserstein")


def test_usage_errors():
    with pytest.raises(CheckError, match="unknown metric"):
        check(w_root, "nope")
    with pytest.raises(CheckError, match="no parameter"):
        check(w_root, "wasserstein", params={"q": 1})


def test_detached_student_is_caught():
    def detached(fs, ft):
        return KD2MLoss("mmd", weight=1.0)(fs.detach(), ft) + 0 * ft.sum()

    with pytest.raises(MismatchError) as info:
        check(detached, "mmd", max_examples=10)
    assert info.value.kind == "gradient_missing"


@pytest.mark.parametrize("key", sorted(METRICS))
def test_every_variant_runs_and_differs_somewhere(key):
    """Each registered variant evaluates without error on the metric's inputs and differs from the
    metric on at least one of them (a variant equal to the metric would diagnose nothing)."""
    spec = METRICS[key]
    variants = spec.variants
    assert variants, f"no convention variants registered for {key}"
    differs = set()

    @settings(max_examples=30, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(spec.strategy())
    def run(ex):
        try:
            ref = ex.call(spec.reference)
        except ValueError:
            return
        todo = {n: v for n, v in variants.items() if n not in differs}  # each variant until it differs once
        for name, value in evaluate(key, todo, ex).items():
            if abs(value - ref) > 1e-9 * max(1.0, abs(ref)):
                differs.add(name)

    run()
    rare = {"swapped_weights", "weights=1/num_classes", "epsilon=blur^p", "bandwidth_as_gamma", "T2_without_tempering",
            "teacher_untempered", "paired_unbiased", "bandwidth_mean_off_diagonal", "ridge_1e-6", "pot_ridge_1e-6",
            "wkd_ridge_1e-5", "bandwidth_as_variance", "onehot_without_factor_2", "label_cost=soft",
            "direction=student_teacher", "direction=teacher_student",  # differ only when drawn with the other direction
            "covariance=full", "bandwidth=mean"}  # rare in 30 draws (checked by hand)
    if key == "joint_wasserstein":  # joint_example draws no weights; 'soft' equals 'onehot' on hard labels;
        rare |= {"ignores_weights", "label_cost=onehot", "label_cost=cross_entropy"}  # CE needs teacher probabilities
    missing = set(variants) - differs - rare
    assert not missing, f"{key}: variants never different from the metric in 30 examples: {sorted(missing)}"


# ---------------------------------------------------------------------------------------------- CLI

@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_losses.py").write_text(textwrap.dedent("""
        import torch.nn.functional as F

        def kd(logits_student, logits_teacher, T=1.0):
            return F.kl_div(F.log_softmax(logits_student / T, 1), F.log_softmax(logits_teacher / T, 1),
                            log_target=True, reduction="batchmean") * T * T

        def kd_no_t2(logits_student, logits_teacher, T=1.0):
            return kd(logits_student, logits_teacher, T) / T ** 2
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_cli_check_exit_codes(user_module, capsys):
    assert main(["check", "my_losses:kd", "--metric", "hinton_kd", "--examples", "10"]) == 0
    assert "conforms" in capsys.readouterr().out
    assert main(["check", "my_losses:kd_no_t2", "--metric", "hinton_kd", "--examples", "10", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["conforms"] is False and "missing_T2" in out["diagnosis"]["matches"]
    assert main(["check", "my_losses:kd", "--metric", "bogus"]) == 2
    assert "unknown metric" in capsys.readouterr().err
    assert main(["check", "my_losses:absent", "--metric", "hinton_kd"]) == 2
    assert "cannot import my_losses:absent" in capsys.readouterr().err
    assert main(["check", "my_losses:kd", "--metric", "hinton_kd", "--param", "nope=1"]) == 2


def test_cli_param_values_are_parsed(user_module, capsys):
    code = main(["check", "my_losses:kd", "--metric", "hinton_kd", "--examples", "10", "--param",
                 "direction=student_teacher"])
    assert code == 1 and "direction=teacher_student" in capsys.readouterr().out


def test_cli_selftest_table(capsys):
    assert main(["selftest", "--metric", "hinton_kd", "--metric", "wasserstein", "--examples", "8"]) == 0
    out = capsys.readouterr().out
    assert "hinton_kd" in out and "wasserstein" in out and "FAIL" not in out


def test_pytest_plugin_fixture(user_module):
    (user_module / "test_user.py").write_text(textwrap.dedent("""
        from my_losses import kd, kd_no_t2

        def test_ok(kd2m_check):
            kd2m_check(kd, "hinton_kd")

        def test_bad(kd2m_check):
            kd2m_check(kd_no_t2, "hinton_kd")
    """))
    from importlib.metadata import entry_points

    installed = any(ep.value == "kd2m_ref.testing.plugin" for ep in entry_points(group="pytest11"))
    load = [] if installed else ["-p", "kd2m_ref.testing.plugin"]  # before `pip install -e .` picks up pyproject
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", *load, "-p", "no:cacheprovider",
                          "--kd2m-examples", "8", "test_user.py"], capture_output=True, text=True, cwd=user_module)
    assert "1 failed, 1 passed" in out.stdout, out.stdout + out.stderr
    assert "missing_T2" in out.stdout


def _exit_code(argv):
    """main()'s return value, or the code of argparse's SystemExit."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("argv, message", [
    (["--examples", "0"], "--examples: expected a positive integer, got 0"),
    (["--param", "temperature=-1"], "--param: temperature must be a finite positive"),
    (["--param", "direction=foo"], "--param: direction must be one of"),
    (["--device", "cuda"], "no CUDA device here"),
])
def test_cli_check_usage_errors_exit_2(user_module, capsys, argv, message):
    """Bad options are usage errors (exit 2, the reason on stderr), never a traceback or a verdict."""
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("a CUDA device is present: --device cuda is valid here")
    assert _exit_code(["check", "my_losses:kd", "--metric", "hinton_kd", *argv]) == 2
    assert message in capsys.readouterr().err


def test_precision_diagnosis_when_the_reference_is_zero():
    """A non-gross failure against a reference of exactly 0 (infinite relative error) is diagnosed in
    words; it raised OverflowError (int(-log10(inf))) before."""
    from kd2m_ref.testing.check import Failure, diagnose
    from kd2m_ref.testing.examples import Example

    ex = Example((np.zeros((2, 1)), np.zeros((2, 1))), {})
    failure = Failure(ex, value=1e-20, reference=0.0, rtol=0.0, atol=1e-21)
    assert "the reference is exactly 0 and your value is 1e-20" in diagnose(METRICS["wasserstein"], [failure]).message
