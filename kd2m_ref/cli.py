"""The ``kd2m-ref`` command line: ``kd2m-ref --version``, ``kd2m-ref metrics``; later issues add
``check``, ``selftest``, ``verify`` and ``bench`` as subcommands here."""

from __future__ import annotations

import argparse
import sys

from . import METRICS, __version__


def _metrics(args) -> int:
    for key, spec in METRICS.items():
        layers = "/".join(name for name, path in (("reference", spec.reference_path), ("torch", spec.torch_path),
                                                  ("oracle", spec.oracle_path)) if path)
        print(f"{key:40s} {spec.returns:22s} {layers}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kd2m-ref", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"kd2m-ref {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("metrics", help="list the metric keys, what each returns and its layers").set_defaults(func=_metrics)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
