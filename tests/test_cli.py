import subprocess
import sys

from kd2m_ref import METRICS, __version__
from kd2m_ref.cli import main


def test_version():
    out = subprocess.run([sys.executable, "-m", "kd2m_ref.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"kd2m-ref {__version__}"


def test_metrics_lists_every_key(capsys):
    assert main(["metrics"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == set(METRICS)


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def test_verify_usage_errors_exit_2(capsys):
    """Bad verify options are usage errors with the reason, before any experiment runs."""
    assert _exit_code(["verify", "exact", "--jobs", "0"]) == 2
    assert "--jobs: expected a positive integer, got 0" in capsys.readouterr().err
    assert _exit_code(["verify", "resnet", "--losses", "wasserstein,foo"]) == 2
    assert "unknown loss(es) ['foo']" in capsys.readouterr().err
    assert _exit_code(["verify", "synthetic", "--profile", "standard"]) == 2
    assert "synthetic has the profiles smoke, quick, full; got 'standard'" in capsys.readouterr().err
    assert _exit_code(["verify", "synthetic", "--jobs", "2"]) == 2
    assert "--jobs: only `verify exact` runs worker processes" in capsys.readouterr().err
    assert _exit_code(["verify", "exact", "--losses", "mmd"]) == 2
    assert "the options under 'resnet only' apply to `verify resnet`" in capsys.readouterr().err
