"""``kd2m-ref verify resnet``: ResNet teacher -> student distillation with every loss.

``models``: CIFAR-style ResNet-18/34 returning ``(logits, features)``. ``data``: the embedded
MNIST-5k default and torchvision CIFAR-10/100, SVHN. ``train``: the protocol (identical recipe for
every arm, lambda rule, checkpoints). ``bounds``: Theorem 3.1's terms and checks on held-out data.
``plots``: Table 1 / Fig. 2 / Fig. 3 analogues and bound-check plots from the results files.
``experiment``: the run, its summary and the exit rule.
"""

from .experiment import PROFILES, figures, run, summary, violations

__all__ = ["PROFILES", "figures", "run", "summary", "violations"]
