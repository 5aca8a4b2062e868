"""A gallery of correct implementations of every metric, written independently of the package (textbook
formulas, POT, scipy, scikit-learn, torch.distributions), to show that the cross-checker
(:func:`kd2m_ref.testing.check`) raises no false alarm on code that is right.

Each :class:`Entry` names a registry key and, in ``params``, the conventions its function follows for
the parameters it does not take as arguments. NumPy functions return a float; torch functions return a
0-d tensor that keeps the autograd graph. ``tests/test_mutants.py`` and ``kd2m-ref verify crosscheck``
check that each conforms in float64 and float32; ``benchmarks/precision_floor.py`` measures their errors
to set the precision floor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import ot
import torch
import torch.nn.functional as F
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist, pdist
from scipy.special import log_softmax, logsumexp, rel_entr, softmax
from sklearn.metrics.pairwise import linear_kernel, polynomial_kernel, rbf_kernel
from torch.distributions import Categorical, MultivariateNormal, Normal, kl_divergence

from kd2m_ref.reference.wasserstein import sliced_projections


@dataclass(frozen=True)
class Entry:
    """One gallery implementation: its metric key, the conventions it follows (``params``), family, note."""

    name: str
    metric: str
    fn: Callable
    params: dict = field(default_factory=dict)
    family: str = ""
    note: str = ""


EMD_ITER = 10_000_000


def _w(a, n):
    """Normalised NumPy weights (uniform when None)."""
    return np.full(n, 1.0 / n) if a is None else np.asarray(a, np.float64) / np.sum(a)


def _tw(a, x):
    """Normalised torch weights of the rows of x (uniform when None)."""
    return torch.full((len(x),), 1.0 / len(x), dtype=x.dtype) if a is None else a.to(x.dtype) / a.sum()


def _class_weight(weights, mass, n_classes):
    """Class weight: 'uniform' 1/K, 'prior' the class's share of the source mass, 'sum' 1."""
    return {"uniform": 1.0 / n_classes, "prior": mass, "sum": 1.0}[weights]


# ------------------------------------------------------------------------------------- exact OT

def w_pot_cdist(xs, xt, a=None, b=None, p=2.0):
    """POT network simplex ot.emd2 on a scipy cdist cost ||x - y||^p."""
    return float(ot.emd2(_w(a, len(xs)), _w(b, len(xt)), cdist(xs, xt) ** p, numItermax=EMD_ITER))


def w2_pot_dist(xs, xt, a=None, b=None):
    """POT ot.emd2 on ot.dist's expanded squared cost |x|^2 + |y|^2 - 2 x.y (p = 2)."""
    cost = ot.dist(np.asarray(xs, np.float64), np.asarray(xt, np.float64))
    return float(ot.emd2(_w(a, len(xs)), _w(b, len(xt)), cost, numItermax=EMD_ITER))


def w2_pot_torch_expanded(xs, xt, a=None, b=None):
    """POT ot.emd2, torch backend (differentiable), on the expanded cost |x|^2 + |y|^2 - 2 x.y (p = 2)."""
    cost = (xs ** 2).sum(1)[:, None] + (xt ** 2).sum(1)[None, :] - 2 * xs @ xt.T
    return ot.emd2(_tw(a, xs), _tw(b, xt), cost, numItermax=EMD_ITER)


def cc_pot_loop(xs, xt, labels, a=None, b=None, p=2.0, weights="uniform"):
    """Sum over classes of w_c * POT ot.emd2 on the class's cdist^p, weights renormalised per class."""
    a, b = _w(a, len(xs)), _w(b, len(xt))
    classes = np.unique(labels)
    total = 0.0
    for c in classes:
        i = labels == c
        value = ot.emd2(a[i] / a[i].sum(), b[i] / b[i].sum(), cdist(xs[i], xt[i]) ** p, numItermax=EMD_ITER)
        total += _class_weight(weights, a[i].sum(), len(classes)) * float(value)
    return total


def cc_torch_loop(xs, xt, ys, p=2.0, weights="uniform"):
    """Sum over classes of w_c * POT ot.emd2 (torch backend) on torch.cdist^p, uniform sample weights."""
    classes = torch.unique(ys)
    total = xs.new_zeros(())
    for c in classes:
        i = ys == c
        cost = torch.cdist(xs[i], xt[i]) ** p
        value = ot.emd2(_tw(None, xs[i]), _tw(None, xt[i]), cost, numItermax=EMD_ITER)
        total = total + _class_weight(weights, float(i.sum()) / len(ys), len(classes)) * value
    return total


def joint_pot_onehot(xs, xt, ys, a=None, b=None, p=2.0, beta=1.0):
    """POT ot.emd2 on the joint cost cdist^p + beta * 2 * 1[y != y'] (one-hot label cost)."""
    cost = cdist(xs, xt) ** p + beta * 2.0 * (ys[:, None] != ys[None, :])
    return float(ot.emd2(_w(a, len(xs)), _w(b, len(xt)), cost, numItermax=EMD_ITER))


def joint_torch_soft(features_student, features_teacher, labels, a=None, b=None, p=2.0, beta=1.0):
    """POT ot.emd2 (torch backend) on torch.cdist^p + beta ||e_y - e_y'||^2 with F.one_hot label vectors."""
    onehot = F.one_hot(labels).to(features_student.dtype)
    label_cost = ((onehot[:, None, :] - onehot[None, :, :]) ** 2).sum(-1)
    cost = torch.cdist(features_student, features_teacher) ** p + beta * label_cost
    return ot.emd2(_tw(a, features_student), _tw(b, features_teacher), cost, numItermax=EMD_ITER)


# -------------------------------------------------------------------------------------- Sinkhorn

def _entropic_pot(xs, xt, a, b, p, epsilon):
    """<P, C> + eps KL(P || a b^T) at POT's log-domain Sinkhorn plan (scipy rel_entr for the KL)."""
    a, b = _w(a, len(xs)), _w(b, len(xt))
    cost = cdist(xs, xt) ** p
    plan = ot.sinkhorn(a, b, cost, epsilon, method="sinkhorn_log", numItermax=5_000, stopThr=1e-12)
    return float(np.sum(plan * cost) + epsilon * np.sum(rel_entr(plan, np.outer(a, b))))


def sinkhorn_pot_log(xs, xt, a=None, b=None, p=2.0, epsilon=0.1):
    """POT ot.sinkhorn(method='sinkhorn_log') plan P, value <P, C> + eps KL(P || a b^T)."""
    return _entropic_pot(xs, xt, a, b, p, epsilon)


def _newton_sinkhorn(c, a, b, eps):
    """Dual potentials (f, g) of entropic OT: log-domain Sinkhorn (torch.logsumexp), then Newton steps on the dual
    (Hessian [[diag P1, P], [P^T, diag P^T1]] / eps, last g fixed), halved until the marginal error decreases."""
    log_a, log_b = a.log(), b.log()
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    plan = lambda f, g: torch.exp(log_a[:, None] + log_b[None, :] + (f[:, None] + g[None, :] - c) / eps)
    error = lambda pi: float((pi.sum(1) - a).abs().sum() + (pi.sum(0) - b).abs().sum())
    for _ in range(1000):
        f = -eps * torch.logsumexp(log_b[None, :] + (g[None, :] - c) / eps, 1)
        g = -eps * torch.logsumexp(log_a[:, None] + (f[:, None] - c) / eps, 0)
    pi, n = plan(f, g), len(a)
    err = error(pi)
    for _ in range(50):
        r, s = pi.sum(1), pi.sum(0)
        hess = torch.cat([torch.cat([torch.diag(r), pi], 1), torch.cat([pi.T, torch.diag(s)], 1)]) / eps
        step = torch.linalg.solve(hess[:-1, :-1], torch.cat([a - r, b - s])[:-1])
        step = torch.cat([step, step.new_zeros(1)])
        t = 1.0
        while t > 1e-6 and error(plan(f + t * step[:n], g + t * step[n:])) >= err:
            t /= 2
        if t <= 1e-6:
            break
        f, g = f + t * step[:n], g + t * step[n:]
        pi = plan(f, g)
        err = error(pi)
    return f, g


def sinkhorn_torch_dual(xs, xt, a=None, b=None, p=2.0, reg=0.1):
    """Entropic OT in torch: dual value <a, f> + <b, g> - eps(sum P - 1) at potentials solved without gradient
    (Sinkhorn + Newton), so that its gradient is sum_ij P_ij dC_ij (envelope theorem)."""
    a, b = _tw(a, xs), _tw(b, xt)
    cost = torch.cdist(xs, xt) ** p
    with torch.no_grad():
        f, g = _newton_sinkhorn(cost.detach(), a, b, reg)
    plan = torch.exp(a.log()[:, None] + b.log()[None, :] + (f[:, None] + g[None, :] - cost) / reg)
    return (a * f).sum() + (b * g).sum() - reg * (plan.sum() - 1)


def _self_entropic_np(x, a, p, epsilon):
    """OT_eps(a, a) = 2 <a, f> at the fixed point of the symmetric update f <- (f + T(f)) / 2,
    T(f)_i = -eps log sum_j a_j exp((f_j - C_ij) / eps) (scipy logsumexp)."""
    a = _w(a, len(x))
    cost, log_a, f = cdist(x, x) ** p, np.log(a), np.zeros(len(x))
    tol = 64 * np.finfo(np.float64).eps * (cost.max() + epsilon * (1 - log_a.min()))  # ulps of the potentials
    for _ in range(10_000):
        t = -epsilon * logsumexp(log_a[None, :] + (f[None, :] - cost) / epsilon, axis=1)
        if np.max(np.abs(t - f)) <= tol:
            break
        f = 0.5 * (f + t)
    return float(2 * a @ f)


def sinkhorn_divergence_pot(xs, xt, a=None, b=None, p=2.0, epsilon=0.1):
    """OT_eps(a, b) from POT's log-domain plan plus entropy, minus the self terms (OT_eps(a, a) + OT_eps(b, b)) / 2
    from the symmetric Sinkhorn fixed point."""
    return (_entropic_pot(xs, xt, a, b, p, epsilon) - 0.5 * _self_entropic_np(xs, a, p, epsilon)
            - 0.5 * _self_entropic_np(xt, b, p, epsilon))


def _self_entropic_torch(x, a, p, epsilon):
    """OT_eps(a, a) by the symmetric update f <- (f + T(f)) / 2 (detached), value 2 <a, f> - eps (sum P - 1)
    with P = a a^T exp((f_i + f_j - C_ij) / eps) carrying the gradient."""
    a = _tw(a, x)
    cost = torch.cdist(x, x) ** p
    log_a, c, f = a.log(), cost.detach(), torch.zeros_like(a)
    tol = 64 * torch.finfo(x.dtype).eps * float(c.max() + epsilon * (1 - log_a.min()))  # ulps of the potentials
    with torch.no_grad():
        for _ in range(10_000):
            t = -epsilon * torch.logsumexp(log_a[None, :] + (f[None, :] - c) / epsilon, 1)
            if float((t - f).abs().max()) <= tol:
                break
            f = 0.5 * (f + t)
    plan = torch.exp(log_a[:, None] + log_a[None, :] + (f[:, None] + f[None, :] - cost) / epsilon)
    return 2 * (a * f).sum() - epsilon * (plan.sum() - 1)


def sinkhorn_divergence_torch(xs, xt, a=None, b=None, p=2.0, epsilon=0.1):
    """Debiased divergence: torch log-domain Sinkhorn dual value minus the symmetric self terms (differentiable)."""
    return (sinkhorn_torch_dual(xs, xt, a, b, p, epsilon) - 0.5 * _self_entropic_torch(xs, a, p, epsilon)
            - 0.5 * _self_entropic_torch(xt, b, p, epsilon))


# ------------------------------------------------------------------------- histograms (WKD-L)

def wkd_logit_kernel_sinkhorn(logits_student, logits_teacher, temperature=1.0, cost_matrix=None,
                              sinkhorn_lambda=0.05, sinkhorn_iter=10):
    """Wasserstein logit distillation as published: softmax(z / T) histograms, kernel K = exp(-C / lambda),
    u = 1 / K_classes, ``sinkhorn_iter`` x (v = q / K^T u, u = p / K v), flow u K v, <flow, C>, batch mean."""
    p = torch.softmax(logits_student / temperature, dim=1)
    q = torch.softmax(logits_teacher / temperature, dim=1)
    kernel = torch.exp(-cost_matrix / sinkhorn_lambda).expand(len(p), -1, -1)
    u = torch.full_like(p, 1.0 / p.shape[1]).unsqueeze(2)
    for _ in range(sinkhorn_iter):
        v = q.unsqueeze(2) / torch.bmm(kernel.transpose(1, 2), u)
        u = p.unsqueeze(2) / torch.bmm(kernel, v)
    flow = u * kernel * v.transpose(1, 2)
    return (flow * cost_matrix).sum((1, 2)).mean()


def histogram_pot_sinkhorn2(us, ut, temperature=1.0, cost=None, epsilon=0.5):
    """Converged plan cost: POT ot.sinkhorn2 (log domain; stopThr 1e-11, or 1e-6 on float32 inputs, which
    cannot resolve less) on scipy softmax rows, row mean."""
    p, q = softmax(us / temperature, axis=1), softmax(ut / temperature, axis=1)
    c = 1.0 - np.eye(p.shape[1]) if cost is None else np.asarray(cost)
    stop = 1e-11 if np.asarray(us).dtype == np.float64 else 1e-6
    return float(np.mean([ot.sinkhorn2(a, b, c, epsilon, method="sinkhorn_log", numItermax=20_000, stopThr=stop)
                          for a, b in zip(p, q)]))


def histogram_pot_emd2(logits_student, logits_teacher, T=1.0, cost_matrix=None):
    """Exact OT between the softmax rows: POT ot.emd2 per row (torch backend: gradients), row mean."""
    p = torch.softmax(logits_student / T, dim=1)
    q = torch.softmax(logits_teacher / T, dim=1)
    k = p.shape[1]
    c = 1 - torch.eye(k, dtype=p.dtype) if cost_matrix is None else torch.as_tensor(cost_matrix, dtype=p.dtype)
    return torch.stack([ot.emd2(a, b, c) for a, b in zip(p, q)]).mean()


# ---------------------------------------------------------------------------------------- sliced

def sliced_pot(xs, xt, a=None, b=None, p=2.0, n_projections=50, seed=0):
    """POT ot.sliced_wasserstein_distance on the package's directions; POT returns (mean_k W_p^p)^(1/p),
    raised back to the power p."""
    theta = sliced_projections(xs.shape[1], n_projections, seed)
    sw = ot.sliced_wasserstein_distance(xs, xt, _w(a, len(xs)), _w(b, len(xt)), projections=theta.T, p=p)
    return float(sw) ** p


def sliced_torch_1d(xs, xt, a=None, b=None, p=2.0, n_projections=50, seed=0):
    """Mean over the package's directions of POT ot.wasserstein_1d (torch backend, differentiable) on the
    projected samples."""
    theta = torch.as_tensor(sliced_projections(xs.shape[1], n_projections, seed), dtype=xs.dtype)
    return ot.wasserstein_1d(xs @ theta.T, xt @ theta.T, _tw(a, xs), _tw(b, xt), p=p).mean()


# ------------------------------------------------------------------------------------- Gaussians

def _np_moments(x, a, estimator, eps):
    """Weighted mean and np.cov covariance (aweights; ddof=1 gives 1/(1 - sum w^2)) plus eps I."""
    w = _w(a, len(x))
    x = np.asarray(x, np.float64)
    cov = np.atleast_2d(np.cov(x, rowvar=False, aweights=w, bias=estimator == "mle"))
    return w @ x, cov + eps * np.eye(x.shape[1])


def _torch_moments(x, a, estimator, eps):
    """Weighted mean and covariance sum_i w_i (x_i - mu)(x_i - mu)^T (/(1 - sum w^2) if unbiased) plus eps I."""
    w = _tw(a, x)
    mu = w @ x
    xc = x - mu
    cov = xc.T @ (w[:, None] * xc)
    if estimator == "unbiased":
        cov = cov / (1 - (w ** 2).sum())
    return mu, cov + eps * torch.eye(x.shape[1], dtype=x.dtype)


def bures_sqrtm(xs, xt, a=None, b=None, estimator="mle", eps=0.0):
    """Textbook |mu_s - mu_t|^2 + tr(S_s + S_t - 2 (S_s^1/2 S_t S_s^1/2)^1/2) with scipy.linalg.sqrtm."""
    (ms, cs), (mt, ct) = _np_moments(xs, a, estimator, eps), _np_moments(xt, b, estimator, eps)
    root = np.real(sqrtm(cs))
    cross = np.real(sqrtm(root @ ct @ root))
    return float(np.sum((ms - mt) ** 2) + np.trace(cs + ct - 2 * cross))


def bures_eigvalsh_torch(features_student, features_teacher, a=None, b=None, estimator="mle", eps=0.0):
    """Bures trace tr(S_s^1/2 S_t S_s^1/2)^1/2 = sum sqrt(eigvalsh(F S_t F^T)), F^T F = S_s (F the weighted
    centred student data, stacked over sqrt(eps) I); round-off eigenvalues (<= 16 k u max) count as 0."""
    xs, xt = features_student, features_teacher
    (ms, cs), (mt, ct) = _torch_moments(xs, a, estimator, eps), _torch_moments(xt, b, estimator, eps)
    w = _tw(a, xs)
    scale = 1 / (1 - (w ** 2).sum()) if estimator == "unbiased" else 1.0
    factor = (scale * w[:, None]).sqrt() * (xs - ms)
    if eps > 0:
        factor = torch.cat([factor, eps ** 0.5 * torch.eye(xs.shape[1], dtype=xs.dtype)])
    lam = torch.linalg.eigvalsh(factor @ ct @ factor.T)
    keep = lam > 16 * len(lam) * torch.finfo(xs.dtype).eps * lam.abs().max()
    root = torch.where(keep, torch.where(keep, lam, torch.ones_like(lam)).sqrt(), torch.zeros_like(lam))
    return ((ms - mt) ** 2).sum() + torch.trace(cs) + torch.trace(ct) - 2 * root.sum()


def _torch_std(x, a, estimator, eps):
    """Weighted mean and standard deviations, as vector norms (zero-safe gradient) of the centred columns
    stacked over a row sqrt(eps)."""
    w = _tw(a, x)
    mu = w @ x
    scale = 1 / (1 - (w ** 2).sum()) if estimator == "unbiased" else 1.0
    rows = torch.cat([(scale * w[:, None]).sqrt() * (x - mu), torch.full((1, x.shape[1]), eps ** 0.5, dtype=x.dtype)])
    return mu, torch.linalg.vector_norm(rows, dim=0)


def bures_diag_torch(xs, xt, a=None, b=None, estimator="mle", eps=0.0):
    """Diagonal Gaussian W2^2 = |mu_s - mu_t|^2 + |sigma_s - sigma_t|^2 in torch."""
    (ms, ss), (mt, st) = _torch_std(xs, a, estimator, eps), _torch_std(xt, b, estimator, eps)
    return ((ms - mt) ** 2).sum() + ((ss - st) ** 2).sum()


def bures_pot(xs, xt, a=None, b=None, estimator="mle"):
    """POT ot.gaussian.bures_wasserstein_distance (returns W2, squared here) on np.cov moments + 0.1 I
    (POT's eigh-based sqrtm needs positive definite covariances)."""
    (ms, cs), (mt, ct) = _np_moments(xs, a, estimator, 0.1), _np_moments(xt, b, estimator, 0.1)
    return float(ot.gaussian.bures_wasserstein_distance(ms, mt, cs, ct)) ** 2


def gkl_torch_mvn(xs, xt, a=None, b=None, estimator="mle", eps=0.0, direction="student_teacher"):
    """torch.distributions.kl_divergence between the fitted MultivariateNormal distributions."""
    (ms, cs), (mt, ct) = _torch_moments(xs, a, estimator, eps), _torch_moments(xt, b, estimator, eps)
    ns, nt = (MultivariateNormal(m, covariance_matrix=c, validate_args=False) for m, c in ((ms, cs), (mt, ct)))
    return kl_divergence(ns, nt) if direction == "student_teacher" else kl_divergence(nt, ns)


def gkl_numpy_closed(xs, xt, a=None, b=None, estimator="mle", eps=0.0, direction="student_teacher"):
    """Textbook 1/2 [tr(S_t^-1 S_s) + dmu^T S_t^-1 dmu - d + ln det S_t - ln det S_s] with solve and slogdet."""
    (ms, cs), (mt, ct) = _np_moments(xs, a, estimator, eps), _np_moments(xt, b, estimator, eps)
    if direction == "teacher_student":
        ms, cs, mt, ct = mt, ct, ms, cs
    dm = mt - ms
    logdet = np.linalg.slogdet(ct)[1] - np.linalg.slogdet(cs)[1]
    return float(0.5 * (np.trace(np.linalg.solve(ct, cs)) + dm @ np.linalg.solve(ct, dm) - len(dm) + logdet))


def gkl_diag_normal(xs, xt, a=None, b=None, estimator="mle", eps=0.0, direction="student_teacher"):
    """Diagonal KL: sum over features of torch.distributions.kl_divergence between univariate Normals."""
    (ms, ss), (mt, st) = _torch_std(xs, a, estimator, eps), _torch_std(xt, b, estimator, eps)
    ns, nt = Normal(ms, ss, validate_args=False), Normal(mt, st, validate_args=False)
    return (kl_divergence(ns, nt) if direction == "student_teacher" else kl_divergence(nt, ns)).sum()


def _class_loop(metric, xs, xt, ys, a, b, weights, zero, **kw):
    """sum_c w_c metric(class c), sample weights restricted to the class."""
    ys = np.asarray(ys)
    classes = np.unique(ys)
    mass = _w(None if a is None else np.asarray(a), len(xs))
    total = zero
    for c in classes:
        i = ys == c
        rows = torch.from_numpy(i) if isinstance(xs, torch.Tensor) else i
        xs_c, xt_c, sub_a, sub_b = (None if v is None else v[rows] for v in (xs, xt, a, b))
        total = total + _class_weight(weights, mass[i].sum(), len(classes)) * metric(xs_c, xt_c, sub_a, sub_b, **kw)
    return total


def ccgw_sqrtm(xs, xt, ys, a=None, b=None, weights="uniform", estimator="mle", eps=0.0):
    """Class loop of the scipy.linalg.sqrtm Bures formula."""
    return _class_loop(bures_sqrtm, xs, xt, ys, a, b, weights, 0.0, estimator=estimator, eps=eps)


def ccgw_diag_torch(xs, xt, ys, a=None, b=None, weights="uniform", estimator="mle", eps=0.0):
    """Class loop of the diagonal torch W2^2."""
    return _class_loop(bures_diag_torch, xs, xt, ys, a, b, weights, xs.new_zeros(()), estimator=estimator,
                       eps=eps)


def ccgkl_torch_mvn(xs, xt, ys, a=None, b=None, weights="uniform", estimator="mle", eps=0.0,
                    direction="student_teacher"):
    """Class loop of torch.distributions MultivariateNormal KL."""
    return _class_loop(gkl_torch_mvn, xs, xt, ys, a, b, weights, xs.new_zeros(()), estimator=estimator,
                       eps=eps, direction=direction)


def ccgkl_numpy_closed(xs, xt, ys, a=None, b=None, weights="uniform", estimator="mle", eps=0.0,
                       direction="student_teacher"):
    """Class loop of the slogdet/solve closed-form KL."""
    return _class_loop(gkl_numpy_closed, xs, xt, ys, a, b, weights, 0.0, estimator=estimator, eps=eps,
                       direction=direction)


def _wkd_bounds(size, g):
    """Adaptive-pooling cell bounds along one side: floor(i size / g) .. ceil((i + 1) size / g)."""
    return [(i * size // g, ((i + 1) * size + g - 1) // g) for i in range(g)]


def wkd_feature(f_s, f_t, grid=1, mean_weight=1.0):
    """WKD-F as published, in torch: per grid cell, .mean and .var (unbiased) over the pixels,
    torch.sqrt(var + 1e-5), F.mse_loss(reduction="sum") of the means (times mean_weight) and of the stds,
    divided by B gh gw."""
    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    batch, channels, height, width = f_s.shape
    loss_mean, loss_std = f_s.new_zeros(()), f_s.new_zeros(())
    for r0, r1 in _wkd_bounds(height, gh):
        for c0, c1 in _wkd_bounds(width, gw):
            cell_s = f_s[:, :, r0:r1, c0:c1].reshape(batch, channels, -1)
            cell_t = f_t[:, :, r0:r1, c0:c1].reshape(batch, channels, -1)
            loss_mean = loss_mean + F.mse_loss(cell_s.mean(-1), cell_t.mean(-1), reduction="sum")
            loss_std = loss_std + F.mse_loss(torch.sqrt(cell_s.var(-1) + 1e-5), torch.sqrt(cell_t.var(-1) + 1e-5),
                                             reduction="sum")
    return (mean_weight * loss_mean + loss_std) / (batch * gh * gw)


def wkd_feature_numpy(f_s, f_t, grid=1, mean_weight=1.0, eps=1e-5):
    """WKD-F in NumPy, a loop over images, cells and channels: np.var(ddof=1), np.sqrt(var + eps)."""
    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    batch, channels, height, width = f_s.shape
    total = 0.0
    for b in range(batch):
        for r0, r1 in _wkd_bounds(height, gh):
            for c0, c1 in _wkd_bounds(width, gw):
                for c in range(channels):
                    s, t = f_s[b, c, r0:r1, c0:c1].ravel(), f_t[b, c, r0:r1, c0:c1].ravel()
                    total += mean_weight * (s.mean() - t.mean()) ** 2 \
                        + (np.sqrt(s.var(ddof=1) + eps) - np.sqrt(t.var(ddof=1) + eps)) ** 2
    return float(total / (batch * gh * gw))


# ------------------------------------------------------------------------------------------- MMD

def _np_bandwidth(xs, xt, rule):
    """A numeric bandwidth, or the 'mean' (all n^2 + m^2 + nm distances) / 'median' (pairs i < j of X u Y)
    rule; a rule giving 0 gives 1."""
    if not isinstance(rule, str):
        return float(rule)
    if rule == "mean":
        blocks = [cdist(u, v) for u, v in ((xs, xs), (xt, xt), (xs, xt))]
        s = sum(d.sum() for d in blocks) / sum(d.size for d in blocks)
    else:
        s = np.median(pdist(np.vstack([xs, xt])))
    return s if s > 0 else 1.0


def _mmd_from_blocks(kxx, kyy, kxy, estimator):
    """V-statistic (block means) or U-statistic (within-sample diagonals left out)."""
    n, m = len(kxx), len(kyy)
    if estimator == "biased":
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    return ((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
            - 2 * kxy.mean())


def mmd_torch_cdist(xs, xt, sigma="mean", estimator="biased"):
    """Gaussian-kernel MMD^2 exp(-d^2 / 2 s^2) from torch.cdist; a bandwidth rule is evaluated without gradient."""
    dxx, dyy, dxy = torch.cdist(xs, xs), torch.cdist(xt, xt), torch.cdist(xs, xt)
    if isinstance(sigma, str):
        with torch.no_grad():
            if sigma == "mean":
                s = (dxx.sum() + dyy.sum() + dxy.sum()) / (dxx.numel() + dyy.numel() + dxy.numel())
            else:
                z = torch.cat([xs, xt])
                i, j = torch.triu_indices(len(z), len(z), 1)
                s = torch.quantile(torch.cdist(z, z)[i, j], 0.5)
            s = s if s > 0 else torch.ones_like(s)
    else:
        s = sigma
    kxx, kyy, kxy = (torch.exp(-d ** 2 / (2 * s ** 2)) for d in (dxx, dyy, dxy))
    return _mmd_from_blocks(kxx, kyy, kxy, estimator)


def mmd_scipy_unbiased(xs, xt, bandwidth="mean"):
    """Unbiased Gaussian-kernel MMD^2 (U-statistic) from scipy cdist distances."""
    s = _np_bandwidth(xs, xt, bandwidth)
    k = lambda u, v: np.exp(-cdist(u, v, "sqeuclidean") / (2 * s * s))
    return float(_mmd_from_blocks(k(xs, xs), k(xt, xt), k(xs, xt), "unbiased"))


def mmd_sklearn(xs, xt, kernel="gaussian", bandwidth="mean", estimator="biased", degree=2, offset=1.0):
    """MMD^2 from scikit-learn kernels: rbf_kernel (gamma = 1 / 2 s^2), linear_kernel, polynomial_kernel
    (gamma 1, coef0 = offset); laplacian exp(-||x - y||_2 / s) from scipy cdist (sklearn's is L1)."""
    xs, xt = np.asarray(xs, np.float64), np.asarray(xt, np.float64)
    if kernel in ("gaussian", "laplacian"):
        s = _np_bandwidth(xs, xt, bandwidth)
    k = {"gaussian": lambda u, v: rbf_kernel(u, v, gamma=1 / (2 * s * s)),
         "laplacian": lambda u, v: np.exp(-cdist(u, v) / s),
         "linear": linear_kernel,
         "polynomial": lambda u, v: polynomial_kernel(u, v, degree=degree, gamma=1.0, coef0=offset)}[kernel]
    return float(_mmd_from_blocks(k(xs, xs), k(xt, xt), k(xs, xt), estimator))


def nst_loss(f_s, f_t):
    """NST as published: (B, C, H·W) maps, F.normalize over positions, the (B, C, C) tensors of the polynomial
    kernel (a.b)^2 by einsum, k_tt.mean().detach() + k_ss.mean() - 2 k_st.mean()."""
    f_s = F.normalize(f_s.reshape(f_s.shape[0], f_s.shape[1], -1), dim=2)
    f_t = F.normalize(f_t.reshape(f_t.shape[0], f_t.shape[1], -1), dim=2)

    def poly(a, b):
        return torch.einsum("bid,bjd->bij", a, b) ** 2

    return poly(f_t, f_t).mean().detach() + poly(f_s, f_s).mean() - 2 * poly(f_s, f_t).mean()


def set_mmd_sklearn_loop(xs, xt, kernel="polynomial", bandwidth="mean", estimator="biased", degree=2, offset=0.0,
                         normalize="l2"):
    """Mean over images of the scikit-learn-kernel MMD^2 (:func:`mmd_sklearn`) between the image's flattened
    student and teacher samples, rows divided by np.linalg.norm (zero rows kept). Not
    sklearn.preprocessing.normalize: it leaves rows of norm below 10 eps of the dtype (1.2e-6 in float32)
    as they are."""
    def unit(x):
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norm > 0, norm, 1.0)

    total = 0.0
    for u, v in zip(xs, xt):
        u, v = u.reshape(len(u), -1), v.reshape(len(v), -1)
        if normalize == "l2":
            u, v = unit(u), unit(v)
        total += mmd_sklearn(u, v, kernel=kernel, bandwidth=bandwidth, estimator=estimator, degree=degree,
                             offset=offset)
    return total / len(xs)


# ------------------------------------------------------------------------------------- Hinton KD

def kd_kl_div(logits_student, logits_teacher, T=1.0):
    """F.kl_div(log_softmax(s/T), log_softmax(t/T), log_target=True, reduction='batchmean') * T^2."""
    return F.kl_div(F.log_softmax(logits_student / T, 1), F.log_softmax(logits_teacher / T, 1), log_target=True,
                    reduction="batchmean") * T * T


def kd_softmax_log(logits_student, logits_teacher, temperature=1.0):
    """(p_t * (log p_t - log_softmax(s/T))).sum(1).mean() * T^2, p_t = softmax(t/T)."""
    t = temperature
    p_t, log_p_t = F.softmax(logits_teacher / t, 1), F.log_softmax(logits_teacher / t, 1)
    return (p_t * (log_p_t - F.log_softmax(logits_student / t, 1))).sum(1).mean() * t * t


def kd_scipy(logits_student, logits_teacher, temperature=1.0):
    """NumPy: T^2 times the batch mean of sum scipy.special.rel_entr(softmax(t/T), softmax(s/T))."""
    t = temperature
    p_t, p_s = softmax(logits_teacher / t, axis=1), softmax(logits_student / t, axis=1)
    return float(t * t * rel_entr(p_t, p_s).sum() / len(p_t))


def kd_categorical_reverse(logits_student, logits_teacher, T=1.0):
    """KL(student || teacher): torch.distributions.kl_divergence(Categorical(s/T), Categorical(t/T)).mean() * T^2."""
    return kl_divergence(Categorical(logits=logits_student / T), Categorical(logits=logits_teacher / T)).mean() * T * T


def kd_numpy_direction(y_s, y_t, temperature=1.0, direction="teacher_student"):
    """NumPy: T^2 times the batch mean of sum_c p (log p - log q) with scipy log_softmax, either direction."""
    ls, lt = log_softmax(y_s / temperature, axis=1), log_softmax(y_t / temperature, axis=1)
    lp, lq = (lt, ls) if direction == "teacher_student" else (ls, lt)
    return float(temperature ** 2 * np.sum(np.exp(lp) * (lp - lq)) / len(y_s))


# --------------------------------------------------------------------------------------- gallery

_FULL = {"covariance": "full"}
_DIAG = {"covariance": "diag"}

GALLERY = [
    Entry("pot_emd2_cdist", "wasserstein", w_pot_cdist, {}, "ot", "POT ot.emd2, scipy cdist ** p"),
    Entry("pot_emd2_dist_expanded", "wasserstein", w2_pot_dist, {"p": 2.0}, "ot",
          "POT ot.emd2 on ot.dist (|x|^2 + |y|^2 - 2 x.y)"),
    Entry("pot_emd2_torch_expanded", "wasserstein", w2_pot_torch_expanded, {"p": 2.0}, "ot",
          "POT ot.emd2 torch backend, expanded cost"),
    Entry("class_loop_pot", "class_conditional_wasserstein", cc_pot_loop, {}, "ot",
          "class loop of POT ot.emd2, weights a/b per class"),
    Entry("class_loop_pot_torch", "class_conditional_wasserstein", cc_torch_loop, {}, "ot",
          "class loop of POT ot.emd2 torch backend on torch.cdist ** p"),
    Entry("joint_pot_onehot", "joint_wasserstein", joint_pot_onehot, {"label_cost": "onehot"}, "ot",
          "POT ot.emd2 on cdist ** p + beta * 2 * 1[y != y']"),
    Entry("joint_pot_torch_soft", "joint_wasserstein", joint_torch_soft, {"label_cost": "soft"}, "ot",
          "POT ot.emd2 torch backend, label cost ||one_hot(y) - one_hot(y')||^2"),
    Entry("pot_sinkhorn_log_entropy", "sinkhorn", sinkhorn_pot_log, {}, "ot",
          "POT ot.sinkhorn(method='sinkhorn_log') plan, <P, C> + eps KL(P || ab^T)"),
    Entry("torch_log_sinkhorn_dual", "sinkhorn", sinkhorn_torch_dual, {}, "ot",
          "torch log-domain Sinkhorn + Newton on the dual, dual value, envelope gradient"),
    Entry("pot_sinkhorn_divergence", "sinkhorn_divergence", sinkhorn_divergence_pot, {}, "ot",
          "POT log-domain cross term, symmetric-update self terms (scipy logsumexp)"),
    Entry("torch_sinkhorn_divergence", "sinkhorn_divergence", sinkhorn_divergence_torch, {}, "ot",
          "torch log-domain dual cross term, symmetric-update self terms"),
    Entry("wkd_logit_kernel_sinkhorn", "histogram_ot", wkd_logit_kernel_sinkhorn,
          {"epsilon": 0.05, "n_iter": 10, "value": "plan_cost"}, "ot",
          "Wasserstein logit distillation as published: kernel-form Sinkhorn, 10 iterations, <flow, C>"),
    Entry("histogram_pot_sinkhorn2", "histogram_ot", histogram_pot_sinkhorn2,
          {"epsilon": 0.5, "n_iter": None, "value": "plan_cost"}, "ot",
          "POT ot.sinkhorn2 (converged plan cost) per softmax row"),
    Entry("histogram_pot_emd2", "histogram_ot", histogram_pot_emd2, {"epsilon": 0.0}, "ot",
          "POT ot.emd2 (torch backend) per softmax row"),
    Entry("pot_sliced_projections", "sliced_wasserstein", sliced_pot, {}, "ot",
          "POT ot.sliced_wasserstein_distance(projections=...) ** p"),
    Entry("pot_wasserstein_1d_torch", "sliced_wasserstein", sliced_torch_1d, {}, "ot",
          "POT ot.wasserstein_1d torch backend on projections, mean"),
    Entry("bures_scipy_sqrtm", "gaussian_wasserstein", bures_sqrtm, _FULL, "gaussian",
          "textbook Bures with scipy.linalg.sqrtm, np.cov moments"),
    Entry("bures_torch_eigvalsh", "gaussian_wasserstein", bures_eigvalsh_torch, _FULL, "gaussian",
          "torch.linalg.eigvalsh of F S_t F^T"),
    Entry("bures_torch_diag", "gaussian_wasserstein", bures_diag_torch, _DIAG, "gaussian",
          "|dmu|^2 + |dsigma|^2, torch"),
    Entry("bures_pot_ridge", "gaussian_wasserstein", bures_pot, {**_FULL, "eps": 0.1}, "gaussian",
          "POT ot.gaussian.bures_wasserstein_distance ** 2, ridge 0.1"),
    Entry("kl_torch_mvn", "gaussian_kl", gkl_torch_mvn, _FULL, "gaussian",
          "torch.distributions.kl_divergence(MultivariateNormal, MultivariateNormal)"),
    Entry("kl_numpy_slogdet", "gaussian_kl", gkl_numpy_closed, _FULL, "gaussian",
          "closed form with np.linalg.solve and slogdet"),
    Entry("kl_torch_diag_normal", "gaussian_kl", gkl_diag_normal, _DIAG, "gaussian",
          "sum of torch.distributions Normal KLs"),
    Entry("class_bures_scipy_sqrtm", "class_conditional_gaussian_wasserstein", ccgw_sqrtm, _FULL, "gaussian",
          "class loop of the scipy sqrtm Bures"),
    Entry("class_bures_torch_diag", "class_conditional_gaussian_wasserstein", ccgw_diag_torch, _DIAG, "gaussian",
          "class loop of the diagonal torch W2^2"),
    Entry("class_kl_torch_mvn", "class_conditional_gaussian_kl", ccgkl_torch_mvn, _FULL, "gaussian",
          "class loop of torch MultivariateNormal KL"),
    Entry("class_kl_numpy_slogdet", "class_conditional_gaussian_kl", ccgkl_numpy_closed, _FULL, "gaussian",
          "class loop of the slogdet/solve KL"),
    Entry("wkd_feature_torch", "grid_gaussian_wasserstein", wkd_feature,
          {"covariance": "diag", "estimator": "unbiased", "eps": 1e-5}, "gaussian",
          "WKD-F as published: cell slicing, .mean, .var, sqrt(var + 1e-5), F.mse_loss(sum) / (B g^2)"),
    Entry("wkd_feature_numpy_loop", "grid_gaussian_wasserstein", wkd_feature_numpy,
          {"covariance": "diag", "estimator": "unbiased"}, "gaussian",
          "NumPy loop over images, cells and channels, np.var(ddof=1)"),
    Entry("mmd_torch_cdist", "mmd", mmd_torch_cdist, {"kernel": "gaussian"}, "kernel",
          "torch.cdist Gaussian kernel, V or U statistic, bandwidth number or rule (detached)"),
    Entry("mmd_scipy_unbiased", "mmd", mmd_scipy_unbiased, {"kernel": "gaussian", "estimator": "unbiased"}, "kernel",
          "scipy cdist Gaussian kernel, U-statistic"),
    Entry("mmd_sklearn_kernels", "mmd", mmd_sklearn, {}, "kernel",
          "sklearn rbf/linear/polynomial kernels, scipy Euclidean laplacian"),
    Entry("nst_published_torch", "set_mmd", nst_loss,
          {"kernel": "polynomial", "degree": 2, "offset": 0.0, "estimator": "biased", "normalize": "l2"}, "kernel",
          "NST as published: F.normalize, einsum (a.b)^2, teacher term detached"),
    Entry("set_mmd_sklearn_loop", "set_mmd", set_mmd_sklearn_loop, {}, "kernel",
          "loop over images: NumPy row norms, sklearn kernels, every parameter"),
    Entry("kd_kl_div_batchmean", "hinton_kd", kd_kl_div, {"direction": "teacher_student"}, "logit",
          "F.kl_div(log_target=True, batchmean) * T^2"),
    Entry("kd_softmax_log", "hinton_kd", kd_softmax_log, {"direction": "teacher_student"}, "logit",
          "(p_t (log p_t - log_softmax(s/T))).sum(1).mean() T^2"),
    Entry("kd_scipy_rel_entr", "hinton_kd", kd_scipy, {"direction": "teacher_student"}, "logit",
          "scipy.special softmax + rel_entr, NumPy"),
    Entry("kd_categorical_reverse", "hinton_kd", kd_categorical_reverse, {"direction": "student_teacher"}, "logit",
          "torch.distributions Categorical KL(student || teacher)"),
    Entry("kd_numpy_direction", "hinton_kd", kd_numpy_direction, {}, "logit",
          "scipy log_softmax, both directions, NumPy"),
]
