"""ResNet teacher -> student experiments (issue 7, THEORY.md §4.3).

``models``: CIFAR-style ResNet-18/34 returning ``(logits, features)``. ``data``: the embedded
MNIST-5k default and torchvision CIFAR-10/100, SVHN. ``train``: the protocol (identical recipe for
every arm, lambda rule, checkpoints). ``bounds``: Theorem 3.1's terms and checks on held-out data.
``figures``: Table 1 / Fig. 2 / Fig. 3 analogues and bound-check plots from the results files.
The command is ``kd2m-ref verify resnet`` (``verification.run_resnet``).
"""
