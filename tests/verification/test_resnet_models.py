"""The ResNet stems (``cifar`` default, ``imagenet`` as torchvision and the paper's code) and
``load_weights``: torchvision's and our own parameter names, the head kept when its shape differs,
and every other mismatch refused with a message that names it."""

from __future__ import annotations

import hashlib
import re

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from verification.resnet.models import ResNet, load_weights, resnet18, resnet34


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise_batch_norms(net):
    """Non-trivial BN affine parameters and running statistics, so a BN mapped to the wrong place shows."""
    gen = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 0.5 + torch.rand(n, generator=gen)
            m.bias.data = 0.1 * torch.randn(n, generator=gen)
            m.running_mean = 0.1 * torch.randn(n, generator=gen)
            m.running_var = 0.5 + torch.rand(n, generator=gen)
    return net


@pytest.fixture(scope="module")
def torchvision_files(tmp_path_factory):
    """torchvision's ResNet-18/34 (random weights, 1000 classes; nothing downloaded) saved as state dicts."""
    folder = tmp_path_factory.mktemp("torchvision")
    torch.manual_seed(0)
    nets, files = {}, {}
    for depth, build in ((18, torchvision.models.resnet18), (34, torchvision.models.resnet34)):
        nets[depth] = _randomise_batch_norms(build(weights=None, num_classes=1000)).eval()
        files[depth] = folder / f"resnet{depth}.pt"
        torch.save(nets[depth].state_dict(), files[depth])
    return nets, files


# --------------------------------------------------------------------------- stems


@pytest.mark.parametrize("size, last", [(32, 1), (16, 1)])
def test_imagenet_stem_shapes(size, last):
    net = ResNet(18, num_classes=10, in_channels=3, width=0.125, stem="imagenet").eval()
    assert net.stem_kind == "imagenet"
    conv, pool = net.stem[0], net.stem[3]
    assert conv.kernel_size == (7, 7) and conv.stride == (2, 2) and conv.padding == (3, 3) and conv.bias is None
    assert isinstance(pool, torch.nn.MaxPool2d) and (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    x = torch.randn(2, 3, size, size)
    assert net.stem(x).shape[-1] == size // 4
    assert net.stages(net.stem(x)).shape[-1] == last
    logits, feats = net(x)
    assert logits.shape == (2, 10) and feats.shape == (2, 64) and net.feature_dim == 512 * 0.125
    assert resnet18(10, stem="imagenet").feature_dim == 512 and resnet34(10, width=0.5, stem="imagenet").feature_dim == 256


def test_cifar_stem_is_the_default_and_unchanged():
    torch.manual_seed(3)
    default = ResNet(18, 10, 3, 0.25)
    torch.manual_seed(3)
    explicit = resnet18(10, 3, 0.25, stem="cifar")
    assert default.stem_kind == "cifar" and len(default.stem) == 3
    sd, se = default.state_dict(), explicit.state_dict()
    assert list(sd) == list(se) and all(torch.equal(sd[k], se[k]) for k in sd)
    # the parameter names the checkpoints were written with; the imagenet stem only changes shapes
    assert [k for k in sd if k.startswith("stem.")] == [
        "stem.0.weight", "stem.1.weight", "stem.1.bias", "stem.1.running_mean", "stem.1.running_var",
        "stem.1.num_batches_tracked"]
    assert list(ResNet(18, 10, 3, 0.25, stem="imagenet").state_dict()) == list(sd) and len(sd) == 122
    # the CIFAR ResNet-18 everyone quotes: 11,173,962 parameters for 10 classes
    assert sum(p.numel() for p in resnet18(10).parameters()) == 11_173_962


def test_bad_stem():
    with pytest.raises(ValueError, match=r"stem must be one of 'cifar', 'imagenet'; got 'resnet'"):
        ResNet(18, 10, stem="resnet")
    with pytest.raises(ValueError, match="stem"):
        resnet34(10, stem="ImageNet")


# --------------------------------------------------------------------------- load_weights


@pytest.mark.parametrize("depth", [18, 34])
def test_torchvision_weights_round_trip(torchvision_files, depth):
    nets, files = torchvision_files
    tv, path = nets[depth], files[depth]
    torch.manual_seed(1)
    model = ResNet(depth, 10, 3, 1.0, stem="imagenet")
    head = model.fc.weight.detach().clone()
    report = load_weights(model, path)
    assert report["naming"] == "torchvision" and report["path"] == str(path)
    assert report["head"].startswith("kept initialisation") and "(1000, 512)" in report["head"]
    assert report["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.equal(model.fc.weight, head)

    ours, theirs = model.state_dict(), tv.state_dict()
    assert report["loaded"] == len(theirs) - 2 == len(ours) - 2  # all but fc.weight, fc.bias
    assert torch.equal(model.stem[0].weight, tv.conv1.weight) and torch.equal(model.stem[1].running_var, tv.bn1.running_var)
    assert torch.equal(model.stages[1][0].shortcut[0].weight, tv.layer2[0].downsample[0].weight)
    assert torch.equal(model.stages[3][1].bn2.running_mean, tv.layer4[1].bn2.running_mean)
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage):
            ref = getattr(tv, f"layer{i + 1}")[j]
            for name in ("conv1", "bn1", "conv2", "bn2"):
                for k, v in getattr(block, name).state_dict().items():
                    assert torch.equal(v, getattr(ref, name).state_dict()[k]), f"stages.{i}.{j}.{name}.{k}"
            if ref.downsample is not None:
                for k, v in block.shortcut.state_dict().items():
                    assert torch.equal(v, ref.downsample.state_dict()[k]), f"stages.{i}.{j}.shortcut.{k}"
            else:
                assert len(block.shortcut) == 0

    model.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        _, feats = model(x)
        penultimate = torch.nn.Sequential(*list(tv.children())[:-1])(x).flatten(1)
    assert feats.shape == penultimate.shape == (4, 512)
    torch.testing.assert_close(feats, penultimate, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("wrapper", [None, "model", "state_dict", "module."])
def test_own_weights_round_trip_loads_the_head(tmp_path, wrapper):
    """A bare state dict, one inside a checkpoint, and one saved from a DDP wrapper (``module.`` keys)."""
    torch.manual_seed(0)
    source = _randomise_batch_norms(ResNet(18, 10, 3, 1 / 16, stem="imagenet"))
    state = source.state_dict()
    path = tmp_path / "student.pt"
    if wrapper == "module.":
        torch.save({"module." + k: v for k, v in state.items()}, path)
    else:
        torch.save(state if wrapper is None else {wrapper: state, "epoch": 3}, path)
    torch.manual_seed(1)
    model = ResNet(18, 10, 3, 1 / 16, stem="imagenet")
    assert not torch.equal(model.fc.weight, source.fc.weight)
    report = load_weights(model, path)
    assert report["naming"] == "kd2m" and report["head"] == "loaded" and report["loaded"] == len(state)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_cifar_model_refuses_imagenet_stem_weights(torchvision_files):
    _, files = torchvision_files
    model = ResNet(18, 10, 3, 1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as err:
        load_weights(model, files[18])
    msg = str(err.value)
    assert str(files[18]) in msg and "torchvision naming" in msg and "stem='cifar'" in msg
    assert "keys whose shapes differ (1): stem.0.weight: (64, 3, 7, 7) in the file, (64, 3, 3, 3) in the model" in msg
    assert "missing" not in msg and "unexpected" not in msg
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # nothing loaded on a refusal


def test_wrong_depth_is_refused(torchvision_files):
    _, files = torchvision_files
    with pytest.raises(ValueError) as err:
        load_weights(ResNet(18, 10, 3, 1.0, stem="imagenet"), files[34])
    msg = str(err.value)
    assert "depth=18" in msg and re.search(r"unexpected keys \(\d+\): stages\.0\.2\.conv1\.weight", msg)
    assert " ..." in msg
    assert "missing" not in msg
    with pytest.raises(ValueError, match=r"missing keys \(\d+\): stages\.0\.2\.conv1\.weight"):
        load_weights(ResNet(34, 10, 3, 1.0, stem="imagenet"), files[18])


def test_width_mismatch_and_bad_files_are_refused(tmp_path):
    path = tmp_path / "narrow.pt"
    torch.save(ResNet(18, 10, 3, 1 / 16).state_dict(), path)
    with pytest.raises(ValueError, match=r"keys whose shapes differ \(\d+\): stem\.0\.weight: \(4, 3, 3, 3\) in the file, "
                                         r"\(8, 3, 3, 3\) in the model"):
        load_weights(ResNet(18, 10, 3, 1 / 8), path)
    torch.save({"epoch": 3, "model": "not a state dict"}, path)
    with pytest.raises(ValueError, match="expected a state dict"):
        load_weights(ResNet(18, 10, 3, 1 / 16), path)
    missing = tmp_path / "nowhere" / "weights.pt"
    with pytest.raises(FileNotFoundError, match="no weights file at " + re.escape(str(missing))):
        load_weights(ResNet(18, 10, 3, 1 / 16), missing)
