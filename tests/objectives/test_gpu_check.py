"""``scripts/gpu_check.sh`` (issue 13, item 4): its CPU mode on tiny sizes, for real, and its
CUDA mode refusing to time anything on a machine without a GPU.

The CPU run trains ResNet-9 and the ViT for one epoch on generated images and runs one trial
of the LoRA objective (real ``litgpt finetune_lora`` and lm-eval) on the tiny Llama.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip


def _numbers(text: str, *lead: str) -> list[float]:
    """The numbers of the Markdown table row whose first cells are ``lead``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[: len(lead)] == list(lead):
            return [float(c.replace(",", "")) for c in cells[len(lead) :]]
    raise AssertionError(f"no row {lead} in:\n{text}")


def test_unknown_option_names_the_valid_ones(tmp_path: Path) -> None:
    out = _run("--gpu", cwd=tmp_path)
    assert out.returncode == 2
    assert "unknown option '--gpu'" in out.stderr and "--cpu" in out.stderr


def test_cuda_mode_without_a_gpu_stops_before_timing_and_says_to_pass_cpu(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the CUDA mode would run")
    report = tmp_path / "report.md"
    out = _run("--out", str(report), cwd=tmp_path)
    assert out.returncode != 0
    assert "sees no GPU" in out.stderr and "--cpu" in out.stderr
    assert not report.exists()  # nothing was timed


@pytest.mark.slow
def test_cpu_mode_times_both_architectures_and_a_lora_step(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    out = _run(
        "--cpu", "--images", "48", "--eval-images", "16", "--steps", "2", "--out", str(report),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    text = report.read_text()
    assert text == out.stdout  # the report is what was printed
    assert "device=cpu" in text and "images=48 eval_images=16" in text
    for arch in ("resnet9", "vit"):
        for precision in ("fp32", "bf16"):
            s_epoch, first, last, params, total = _numbers(text, arch, precision)
            assert 0 < s_epoch == first == last  # one epoch: mean = first = last
            assert s_epoch <= total + 0.05  # the total is printed to 0.1 s, the epoch to 0.01 s
            assert params > 100_000
    assert "device cpu" in text
    finetune = _numbers(text, "fine-tune (litgpt subprocess)")[0]
    first_step = _numbers(text, "LoRA step, first")
    later = _numbers(text, "LoRA step, later ones")
    assert len(first_step) == len(later) == 3  # median, min, max
    assert 0 < first_step[0] < finetune and 0 < later[0] < finetune
