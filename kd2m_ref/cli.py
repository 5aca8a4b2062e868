"""The ``kd2m-ref`` command line: ``kd2m-ref --version``, ``kd2m-ref metrics``; later issues add
``check``, ``selftest``, ``verify`` and ``bench`` as subcommands here."""

from __future__ import annotations

import argparse
import os
import sys

from . import METRICS, __version__


def _metrics(args) -> int:
    for key, spec in METRICS.items():
        layers = "/".join(name for name, path in (("reference", spec.reference_path), ("torch", spec.torch_path),
                                                  ("oracle", spec.oracle_path)) if path)
        print(f"{key:40s} {spec.returns:22s} {layers}")
    return 0


def _repository_package(name: str):
    """Import a top-level package of the repository checkout (``verification``, ``benchmarks``: not
    installed with kd2m_ref)."""
    import importlib
    from pathlib import Path

    try:
        module = importlib.import_module(name)
        if getattr(module, "__file__", None) is not None:
            return module
        del sys.modules[name]  # a namespace package (e.g. a tests/verification folder on sys.path)
    except ImportError:
        pass
    root = Path(__file__).resolve().parent.parent
    if not (root / name / "__init__.py").is_file():
        raise SystemExit(f"this command needs the repository checkout: {name}/ lives at the repository root, "
                         "beside kd2m_ref/ (install with `pip install -e .` from a clone, or run from the "
                         "repository root)")
    sys.path.insert(0, str(root))
    return importlib.import_module(name)


def _verify(args) -> int:
    import importlib
    from pathlib import Path

    _repository_package("verification")
    if args.experiment == "resnet":
        return _verify_resnet(args)
    if args.profile == "standard":
        raise SystemExit("--profile standard is a profile of `verify resnet` only")
    runner = importlib.import_module(f"verification.run_{args.experiment}")
    command = f"kd2m-ref verify {args.experiment} --profile {args.profile} --seed {args.seed}" + (
        f" --out {args.out}" if args.out else "") + (f" --jobs {args.jobs}" if args.jobs > 1 else "")
    result = runner.run(profile=args.profile, seed=args.seed, out=Path(args.out) if args.out else None, command=command,
                        jobs=args.jobs)
    print(runner.summary(result))
    return 1 if result.get("chain_violations", 0) else 0


def _verify_resnet(args) -> int:
    """``kd2m-ref verify resnet``: the ResNet teacher -> student experiments."""
    from pathlib import Path

    from verification import run_resnet
    from verification.resnet.train import LOSSES

    losses = args.losses.split(",") if args.losses else None
    unknown = sorted(set(losses or ()) - set(LOSSES))
    if unknown:
        print(f"kd2m-ref: error: --losses: unknown loss(es) {unknown}; choose from {', '.join(LOSSES)}",
              file=sys.stderr)
        return 2
    resnet_options = ("profile", "seed", "out", "dataset", "root", "download", "device", "threads", "epochs",
                      "teacher_epochs", "n_seeds", "width", "losses", "fresh", "no_progress")
    options = {k: getattr(args, k) for k in resnet_options}
    command = "kd2m-ref verify resnet" + "".join(
        f" --{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in options.items()
        if v is not None and v is not False and not (k == "device" and v == "auto"))
    result = run_resnet.run(
        profile=args.profile, seed=args.seed, out=Path(args.out) if args.out else None,
        command=command, dataset=args.dataset, root=args.root,
        download=args.download, device=args.device, threads=args.threads, epochs=args.epochs,
        teacher_epochs=args.teacher_epochs, n_seeds=args.n_seeds, width=args.width,
        losses=losses, progress=not args.no_progress, fresh=args.fresh)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 reports
        print(run_resnet.summary(result))
    return 1 if result["checks"]["must_hold_violations"] else 0


def _add_resnet_options(verify) -> None:
    from .testing.commands import positive_int
    group = verify.add_argument_group("resnet only")
    group.add_argument("--dataset", choices=["mnist5k", "cifar10", "cifar100", "svhn"], default=None,
                       help="default: the profile's (mnist5k, embedded); full needs cifar10|cifar100|svhn")
    group.add_argument("--root", default=None, help="folder with torchvision's CIFAR/SVHN files")
    group.add_argument("--download", action="store_true", help="let torchvision download the dataset into --root")
    group.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (auto: cuda when available)")
    group.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: the profile's)")
    group.add_argument("--epochs", type=positive_int, default=None, help="override the students' epochs")
    group.add_argument("--teacher-epochs", type=positive_int, default=None, help="override the teacher's epochs")
    group.add_argument("--n-seeds", type=positive_int, default=None, help="override the number of student seeds")
    group.add_argument("--width", type=float, default=None, help="override the width multiplier")
    group.add_argument("--losses", default=None, help="comma-separated subset of the distillation losses")
    group.add_argument("--fresh", action="store_true", help="ignore checkpoints (default: resume)")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_verify(sub) -> None:
    from .testing.commands import positive_int

    verify = sub.add_parser("verify", help="check Lemma 1 / Theorem 3.1: exact discrete checks, synthetic populations")
    verify.add_argument("experiment", choices=["exact", "synthetic", "resnet"],
                        help="exact: the inequality chain on random discrete measures; synthetic: B1-B4; "
                             "resnet: teacher -> student with every loss, Theorem 3.1 on held-out data")
    verify.add_argument("--profile", choices=["smoke", "quick", "standard", "full"], default="quick",
                        help="quick: minutes on 2 CPU cores (make book); full: the committed run; smoke: tests "
                             "(resnet: standard = the committed CPU run, full = paper scale, GPU + CIFAR/SVHN)")
    verify.add_argument("--seed", type=int, default=0, help="random seed (same seed, same JSON)")
    verify.add_argument("--out", default=None, help="results folder (default verification/results/<profile>)")
    verify.add_argument("--jobs", type=positive_int, default=1, help="worker processes (exact only; results do not depend on it)")
    _add_resnet_options(verify)
    verify.set_defaults(func=_verify)


def _bench(argv: list[str]) -> int:
    """``kd2m-ref bench ...``: its options are those of ``benchmarks/run.py`` (forwarded as they are)."""
    _repository_package("benchmarks")
    from benchmarks import run

    return run.main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kd2m-ref", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"kd2m-ref {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("metrics", help="list the metric keys, what each returns and its layers").set_defaults(func=_metrics)
    _add_verify(sub)
    sub.add_parser("bench", help="speed, accuracy and memory against POT, GeomLoss and naive code (options: "
                                 "kd2m-ref bench --help)")
    from .testing.commands import add_commands  # check, selftest (the cross-check kit)

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
