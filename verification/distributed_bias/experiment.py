r"""Local-batch bias under data parallelism: the distance of each process's shard vs the global batch.

With ``W`` processes, DDP and ``KD2MLoss(sync="none")`` optimise the mean of the per-shard distances
:math:`\frac1W\sum_r D(\text{shard}_r)`, ``sync="global"`` the distance of the whole batch. This
script simulates the shards in one process (the same math; no process group): for ``R`` global
batches of ``N`` paired student/teacher features drawn from class-conditional Gaussians, it records
both estimates for ``W`` = 1, 2, 4, ... and the population value (closed form) that both estimate
as the batch grows. Output: ``distributed_bias.json`` and ``distributed_bias.png`` in the results
folder. ``kd2m-ref verify distributed_bias --profile quick``.

Must hold (counted by :func:`violations`): the control ``hinton_kd``, a mean of per-sample terms,
gives the same value from equal shards as from the whole batch. The bias of the batch-level
distances is the finding, reported as data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kd2m_ref.reference import gaussian_wasserstein_from_moments

from .. import RESULTS_DIR
from ..results import Timer, figure_setup, provenance, write_json

PROFILES = {"smoke": 4, "quick": 100, "full": 400}  # global batches per point
BATCH, DIM, CLASSES = 128, 8, 10
PROCESSES = (1, 2, 4, 8, 16, 32)
METRICS = {"gaussian_wasserstein": {}, "class_conditional_wasserstein": {"p": 2.0, "weights": "uniform"},
           "hinton_kd": {"temperature": 4.0}}


def populations(rng: np.random.Generator) -> dict:
    """Teacher and student class-conditional Gaussians (means, covariances), uniform class prior, and a
    fixed linear head that turns features into logits (for the ``hinton_kd`` control)."""
    mean_t = 2.0 * rng.standard_normal((CLASSES, DIM))
    mean_s = mean_t + 0.5 * rng.standard_normal((CLASSES, DIM))

    def covariance():
        a = rng.standard_normal((DIM, DIM)) / np.sqrt(DIM)
        return a @ a.T + 0.25 * np.eye(DIM)

    return {"mean_s": mean_s, "mean_t": mean_t, "cov_s": np.stack([covariance() for _ in range(CLASSES)]),
            "cov_t": np.stack([covariance() for _ in range(CLASSES)]),
            "head": rng.standard_normal((DIM, CLASSES)) / np.sqrt(DIM)}


def population_values(pop: dict) -> dict:
    """What the estimators tend to as N grows: W2^2 between the moment-matched Gaussians of the two
    mixtures (gaussian_wasserstein), the mean over classes of the class W2^2 (class_conditional)."""
    def moments(means, covs):
        m = means.mean(0)
        second = np.mean([c + np.outer(mu, mu) for mu, c in zip(means, covs)], axis=0)
        return m, second - np.outer(m, m)

    ms, cs = moments(pop["mean_s"], pop["cov_s"])
    mt, ct = moments(pop["mean_t"], pop["cov_t"])
    per_class = [gaussian_wasserstein_from_moments(pop["mean_s"][c], pop["mean_t"][c], pop["cov_s"][c],
                                                   pop["cov_t"][c]) for c in range(CLASSES)]
    return {"gaussian_wasserstein": gaussian_wasserstein_from_moments(ms, mt, cs, ct),
            "class_conditional_wasserstein": float(np.mean(per_class)), "hinton_kd": None}


def draw_batch(pop: dict, rng: np.random.Generator):
    """N i.i.d. inputs (labels uniform) with their student and teacher features: one shuffled global batch."""
    labels = rng.integers(0, CLASSES, BATCH)
    chol_s = np.linalg.cholesky(pop["cov_s"])
    chol_t = np.linalg.cholesky(pop["cov_t"])
    zs = pop["mean_s"][labels] + np.einsum("nij,nj->ni", chol_s[labels], rng.standard_normal((BATCH, DIM)))
    zt = pop["mean_t"][labels] + np.einsum("nij,nj->ni", chol_t[labels], rng.standard_normal((BATCH, DIM)))
    return zs, zt, labels


def estimates(losses: dict, zs, zt, labels, head) -> dict:
    """``{key: {W: mean over shards of D(shard)}}``; W = 1 is the global estimate. Shards are the
    DistributedSampler's: rank r takes rows r, r + W, r + 2W, ..."""
    import torch

    zs, zt, y = torch.as_tensor(zs), torch.as_tensor(zt), torch.as_tensor(labels)
    head = torch.as_tensor(head)
    out = {}
    with torch.no_grad():
        for key, loss in losses.items():
            out[key] = {}
            for w in PROCESSES:
                values = [loss.distance(zs[r::w], zt[r::w], y[r::w], zs[r::w] @ head, zt[r::w] @ head)
                          for r in range(w)]
                out[key][w] = float(torch.stack(values).mean())
    return out


#: Largest |local - global| of the per-sample-mean control (float64 means of 128 terms: roundoff ~1e-16).
CONTROL_ATOL = 1e-12


def run(profile: str = "quick", seed: int = 0, out: Path | None = None, command: str | None = None) -> dict:
    """Simulate ``PROFILES[profile]`` global batches; write the JSON and the figure; return the payload."""
    import torch

    from kd2m_ref.torch import KD2MLoss

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}; got {profile!r}")
    out = Path(out) if out is not None else RESULTS_DIR / profile
    command = command or f"kd2m-ref verify distributed_bias --profile {profile} --seed {seed}"
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    pop = populations(rng)
    losses = {key: KD2MLoss(key, weight=1.0, **params) for key, params in METRICS.items()}
    with Timer() as timer:
        runs = [estimates(losses, *draw_batch(pop, rng), pop["head"]) for _ in range(PROFILES[profile])]
    population = population_values(pop)
    results = {}
    for key in METRICS:
        table = np.array([[r[key][w] for w in PROCESSES] for r in runs])  # (batches, W)
        local = table.mean(0)
        results[key] = {
            "params": METRICS[key],
            "population": population[key],
            "global_mean": float(local[0]),
            "local_mean": local.tolist(),
            "local_sem": (table.std(0, ddof=1) / np.sqrt(len(table))).tolist() if len(table) > 1 else None,
            "relative_bias": (local / local[0] - 1.0).tolist(),
            "max_abs_local_minus_global": float(np.abs(table - table[:, :1]).max()),
        }
    payload = {
        "experiment": "distributed_bias",
        "description": "mean over shards of D(shard) (local, what DDP with sync='none' optimises) vs D(global batch) "
                       "(sync='global'; the W = 1 entry), shards as DistributedSampler's (rank r: rows r::W)",
        "setup": {"batch": BATCH, "dim": DIM, "classes": CLASSES, "processes": list(PROCESSES),
                  "batches": PROFILES[profile], "features": "class-conditional Gaussians, labels uniform",
                  "logits": "features @ fixed head (hinton_kd: a mean of per-sample terms, the control)"},
        "metrics": results,
        "control": {"metric": "hinton_kd", "atol": CONTROL_ATOL,
                    "holds": results["hinton_kd"]["max_abs_local_minus_global"] <= CONTROL_ATOL},
        "provenance": provenance(command=command, profile=profile, seed=seed, wall_time_s=timer.seconds),
    }
    write_json(out / "distributed_bias.json", payload)
    figures(payload, out)
    return payload


def figure(payload: dict):
    """The local-batch estimate (mean over shards of D(shard), with its standard error) against the
    number of processes W, beside the global estimate D(batch) and the population value, one panel per
    metric; the book's style (:mod:`verification.plotting`). Returns the figure."""
    import matplotlib.ticker

    from ..plotting import COLORS, WIDTH, use_style

    plt = figure_setup()
    use_style()
    w = payload["setup"]["processes"]
    keys = ("gaussian_wasserstein", "class_conditional_wasserstein")
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.7), layout="constrained")
    for ax, key in zip(axes, keys):
        r = payload["metrics"][key]
        ax.errorbar(w, r["local_mean"], yerr=r["local_sem"], color=COLORS[3], marker="o", ms=5, ls="-",
                    label="local: mean of D(shard), sync='none'")
        ax.axhline(r["global_mean"], color=COLORS[0], ls="--", lw=1.5, label="global: D(batch), sync='global'")
        ax.axhline(r["population"], color="black", ls=":", lw=1.5, label="population value")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(w, [str(v) for v in w])
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="x", which="minor", bottom=False)
        ax.set_xlabel("processes W")
        ax.set_title(f"{key}")
    axes[0].set_ylabel(f"estimate (global batch {payload['setup']['batch']})")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2)
    return fig


def figures(payload: dict, out: Path) -> Path:
    """``distributed_bias.png``: :func:`figure`."""
    path = Path(out) / "distributed_bias.png"
    fig = figure(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def violations(payload: dict) -> int:
    """1 when the per-sample-mean control differs between shards and the whole batch, else 0."""
    return 0 if payload["control"]["holds"] else 1


def summary(payload: dict) -> str:
    c = payload["control"]
    lines = [f"verify distributed_bias: {payload['setup']['batches']} batches of {payload['setup']['batch']}; "
             f"control {c['metric']} local = global: {'holds' if c['holds'] else 'VIOLATED'}"]
    for key, r in payload["metrics"].items():
        bias = ", ".join(f"W={w}: {b:+.1%}" for w, b in zip(payload["setup"]["processes"], r["relative_bias"]))
        lines.append(f"  {key}: {bias}")
    return "\n".join(lines)
