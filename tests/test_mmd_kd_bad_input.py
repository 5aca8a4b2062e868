"""Bad input to ``mmd`` and ``hinton_kd`` gets a ValueError naming the argument, in the reference and in
torch (same checks, shared code)."""

import numpy as np
import pytest

from conftest import BACKENDS
from kd2m_ref import METRICS

RNG = np.random.default_rng(0)
XS, XT = RNG.normal(size=(6, 3)), RNG.normal(size=(5, 3))
US, UT = RNG.normal(size=(4, 5)), RNG.normal(size=(4, 5))


def _call(key, backend, a, b, **kwargs):
    spec = METRICS[key]
    fn = spec.reference if backend == "reference" else spec.torch
    if backend == "torch":
        import torch

        a, b = (torch.tensor(v) if isinstance(v, np.ndarray) else v for v in (a, b))
    return fn(a, b, **kwargs)


MMD_CASES = {
    "nan in xs": (dict(xs=np.where(np.eye(6, 3) > 0, np.nan, XS)), "xs contains NaN"),
    "1-D xt": (dict(xt=XT[:, 0]), "xt must be a 2-D array"),
    "mismatched features": (dict(xt=XT[:, :2]), "xt has 2 features but the other input has 3"),
    "integer xs": (dict(xs=np.ones((6, 3), dtype=np.int64)), "xs must have a floating dtype"),
    "empty xt": (dict(xt=XT[:0]), "xt must have at least 1 row"),
    "unbiased with one row": (dict(xs=XS[:1], estimator="unbiased"), "xs must have at least 2 row"),
    "unknown kernel": (dict(kernel="rbf"), "kernel must be one of"),
    "unknown estimator": (dict(estimator="v"), "estimator must be one of"),
    "unknown rule": (dict(bandwidth="silverman"), "bandwidth must be one of"),
    "negative bandwidth": (dict(bandwidth=-1.0), "bandwidth must be a positive number"),
    "zero bandwidth": (dict(bandwidth=0.0), "bandwidth must be a positive number"),
    "non-integer degree": (dict(kernel="polynomial", degree=1.5), "degree must be a positive integer"),
    "zero degree": (dict(kernel="polynomial", degree=0), "degree must be a positive integer"),
    "negative offset": (dict(kernel="polynomial", offset=-1.0), "offset must be a finite non-negative"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(MMD_CASES))
def test_mmd_bad_input(case, backend):
    kwargs, message = MMD_CASES[case]
    kwargs = dict(kwargs)
    xs, xt = kwargs.pop("xs", XS), kwargs.pop("xt", XT)
    with pytest.raises(ValueError, match=message):
        _call("mmd", backend, xs, xt, **kwargs)


KD_CASES = {
    "1-D student": (dict(us=US[0]), "logits_student must be a 2-D array"),
    "shape mismatch": (dict(ut=UT[:, :4]), r"logits_teacher has shape \(4, 4\) but logits_student has \(4, 5\)"),
    "fewer teacher rows": (dict(ut=UT[:3]), "logits_teacher has shape"),
    "inf in teacher": (dict(ut=np.where(np.eye(4, 5) > 0, np.inf, UT)), "logits_teacher contains NaN or inf"),
    "integer logits": (dict(us=np.ones((4, 5), dtype=np.int64)), "logits_student must have a floating dtype"),
    "no classes": (dict(us=US[:, :0], ut=UT[:, :0]), "logits_student must have at least one row and one class"),
    "zero temperature": (dict(temperature=0.0), "temperature must be a finite positive"),
    "negative temperature": (dict(temperature=-2.0), "temperature must be a finite positive"),
    "unknown direction": (dict(direction="forward"), "direction must be one of"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(KD_CASES))
def test_hinton_kd_bad_input(case, backend):
    kwargs, message = KD_CASES[case]
    kwargs = dict(kwargs)
    us, ut = kwargs.pop("us", US), kwargs.pop("ut", UT)
    with pytest.raises(ValueError, match=message):
        _call("hinton_kd", backend, us, ut, **kwargs)


def test_torch_inputs_must_share_dtype():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="xs and xt must share dtype"):
        METRICS["mmd"].torch(torch.tensor(XS), torch.tensor(XT, dtype=torch.float32))
    with pytest.raises(ValueError, match="logits_student and logits_teacher must share dtype"):
        METRICS["hinton_kd"].torch(torch.tensor(US), torch.tensor(UT, dtype=torch.float32))
