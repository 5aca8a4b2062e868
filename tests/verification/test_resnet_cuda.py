"""CUDA smoke test of the ResNet experiment: the models agree with the CPU on one forward/backward
(both stems), and the smoke profile runs on the GPU with no must-hold violation. Skipped without a
CUDA device; ``scripts/gpu_check.sh`` runs it on a GPU machine."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from verification.resnet.models import ResNet

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device: the CUDA smoke test runs on a GPU machine (scripts/gpu_check.sh)"),
]


@pytest.fixture
def strict_float32():
    """Deterministic cuDNN and no TF32, so CUDA float32 matches the CPU to ~1e-4; restored afterwards."""
    flags = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
     torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) = flags


def _step(model, x, y):
    """One training-mode forward/backward; returns the logits and the gradients by parameter name."""
    model.train().zero_grad()
    logits, feats = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y) + feats.pow(2).mean()
    loss.backward()
    return logits.detach(), {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_forward_backward_on_cuda_matches_cpu(strict_float32, stem):
    torch.manual_seed(0)
    cpu = ResNet(18, 10, 3, 1 / 16, stem=stem)
    gpu = copy.deepcopy(cpu).cuda()
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    logits_cpu, _ = _step(cpu, x, y)
    logits_gpu, grads = _step(gpu, x.cuda(), y.cuda())
    assert logits_gpu.device.type == "cuda"
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    torch.testing.assert_close(logits_gpu.cpu(), logits_cpu, rtol=1e-4, atol=1e-4)


def test_smoke_profile_runs_on_cuda(tmp_path):
    from verification.resnet import run

    summary = run(profile="smoke", seed=0, out=tmp_path, device="cuda", progress=False, make_figures=False)
    assert summary["device"].startswith("cuda")
    assert summary["checks"]["must_hold_violations"] == 0
