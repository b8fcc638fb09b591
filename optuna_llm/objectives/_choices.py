"""The names the image-classification objective accepts, importable without torch or Optuna
(``optuna-llm cifar --help`` is built from them).

Example:
    >>> ARCHITECTURES
    ('resnet9', 'vit', 'cnn', 'mlp')
"""

from __future__ import annotations

DATASETS = ("cifar10", "digits")
"""``cifar10`` (read from a folder, never downloaded) or ``digits`` (ships with scikit-learn)."""

ARCHITECTURES = ("resnet9", "vit", "cnn", "mlp")
"""ResNet-9, a small ViT, and two small nets for the 8x8 digits."""

OPTIMIZERS = ("adam", "adamw", "sgd")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""``auto``: bf16 (or fp16) autocast on CUDA, fp32 on the CPU."""
