"""ResNet-18 / ResNet-34 (He et al. 2016) that return ``(logits, features)``, with a choice of stem.

``stem="cifar"`` (default): a 3x3 stride-1 stem and no max-pool, the usual variant for 32x32 images.
``stem="imagenet"``: torchvision's ImageNet stem, a 7x7 stride-2 conv plus a 3x3 stride-2 max-pool,
which throws away 15/16 of a 32x32 image's positions before the first block; the paper's code used it
on 32x32 inputs, starting from torchvision's ImageNet-pretrained weights (see :func:`load_weights`,
which also reads torchvision's parameter names). Then four stages of basic blocks with
``64w, 128w, 256w, 512w`` channels (``w`` the width multiplier), global average pooling and a
linear head. ``forward`` returns the logits and the pooled penultimate features
:math:`\\phi(x)\\in\\mathbb R^{512w}`, so every call site gets both without special cases.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: Blocks per stage (He et al. 2016, Table 1).
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
#: The stems ``ResNet(stem=...)`` accepts.
STEMS = ("cifar", "imagenet")


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet with a CIFAR (default) or ImageNet stem.

    Parameters
    ----------
    depth : {18, 34}
        Number of weighted layers.
    num_classes : int
        Output size of the linear head.
    in_channels : int, default 3
        1 for grey-scale images (MNIST), 3 for colour.
    width : float, default 1.0
        Width multiplier; stage widths are ``round(64 * width) * (1, 2, 4, 8)`` (at least 1 channel).
    stem : {"cifar", "imagenet"}, default "cifar"
        ``"cifar"``: 3x3 stride-1 conv, BN, ReLU, no max-pool (features keep the input resolution).
        ``"imagenet"``: 7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max-pool, as torchvision and the
        paper's code (which ran it on 32x32 inputs); the last stage then sees 1x1 maps at 32x32.

    Attributes
    ----------
    feature_dim : int
        Size of the penultimate features, ``8 * round(64 * width)``.
    fc : nn.Linear
        The head :math:`u = W z + b`; ``fc.weight`` is the :math:`W` of the Lipschitz bounds.

    Examples
    --------
    >>> net = ResNet(18, num_classes=10, in_channels=1, width=0.0625)
    >>> logits, features = net(torch.zeros(2, 1, 28, 28))
    >>> tuple(logits.shape), tuple(features.shape)
    ((2, 10), (2, 32))
    """

    def __init__(self, depth: int, num_classes: int, in_channels: int = 3, width: float = 1.0,
                 stem: str = "cifar"):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"depth must be one of {sorted(DEPTHS)}; got {depth!r}")
        if not width > 0:
            raise ValueError(f"width must be > 0; got {width!r}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {', '.join(map(repr, STEMS))}; got {stem!r}")
        base = max(1, round(64 * width))
        self.depth, self.width, self.stem_kind = depth, width, stem
        if stem == "cifar":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, base, 3, 1, 1, bias=False), nn.BatchNorm2d(base), nn.ReLU())
        else:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, base, 7, 2, 3, bias=False), nn.BatchNorm2d(base), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
        stages, c_in = [], base
        for i, blocks in enumerate(DEPTHS[depth]):
            c_out = base * 2**i
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(c_in, c_out, 2 if (b == 0 and i > 0) else 1))
                c_in = c_out
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.feature_dim = c_in
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: global average pool of the last stage, shape ``(n, feature_dim)``."""
        return torch.flatten(F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1), 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, features)``."""
        z = self.features(x)
        return self.fc(z), z


def resnet18(num_classes: int, in_channels: int = 3, width: float = 1.0, stem: str = "cifar") -> ResNet:
    """ResNet-18 (the paper's student); ``stem`` as in :class:`ResNet`."""
    return ResNet(18, num_classes, in_channels, width, stem=stem)


def resnet34(num_classes: int, in_channels: int = 3, width: float = 1.0, stem: str = "cifar") -> ResNet:
    """ResNet-34 (the paper's teacher); ``stem`` as in :class:`ResNet`."""
    return ResNet(34, num_classes, in_channels, width, stem=stem)


_TORCHVISION_KEY = re.compile(r"(conv1|bn1|layer\d+)\.")


def _torchvision_to_ours(key: str) -> str:
    """``conv1.* -> stem.0.*``, ``bn1.* -> stem.1.*``, ``layer{i}.{j}.* -> stages.{i-1}.{j}.*`` with
    ``downsample`` renamed ``shortcut``; other keys (``fc.*``) unchanged."""
    if key.startswith("conv1."):
        return "stem.0." + key[len("conv1."):]
    if key.startswith("bn1."):
        return "stem.1." + key[len("bn1."):]
    m = re.fullmatch(r"layer(\d+)\.(\d+)\.(.+)", key)
    if m:
        rest = re.sub(r"^downsample\.", "shortcut.", m[3])
        return f"stages.{int(m[1]) - 1}.{m[2]}.{rest}"
    return key


def _listed(what: str, keys: list) -> str:
    """``"\\n  missing keys (3): a; b; c"``, at most five keys shown; empty when ``keys`` is."""
    if not keys:
        return ""
    return f"\n  {what} ({len(keys)}): " + "; ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")


def load_weights(model: ResNet, path) -> dict:
    """Load the weights saved at ``path`` (by ``torch.save``) into ``model``, in place.

    The file holds a state dict, or a dict with one under ``"model"`` or ``"state_dict"`` (as the
    training checkpoints do), with or without the ``module.`` prefix of a DDP or DataParallel wrapper.
    Two namings are read, detected from the keys:

    * ``"kd2m"``: this module's own ``model.state_dict()`` keys;
    * ``"torchvision"``: ``torchvision.models.resnet18/34``'s keys, mapped as
      ``conv1 -> stem.0``, ``bn1 -> stem.1``, ``layer{i}.{j}.{conv1,bn1,conv2,bn2} ->
      stages.{i-1}.{j}.{...}``, ``layer{i}.{j}.downsample.{0,1} -> stages.{i-1}.{j}.shortcut.{0,1}``,
      ``fc -> fc``.

    The head ``fc.*`` is skipped, keeping its initialisation, when its shape differs from the model's
    (e.g. 1000 ImageNet classes for a 10-class model). Any other missing key, unexpected key or
    shape difference (a stem, width or depth that does not match) raises ``ValueError``.

    Returns
    -------
    dict
        ``{"path", "naming", "loaded"`` (number of tensors copied)``, "head"`` (``"loaded"`` or
        ``"kept initialisation (shape ...)"``)``, "sha256"`` (of the file)``}``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(saved, dict):
        saved = next((saved[k] for k in ("model", "state_dict") if isinstance(saved.get(k), dict)), saved)
    if not isinstance(saved, dict) or not all(torch.is_tensor(v) for v in saved.values()):
        raise ValueError(f"{path}: expected a state dict (or a dict with one under 'model' or 'state_dict')")
    if saved and all(k.startswith("module.") for k in saved):  # saved from a DDP or DataParallel wrapper
        saved = {k[len("module."):]: v for k, v in saved.items()}
    naming = "torchvision" if any(_TORCHVISION_KEY.match(k) for k in saved) else "kd2m"
    rename = _torchvision_to_ours if naming == "torchvision" else (lambda k: k)
    state = {}
    for key, value in saved.items():
        name = rename(key)  # a second key mapped onto the same name is reported as unexpected
        state[name if name not in state else f"{key} (also maps to {name})"] = value

    own = model.state_dict()
    head = "loaded"
    w = state.get("fc.weight")
    if w is not None and w.shape != own["fc.weight"].shape:
        head = f"kept initialisation (shape {tuple(w.shape)} in the file, {tuple(own['fc.weight'].shape)} in the model)"
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        own = {k: v for k, v in own.items() if not k.startswith("fc.")}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
              for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{path} ({naming} naming) does not fit ResNet(depth={model.depth}, width={model.width}, "
                         f"stem={model.stem_kind!r}):" + _listed("missing keys", missing)
                         + _listed("unexpected keys", unexpected) + _listed("keys whose shapes differ", shapes))
    model.load_state_dict(state, strict=head == "loaded")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": str(path), "naming": naming, "loaded": len(state), "head": head, "sha256": digest.hexdigest()}
