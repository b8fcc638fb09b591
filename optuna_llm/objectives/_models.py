"""Image classifiers for the objectives, in plain torch (no torchvision import).

``resnet9`` is the DAWNBench/Myrtle ResNet-9 (6.6M parameters on CIFAR-10), ``vit`` a small
Vision Transformer (patch 4, width 128, depth 4, 4 heads), ``cnn`` and ``mlp`` small nets that
train in a second on scikit-learn's 8x8 digits.
"""

from __future__ import annotations

import torch
from torch import nn

from optuna_llm.objectives._choices import ARCHITECTURES


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _Residual(nn.Module):
    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def resnet9(in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """ResNet-9 as in Page's "How to train your ResNet" (the DAWNBench CIFAR-10 entry).

    Example:
        >>> model = resnet9()
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return nn.Sequential(
        _conv_bn(in_channels, 64),
        _conv_bn(64, 128),
        nn.MaxPool2d(2),
        _Residual(_conv_bn(128, 128), _conv_bn(128, 128)),
        _conv_bn(128, 256),
        nn.MaxPool2d(2),
        _conv_bn(256, 512),
        nn.MaxPool2d(2),
        _Residual(_conv_bn(512, 512), _conv_bn(512, 512)),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(512, num_classes, bias=False),
        _Scale(0.125),
    )


class VisionTransformer(nn.Module):
    """A small pre-norm ViT: patch embedding, class token, learned positions, encoder, head.

    Example:
        >>> vit = VisionTransformer(image_size=32, patch_size=4)
        >>> vit(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        image_size: int = 32,
        patch_size: int = 4,
        in_channels: int = 3,
        num_classes: int = 10,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        mlp_dim: int = 256,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} is not a multiple of patch_size {patch_size}: "
                "choose a patch size that divides the image size."
            )
        n_patches = (image_size // patch_size) ** 2
        self.patch = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, mlp_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        cls = self.cls.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos
        return self.head(self.norm(self.encoder(tokens)[:, 0]))


def small_cnn(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        _conv_bn(in_channels, 32),
        nn.MaxPool2d(2),
        _conv_bn(32, 64),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(256, num_classes),
    )


def mlp(in_features: int, num_classes: int = 10, hidden: int = 128) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes),
    )


def build_model(arch: str, *, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """The network called ``arch`` for images of ``in_channels x image_size x image_size``."""
    if arch == "resnet9":
        return resnet9(in_channels, num_classes)
    if arch == "vit":
        patch = 4 if image_size >= 16 else 2
        return VisionTransformer(image_size, patch, in_channels, num_classes)
    if arch == "cnn":
        return small_cnn(in_channels, num_classes)
    if arch == "mlp":
        return mlp(in_channels * image_size * image_size, num_classes)
    raise ValueError(f"Unknown arch {arch!r}. Choose one of: {', '.join(ARCHITECTURES)}.")
