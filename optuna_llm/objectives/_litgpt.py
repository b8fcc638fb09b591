"""LitGPT glue for the LoRA objective: the ``litgpt finetune_lora`` command line, checks that
fail before a GPU hour is spent, and the CSV metrics LitGPT writes while it trains.

Nothing here imports LitGPT: fine-tuning always runs in a subprocess (``python -m litgpt``), so
each trial's GPU memory is released and ``--devices N`` (FSDP) works.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALPACA_FILE = "alpaca_data_cleaned_archive.json"
ALPACA_URL = (
    "https://raw.githubusercontent.com/tloen/alpaca-lora/main/alpaca_data_cleaned_archive.json"
)

LORA_PARAMS = ("lora_r", "lora_alpha", "lora_dropout")
"""Search-space names passed as ``--lora_*`` flags."""
OPTIMIZER_PARAMS = ("lr", "weight_decay")
"""Search-space names that go into the optimizer's ``init_args`` (LitGPT takes them nowhere
else)."""
PASSTHROUGH_PREFIXES = ("train.", "eval.", "data.")
"""Dotted search-space names (``train.micro_batch_size``) passed as-is to LitGPT."""

LORA_TARGETS = ("query", "key", "value", "projection", "mlp", "head")
GPU_PRECISIONS = ("16-true", "16-mixed", "bf16-true", "bf16-mixed", "transformer-engine")


def check_param_name(name: str) -> None:
    """Raise if LitGPT has no place for a search-space parameter called ``name``."""
    if name in LORA_PARAMS or name in OPTIMIZER_PARAMS or name.startswith(PASSTHROUGH_PREFIXES):
        return
    raise ValueError(
        f"Search-space parameter {name!r} has no LitGPT equivalent. Use one of "
        f"{', '.join(LORA_PARAMS + OPTIMIZER_PARAMS)}, or a dotted LitGPT flag such as "
        "'train.micro_batch_size' or 'eval.max_iters'."
    )


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


@dataclass
class FinetuneCommand:
    """Everything one ``litgpt finetune_lora`` run needs; :meth:`argv` renders the command.

    Example:
        >>> command = FinetuneCommand(Path("ckpt"), Path("out"), {"lr": 3e-4, "lora_r": 8})
        >>> argv = command.argv("python")
        >>> argv[:5], argv[argv.index("--lora_r") + 1]
        (['python', '-m', 'litgpt', 'finetune_lora', 'ckpt'], '8')
    """

    checkpoint_dir: Path
    out_dir: Path
    params: Mapping[str, Any]
    data: str = "Alpaca"
    data_args: Mapping[str, Any] = field(default_factory=dict)
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"
    optimizer: str = "torch.optim.AdamW"
    lora_targets: Sequence[str] = ("query", "value")
    train_args: Mapping[str, Any] = field(default_factory=dict)
    eval_args: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 1337
    extra_args: Sequence[str] = ()

    def argv(self, python: str) -> list[str]:
        """The command line, e.g. ``[python, "-m", "litgpt", "finetune_lora", ...]``."""
        for name in self.params:
            check_param_name(name)
        unknown = set(self.lora_targets) - set(LORA_TARGETS)
        if unknown:
            raise ValueError(
                f"Unknown LoRA targets {sorted(unknown)}; choose from {', '.join(LORA_TARGETS)}."
            )
        init_args = {k: self.params[k] for k in OPTIMIZER_PARAMS if k in self.params}
        argv = [
            python, "-m", "litgpt", "finetune_lora", str(self.checkpoint_dir),
            "--out_dir", str(self.out_dir),
            "--precision", self.precision,
            "--devices", str(self.devices),
            "--num_nodes", str(self.num_nodes),
            "--seed", str(self.seed),
            "--logger_name", "csv",
            "--data", self.data,
            # The dotted form (--optimizer.lr) is mis-parsed by LitGPT 0.5.13: pass JSON.
            "--optimizer", json.dumps({"class_path": self.optimizer, "init_args": init_args}),
        ]  # fmt: skip
        for name in LORA_PARAMS:
            if name in self.params:
                value = self.params[name]
                if name in ("lora_r", "lora_alpha"):
                    if float(value) != int(value):
                        raise ValueError(
                            f"{name} must be an integer for LitGPT (got {value}); "
                            "use an IntDistribution for it."
                        )
                    value = int(value)
                argv += [f"--{name}", str(value)]
        for target in LORA_TARGETS:
            argv += [f"--lora_{target}", _flag_value(target in self.lora_targets)]
        for prefix, mapping in (("data", self.data_args), ("train", self.train_args),
                                ("eval", self.eval_args)):  # fmt: skip
            for key, value in mapping.items():
                argv += [f"--{prefix}.{key}", _flag_value(value)]
        for name, value in self.params.items():
            if name.startswith(PASSTHROUGH_PREFIXES):
                argv += [f"--{name}", _flag_value(value)]
        argv += list(self.extra_args)
        return argv


# ----------------------------------------------------------------------------- checks


def litgpt_model_names() -> frozenset[str] | None:
    """The ``org/name`` ids ``litgpt download`` accepts, or ``None`` when LitGPT is missing.

    Read from LitGPT's own ``config.py`` (plain dataclasses and lists), loaded on its own:
    importing the ``litgpt`` package would import lightning, which is slow and, on CPU-only
    machines with a CUDA torchvision, fails.
    """
    import importlib.util
    import sys

    try:
        spec = importlib.util.find_spec("litgpt")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = os.path.join(next(iter(spec.submodule_search_locations)), "config.py")
        name = "_optuna_llm_litgpt_config"
        config_spec = importlib.util.spec_from_file_location(name, path)
        if config_spec is None or config_spec.loader is None:
            return None
        module = importlib.util.module_from_spec(config_spec)
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        try:
            config_spec.loader.exec_module(module)
        finally:
            del sys.modules[name]
        return frozenset(
            f"{c['hf_config']['org']}/{c['hf_config']['name']}" for c in module.configs
        )
    except Exception:  # another LitGPT layout: no list, the hint stays generic
        return None


def download_hint(checkpoint_dir: Path) -> str:
    """How to fill ``checkpoint_dir``: ``litgpt download ORG/NAME --checkpoint_dir ROOT``
    saves the model to ``ROOT/ORG/NAME``, so a path ending in a model LitGPT knows gets its
    exact command, and any other path the command that downloads a model below it.

    Example:
        >>> download_hint(Path("checkpoints/meta-llama/Llama-3.2-3B"))  # doctest: +ELLIPSIS
        'Download it with `litgpt download meta-llama/Llama-3.2-3B --checkpoint_dir checkpoints`...'
    """
    parts = checkpoint_dir.parts
    known = litgpt_model_names()
    if len(parts) >= 2:
        repo_id = "/".join(parts[-2:])
        root = Path(*parts[:-2]) if len(parts) > 2 else Path(".")
        if known is None or repo_id in known:
            return f"Download it with `litgpt download {repo_id} --checkpoint_dir {root}`."
    example = "meta-llama/Llama-3.2-3B"
    return (
        f"{str(checkpoint_dir)!r} does not end in the ORG/NAME of a model LitGPT knows "
        "(`litgpt download list` lists them). `litgpt download ORG/NAME --checkpoint_dir DIR` "
        f"saves a model to DIR/ORG/NAME: e.g. `litgpt download {example} --checkpoint_dir "
        f"{checkpoint_dir}`, then pass --checkpoint-dir {checkpoint_dir / example}."
    )


def check_checkpoint(checkpoint_dir: Path) -> None:
    """Raise ``FileNotFoundError`` naming the missing files and the command that fetches them.

    Besides LitGPT's own files, ``config.json`` is needed: lm-eval scores a Hugging Face model
    and its config comes from there (``litgpt download`` keeps it).
    """
    required = {
        "lit_model.pth": (checkpoint_dir / "lit_model.pth").is_file(),
        "model_config.yaml": (checkpoint_dir / "model_config.yaml").is_file(),
        "tokenizer.json or tokenizer.model": (checkpoint_dir / "tokenizer.json").is_file()
        or (checkpoint_dir / "tokenizer.model").is_file(),
        "tokenizer_config.json": (checkpoint_dir / "tokenizer_config.json").is_file(),
        "config.json": (checkpoint_dir / "config.json").is_file(),
    }
    if not checkpoint_dir.is_dir():
        problem = "does not exist"
    elif not all(required.values()):
        problem = f"lacks {', '.join(k for k, ok in required.items() if not ok)}"
    else:
        return
    raise FileNotFoundError(
        f"Checkpoint directory {str(checkpoint_dir)!r} {problem}. {download_hint(checkpoint_dir)} "
        "Gated models such as Llama also need `--access_token` or HF_TOKEN; or pass "
        "--checkpoint-dir pointing to a LitGPT checkpoint."
    )


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def check_alpaca_data(download_dir: Path) -> None:
    """Check the local Alpaca file LitGPT's ``Alpaca`` data module reads.

    A missing file is fine online (LitGPT downloads it on the first trial); offline it is an
    error naming the command that fetches it. A broken file is always an error, raised here
    rather than in every trial.
    """
    path = download_dir / ALPACA_FILE
    fetch = f"`mkdir -p {download_dir} && curl -L {ALPACA_URL} -o {path}`"
    if not path.is_file():
        if _offline():
            raise FileNotFoundError(
                f"Alpaca data {str(path)!r} is missing and HF_HUB_OFFLINE/HF_DATASETS_OFFLINE "
                f"forbid downloading it. Fetch it with {fetch}, or pass --data_dir pointing "
                "to the directory that holds it."
            )
        return
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"Alpaca data {str(path)!r} is not valid JSON ({exc}). Delete it and fetch it "
            f"again with {fetch}."
        ) from exc
    if not isinstance(rows, list) or not rows:
        raise ValueError(
            f"Alpaca data {str(path)!r} must be a non-empty JSON list of records; "
            f"fetch it again with {fetch}."
        )
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not {"instruction", "output"} <= row.keys():
            raise ValueError(
                f"Alpaca data {str(path)!r}: record {i} lacks 'instruction'/'output' "
                f"(got {row!r:.120}). Fix or delete the file and fetch it again with {fetch}."
            )


def gpu_requirement(devices: int, num_nodes: int, precision: str) -> str | None:
    """Why this configuration needs CUDA GPUs, or ``None`` when a CPU will do."""
    if devices * num_nodes > 1:
        return f"devices={devices} x num_nodes={num_nodes} (FSDP needs one GPU a process)"
    if precision in GPU_PRECISIONS:
        return f"precision={precision}"
    return None


def check_devices(devices: int, num_nodes: int, precision: str, gpu_count: int) -> None:
    """Raise ``RuntimeError`` when the configuration needs more GPUs than ``gpu_count``."""
    if devices < 1:
        raise ValueError(f"devices must be >= 1 (got {devices}).")
    reason = gpu_requirement(devices, num_nodes, precision)
    if reason is None:
        return
    needed = devices if devices > 1 else 1
    if gpu_count < needed:
        raise RuntimeError(
            f"{reason} needs {needed} CUDA GPU(s) but this machine has {gpu_count}. "
            "On a CPU use --devices 1 --precision 32-true; on GPUs check CUDA_VISIBLE_DEVICES."
        )


def default_precision(cuda_available: bool, bf16_supported: bool) -> str:
    """LitGPT's choice: ``bf16-true`` on GPUs that support it, else ``32-true``."""
    if cuda_available:
        return "bf16-true" if bf16_supported else "16-true"
    return "32-true"


# ----------------------------------------------------------------------------- metrics.csv


def metrics_file(out_dir: Path) -> Path | None:
    """The newest ``logs/csv/version_*/metrics.csv`` under a LitGPT ``out_dir``."""
    files = sorted(
        (out_dir / "logs" / "csv").glob("version_*/metrics.csv"),
        key=lambda p: int(p.parent.name.split("_")[-1]),
    )
    return files[-1] if files else None


@dataclass
class TrainingCurve:
    """What LitGPT's CSV logger has written so far.

    ``val_losses`` are ``(iter, loss)`` in file order: a validation row is attributed to the
    iteration of the training row logged just before it (the final validation, logged without a
    step, lands on the last iteration).

    Example:
        >>> curve = parse_metrics("iter,loss,val_loss\\n1,2.5,\\n2,2.0,\\n,,1.9\\n")
        >>> curve.final_train_loss, curve.val_losses
        (2.0, [(2, 1.9)])
    """

    train_losses: list[tuple[int, float]] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)

    @property
    def final_train_loss(self) -> float | None:
        return self.train_losses[-1][1] if self.train_losses else None

    @property
    def final_val_loss(self) -> float | None:
        return self.val_losses[-1][1] if self.val_losses else None


def _number(row: Mapping[str, str], key: str) -> float | None:
    raw = (row.get(key) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_metrics(text: str) -> TrainingCurve:
    """Parse LitGPT's ``metrics.csv``; a half-written last line (read mid-write) is ignored."""
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    curve = TrainingCurve()
    last_iter = 0
    for row in csv.DictReader(io.StringIO(text)):
        it = _number(row, "iter")
        loss = _number(row, "loss")
        if it is not None and loss is not None:
            last_iter = int(it)
            curve.train_losses.append((last_iter, loss))
        val = _number(row, "val_loss")
        if val is not None:
            curve.val_losses.append((last_iter, val))
    return curve


def read_curve(out_dir: Path) -> TrainingCurve:
    path = metrics_file(out_dir)
    if path is None:
        return TrainingCurve()
    try:
        return parse_metrics(path.read_text(encoding="utf-8"))
    except (OSError, csv.Error, UnicodeDecodeError):
        return TrainingCurve()  # being rewritten right now: read it at the next poll
