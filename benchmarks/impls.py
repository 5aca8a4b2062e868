"""The implementations compared, per metric key: ours (``kd2m_ref.torch``), the peers (POT, GeomLoss)
and the naive code a researcher would write by hand. Each is ``fn(xs, xt) -> 0-d tensor`` computing
the quantity of *our* convention (squared distances, MMD^2, ...), so values and errors compare directly.

Conventions bridged here, once: POT's Bures and sliced distances return W2 (we square them); GeomLoss's
``p=2`` cost is |x-y|^2 / 2 (so ``blur = sqrt(eps / 2)`` and the value is doubled) and its kernel
losses are MMD^2 / 2 (doubled). POT's ``empirical_sinkhorn_divergence`` uses the linear cost of the
entropic plan, not OT_eps: it is timed, but its value is not our quantity (``same_quantity=False``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from kd2m_ref import torch as T
from kd2m_ref.reference.wasserstein import sliced_projections

EPSILON = 0.1  # Sinkhorn epsilon for features scaled to unit norm (cost |x - y|^2 of order 2)
BANDWIDTH = 1.0  # MMD Gaussian kernel bandwidth sigma: k = exp(-|x - y|^2 / (2 sigma^2))
N_PROJECTIONS = 50
NAIVE_SINKHORN_ITERS = 100


@dataclass(frozen=True)
class Impl:
    name: str  # "ours", "pot", "geomloss", "naive", with a suffix when one library appears twice
    library: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    note: str = ""
    same_quantity: bool = True  # False: timed only, its value is another convention
    equal_sizes_only: bool = False


def _uniform(x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=x.dtype, device=x.device)


def _theta(d: int, like: torch.Tensor) -> torch.Tensor:
    """The (d, K) projection directions shared by every sliced implementation (ours are seeded)."""
    return torch.as_tensor(sliced_projections(d, N_PROJECTIONS, 0).T, dtype=like.dtype, device=like.device)


def _moments(x: torch.Tensor):
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / x.shape[0]


# ------------------------------------------------------------------------------------------ naive code

def naive_wasserstein(xs, xt):
    """cdist squared + scipy's Hungarian assignment (uniform weights, n == m)."""
    from scipy.optimize import linear_sum_assignment

    cost = torch.cdist(xs, xt) ** 2
    rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
    return cost[torch.as_tensor(rows), torch.as_tensor(cols)].mean()


def _naive_entropic(x, y, eps):
    """Kernel-domain Sinkhorn, fixed iterations, autograd through the loop; OT_eps by the dual formula."""
    cost = torch.cdist(x, y) ** 2
    kernel = torch.exp(-cost / eps)
    a, b = _uniform(x), _uniform(y)
    v = torch.ones_like(b)
    for _ in range(NAIVE_SINKHORN_ITERS):
        u = a / (kernel @ v)
        v = b / (kernel.T @ u)
    return eps * ((a * torch.log(u / a)).sum() + (b * torch.log(v / b)).sum())


def naive_sinkhorn_divergence(xs, xt, eps):
    return _naive_entropic(xs, xt, eps) - 0.5 * _naive_entropic(xs, xs, eps) - 0.5 * _naive_entropic(xt, xt, eps)


def naive_sliced(xs, xt):
    theta = _theta(xs.shape[1], xs)
    ps, _ = torch.sort(xs @ theta, dim=0)
    pt, _ = torch.sort(xt @ theta, dim=0)
    return ((ps - pt) ** 2).mean()


def _sqrtm_eigh(c):
    vals, vecs = torch.linalg.eigh(c)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def naive_gaussian_wasserstein(xs, xt):
    """Textbook Bures: |ms - mt|^2 + tr Cs + tr Ct - 2 tr (Cs^1/2 Ct Cs^1/2)^1/2, square roots by eigh."""
    ms, cs = _moments(xs)
    mt, ct = _moments(xt)
    root = _sqrtm_eigh(cs)
    cross = torch.linalg.eigvalsh(root @ ct @ root).clamp(min=0).sqrt().sum()
    return ((ms - mt) ** 2).sum() + cs.trace() + ct.trace() - 2 * cross


def naive_gaussian_kl(xs, xt):
    """Textbook KL(N_S || N_T) through Cholesky factors."""
    ms, cs = _moments(xs)
    mt, ct = _moments(xt)
    ls, lt = torch.linalg.cholesky(cs), torch.linalg.cholesky(ct)
    trace = torch.cholesky_solve(cs, lt).diagonal().sum()
    diff = (mt - ms)[:, None]
    mahalanobis = (diff * torch.cholesky_solve(diff, lt)).sum()
    logdet = 2 * (lt.diagonal().log().sum() - ls.diagonal().log().sum())
    return 0.5 * (trace + mahalanobis - xs.shape[1] + logdet)


def naive_mmd(xs, xt):
    """Biased MMD^2 with a Gaussian kernel from cdist."""
    def k(x, y):
        return torch.exp(-torch.cdist(x, y) ** 2 / (2 * BANDWIDTH**2))
    return k(xs, xs).mean() + k(xt, xt).mean() - 2 * k(xs, xt).mean()


# ----------------------------------------------------------------------------------------------- peers

def pot_emd2(xs, xt):
    import ot

    return ot.emd2(_uniform(xs), _uniform(xt), ot.dist(xs, xt), numItermax=10_000_000)


def pot_sinkhorn_divergence(xs, xt, eps):
    import ot

    # POT's default stopThr (1e-9) is out of float32's reach: it would run numIterMax = 10^4 iterations.
    # Stop it where ours stops (the marginal error ~32 n eps that the precision can certify), at most
    # 1000 iterations as ours.
    tol = max(1e-9, 32 * xs.shape[0] * torch.finfo(xs.dtype).eps)
    return ot.bregman.empirical_sinkhorn_divergence(xs, xt, eps, method="sinkhorn_log", numIterMax=1000,
                                                    stopThr=tol, warn=False)


def pot_sliced(xs, xt):
    import ot

    return ot.sliced_wasserstein_distance(xs, xt, projections=_theta(xs.shape[1], xs)) ** 2


def pot_bures(xs, xt):
    import ot

    return ot.gaussian.empirical_bures_wasserstein_distance(xs, xt) ** 2


def _geomloss(loss: str, **kw):
    from geomloss import SamplesLoss

    fn = SamplesLoss(loss, backend="tensorized", **kw)
    return lambda xs, xt: 2 * fn(xs, xt)


def implementations(metric: str, epsilon: float = EPSILON) -> list[Impl]:
    """Ours first, then the peers and the naive baseline, for one metric key (``epsilon``: Sinkhorn's)."""
    if metric == "wasserstein":
        return [Impl("ours", "kd2m_ref", T.wasserstein),
                Impl("pot", "POT", pot_emd2, "ot.emd2(a, b, ot.dist(xs, xt))"),
                Impl("naive", "scipy", naive_wasserstein, "cdist^2 + linear_sum_assignment", equal_sizes_only=True)]
    if metric == "sinkhorn_divergence":
        return [Impl("ours", "kd2m_ref", lambda xs, xt: T.sinkhorn_divergence(xs, xt, epsilon=epsilon),
                     "default tol (marginal L1 error 1e-9, or the ~32 n eps the dtype can certify)"),
                Impl("ours_tol_1e-3", "kd2m_ref",
                     lambda xs, xt: T.sinkhorn_divergence(xs, xt, epsilon=epsilon, tol=1e-3),
                     "tol = 1e-3: for the comparison at equal accuracy"),
                Impl("geomloss", "GeomLoss", _geomloss("sinkhorn", p=2, blur=math.sqrt(epsilon / 2), scaling=0.5),
                     "SamplesLoss('sinkhorn', scaling=0.5), tensorized"),
                Impl("geomloss_0.9", "GeomLoss", _geomloss("sinkhorn", p=2, blur=math.sqrt(epsilon / 2), scaling=0.9),
                     "SamplesLoss('sinkhorn', scaling=0.9), tensorized"),
                Impl("pot", "POT", lambda xs, xt: pot_sinkhorn_divergence(xs, xt, epsilon), "ot.bregman.empirical_sinkhorn_divergence, sinkhorn_log "
                     "(value = linear cost of the plan, not OT_eps)", same_quantity=False),
                Impl("naive", "torch", lambda xs, xt: naive_sinkhorn_divergence(xs, xt, epsilon),
                     f"kernel-domain Sinkhorn, {NAIVE_SINKHORN_ITERS} iterations, autograd through the loop")]
    if metric == "sliced_wasserstein":
        return [Impl("ours", "kd2m_ref", lambda xs, xt: T.sliced_wasserstein(xs, xt, n_projections=N_PROJECTIONS)),
                Impl("pot", "POT", pot_sliced, "ot.sliced_wasserstein_distance ** 2, same directions"),
                Impl("naive", "torch", naive_sliced, "project, sort, mean squared difference", equal_sizes_only=True)]
    if metric == "gaussian_wasserstein":
        return [Impl("ours", "kd2m_ref", T.gaussian_wasserstein),
                Impl("pot", "POT", pot_bures, "ot.gaussian.empirical_bures_wasserstein_distance ** 2 (reg 1e-6)"),
                Impl("naive", "torch", naive_gaussian_wasserstein, "trace formula, square roots by eigh")]
    if metric == "gaussian_kl":
        return [Impl("ours", "kd2m_ref", T.gaussian_kl),
                Impl("naive", "torch", naive_gaussian_kl, "textbook formula through Cholesky factors")]
    if metric == "mmd":
        return [Impl("ours", "kd2m_ref", lambda xs, xt: T.mmd(xs, xt, bandwidth=BANDWIDTH)),
                Impl("geomloss", "GeomLoss", _geomloss("gaussian", blur=BANDWIDTH), "2 * SamplesLoss('gaussian'), "
                     "tensorized"),
                Impl("naive", "torch", naive_mmd, "Gaussian kernel from cdist, biased")]
    raise KeyError(f"no benchmark for metric {metric!r}")


METRICS = ("wasserstein", "sinkhorn_divergence", "sliced_wasserstein", "gaussian_wasserstein", "gaussian_kl", "mmd")


def features(n: int, d: int, dtype: torch.dtype, device: str, seed: int = 0):
    """Student and teacher features of unit scale (rows ~ N(0, I/d)), teacher slightly shifted and
    stretched, so that costs are O(1) whatever d."""
    g = np.random.default_rng(seed)
    xs = g.standard_normal((n, d)) / math.sqrt(d)
    xt = 1.1 * g.standard_normal((n, d)) / math.sqrt(d) + 0.1 / math.sqrt(d)
    return (torch.as_tensor(xs, dtype=dtype, device=device), torch.as_tensor(xt, dtype=dtype, device=device))


def mean_cost(xs: torch.Tensor, xt: torch.Tensor) -> float:
    """Mean squared distance between the two clouds (the unit of a relative Sinkhorn epsilon)."""
    return float((torch.cdist(xs.double(), xt.double()) ** 2).mean())


def reference_value(metric: str, xs: torch.Tensor, xt: torch.Tensor, epsilon: float = EPSILON) -> float | None:
    """The truth the values are judged against, on the same inputs and parameters: the float64 NumPy
    reference (``kd2m_ref.reference``) at sizes the oracle cannot reach. Two exceptions, where the
    reference would take minutes: the Sinkhorn divergence at epsilon below ``EPSILON`` is our torch
    implementation in float64 converged to a marginal error of 1e-6 (about 1e-7 relative error in the
    value here; the torch layer is tested against the reference at small sizes), and exact OT above 1024 points has no truth (None: ours and
    POT's exact values are both recorded)."""
    from kd2m_ref import reference as R

    if metric == "wasserstein" and len(xs) > 1024:
        return None
    if metric == "sinkhorn_divergence" and epsilon < EPSILON:
        return float(T.sinkhorn_divergence(xs.detach().double(), xt.detach().double(), epsilon=epsilon, tol=1e-6,
                                           max_iter=100_000))
    kw = {"sinkhorn_divergence": {"epsilon": epsilon, "tol": 1e-12, "max_iter": 10_000},
          "sliced_wasserstein": {"n_projections": N_PROJECTIONS}, "mmd": {"bandwidth": BANDWIDTH}}.get(metric, {})
    return float(getattr(R, metric)(xs.detach().cpu().double().numpy(), xt.detach().cpu().double().numpy(), **kw))
