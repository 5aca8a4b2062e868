"""The cross-check kit: check(), its adapters, report and errors, the variant tables, the CLI and the
pytest plugin. The mutant suite is in test_mutants.py."""

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from kd2m_ref import METRICS, reference
from kd2m_ref.cli import main
from kd2m_ref.testing import CheckError, CheckInternalError, MismatchError, PrecisionLossWarning, check
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
    assert "counterexample" in str(err) and "p_th_root" in str(err)
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
            "covariance=full", "bandwidth=mean",  # rare in 30 draws (checked by hand)
            "sinkhorn(eps=0.01)", "sinkhorn_plan_cost(eps=0.01)",  # left out where max C / 0.01 > MAX_RATIO
            "transposed_cost",  # needs an asymmetric cost and histograms that differ: ~1 draw in 60
            "swapped"}  # differs only after a fixed number of iterations (checked by its mutant)
    if key == "joint_wasserstein":  # joint_example draws no weights; 'soft' equals 'onehot' on hard labels;
        rare |= {"ignores_weights", "label_cost=onehot", "label_cost=cross_entropy",  # CE needs teacher probabilities
                 "marginal"}  # equal wherever the optimal plan already pairs equal labels (differs ~1 draw in 10)
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


def test_small_error_over_a_zero_reference_is_diagnosed_in_words():
    """A failure of a few floors against a reference of exactly 0 (infinite relative error) is
    diagnosed in words, never a traceback (int(-log10(inf)) raised OverflowError once)."""
    from kd2m_ref.testing.check import Failure
    from kd2m_ref.testing.diagnosis import diagnose
    from kd2m_ref.testing.examples import Example
    from kd2m_ref.testing.precision import Floor

    ex = Example((np.zeros((2, 1)), np.zeros((2, 1))), {})
    failure = Failure(ex, value=1e-20, reference=0.0, rtol=0.0, atol=1e-21, floor=Floor(1e-21, 1e-22, (), 1e-21))
    message = diagnose(METRICS["wasserstein"], [failure], failure).message
    assert message.startswith("no convention: the largest error is 10 x the precision floor")


# ------------------------------------------------------------------------- verdicts and adapters

def test_torch_function_is_checked_in_float64_and_float32():
    report = check(lambda xs, xt: KD2MLoss("wasserstein", weight=1.0)(xs, xt), "wasserstein", max_examples=8)
    assert [r.dtype for r in report.runs] == ["float64", "float32"] and report.backend == "torch"
    assert all(r.examples > 0 for r in report.runs)


class _FeatureLossNeedingLabels(torch.nn.Module):
    """A KD module whose forward requires labels (and logits) although its distance is label-free."""

    def forward(self, f_s, f_t, labels, logits_s, logits_t):
        assert labels.shape == f_s.shape[:1] and logits_s.shape[0] == f_s.shape[0]
        kd = torch.nn.functional.mse_loss(logits_s, logits_t)  # zero fillers: 0
        return kd + KD2MLoss("wasserstein", weight=1.0)(f_s, f_t)


def test_module_that_requires_labels_and_logits_is_filled():
    report = check(_FeatureLossNeedingLabels(), "wasserstein", max_examples=8)
    assert report.examples > 0


def test_required_argument_that_cannot_be_filled_is_a_usage_error(tmp_path, monkeypatch, capsys):
    def masked(xs, xt, mask):
        return reference.wasserstein(xs[mask], xt)

    with pytest.raises(CheckError, match="requires 'mask'.*--argmap mask=<role>"):
        check(masked, "wasserstein")
    with pytest.raises(CheckError, match="unknown role 'nope'"):
        check(w_root, "wasserstein", argmap={"nope": "xs"})


def test_cli_argmap_and_internal_error(user_module, capsys, monkeypatch):
    (user_module / "mapped.py").write_text(textwrap.dedent("""
        from kd2m_ref import reference

        def kd(s_out, t_out, temp):
            return reference.hinton_kd(s_out, t_out, temperature=temp)

        def needs_mask(xs, xt, mask):
            return 0.0
    """))
    argv = ["check", "mapped:kd", "--metric", "hinton_kd", "--examples", "8"]
    assert _exit_code(argv + ["--argmap", "s_out=xs", "--argmap", "t_out=xt", "--argmap", "temp=temperature"]) == 0
    assert _exit_code(argv + ["--argmap", "s_out"]) == 2
    assert "--argmap expects NAME=ROLE" in capsys.readouterr().err
    assert _exit_code(["check", "mapped:needs_mask", "--metric", "wasserstein"]) == 2
    assert "requires 'mask'" in capsys.readouterr().err

    check_module = sys.modules["kd2m_ref.testing.check"]

    def broken(*args, **kwargs):  # a bug planted in the checker itself
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(check_module, "precision_floor", broken)
    with pytest.raises(CheckInternalError, match="internal error in kd2m-ref's checker"):
        check(w_root, "wasserstein", max_examples=3)
    assert _exit_code(argv + ["--argmap", "s_out=xs", "--argmap", "t_out=xt", "--argmap", "temp=temperature"]) == 2
    assert "ZeroDivisionError: planted" in capsys.readouterr().err


def _within_floor(xs, xt, p=2.0):
    """The reference plus an error between the reference-grade tolerance and the precision floor."""
    from kd2m_ref.testing.examples import Example
    from kd2m_ref.testing.precision import precision_floor
    from kd2m_ref.testing.tolerance import ot_tolerance

    ex = Example((np.asarray(xs, float), np.asarray(xt, float)), {"p": p})
    ref = reference.wasserstein(xs, xt, p=p)
    rtol, atol = ot_tolerance(ex, "float64")
    tol, floor = atol + rtol * abs(ref), precision_floor("wasserstein", ex, "float64", ref).error
    return ref + math.sqrt(tol * floor) if floor > 2 * tol else ref


def test_precision_loss_is_a_warning_and_strict_makes_it_a_failure(user_module, capsys):
    with pytest.warns(PrecisionLossWarning, match="conforms with precision loss"):
        report = check(_within_floor, "wasserstein", max_examples=30)
    assert report.verdict == "conforms, with precision loss" and report.findings
    assert report.findings[0].precision.floor.unit > 0
    with pytest.raises(MismatchError) as info:
        check(_within_floor, "wasserstein", max_examples=30, strict=True)
    assert info.value.kind == "precision" and info.value.diagnosis.kind == "precision"
    (user_module / "floor.py").write_text("from test_check import _within_floor\n")
    argv = ["check", "floor:_within_floor", "--metric", "wasserstein", "--examples", "30"]
    assert _exit_code(argv) == 0 and "precision loss" in capsys.readouterr().err
    assert _exit_code(argv + ["--strict"]) == 1


def test_no_cuda_is_a_check_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(CheckError, match="no CUDA device"):
        check(w_root, "wasserstein", device="cuda")


def test_constant_factor_needs_a_factor_measurably_not_one():
    """A relative error of 1e-13 on every failure is not "the reference times 1"."""
    from kd2m_ref.testing.check import Failure
    from kd2m_ref.testing.diagnosis import _factor
    from kd2m_ref.testing.examples import Example
    from kd2m_ref.testing.precision import Floor

    def fail(ref, factor):
        ex = Example((np.full((1, 1), ref), np.zeros((1, 1))), {})
        return Failure(ex, value=ref * factor, reference=ref, atol=1e-16, floor=Floor(1e-15 * ref, 1e-16, (), 1e-15))

    assert _factor([fail(1.0, 1 + 1e-13), fail(2.0, 1 + 1e-13)]) is None
    assert _factor([fail(1.0, 3.0), fail(2.0, 3.0)]) == pytest.approx(3.0)


def test_sinkhorn_inputs_stay_in_range_whatever_is_fixed():
    """epsilon / max C stays in [0.1, 1] when p or epsilon is fixed after drawing; without
    within_range (planted: the identity) the range is left."""
    from hypothesis import find

    from kd2m_ref.testing import strategies
    from kd2m_ref.testing.examples import Example

    def ratio(ex):
        xs, xt = ex.args
        cmax = float(np.max(np.sum((xs[:, None] - xt[None]) ** 2, -1) ** (ex.kwargs["p"] / 2)))
        return cmax / ex.kwargs["epsilon"] if cmax > 1e-2 else 1.0

    def fixed(ex, restore):
        out = Example(ex.args, {**ex.kwargs, "p": 2.0, "epsilon": 0.1}, ex.meta)
        return restore(out, {"p", "epsilon"})

    @settings(max_examples=60, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(strategies.sinkhorn_example())
    def in_range(ex):
        assert 1 - 1e-9 <= ratio(fixed(ex, strategies.within_range)) <= 10 + 1e-9

    in_range()
    out = find(strategies.sinkhorn_example(), lambda ex: ratio(fixed(ex, lambda e, f: e)) > 10,
               settings=settings(database=None, derandomize=True, max_examples=200))
    assert ratio(fixed(out, lambda e, f: e)) > 10
