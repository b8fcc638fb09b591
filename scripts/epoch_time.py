"""Seconds per training epoch of ResNet-9 and ViT on generated CIFAR-sized images.

Runs the objective's own training loop (augmentation, autocast, evaluation on the validation
images included) on synthetic uint8 images, so it needs neither the dataset nor torchvision.
With ``--epochs 2`` the table has the first epoch (on CUDA: cuDNN's kernel search and the
allocator's warm-up included) and the last one apart.

    .venv/bin/python scripts/epoch_time.py [--images 2000] [--eval_images 500] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from optuna_llm.objectives._data import ImageData
from optuna_llm.objectives._train import EpochResult, train_and_evaluate


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="training images")
    parser.add_argument("--eval_images", type=int, default=500, help="validation (and test) images")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            f"--device {device}: torch {torch.__version__} sees no CUDA device "
            f"(built for CUDA {torch.version.cuda}). Use --device cpu, or a CUDA build of torch "
            "on a GPU machine."
        )
    data = synthetic(args.images, args.eval_images)
    hp = {
        "optimizer": "adam", "learning_rate": 1e-3, "train_batch_size": args.batch_size,
        "weight_decay": 5e-4, "label_smoothing": 0.0, "momentum": 0.9,
        "num_train_epochs": args.epochs,
    }  # fmt: skip
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    print(
        f"device={device} ({name}) threads={torch.get_num_threads()} images={args.images} "
        f"eval_images={args.eval_images} batch={args.batch_size} epochs={args.epochs}"
    )
    print(
        f"| {'arch':<8} | {'precision':<9} | {'s/epoch':>8} | {'first s':>8} | {'last s':>8} "
        f"| {'params':>10} | {'total s':>8} |"
    )
    print(f"|{'-' * 10}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 12}|{'-' * 10}|")
    for arch, precision in (("resnet9", "bf16"), ("resnet9", "fp32"), ("vit", "fp32"),
                            ("vit", "bf16")):  # fmt: skip
        if device.startswith("cuda") and precision == "fp32":
            continue
        epochs: list[float] = []

        def on_epoch(result: EpochResult, epochs: list[float] = epochs) -> None:
            epochs.append(result.seconds)

        start = time.perf_counter()
        out = train_and_evaluate(
            data, arch=arch, hparams=hp, device=device, precision=precision, on_epoch=on_epoch
        )
        total = time.perf_counter() - start
        print(
            f"| {arch:<8} | {precision:<9} | {out.seconds_per_epoch:>8.2f} | {epochs[0]:>8.2f} "
            f"| {epochs[-1]:>8.2f} | {out.n_params:>10,} | {total:>8.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
