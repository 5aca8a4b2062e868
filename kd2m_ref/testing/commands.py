"""The cross-check kit's subcommands of ``kd2m-ref``: ``check`` and ``selftest``.

Exit codes of ``check``: 0 conforms (also with precision loss, reported as a warning on stderr;
``--strict`` makes that 1), 1 differs, 2 a usage or adapter problem (unknown key, import failure,
bad parameter, an argument that cannot be mapped, no CUDA device) or an internal error of the
checker, with the reason on stderr. ``selftest``: 0 all pass, 1 a metric fails, 2 usage error.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys


def _parse_value(text: str):
    """``name=value`` values: Python literals (numbers, True, None, 'str'), else the bare string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--examples 0`` or ``--jobs 0`` is a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def cuda_missing(device) -> str | None:
    """The reason a ``cuda`` device cannot be used here, or None."""
    if device is None or not str(device).startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return f"--device {device} requested but torch.cuda.is_available() is False (no CUDA device here)"
    return None


def _usage(message: str) -> int:
    print(f"kd2m-ref: error: {message}", file=sys.stderr)
    return 2


def _load(target: str):
    from ..registry import resolve

    if ":" not in target:
        raise ValueError(f"expected package.module:callable, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj = resolve(target)
    if isinstance(obj, type):  # a class (e.g. an nn.Module subclass): instantiate it without arguments
        obj = obj()
    if not callable(obj):
        raise TypeError(f"{target} is a {type(obj).__name__}, not a callable")
    return obj


def _argmap(items) -> dict:
    """``--argmap NAME=ROLE`` (repeatable) as check()'s ``{role: name}``; a NAME of digits is a position."""
    out = {}
    for item in items or []:
        name, eq, role = item.partition("=")
        if not eq or not name or not role:
            raise ValueError(f"--argmap expects NAME=ROLE, got {item!r}")
        out[role] = int(name) if name.isdigit() else name
    return out


def run_check(args) -> int:
    import warnings

    from ..registry import METRICS
    from .check import CheckError, MismatchError, PrecisionLossWarning, check

    if args.metric not in METRICS:
        return _usage(f"unknown metric {args.metric!r}; keys: {', '.join(METRICS)}")
    params = {}
    for item in args.param or []:
        name, eq, value = item.partition("=")
        if not eq or not name:
            return _usage(f"--param expects name=value, got {item!r}")
        params[name] = _parse_value(value)
    from .._conventions import check_params

    try:
        check_params(args.metric, **params)
        argmap = _argmap(args.argmap)
    except ValueError as exc:
        return _usage(f"--param: {exc}" if "argmap" not in str(exc) else str(exc))
    if cuda_missing(args.device):
        return _usage(cuda_missing(args.device))
    try:
        fn = _load(args.target)
    except Exception as exc:  # noqa: BLE001 - any import failure is a usage error, with its reason
        return _usage(f"cannot import {args.target}: {type(exc).__name__}: {exc}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrecisionLossWarning)  # printed below, with the report
            report = check(fn, args.metric, params=params, backend=args.backend, device=args.device,
                           max_examples=args.examples, dtype=args.dtype, argmap=argmap, strict=args.strict)
    except MismatchError as err:
        print(json.dumps(err.to_dict(), indent=1) if args.json else f"FAIL {args.target}\n{err}")
        return 1
    except CheckError as exc:
        return _usage(str(exc))
    print(json.dumps(report.to_dict(), indent=1) if args.json else f"OK {args.target}\n{report}")
    if report.findings:
        print(f"kd2m-ref: warning: {report.verdict}:\n{report.precision_message()}", file=sys.stderr)
    return 0


def run_selftest(args) -> int:
    from .selftest import format_table, selftest

    if cuda_missing(args.device):
        return _usage(cuda_missing(args.device))
    rows = selftest(args.metric or None, device=args.device, dtype=args.dtype, profile=args.profile,
                    max_examples=args.examples)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
    else:
        import torch

        print(f"kd2m-ref selftest: torch {torch.__version__}, device {args.device}, {args.dtype}, "
              f"profile {args.profile}")
        print(format_table(rows))
    return 0 if all(r.ok for r in rows) else 1


def add_commands(sub) -> None:
    """Register ``check`` and ``selftest`` on the ``kd2m-ref`` subparsers."""
    p = sub.add_parser("check", help="check your implementation of a metric against the reference")
    p.add_argument("target", help="package.module:callable (a function, an nn.Module instance or class)")
    p.add_argument("--metric", required=True, help="registry key (see `kd2m-ref metrics`)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a convention your function follows (repeatable), e.g. --param weights=prior")
    p.add_argument("--examples", type=positive_int, default=100, help="Hypothesis examples (default 100)")
    p.add_argument("--device", default=None, help="torch device of the inputs (default cpu)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float64", "float32"],
                   help="inputs' dtype (default auto: float64, then float32 for a torch function)")
    p.add_argument("--argmap", action="append", metavar="NAME=ROLE",
                   help="your argument NAME (or position) takes ROLE (repeatable): xs, xt, ys, yt, a, b, a "
                        "parameter of the metric, logits_student, logits_teacher, features_student, features_teacher")
    p.add_argument("--strict", action="store_true", help="precision loss (within the textbook floor) exits 1")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "numpy"])
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=run_check)
    s = sub.add_parser("selftest", help="run the package's torch-vs-reference comparison on your device")
    s.add_argument("--device", default="cpu")
    s.add_argument("--dtype", default="float32", choices=["float64", "float32"])
    s.add_argument("--profile", default="ci", choices=["ci", "deep"], help="ci: 40 examples per metric; deep: 2000")
    s.add_argument("--examples", type=positive_int, default=None, help="override the profile's examples per metric")
    s.add_argument("--metric", action="append", help="only this metric (repeatable)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_selftest)
