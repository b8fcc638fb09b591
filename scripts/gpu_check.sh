#!/usr/bin/env bash
# Issue 13, item 4: time one training epoch of ResNet-9 and of the ViT on generated
# CIFAR-shaped data (scripts/epoch_time.py) and one LoRA step of the tiny LitGPT model
# (scripts/finetune_time.py), on CUDA; with --cpu, the same on the CPU at small sizes.
#
#   scripts/gpu_check.sh [--cpu] [--images N] [--eval-images N] [--epochs N] [--steps N]
#                        [--out FILE]
#
# CUDA defaults: CIFAR-10's training split (45,000 images; 5,000 validation), 2 epochs (the
# first includes cuDNN's kernel search), 4 LoRA steps. --cpu defaults: 512 images, 128
# validation, 1 epoch, 2 LoRA steps, and CUDA hidden from every process. Without --cpu it
# stops at once when torch sees no GPU. Everything printed also goes to FILE (default
# gpu-check-cuda.md or gpu-check-cpu.md). PYTHON picks the interpreter (default .venv/bin/python,
# else python3); it needs the image and fine-tune extras (torch, litgpt, lm-eval).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda IMAGES= EVAL_IMAGES= EPOCHS= STEPS= OUT=
while [ $# -gt 0 ]; do
  case $1 in
    --cpu) DEVICE=cpu ;;
    --images) IMAGES=$2; shift ;;
    --eval-images) EVAL_IMAGES=$2; shift ;;
    --epochs) EPOCHS=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (valid: --cpu --images N --eval-images N" \
            "--epochs N --steps N --out FILE)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if [ "$DEVICE" = cpu ]; then
  export CUDA_VISIBLE_DEVICES=""
  IMAGES=${IMAGES:-512} EVAL_IMAGES=${EVAL_IMAGES:-128} EPOCHS=${EPOCHS:-1} STEPS=${STEPS:-2}
else
  IMAGES=${IMAGES:-45000} EVAL_IMAGES=${EVAL_IMAGES:-5000} EPOCHS=${EPOCHS:-2} STEPS=${STEPS:-4}
fi
OUT=${OUT:-gpu-check-$DEVICE.md}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

# Fail before any timing when CUDA was asked for and torch cannot see it.
"$PYTHON" - "$DEVICE" <<'PY'
import sys

import torch

if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit(
        f"gpu_check.sh: torch {torch.__version__} (CUDA build: {torch.version.cuda}) sees no "
        "GPU. Run it on a GPU machine with a CUDA build of torch, or pass --cpu."
    )
PY

{
  echo "# gpu_check.sh, device $DEVICE, $(date -u '+%Y-%m-%d %H:%M UTC'), commit" \
       "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  "$PYTHON" -c 'import platform, torch; print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.get_num_threads()} CPU threads")'
  if [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  fi
  echo
  echo "## One epoch: ResNet-9 and ViT ($IMAGES generated 32x32 images, $EVAL_IMAGES validation)"
  echo
  "$PYTHON" scripts/epoch_time.py --device "$DEVICE" --images "$IMAGES" \
    --eval_images "$EVAL_IMAGES" --epochs "$EPOCHS"
  echo
  echo "## One LoRA step of the tiny LitGPT Llama (one trial of the LoRA objective)"
  echo
  "$PYTHON" scripts/finetune_time.py --device "$DEVICE" --trials 1 --steps "$STEPS"
} 2>&1 | tee "$OUT"
