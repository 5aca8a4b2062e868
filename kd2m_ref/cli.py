"""The ``kd2m-ref`` command line: ``--version``, ``metrics``, ``verify``, ``bench``, ``check``, ``selftest``."""

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
    """``kd2m-ref verify <experiment>``: run it, print its summary, exit 1 when a must-hold claim is violated."""
    from pathlib import Path

    verification = _repository_package("verification")
    module = verification.experiment(args.experiment)
    if args.profile not in module.PROFILES:
        print(f"kd2m-ref: error: --profile: {args.experiment} has the profiles {', '.join(module.PROFILES)}; "
              f"got {args.profile!r}", file=sys.stderr)
        return 2
    options = {}
    if args.experiment == "exact":
        options["jobs"] = args.jobs
    elif args.jobs > 1:
        print("kd2m-ref: error: --jobs: only `verify exact` runs worker processes", file=sys.stderr)
        return 2
    if args.experiment == "resnet":
        options = _resnet_options(args)
        if options is None:
            return 2
    elif any(getattr(args, k) not in (None, False, "auto", "ours") for k in RESNET_OPTIONS):
        print("kd2m-ref: error: the options under 'resnet only' apply to `verify resnet`", file=sys.stderr)
        return 2
    flags = {k: getattr(args, k) for k in RESNET_OPTIONS} if args.experiment == "resnet" else {"jobs": args.jobs}
    command = f"kd2m-ref verify {args.experiment} --profile {args.profile} --seed {args.seed}" + (
        f" --out {args.out}" if args.out else "") + "".join(
        f" --{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in flags.items()
        if v is not None and v is not False and not (k == "jobs" and v == 1) and v not in ("auto", "ours"))
    result = module.run(profile=args.profile, seed=args.seed, out=Path(args.out) if args.out else None,
                        command=command, **options)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 reports
        print(module.summary(result))
    bad = module.violations(result)
    if bad:
        print(f"kd2m-ref verify {args.experiment}: {bad} violation(s) of must-hold claims", file=sys.stderr)
    return 1 if bad else 0


RESNET_OPTIONS = ("dataset", "root", "download", "device", "threads", "epochs", "teacher_epochs", "n_seeds", "width",
                  "losses", "fresh", "no_progress", "recipe", "teacher_weights", "student_weights")


def _resnet_options(args) -> dict | None:
    """Keyword arguments of ``verification.resnet.run`` from the command line (None: a bad ``--losses``)."""
    from verification.resnet.train import LOSSES

    losses = args.losses.split(",") if args.losses else None
    unknown = sorted(set(losses or ()) - set(LOSSES))
    if unknown:
        print(f"kd2m-ref: error: --losses: unknown loss(es) {unknown}; choose from {', '.join(LOSSES)}",
              file=sys.stderr)
        return None
    options = {k: getattr(args, k) for k in RESNET_OPTIONS if k not in ("losses", "no_progress")}
    return {**options, "losses": losses, "progress": not args.no_progress}


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
    group.add_argument("--recipe", choices=["ours", "paper"], default="ours",
                       help="paper: the paper's ImageNet-stem ResNets, 15 epochs, lr 1e-2, lambda = 1e-4 for every loss")
    group.add_argument("--teacher-weights", default=None,
                       help="initial teacher weights (a torch.save'd state dict; torchvision ResNet-34 names accepted)")
    group.add_argument("--student-weights", default=None,
                       help="initial student weights (a torch.save'd state dict; torchvision ResNet-18 names accepted)")


def _add_verify(sub) -> None:
    from .testing.commands import positive_int

    verify = sub.add_parser("verify", help="run an experiment of the verification; exit 1 when a must-hold claim is "
                                           "violated")
    verify.add_argument("experiment", choices=["exact", "synthetic", "resnet", "distributed_bias", "crosscheck"],
                        help="exact: the inequality chain on random discrete measures; synthetic: B1-B4; "
                             "resnet: teacher -> student with every loss, Theorem 3.1 on held-out data; "
                             "distributed_bias: local-batch bias under data parallelism; crosscheck: the "
                             "cross-check kit against wrong and correct implementations")
    verify.add_argument("--profile", choices=["smoke", "quick", "standard", "full"], default="quick",
                        help="smoke: seconds (tests); quick: minutes on 2 CPU cores (make book); full: the committed "
                             "run (resnet: standard = the committed CPU run, full = paper scale, GPU + CIFAR/SVHN)")
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
    sub.add_parser("bench", help="speed, accuracy, memory and step cost against POT, GeomLoss and naive code (options: "
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
