"""CIFAR-style ResNet-18 / ResNet-34 that return ``(logits, features)``.

The CIFAR variant of He et al. (2016): a 3x3 stride-1 stem and no max-pool (the ImageNet stem,
7x7 stride 2 plus max-pool, throws away 3/4 of a 32x32 image's resolution before the first block;
the paper's code used it with ImageNet weights), four stages of basic blocks with
``64w, 128w, 256w, 512w`` channels (``w`` the width multiplier), global average pooling and a
linear head. ``forward`` returns the logits and the pooled penultimate features
:math:`\\phi(x)\\in\\mathbb R^{512w}`, so every call site gets both without special cases.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

#: Blocks per stage (He et al. 2016, Table 1).
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


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
    """CIFAR-style ResNet.

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

    def __init__(self, depth: int, num_classes: int, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"depth must be one of {sorted(DEPTHS)}; got {depth!r}")
        if not width > 0:
            raise ValueError(f"width must be > 0; got {width!r}")
        base = max(1, round(64 * width))
        self.depth, self.width = depth, width
        self.stem = nn.Sequential(nn.Conv2d(in_channels, base, 3, 1, 1, bias=False), nn.BatchNorm2d(base), nn.ReLU())
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


def resnet18(num_classes: int, in_channels: int = 3, width: float = 1.0) -> ResNet:
    """CIFAR-style ResNet-18 (the paper's student)."""
    return ResNet(18, num_classes, in_channels, width)


def resnet34(num_classes: int, in_channels: int = 3, width: float = 1.0) -> ResNet:
    """CIFAR-style ResNet-34 (the paper's teacher)."""
    return ResNet(34, num_classes, in_channels, width)
