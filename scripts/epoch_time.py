"""Seconds per training epoch of ResNet-9 and ViT on 2,000 CIFAR-sized images.

Runs the objective's own training loop (augmentation, autocast, evaluation on 500 validation
images included) on synthetic uint8 images, so it needs neither the dataset nor torchvision.

    .venv/bin/python scripts/epoch_time.py [--images 2000] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from optuna_llm.objectives._data import ImageData
from optuna_llm.objectives._train import train_and_evaluate


def synthetic(n_train: int, n_eval: int = 500) -> ImageData:
    g = torch.Generator().manual_seed(0)

    def images(n: int) -> torch.Tensor:
        return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)

    def labels(n: int) -> torch.Tensor:
        return torch.randint(0, 10, (n,), generator=g)

    return ImageData(
        "synthetic", images(n_train), labels(n_train), images(n_eval), labels(n_eval),
        images(n_eval), labels(n_eval), 10, (0.5,) * 3, (0.25,) * 3, augment=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    data = synthetic(args.images)
    hp = {
        "optimizer": "adam", "learning_rate": 1e-3, "train_batch_size": args.batch_size,
        "weight_decay": 5e-4, "label_smoothing": 0.0, "momentum": 0.9, "num_train_epochs": 1,
    }  # fmt: skip
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"device={device} threads={torch.get_num_threads()} images={args.images} "
        f"batch={args.batch_size}"
    )
    print(f"{'arch':<8} {'precision':<9} {'s/epoch':>8} {'params':>10}")
    for arch, precision in (("resnet9", "bf16"), ("resnet9", "fp32"), ("vit", "fp32"),
                            ("vit", "bf16")):  # fmt: skip
        if device.startswith("cuda") and precision == "fp32":
            continue
        start = time.perf_counter()
        out = train_and_evaluate(data, arch=arch, hparams=hp, device=device, precision=precision)
        total = time.perf_counter() - start
        print(
            f"{arch:<8} {precision:<9} {out.seconds_per_epoch:>8.2f} {out.n_params:>10,}"
            f"   (total with test pass {total:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
