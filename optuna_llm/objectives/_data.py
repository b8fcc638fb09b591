"""Image data for the objectives: CIFAR-10 through torchvision, scikit-learn's digits, and a
writer for the CIFAR-10 on-disk format.

Whole datasets are held as uint8 tensors (CIFAR-10 is 150 MB) so batches, normalisation and
augmentation run on the training device with no DataLoader workers.
Only :func:`load_cifar10` imports torchvision; the digits path needs torch and scikit-learn.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR10_FETCH = (
    "mkdir -p {root} && curl -L https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
    "| tar xz -C {root}"
)
_SPLIT_SEED = 0  # the validation split is the same for every trial and every run


@dataclass
class ImageData:
    """Train/validation/test images (uint8, N x C x H x W) with integer labels.

    Example:
        >>> data = load_digits(max_train_samples=100)
        >>> data.train_x.shape, data.in_channels, data.image_size, data.num_classes
        (torch.Size([100, 1, 8, 8]), 1, 8, 10)
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool
    """Random crops and horizontal flips while training (CIFAR-10, not digits)."""

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])


def _split(
    x: torch.Tensor, y: torch.Tensor, n_holdout: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(_SPLIT_SEED))
    hold, keep = perm[:n_holdout], perm[n_holdout:]
    return x[keep], y[keep], x[hold], y[hold]


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    xf = x.float() / 255.0
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


def _limit(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if n is None:
        return x, y
    if n < 2:
        raise ValueError(f"max_train_samples must be at least 2, got {n}.")
    return x[:n], y[:n]


def load_digits(*, max_train_samples: int | None = None) -> ImageData:
    """scikit-learn's 8x8 digits (1,797 images, shipped with the install): 60/20/20 split."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The digits dataset needs scikit-learn: pip install 'optuna-llm[cifar]'."
        ) from exc
    bunch = sk_load_digits()
    # Pixel values are 0..16; scale to 0..255 so both datasets share one uint8 pipeline.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    n_test = len(y) // 5
    rest_x, rest_y, test_x, test_y = _split(x, y, n_test)
    train_x, train_y, val_x, val_y = _split(rest_x, rest_y, n_test)
    train_x, train_y = _limit(train_x, train_y, max_train_samples)
    mean, std = _channel_stats(train_x)
    return ImageData(
        "digits", train_x, train_y, val_x, val_y, test_x, test_y, 10, mean, std, augment=False
    )


def _cifar10_class(verify_checksums: bool) -> type:
    from torchvision.datasets import CIFAR10

    if verify_checksums:
        return CIFAR10

    class UncheckedCIFAR10(CIFAR10):
        """CIFAR10 for files you packed yourself: same format, no MD5 comparison."""

        train_list = [[name, None] for name, _ in CIFAR10.train_list]  # noqa: RUF012
        test_list = [[name, None] for name, _ in CIFAR10.test_list]  # noqa: RUF012
        meta = {**CIFAR10.meta, "md5": None}  # noqa: RUF012

    return UncheckedCIFAR10


CIFAR10_BATCHES = (*(f"data_batch_{k}" for k in range(1, 6)), "test_batch")
CIFAR10_META = "batches.meta"


def check_cifar10_folder(folder: str | os.PathLike[str]) -> str | None:
    """The first file of a ``cifar-10-batches-py`` folder that is not in CIFAR-10's format,
    and what is wrong with it, or ``None`` when every file reads as torchvision expects.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, "data_batch_1"), "w").write("1,2,3")
        >>> print(check_cifar10_folder(folder))  # doctest: +ELLIPSIS
        CIFAR-10 file '.../data_batch_1' is not a pickle (a text file?): ...
    """
    for name in (*CIFAR10_BATCHES, CIFAR10_META):
        path = os.path.join(os.fspath(folder), name)
        if not os.path.isfile(path):
            return f"CIFAR-10 file {path!r} is missing."
        try:
            with open(path, "rb") as fh:
                entry = pickle.load(fh, encoding="latin1")
        except Exception as exc:
            return (
                f"CIFAR-10 file {path!r} is not a pickle (a text file?): "
                f"{type(exc).__name__}: {exc}."
            )
        if not isinstance(entry, dict):
            return f"CIFAR-10 file {path!r} holds a {type(entry).__name__}, not a dict."
        keys = sorted(repr(k) for k in entry)
        if name == CIFAR10_META:
            if "label_names" not in entry:
                return f"CIFAR-10 file {path!r} lacks the key 'label_names' (it has {keys})."
            continue
        missing = [k for k in ("data", "labels") if k not in entry]
        if missing == ["labels"] and "fine_labels" in entry:  # CIFAR-100's name, as torchvision
            missing = []
        if missing:
            return (
                f"CIFAR-10 file {path!r} lacks the key(s) {missing} (it has {keys}); a batch is "
                "a dict with 'data' (N x 3072 uint8) and 'labels'."
            )
        data = np.asarray(entry["data"])
        if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
            return (
                f"CIFAR-10 file {path!r}: 'data' is {data.dtype} of shape {data.shape}, not "
                "uint8 of shape (N, 3072)."
            )
        labels = entry["labels"] if "labels" in entry else entry["fine_labels"]
        if len(labels) != len(data):
            return f"CIFAR-10 file {path!r} has {len(data)} images but {len(labels)} labels."
    return None


def load_cifar10(
    root: str | os.PathLike[str],
    *,
    max_train_samples: int | None = None,
    val_fraction: float = 0.1,
    verify_checksums: bool = True,
) -> ImageData:
    """CIFAR-10 from ``root/cifar-10-batches-py`` through ``torchvision.datasets.CIFAR10``.

    Never downloads: when the files are missing, the error gives the command that fetches them.
    ``val_fraction`` of the training set (a fixed split) is the validation set; the official
    test batch is the test set.
    """
    root = os.fspath(root)
    folder = os.path.join(root, "cifar-10-batches-py")
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"CIFAR-10 is not in {root!r} (no cifar-10-batches-py folder). Fetch it (170 MB) "
            f"with:\n  {CIFAR10_FETCH.format(root=root)}\nthen pass --dataset_dir {root}."
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}.")
    cls = _cifar10_class(verify_checksums)
    try:
        train = cls(root, train=True, download=False)
        test = cls(root, train=False, download=False)
    except (KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        # torchvision unpickles the batches without saying which one it could not read.
        problem = check_cifar10_folder(folder)
        if problem is None:
            raise
        raise ValueError(
            f"{problem} Write the files with optuna_llm.objectives._data.write_cifar10_format "
            "or fetch the real ones."
        ) from exc
    except RuntimeError as exc:
        hint = (
            " If you packed these files yourself, pass verify_checksums=False "
            "(--no-verify-checksums on the command line)."
            if verify_checksums
            else ""
        )
        raise RuntimeError(
            f"CIFAR-10 files in {folder!r} are incomplete or corrupted ({exc}). Fetch them "
            f"again with:\n  {CIFAR10_FETCH.format(root=root)}\n{hint}"
        ) from exc

    def to_tensors(ds: object) -> tuple[torch.Tensor, torch.Tensor]:
        data = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2)  # type: ignore[attr-defined]
        return data.contiguous(), torch.tensor(ds.targets, dtype=torch.int64)  # type: ignore[attr-defined]

    x, y = to_tensors(train)
    test_x, test_y = to_tensors(test)
    n_val = max(1, round(len(y) * val_fraction))
    train_x, train_y, val_x, val_y = _split(x, y, n_val)
    train_x, train_y = _limit(train_x, train_y, max_train_samples)
    mean, std = _channel_stats(train_x)
    return ImageData(
        "cifar10", train_x, train_y, val_x, val_y, test_x, test_y, 10, mean, std, augment=True
    )


def write_cifar10_format(
    root: str | os.PathLike[str],
    train_images: np.ndarray,
    train_labels: Sequence[int],
    test_images: np.ndarray,
    test_labels: Sequence[int],
    *,
    label_names: Sequence[str] = CIFAR10_CLASSES,
) -> str:
    """Write images (N x 32 x 32 x 3 uint8) in CIFAR-10's on-disk format under ``root``.

    The five training batches and the test batch are pickled dicts as in the original
    (``data``: N x 3072 uint8 with R, G, B planes, ``labels``, ``batch_label``,
    ``filenames``), plus ``batches.meta``. Load the result with ``verify_checksums=False``.
    Returns the ``cifar-10-batches-py`` folder.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> imgs = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
        >>> folder = write_cifar10_format("/tmp/c10", imgs, [0] * 10, imgs, [1] * 10)
    """
    folder = os.path.join(os.fspath(root), "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)

    def dump(name: str, images: np.ndarray, labels: Sequence[int], batch_label: str) -> None:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8:
            raise ValueError(
                f"Images must be a uint8 array of shape (N, 32, 32, 3), got {images.dtype} "
                f"{images.shape}."
            )
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        # str keys: torchvision unpickles with encoding="latin1" and indexes entry["data"].
        entry = {
            "batch_label": batch_label,
            "labels": [int(v) for v in labels],
            "data": images.transpose(0, 3, 1, 2).reshape(len(images), 3072),
            "filenames": [f"{name}_{i:05d}.png" for i in range(len(images))],
        }
        with open(os.path.join(folder, name), "wb") as fh:
            pickle.dump(entry, fh)

    parts = np.array_split(np.arange(len(train_images)), 5)
    labels = np.asarray(train_labels)
    for k, idx in enumerate(parts, start=1):
        dump(f"data_batch_{k}", train_images[idx], labels[idx].tolist(), f"training batch {k} of 5")
    dump("test_batch", test_images, list(test_labels), "testing batch 1 of 1")
    meta = {
        "num_cases_per_batch": int(max(len(p) for p in parts)),
        "label_names": list(label_names),
        "num_vis": 3072,
    }
    with open(os.path.join(folder, "batches.meta"), "wb") as fh:
        pickle.dump(meta, fh)
    return folder
