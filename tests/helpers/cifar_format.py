"""Test helper: a tiny CIFAR-10 in the real on-disk format, with a learnable signal.

Each class has its own mean colour, so a network can beat chance after a few steps.
"""

from __future__ import annotations

import os

import numpy as np

from optuna_llm.objectives._data import write_cifar10_format

PALETTE = np.random.default_rng(1234).integers(30, 226, size=(10, 3))


def class_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    palette = PALETTE
    noise = rng.normal(0, 25, size=(len(labels), 32, 32, 3))
    images = palette[labels][:, None, None, :] + noise
    return np.clip(images, 0, 255).astype(np.uint8)


def make_tiny_cifar10(
    root: str | os.PathLike[str], n_train: int = 200, n_test: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Write ``n_train``/``n_test`` images under ``root``; returns them (N x 32 x 32 x 3)."""
    rng = np.random.default_rng(seed)
    train_y = rng.integers(0, 10, n_train)
    test_y = rng.integers(0, 10, n_test)
    noise_rng = np.random.default_rng(seed + 1)
    train_x = class_images(train_y, noise_rng)
    test_x = class_images(test_y, noise_rng)
    write_cifar10_format(root, train_x, train_y.tolist(), test_x, test_y.tolist())
    return train_x, train_y, test_x, test_y
