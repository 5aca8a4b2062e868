"""Accuracy along a ladder of near-equal distributions: relative error against the 50-digit oracle.

Teacher features are the student's moved by delta = 1e-1 ... 1e-8 (a perturbation for the sample-based
metrics, ``xs (I + delta S) + delta`` for the Gaussian ones), so the true distance shrinks like
delta^2 while the features stay of size ~2 (not centred, as real post-ReLU features): the regime of a
student near its teacher, where cancellation shows. Every implementation receives torch tensors of
one dtype; the oracle is evaluated on the exact rounded inputs it received. Sinkhorn is not here: it
has no oracle (its truth is the float64 reference; the speed table records values side by side).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import torch

from kd2m_ref import oracle as O

from .impls import BANDWIDTH, N_PROJECTIONS, implementations

DELTAS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
POT_BURES_REG = 1e-6  # the ridge POT's empirical_bures_wasserstein_distance adds to both covariances


def _perturbed(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) + 2.0
    move = rng.standard_normal((n, d))
    for delta in DELTAS:
        yield delta, x, x + delta * move


def _affine(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) + 2.0
    sym = rng.standard_normal((d, d))
    sym = (sym + sym.T) / 2
    for delta in DELTAS:
        yield delta, x, x @ (np.eye(d) + delta * sym) + delta


# metric -> (label of the inputs, ladder, oracle(xs, xt) on float64 arrays)
LADDERS = {
    "wasserstein": ("n = 6, d = 8", lambda: _perturbed(6, 8, 0), O.wasserstein),
    "sliced_wasserstein": ("n = 16, d = 8", lambda: _perturbed(16, 8, 1),
                           lambda xs, xt: O.sliced_wasserstein(xs, xt, n_projections=N_PROJECTIONS)),
    "gaussian_wasserstein": ("n = 16, d = 8", lambda: _affine(16, 8, 2), O.gaussian_wasserstein),
    "gaussian_wasserstein_rank_deficient": ("n = 4 < d = 8", lambda: _affine(4, 8, 2), O.gaussian_wasserstein),
    "gaussian_kl": ("n = 32, d = 8", lambda: _affine(32, 8, 3), O.gaussian_kl),
    "mmd": ("n = 16, d = 8", lambda: _perturbed(16, 8, 4), lambda xs, xt: O.mmd(xs, xt, bandwidth=BANDWIDTH)),
}




def run(progress) -> list[dict]:
    rows = []
    for case in progress(list(LADDERS), desc="accuracy"):
        label, ladder, oracle = LADDERS[case]
        metric = "gaussian_wasserstein" if case.startswith("gaussian_wasserstein") else case
        for delta, xs64, xt64 in ladder():
            for dtype in (torch.float32, torch.float64):
                xs, xt = torch.tensor(xs64, dtype=dtype), torch.tensor(xt64, dtype=dtype)
                rs, rt = xs.double().numpy(), xt.double().numpy()  # the exact inputs received
                spread = float(np.sqrt(np.trace(np.cov(rs.T, bias=True)) + np.trace(np.cov(rt.T, bias=True))))
                with mp.workdps(50):
                    exact = float(oracle(rs, rt))
                for impl in implementations(metric):
                    oracle_value = exact
                    if metric == "gaussian_wasserstein" and impl.name == "pot":  # POT's distance is ridged
                        with mp.workdps(50):
                            oracle_value = float(O.gaussian_wasserstein(rs, rt, eps=POT_BURES_REG))
                    value = error = failure = None
                    try:
                        value = float(impl.fn(xs, xt))
                        error = abs(value - oracle_value) / abs(oracle_value)
                    except Exception as exc:  # noqa: BLE001 - e.g. a Cholesky that fails: recorded as such
                        failure = f"{type(exc).__name__}: {str(exc)[:120]}"
                    rows.append({"case": case, "metric": metric, "inputs": label, "delta": delta,
                                 "dtype": str(dtype).removeprefix("torch."), "implementation": impl.name,
                                 "value": value, "oracle": oracle_value, "rel_error": error, "failure": failure,
                                 "unit_roundoff": torch.finfo(dtype).eps / 2, "spread": spread})
    return rows


RESOLVED = 1e-2  # relative error under which a loss value still means what it says


def resolution(rows: list[dict]) -> dict:
    """Per case, implementation and dtype: the smallest delta of the ladder down to which the relative
    error stays <= 1e-2 (how close to its teacher a student can get with the loss still measuring the
    gap); None when even delta = 0.1 is not resolved."""
    out: dict = {}
    for key in dict.fromkeys((r["case"], r["implementation"], r["dtype"]) for r in rows):
        ladder = sorted((r for r in rows if (r["case"], r["implementation"], r["dtype"]) == key),
                        key=lambda r: -r["delta"])
        smallest = None
        for r in ladder:
            if r["rel_error"] is None or r["rel_error"] > RESOLVED:
                break
            smallest = r["delta"]
        out[" | ".join(key)] = smallest
    return out
