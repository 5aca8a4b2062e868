"""Known convention variants, one table per metric key: what other implementations compute instead.

Each table maps a variant name to ``(description, fn)``; ``fn(example)`` computes that variant from
the same inputs through the reference (float64), or raises :class:`NotApplicable` when the variant
coincides with the metric on those inputs (e.g. "ignores the weights" without weights). The checker's
diagnosis evaluates them on a counterexample and reports which one the user's function matches
(PEERS.md, "Conventions that differ between implementations"). ``MetricSpec.variants_path`` names
the table of each key.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .examples import Example


class NotApplicable(Exception):
    """The variant equals the metric on these inputs (or is undefined there)."""


def not_applicable():
    raise NotApplicable


# ----------------------------------------------------------------------------------------- helpers

def _spec(key):
    from ..registry import METRICS

    return METRICS[key]


def param(key: str, ex: Example, name: str):
    """The value of parameter ``name`` in ``ex`` (the metric's default when absent)."""
    spec = _spec(key)
    return ex.kwargs.get(name, spec.params[name].default if name in spec.params else None)


def _ref(key, ex: Example, args=None, **changes) -> float:
    kwargs = {k: v for k, v in {**ex.kwargs, **changes}.items() if v is not None or k not in changes}
    return float(_spec(key).reference(*(ex.args if args is None else args), **kwargs))


def _keys_of(other: str, ex: Example, drop=()) -> dict:
    """``ex.kwargs`` restricted to the parameters of metric ``other`` (labels, weights included)."""
    spec = _spec(other)
    keep = set(spec.params) | ({"ys", "yt"} if "labels" in spec.needs else set()) | {"a", "b"}
    return {k: v for k, v in ex.kwargs.items() if k in keep and k not in drop}


def with_params(key: str, **changes):
    """The metric with some parameters changed (not applicable when they already have those values)."""
    def fn(ex):
        if all(param(key, ex, k) == v for k, v in changes.items()):
            raise NotApplicable
        return _ref(key, ex, **changes)
    return fn


def other_choices(key: str, name: str, choices, describe) -> dict:
    """One variant per other value of a choice parameter."""
    out = {}
    for choice in choices:
        out[f"{name}={choice}"] = (describe(choice), _other_choice(key, name, choice))
    return out


def _other_choice(key, name, choice):
    def fn(ex):
        if param(key, ex, name) == choice:
            raise NotApplicable
        return _ref(key, ex, **{name: choice})
    return fn


def root(key: str, power=lambda ex: float(param_or(ex, "p", 2.0))):
    """The p-th root of the metric (W_p instead of W_p^p; not squared)."""
    def fn(ex):
        q = power(ex)
        if q == 1:
            raise NotApplicable
        return max(_ref(key, ex), 0.0) ** (1.0 / q)
    return fn


def param_or(ex, name, default):
    return ex.kwargs.get(name, default)


def scaled(key: str, factor):
    """The metric times ``factor(ex)`` (not applicable when the factor is 1)."""
    def fn(ex):
        f = factor(ex)
        if f == 1:
            raise NotApplicable
        return f * _ref(key, ex)
    return fn


def ignores_weights(key: str):
    def fn(ex):
        if ex.kwargs.get("a") is None and ex.kwargs.get("b") is None:
            raise NotApplicable
        return _ref(key, ex, a=None, b=None)
    return fn


def swapped_weights(key: str):
    def fn(ex):
        a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
        if a is None or b is None or len(a) != len(b) or np.array_equal(a, b):
            raise NotApplicable
        return _ref(key, ex, a=b, b=a)
    return fn


def as_metric(other: str, drop=(), **changes):
    """Another registry metric on the same inputs (e.g. the marginal W instead of the conditional one)."""
    def fn(ex):
        kwargs = {**_keys_of(other, ex, drop), **changes}
        return float(_spec(other).reference(*ex.args, **kwargs))
    return fn


def _weights(ex, n):
    w = ex.kwargs.get("a")
    w = np.full(n, 1.0 / n) if w is None else np.asarray(w, float) / np.sum(w)
    return w


def paired(key: str):
    """mean_i ||x_i - y_i||^p: the paired cost, no transport (per class for class-conditional keys)."""
    def fn(ex):
        xs, xt = ex.args
        if xs.shape != xt.shape or ex.kwargs.get("b") is not None:
            raise NotApplicable
        p = float(param_or(ex, "p", 2.0))
        cost = np.sum((xs - xt) ** 2, 1) ** (p / 2)
        if "ys" not in ex.kwargs:
            return float(_weights(ex, len(xs)) @ cost)
        from .._conventions import class_blocks

        w = _weights(ex, len(xs))
        return float(sum(blk.weight * (w[blk.index_s] @ cost[blk.index_s]) / w[blk.index_s].sum()
                         for blk in class_blocks(ex.kwargs["ys"], ex.kwargs.get("yt"), len(xs), len(xt),
                                                 weights=param(key, ex, "weights"), a=ex.kwargs.get("a"))))
    return fn


# ------------------------------------------------------------------------------------ entropic OT

def _entropic(xs, xt, a, b, p, epsilon, *, plan_cost=False, max_iter=3000, tol=1e-13, cost=None):
    """Entropic OT by the reference's log-domain iterations: dual value, or <plan, C> (POT's sinkhorn2)."""
    from ..reference.sinkhorn import SinkhornNotConverged, sinkhorn_potentials
    from ..reference.wasserstein import cost_matrix

    c = cost_matrix(xs, xt, p) if cost is None else cost
    a = np.full(len(xs), 1 / len(xs)) if a is None else np.asarray(a, float) / np.sum(a)
    b = np.full(len(xt), 1 / len(xt)) if b is None else np.asarray(b, float) / np.sum(b)
    la, lb = np.log(a), np.log(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SinkhornNotConverged)
        f, g = sinkhorn_potentials(c, la, lb, epsilon, max_iter, tol)
    if not plan_cost:
        return float(a @ f + b @ g)
    plan = np.exp(la[:, None] + lb[None, :] + (f[:, None] + g[None, :] - c) / epsilon)
    return float(np.sum(plan * c))


def sinkhorn_instead(eps: float, plan_cost: bool):
    """Entropic OT with an absolute epsilon passed off as exact OT."""
    def fn(ex):
        xs, xt = ex.args
        return _entropic(xs, xt, ex.kwargs.get("a"), ex.kwargs.get("b"), float(param_or(ex, "p", 2.0)), eps,
                         plan_cost=plan_cost)
    return fn


def _sinkhorn_kwargs(ex):
    return (float(param_or(ex, "p", 2.0)), float(param_or(ex, "epsilon", 0.1)))


def entropic_variant(debiased: bool, plan_cost: bool = False, eps_map=lambda eps, p, cmax: eps,
                     cost_factor: float = 1.0):
    """Entropic OT (debiased or not) with the cost scaled by ``cost_factor`` and epsilon mapped by
    ``eps_map(eps, p, max cost)``, returning the dual value or the plan's cost."""
    from ..reference.wasserstein import cost_matrix

    def fn(ex):
        xs, xt = ex.args
        a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
        p, eps = _sinkhorn_kwargs(ex)
        cmax = float(cost_matrix(xs, xt, p).max())
        e = eps_map(eps, p, cmax)

        def ot(u, v, wu, wv):
            return _entropic(u, v, wu, wv, p, e, plan_cost=plan_cost, cost=cost_factor * cost_matrix(u, v, p))

        value = ot(xs, xt, a, b)
        if debiased:
            value -= 0.5 * ot(xs, xs, a, a) + 0.5 * ot(xt, xt, b, b)
        return value
    return fn


def _entropy(w, n):
    w = np.full(n, 1 / n) if w is None else np.asarray(w, float) / np.sum(w)
    return float(-np.sum(w * np.log(w)))


# ----------------------------------------------------------------------------------------- tables

_P_DESC = "W_p, the p-th root (not squared for p = 2) instead of W_p^p"
_W_SINKHORN = {f"sinkhorn(eps={e})": (f"entropic OT (Sinkhorn dual value) with epsilon = {e}, passed off as exact OT",
                                      sinkhorn_instead(e, False)) for e in (0.01, 0.05, 0.1, 0.5, 1.0)}
_W_SINKHORN.update({f"sinkhorn_plan_cost(eps={e})": (f"<plan, C> of the entropic plan with epsilon = {e} (POT's "
                                                     "sinkhorn2), passed off as exact OT", sinkhorn_instead(e, True))
                    for e in (0.01, 0.05, 0.1, 0.5, 1.0)})


def _cost_p(key, p_used, desc):
    def fn(ex):
        if float(param_or(ex, "p", 2.0)) == p_used:
            raise NotApplicable
        return _ref(key, ex, p=p_used)
    return desc, fn


wasserstein = {
    "p_th_root": (_P_DESC, root("wasserstein")),
    "euclidean_cost": _cost_p("wasserstein", 1.0, "cost ||x - y|| (Euclidean, p = 1) instead of ||x - y||^p"),
    "squared_cost": _cost_p("wasserstein", 2.0, "cost ||x - y||^2 whatever p"),
    "half_squared_cost": ("cost ||x - y||^2 / 2 (GeomLoss's p = 2 convention)",
                          lambda ex: 0.5 * _ref("wasserstein", ex) if float(param_or(ex, "p", 2.0)) == 2
                          else not_applicable()),
    "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights("wasserstein")),
    "swapped_weights": ("weights a and b swapped", swapped_weights("wasserstein")),
    "paired_cost": ("mean_i ||x_i - y_i||^p: the paired (MSE-like) cost, no transport", paired("wasserstein")),
    **_W_SINKHORN,
}

_WEIGHT_DESC = {"uniform": "class weights 'uniform' (1/K over the classes present; the paper)",
                "prior": "class weights 'prior' (n_c / n; the theory)",
                "sum": "class weights 'sum' (1 per class; the paper's code)"}


def _uniform_all_classes(key):
    """1/K with K = max label + 1 (classes absent from the batch counted)."""
    def fn(ex):
        ys = np.asarray(ex.kwargs["ys"])
        k_all, k_present = int(ys.max()) + 1, len(np.unique(ys))
        if k_all == k_present and param(key, ex, "weights") == "uniform":
            raise NotApplicable
        return _ref(key, ex, weights="sum") / k_all
    return fn


def _class_weight_variants(key):
    return {**other_choices(key, "weights", ("uniform", "prior", "sum"), _WEIGHT_DESC.get),
            "weights=1/num_classes": ("class weights 1/K with K = max(label) + 1 (absent classes counted)",
                                      _uniform_all_classes(key))}


class_conditional_wasserstein = {
    **_class_weight_variants("class_conditional_wasserstein"),
    "marginal": ("labels ignored: the marginal W_p^p of the whole batch", as_metric("wasserstein")),
    "p_th_root": ("sum_c w_c W_p (p-th root per class) instead of W_p^p",
                  lambda ex: _per_class_root(ex)),
    "euclidean_cost": _cost_p("class_conditional_wasserstein", 1.0, "cost ||x - y|| (Euclidean) instead of ||x - y||^p"),
    "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights("class_conditional_wasserstein")),
    "paired_cost": ("per class mean_i ||x_i - y_i||^p: the paired cost, no transport",
                    paired("class_conditional_wasserstein")),
}


def _per_class_root(ex):
    from .._conventions import class_blocks

    p = float(param_or(ex, "p", 2.0))
    if p == 1:
        raise NotApplicable
    xs, xt = ex.args
    a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
    total = 0.0
    for blk in class_blocks(ex.kwargs["ys"], ex.kwargs.get("yt"), len(xs), len(xt),
                            weights=param("class_conditional_wasserstein", ex, "weights"), a=a):
        w = _spec("wasserstein").reference(xs[blk.index_s], xt[blk.index_t], p=p,
                                           a=None if a is None else a[blk.index_s],
                                           b=None if b is None else b[blk.index_t])
        total += blk.weight * max(w, 0.0) ** (1 / p)
    return total


def _joint_custom(feature, normalise=False):
    """Joint OT with the feature cost between ``feature`` = "student_student" (the paper's code) or
    "student_teacher", optionally divided by its max."""
    def fn(ex):
        from ..reference.wasserstein import _ot_cost, cost_matrix, label_cost_matrix

        xs, xt = ex.args
        if feature == "student_student" and xs.shape != xt.shape:
            raise NotApplicable
        p = float(param_or(ex, "p", 2.0))
        c = cost_matrix(xs, xs if feature == "student_student" else xt, p)
        if normalise:
            c = c / c.max() if c.max() > 0 else c
        ys = np.asarray(ex.kwargs["ys"])
        yt = ex.kwargs.get("yt")
        lab = label_cost_matrix(ys, ys if yt is None else np.asarray(yt),
                                param("joint_wasserstein", ex, "label_cost"), ex.kwargs.get("num_classes"))
        a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
        return _ot_cost(c + float(param("joint_wasserstein", ex, "beta")) * lab,
                        None if a is None else np.asarray(a) / np.sum(a), None if b is None else np.asarray(b) / np.sum(b))
    return fn


def _half_onehot(ex):
    if param("joint_wasserstein", ex, "label_cost") != "onehot" or param("joint_wasserstein", ex, "beta") == 0:
        raise NotApplicable
    return _ref("joint_wasserstein", ex, beta=0.5 * float(param("joint_wasserstein", ex, "beta")))


def _label_cost_choice(choice):
    def fn(ex):
        if param("joint_wasserstein", ex, "label_cost") == choice or param("joint_wasserstein", ex, "beta") == 0:
            raise NotApplicable
        return _ref("joint_wasserstein", ex, label_cost=choice)
    return fn


joint_wasserstein = {
    **{f"label_cost={c}": (f"label cost '{c}'" + {"onehot": " (2·1[y != y'])", "soft": " (||p - q||^2)",
                                                   "cross_entropy": " (-sum y log y')"}[c], _label_cost_choice(c))
       for c in ("onehot", "soft", "cross_entropy")},
    "onehot_without_factor_2": ("label cost 1[y != y'] instead of ||e_y - e_y'||^2 = 2·1[y != y']", _half_onehot),
    "beta=1": ("beta ignored (fixed at 1)", with_params("joint_wasserstein", beta=1.0)),
    "marginal": ("labels ignored: the marginal W_p^p (beta = 0)", as_metric("wasserstein")),
    "student_student_cost": ("feature cost between student and student (the paper's code), not student and teacher",
                             _joint_custom("student_student")),
    "student_student_cost_max_normalised": ("feature cost student-student divided by its max (the paper's code)",
                                            _joint_custom("student_student", normalise=True)),
    "max_normalised_cost": ("feature cost divided by its max", _joint_custom("student_teacher", normalise=True)),
    "p_th_root": ("the p-th root of the joint cost", root("joint_wasserstein")),
    "euclidean_cost": _cost_p("joint_wasserstein", 1.0, "feature cost ||x - y|| (Euclidean) instead of ||x - y||^p"),
    "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights("joint_wasserstein")),
}


def _entropy_regulariser(ex):
    """<plan, C> - eps H(plan) = OT_eps - eps (H(a) + H(b))."""
    xs, xt = ex.args
    _, eps = _sinkhorn_kwargs(ex)
    return _ref("sinkhorn", ex) - eps * (_entropy(ex.kwargs.get("a"), len(xs)) + _entropy(ex.kwargs.get("b"), len(xt)))


def _sinkhorn_common(key, debiased):
    return {
        "plan_cost": ("<plan, C> of the entropic plan, without the entropy term (POT's sinkhorn2)",
                      entropic_variant(debiased, plan_cost=True)),
        "half_cost": ("cost ||x - y||^2 / 2 with the same epsilon (GeomLoss's p = 2 convention)",
                      entropic_variant(debiased, cost_factor=0.5)),
        "epsilon=blur^p": ("epsilon read as GeomLoss's blur: epsilon^p used", entropic_variant(
            debiased, eps_map=lambda e, p, c: e ** p if e ** p != e else not_applicable())),
        "epsilon_relative_to_max_cost": ("epsilon relative to the largest cost (epsilon * max C)",
                                         entropic_variant(debiased, eps_map=lambda e, p, c: e * c if c != 1 else
                                                          not_applicable())),
        "exact": ("exact OT (epsilon -> 0) instead of entropic", as_metric("wasserstein")),
        "p_th_root": ("the p-th root of the value", root(key)),
        "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights(key)),
    }


sinkhorn = {
    **_sinkhorn_common("sinkhorn", False),
    "debiased": ("the debiased Sinkhorn divergence instead of entropic OT", as_metric("sinkhorn_divergence")),
    "entropy_regulariser": ("regulariser -eps H(plan) instead of eps KL(plan || a b^T) (shifts by eps (H(a) + H(b)))",
                            _entropy_regulariser),
}

sinkhorn_divergence = {
    **_sinkhorn_common("sinkhorn_divergence", True),
    "not_debiased": ("plain entropic OT (not debiased)", as_metric("sinkhorn")),
}


def _sliced_per_slice_root(ex):
    from ..reference.wasserstein import sliced_projections, wasserstein_1d

    xs, xt = ex.args
    p = float(param_or(ex, "p", 2.0))
    if p == 1:
        raise NotApplicable
    theta = sliced_projections(xs.shape[1], int(param("sliced_wasserstein", ex, "n_projections")),
                               param("sliced_wasserstein", ex, "seed"))
    a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
    return float(np.mean([wasserstein_1d(xs @ t, xt @ t, a=a, b=b, p=p) ** (1 / p) for t in theta]))


sliced_wasserstein = {
    "p_th_root": ("SW_p, the p-th root of the mean, instead of SW_p^p", root("sliced_wasserstein")),
    "per_slice_root": ("mean over directions of W_p (root per slice)", _sliced_per_slice_root),
    "sum_over_projections": ("sum over the directions instead of the mean",
                             scaled("sliced_wasserstein", lambda ex: int(param("sliced_wasserstein", ex, "n_projections")))),
    "euclidean_cost": _cost_p("sliced_wasserstein", 1.0, "cost |u - v| (p = 1) instead of |u - v|^p"),
    "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights("sliced_wasserstein")),
}


# --------------------------------------------------------------------------------- Gaussian family

_EST = {"mle": "covariance estimator 'mle' (1/n)", "unbiased": "covariance estimator 'unbiased' (1/(n-1), torch.cov)"}
_COV = {"full": "full covariance", "diag": "diagonal covariance (variances only; the paper's code)"}


def _ridge(key, extra, desc):
    def fn(ex):
        return _ref(key, ex, eps=float(param(key, ex, "eps")) + extra)
    return desc, fn


def _centred(key):
    """The metric of the centred clouds: the mean term left out."""
    def fn(ex):
        xs, xt = ex.args
        if "ys" in ex.kwargs:
            from .._conventions import class_blocks

            xs, xt = xs.copy(), xt.copy()
            for blk in class_blocks(ex.kwargs["ys"], ex.kwargs.get("yt"), len(xs), len(xt), weights="sum",
                                    a=ex.kwargs.get("a")):
                xs[blk.index_s] -= _wmean(xs[blk.index_s], ex.kwargs.get("a"), blk.index_s)
                xt[blk.index_t] -= _wmean(xt[blk.index_t], ex.kwargs.get("b"), blk.index_t)
        else:
            xs = xs - _wmean(xs, ex.kwargs.get("a"), slice(None))
            xt = xt - _wmean(xt, ex.kwargs.get("b"), slice(None))
        return _ref(key, ex, args=(xs, xt))
    return fn


def _wmean(x, w, index):
    if w is None:
        return x.mean(0)
    w = np.asarray(w, float)[index]
    return (w / w.sum()) @ x


def _variance_not_std(ex):
    """Diagonal W2 with variances in place of standard deviations: ||dmu||^2 + ||var_S - var_T||^2."""
    from ..reference.gaussian import fit_gaussian

    kw = {k: param("gaussian_wasserstein", ex, k) for k in ("estimator", "eps")}
    (ms, vs), (mt, vt) = (fit_gaussian(x, a=w, covariance="diag", **kw)
                          for x, w in zip(ex.args, (ex.kwargs.get("a"), ex.kwargs.get("b"))))
    return float(np.sum((ms - mt) ** 2) + np.sum((vs - vt) ** 2))


def _gaussian_common(key):
    return {
        **other_choices(key, "estimator", ("mle", "unbiased"), _EST.get),
        **other_choices(key, "covariance", ("full", "diag"), _COV.get),
        "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights(key)),
        "no_mean_term": ("the mean term left out (covariances only)", _centred(key)),
    }


gaussian_wasserstein = {
    "not_squared": ("W2 (POT's bures_*), not squared", root("gaussian_wasserstein", lambda ex: 2.0)),
    **_gaussian_common("gaussian_wasserstein"),
    "pot_ridge_1e-6": _ridge("gaussian_wasserstein", 1e-6, "POT's empirical covariance: 1/n plus reg = 1e-6 on the diagonal"),
    "wkd_ridge_1e-5": _ridge("gaussian_wasserstein", 1e-5, "sigma = sqrt(var + 1e-5) (WKD-F's stabiliser)"),
    "variance_not_std": ("diagonal ||var_S - var_T||^2 in place of ||sigma_S - sigma_T||^2", _variance_not_std),
}

_DIR = {"student_teacher": "KL(student || teacher) (the paper's code)",
        "teacher_student": "KL(teacher || student) (the direction swapped)"}


def _jeffreys(key):
    def fn(ex):
        return _ref(key, ex, direction="student_teacher") + _ref(key, ex, direction="teacher_student")
    return fn


gaussian_kl = {
    **other_choices("gaussian_kl", "direction", ("student_teacher", "teacher_student"), _DIR.get),
    **_gaussian_common("gaussian_kl"),
    "missing_half": ("the factor 1/2 left out (twice the KL)", scaled("gaussian_kl", lambda ex: 2.0)),
    "jeffreys": ("symmetrised KL(S || T) + KL(T || S)", _jeffreys("gaussian_kl")),
    "ridge_1e-6": _ridge("gaussian_kl", 1e-6, "covariances with a ridge 1e-6 I"),
}

class_conditional_gaussian_wasserstein = {
    **_class_weight_variants("class_conditional_gaussian_wasserstein"),
    "marginal": ("labels ignored: one Gaussian per side", as_metric("gaussian_wasserstein", drop=("weights",))),
    **_gaussian_common("class_conditional_gaussian_wasserstein"),
}

class_conditional_gaussian_kl = {
    **_class_weight_variants("class_conditional_gaussian_kl"),
    **other_choices("class_conditional_gaussian_kl", "direction", ("student_teacher", "teacher_student"), _DIR.get),
    "marginal": ("labels ignored: one Gaussian per side", as_metric("gaussian_kl", drop=("weights",))),
    **_gaussian_common("class_conditional_gaussian_kl"),
    "missing_half": ("the factor 1/2 left out", scaled("class_conditional_gaussian_kl", lambda ex: 2.0)),
}


# ------------------------------------------------------------------------------------------- MMD

def _bandwidth_value(ex) -> float:
    from ..reference.kernel import bandwidth_from_rule

    s = param("mmd", ex, "bandwidth")
    return bandwidth_from_rule(*ex.args, s) if isinstance(s, str) else float(s)


def _gaussian_bandwidth(transform):
    """The Gaussian-kernel MMD with the bandwidth s replaced by ``transform(s)``."""
    def fn(ex):
        if param("mmd", ex, "kernel") != "gaussian":
            raise NotApplicable
        return _ref("mmd", ex, bandwidth=transform(_bandwidth_value(ex)))
    return fn


def _bandwidth_rule_value(rule):
    def fn(ex):
        from ..reference.wasserstein import cost_matrix

        s = param("mmd", ex, "bandwidth")
        if param("mmd", ex, "kernel") not in ("gaussian", "laplacian") or not isinstance(s, str):
            raise NotApplicable
        xs, xt = ex.args
        blocks = [cost_matrix(u, v, 2) for u, v in ((xs, xs), (xt, xt), (xs, xt))]
        if rule == "mean_off_diagonal":
            if s != "mean":
                raise NotApplicable
            total = sum(np.sqrt(c).sum() for c in blocks)
            count = sum(c.size for c in blocks) - len(xs) - len(xt)
            value = total / count if count else 0.0
        else:  # mean of squared distances as s^2
            value = math.sqrt(sum(c.sum() for c in blocks) / sum(c.size for c in blocks))
        return _ref("mmd", ex, bandwidth=value if value > 0 else 1.0)
    return fn


def _mmd_blocks(ex):
    from ..reference.kernel import kernel_matrix

    kernel = param("mmd", ex, "kernel")
    kw = dict(kernel=kernel, bandwidth=_bandwidth_value(ex) if kernel in ("gaussian", "laplacian") else 1.0,
              degree=param("mmd", ex, "degree"), offset=param("mmd", ex, "offset"))
    xs, xt = ex.args
    return kernel_matrix(xs, xs, **kw), kernel_matrix(xt, xt, **kw), kernel_matrix(xs, xt, **kw)


def _single_cross_term(ex):
    kxx, kyy, kxy = _mmd_blocks(ex)
    n, m = len(kxx), len(kyy)
    if param("mmd", ex, "estimator") == "biased":
        return float(kxx.sum() / n**2 + kyy.sum() / m**2 - kxy.sum() / (n * m))
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - kxy.sum() / (n * m))


def _paired_unbiased(ex):
    """Gretton's paired U-statistic: the cross diagonal k(x_i, y_i) left out as well."""
    kxx, kyy, kxy = _mmd_blocks(ex)
    n = len(kxx)
    if len(kyy) != n or n < 2:
        raise NotApplicable
    off = ~np.eye(n, dtype=bool)
    return float((kxx[off].sum() + kyy[off].sum() - 2 * kxy[off].sum()) / (n * (n - 1)))


mmd = {
    **other_choices("mmd", "estimator", ("biased", "unbiased"),
                    {"biased": "biased V-statistic (the paper's code)",
                     "unbiased": "unbiased U-statistic (i != j)"}.get),
    "not_squared": ("MMD, not squared", lambda ex: math.sqrt(max(_ref("mmd", ex), 0.0))),
    "bandwidth_exp(-d2/s2)": ("Gaussian kernel exp(-||x-y||^2 / s^2) (no factor 2)",
                              _gaussian_bandwidth(lambda s: s / math.sqrt(2))),
    "bandwidth_as_variance": ("Gaussian kernel exp(-||x-y||^2 / (2 s)): s read as the variance",
                              _gaussian_bandwidth(math.sqrt)),
    "bandwidth_as_gamma": ("Gaussian kernel exp(-s ||x-y||^2): s read as gamma (scikit-learn)",
                           _gaussian_bandwidth(lambda s: 1 / math.sqrt(2 * s))),
    "bandwidth_mean_off_diagonal": ("bandwidth: mean pairwise distance without the zero diagonal",
                                    _bandwidth_rule_value("mean_off_diagonal")),
    "bandwidth_root_mean_square": ("bandwidth s with s^2 = the mean squared pairwise distance",
                                   _bandwidth_rule_value("mean_square")),
    "single_cross_term": ("cross term -1/(nm) sum k(x, y) instead of -2/(nm)", _single_cross_term),
    "paired_unbiased": ("unbiased paired form: the cross diagonal k(x_i, y_i) left out too", _paired_unbiased),
}


def _other_rule(rule):
    def fn(ex):
        s = param("mmd", ex, "bandwidth")
        if not isinstance(s, str) or s == rule or param("mmd", ex, "kernel") not in ("gaussian", "laplacian"):
            raise NotApplicable
        return _ref("mmd", ex, bandwidth=rule)
    return fn


mmd.update({f"bandwidth={rule}": (f"bandwidth rule '{rule}'" + (" (the paper's code)" if rule == "mean" else
                                                                 " (median heuristic)"), _other_rule(rule))
            for rule in ("mean", "median")})


# ------------------------------------------------------------------------------------- Hinton KD

def _t(ex):
    return float(param("hinton_kd", ex, "temperature"))


def _teacher_untempered(ex):
    from ..reference.logit import kl_rows

    us, ut = ex.args
    t = _t(ex)
    if t == 1:
        raise NotApplicable
    if param("hinton_kd", ex, "direction") == "teacher_student":
        rows = kl_rows(ut * t, us, t)
    else:
        rows = kl_rows(us, ut * t, t)
    return t * t * math.fsum(rows) / len(us)


hinton_kd = {
    **other_choices("hinton_kd", "direction", ("teacher_student", "student_teacher"), _DIR.get),
    "missing_T2": ("the T^2 factor left out", scaled("hinton_kd", lambda ex: 1 / _t(ex) ** 2)),
    "T_not_T2": ("T instead of T^2", scaled("hinton_kd", lambda ex: 1 / _t(ex))),
    "batch_sum": ("sum over the batch instead of the mean", scaled("hinton_kd", lambda ex: len(ex.args[0]))),
    "mean_over_classes": ("mean over batch and classes (F.kl_div reduction='mean')",
                          scaled("hinton_kd", lambda ex: 1 / ex.args[0].shape[1])),
    "temperature_ignored": ("temperature ignored (T = 1, no T^2)", with_params("hinton_kd", temperature=1.0)),
    "T2_without_tempering": ("T^2 times the KL of the untempered softmaxes",
                             lambda ex: _t(ex) ** 2 * with_params("hinton_kd", temperature=1.0)(ex)),
    "teacher_untempered": ("the teacher's softmax without the temperature", _teacher_untempered),
}

hinton_kd["direction=teacher_student"] = ("KL(teacher || student) (Hinton's direction)",
                                          hinton_kd["direction=teacher_student"][1])
hinton_kd["direction=student_teacher"] = ("KL(student || teacher) (the paper's code, the reverse of Hinton's)",
                                          hinton_kd["direction=student_teacher"][1])


def evaluate(key: str, variants: dict, ex: Example) -> dict[str, float]:
    """``{name: value}`` of the applicable variants on ``ex`` (those that raise are left out)."""
    out = {}
    with np.errstate(all="ignore"):
        for name, (_, fn) in variants.items():
            try:
                value = fn(ex)
            except (NotApplicable, ValueError, ZeroDivisionError, RuntimeError, KeyError):
                continue
            if value is not None and math.isfinite(value):
                out[name] = float(value)
    return out
