"""LoRA fine-tuning as an Optuna objective: LitGPT trains, lm-eval scores.

A trial fine-tunes the base checkpoint with ``litgpt finetune_lora`` in a subprocess (so its GPU
memory is released and ``devices > 1`` runs FSDP), reports LitGPT's validation loss as
intermediate values while it trains (so pruners can stop it), converts the result to a Hugging
Face model and scores it with lm-eval: the validation task (HellaSwag) is the value the study
maximises, the test tasks (MMLU) are only recorded. The defaults are the setting of the slides
this project started from: Llama-3.2-3B, Alpaca, one epoch, HellaSwag and MMLU.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_llm import _attrs
from optuna_llm.objectives._litgpt import (
    FinetuneCommand,
    TrainingCurve,
    check_alpaca_data,
    check_checkpoint,
    check_devices,
    check_param_name,
    default_precision,
    read_curve,
)
from optuna_llm.objectives._suggest import suggest as _suggest

__all__ = ["FinetuneError", "LoRAFinetuneObjective", "default_search_space"]

DEFAULT_CHECKPOINT = Path("checkpoints/meta-llama/Llama-3.2-3B")


class FinetuneError(RuntimeError):
    """A fine-tune or evaluation subprocess failed; the message ends with its log's tail.

    Pass ``catch=(FinetuneError,)`` to ``study.optimize`` so the trial is marked FAIL (its log
    kept, path in the user attrs) and the study goes on.
    """


def default_search_space() -> dict[str, BaseDistribution]:
    """The slides' search space, with LitGPT's names.

    Learning rate 10^x for x in [-10, -1] and weight decay 10^x for x in [-5, -1] are log-uniform
    floats (they go into the optimizer's ``init_args``); rank and alpha are integers (LitGPT
    rejects a float alpha); dropout is uniform in [0, 0.5].

    Example:
        >>> sorted(default_search_space())
        ['lora_alpha', 'lora_dropout', 'lora_r', 'lr', 'weight_decay']
    """
    return {
        "lr": FloatDistribution(1e-10, 1e-1, log=True),
        "lora_r": IntDistribution(2, 512),
        "lora_alpha": IntDistribution(1, 64),
        "lora_dropout": FloatDistribution(0.0, 0.5),
        "weight_decay": FloatDistribution(1e-5, 1e-1, log=True),
    }


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _failed(trial: optuna.Trial, message: str) -> FinetuneError:
    """Record why the trial failed (Optuna keeps no reason itself) and build the error."""
    trial.set_user_attr(_attrs.FAIL_REASON, message)
    return FinetuneError(message)


def _stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop the subprocess and everything it started (FSDP ranks): SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


class LoRAFinetuneObjective:
    """Fine-tune with LitGPT's LoRA and return the lm-eval accuracy on the validation task.

    The study must maximise. Each trial works in ``out_dir/<study>/trial_<n>`` and records as
    user attrs: the validation score (``value_metric``), every score of every task
    (``<task>_<metric>``, MMLU included: recorded, never optimised), ``train_loss``,
    ``val_loss``, the paths of its logs and outputs, the time of each stage and the host.

    Example:
        >>> objective = LoRAFinetuneObjective("checkpoints/meta-llama/Llama-3.2-3B", devices=4)
        >>> study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner())
        >>> study.optimize(objective, n_trials=50, catch=(FinetuneError,))  # doctest: +SKIP

    Args:
        checkpoint_dir: LitGPT checkpoint of the base model (``litgpt download`` makes it).
        out_dir: Root of the per-trial directories.
        search_space: ``{name: distribution}``; default :func:`default_search_space`. Names are
            ``lr``, ``weight_decay``, ``lora_r``, ``lora_alpha``, ``lora_dropout`` or a dotted
            LitGPT flag (``train.micro_batch_size``).
        data: LitGPT data module name (``Alpaca``, ``JSON``, ...).
        data_dir: Directory of the Alpaca file (``--data.download_dir``; LitGPT's default).
        data_args: More ``--data.<key>`` flags.
        epochs, max_steps: Training length (``--train.epochs`` / ``--train.max_steps``).
        devices, num_nodes: ``--devices`` / ``--num_nodes``; more than one device runs FSDP.
        precision: ``--precision``; default ``bf16-true`` on a GPU that has it, ``32-true`` on
            a CPU.
        lora_targets: Weights that get LoRA (``query``, ``key``, ``value``, ``projection``,
            ``mlp``, ``head``).
        train_args, eval_args: More ``--train.<key>`` / ``--eval.<key>`` flags.
        val_task: lm-eval task whose ``metric`` is the objective value.
        test_tasks: lm-eval tasks scored and recorded only.
        metric: The validation task's metric to maximise (``acc_norm``, ``acc``).
        include_path: Directory of extra lm-eval task YAMLs (``TaskManager(include_path=)``).
        eval_limit: Examples per task (a fraction when < 1); ``None`` scores everything.
        num_fewshot, eval_batch_size: Passed to lm-eval.
        keep_weights: Keep the merged and converted full weights of each trial (the LoRA
            adapter ``final/lit_model.pth.lora`` is always kept); off by default because a 3B
            model costs ~13 GB a trial.
        poll_interval: Seconds between reads of LitGPT's metrics while it trains.
        timeout: Seconds a fine-tune may take before it is stopped and the trial fails.
        seed: LitGPT's ``--seed``.
        extra_args: Appended verbatim to the ``litgpt finetune_lora`` command.
    """

    direction = "maximize"

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike[str] = DEFAULT_CHECKPOINT,
        *,
        out_dir: str | os.PathLike[str] = "out/optuna-llm-finetune",
        search_space: Mapping[str, BaseDistribution] | None = None,
        data: str = "Alpaca",
        data_dir: str | os.PathLike[str] | None = None,
        data_args: Mapping[str, Any] | None = None,
        epochs: int = 1,
        max_steps: int | None = None,
        devices: int = 1,
        num_nodes: int = 1,
        precision: str | None = None,
        lora_targets: Sequence[str] = ("query", "value"),
        train_args: Mapping[str, Any] | None = None,
        eval_args: Mapping[str, Any] | None = None,
        val_task: str = "hellaswag",
        test_tasks: Sequence[str] = ("mmlu",),
        metric: str = "acc_norm",
        include_path: str | os.PathLike[str] | None = None,
        eval_limit: float | None = None,
        num_fewshot: int | None = None,
        eval_batch_size: int | str = 8,
        keep_weights: bool = False,
        poll_interval: float = 5.0,
        timeout: float | None = None,
        seed: int = 1337,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.out_dir = Path(out_dir)
        self.search_space = dict(search_space or default_search_space())
        for name in self.search_space:
            check_param_name(name)
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1 (got {epochs}).")
        if val_task in test_tasks:
            raise ValueError(
                f"{val_task!r} is both the validation task and a test task: a test task must "
                "never be the one optimised. Remove it from test_tasks."
            )
        self.data = data
        self.data_dir = (
            Path(data_dir)
            if data_dir is not None
            else (Path("data/alpaca") if data == "Alpaca" else None)
        )
        self.data_args = dict(data_args or {})
        if self.data_dir is not None:
            self.data_args.setdefault("download_dir", str(self.data_dir))
        self.train_args: dict[str, Any] = {"epochs": epochs}
        if max_steps is not None:
            self.train_args["max_steps"] = max_steps
        self.train_args.update(train_args or {})
        self.eval_args = dict(eval_args or {})
        self.devices = devices
        self.num_nodes = num_nodes
        self.precision = precision
        self.lora_targets = tuple(lora_targets)
        self.val_task = val_task
        self.test_tasks = tuple(test_tasks)
        self.metric = metric
        self.include_path = Path(include_path) if include_path is not None else None
        self.eval_limit = eval_limit
        self.num_fewshot = num_fewshot
        self.eval_batch_size = eval_batch_size
        self.keep_weights = keep_weights
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.seed = seed
        self.extra_args = tuple(extra_args)
        self.python = sys.executable
        self._checked = False

    # ------------------------------------------------------------------ checks

    def check(self) -> None:
        """Fail fast, before any training: checkpoint, data, GPUs and task paths.

        Raises ``FileNotFoundError``/``ValueError``/``RuntimeError`` whose message names the fix
        (e.g. the ``litgpt download`` command for a missing checkpoint).
        """
        import torch

        check_checkpoint(self.checkpoint_dir)
        if self.data == "Alpaca" and self.data_dir is not None:
            check_alpaca_data(self.data_dir)
        if self.precision is None:
            cuda = torch.cuda.is_available()
            self.precision = default_precision(cuda, cuda and torch.cuda.is_bf16_supported())
        check_devices(self.devices, self.num_nodes, self.precision, torch.cuda.device_count())
        if self.include_path is not None and not self.include_path.is_dir():
            raise FileNotFoundError(
                f"lm-eval include_path {str(self.include_path)!r} is not a directory; pass the "
                "directory that holds your task YAML files."
            )
        self._checked = True

    # ------------------------------------------------------------------ trial

    def _trial_dir(self, trial: optuna.Trial) -> Path:
        root = self.out_dir / trial.study.study_name
        path = root / f"trial_{trial.number:04d}"
        n = 1
        while path.exists():  # an old study of the same name left it: never overwrite
            path = root / f"trial_{trial.number:04d}-{n}"
            n += 1
        return path

    def __call__(self, trial: optuna.Trial) -> float:
        if not self._checked:
            self.check()
        assert self.precision is not None
        params = {name: _suggest(trial, name, d) for name, d in self.search_space.items()}
        trial_dir = self._trial_dir(trial)
        trial_dir.mkdir(parents=True)
        out = trial_dir / "finetune"
        trial.set_user_attr(_attrs.HOST, socket.gethostname())
        trial.set_user_attr(_attrs.TRIAL_DIR, str(trial_dir.resolve()))

        command = FinetuneCommand(
            checkpoint_dir=self.checkpoint_dir,
            out_dir=out,
            params=params,
            data=self.data,
            data_args=self.data_args,
            devices=self.devices,
            num_nodes=self.num_nodes,
            precision=self.precision,
            lora_targets=self.lora_targets,
            train_args=self.train_args,
            eval_args=self.eval_args,
            seed=self.seed,
            extra_args=self.extra_args,
        )
        t0 = time.perf_counter()
        curve = self._finetune(trial, command.argv(self.python), out, trial_dir / "finetune.log")
        trial.set_user_attr(_attrs.TIME_FINETUNE_S, round(time.perf_counter() - t0, 3))
        if curve.final_train_loss is not None:
            trial.set_user_attr(_attrs.TRAIN_LOSS, curve.final_train_loss)
        if curve.final_val_loss is not None:
            trial.set_user_attr(_attrs.VAL_LOSS, curve.final_val_loss)
        final = out / "final"
        trial.set_user_attr(_attrs.LORA_CHECKPOINT, str((final / "lit_model.pth.lora").resolve()))

        t1 = time.perf_counter()
        scores, timings = self._evaluate(trial, final, trial_dir)
        trial.set_user_attr(_attrs.TIME_EVAL_STAGE_S, round(time.perf_counter() - t1, 3))
        trial.set_user_attr(_attrs.TIME_CONVERT_S, round(timings["convert_s"], 3))
        trial.set_user_attr(_attrs.TIME_EVAL_S, round(timings["eval_s"], 3))
        for task, metrics in scores.items():
            for metric, value in metrics.items():
                trial.set_user_attr(_attrs.task_score_attr(task, metric), value)
        val_scores = scores[self.val_task]
        if self.metric not in val_scores:
            raise FinetuneError(
                f"Task {self.val_task!r} has no metric {self.metric!r} (it has "
                f"{', '.join(sorted(val_scores))}); choose one of those as metric."
            )
        if not self.keep_weights:
            self._drop_weights(final, trial_dir / "hf")
        else:
            trial.set_user_attr(_attrs.HF_DIR, str((trial_dir / "hf").resolve()))
        return val_scores[self.metric]

    def _finetune(
        self, trial: optuna.Trial, argv: list[str], out: Path, log_path: Path
    ) -> TrainingCurve:
        trial.set_user_attr(_attrs.FINETUNE_LOG, str(log_path.resolve()))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        reported: set[int] = set()
        start = time.monotonic()
        with open(log_path, "wb") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            try:
                while True:
                    try:
                        proc.wait(timeout=self.poll_interval)
                        finished = True
                    except subprocess.TimeoutExpired:
                        finished = False
                    curve = read_curve(out)
                    for step, loss in curve.val_losses:
                        if step not in reported:
                            reported.add(step)
                            trial.report(loss, step)
                    if finished:
                        break
                    if trial.should_prune():
                        _stop(proc)
                        raise optuna.TrialPruned(
                            f"val_loss {curve.final_val_loss} at iter {max(reported)}"
                        )
                    if self.timeout is not None and time.monotonic() - start > self.timeout:
                        _stop(proc)
                        raise _failed(
                            trial,
                            f"litgpt finetune_lora ran past timeout={self.timeout}s and was "
                            f"stopped; log: {log_path}",
                        )
            finally:
                _stop(proc)
        if proc.returncode == 0 and reported and trial.should_prune():
            # Trained to the end but the final validation loss is bad: skip the evaluation.
            raise optuna.TrialPruned(f"final val_loss {curve.final_val_loss}")
        if proc.returncode != 0 or not (out / "final" / "lit_model.pth").is_file():
            raise _failed(
                trial,
                f"litgpt finetune_lora failed (exit code {proc.returncode}); full log: "
                f"{log_path}\n{_tail(log_path)}",
            )
        return curve

    def _evaluate(
        self, trial: optuna.Trial, final: Path, trial_dir: Path
    ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        log_path = trial_dir / "eval.log"
        result_path = trial_dir / "eval.json"
        trial.set_user_attr(_attrs.EVAL_LOG, str(log_path.resolve()))
        argv = [
            self.python, "-m", "optuna_llm.objectives._lm_eval",
            "--finetuned", str(final),
            "--hf_dir", str(trial_dir / "hf"),
            "--tasks", self.val_task, *self.test_tasks,
            "--output", str(result_path),
            "--batch_size", str(self.eval_batch_size),
        ]  # fmt: skip
        if self.include_path is not None:
            argv += ["--include_path", str(self.include_path)]
        if self.eval_limit is not None:
            argv += ["--limit", str(self.eval_limit)]
        if self.num_fewshot is not None:
            argv += ["--num_fewshot", str(self.num_fewshot)]
        with open(log_path, "wb") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
            try:
                proc.wait()
            finally:
                _stop(proc)
        if proc.returncode != 0 or not result_path.is_file():
            raise _failed(
                trial,
                f"Conversion or lm-eval scoring failed (exit code {proc.returncode}); full log: "
                f"{log_path}\n{_tail(log_path)}",
            )
        result = json.loads(result_path.read_text())
        scores = {
            task: {m: v for m, v in metrics.items() if math.isfinite(v)}
            for task, metrics in result["scores"].items()
        }
        return scores, {"convert_s": result["convert_s"], "eval_s": result["eval_s"]}

    @staticmethod
    def _drop_weights(final: Path, hf_dir: Path) -> None:
        (final / "lit_model.pth").unlink(missing_ok=True)
        for pattern in ("*.safetensors", "*.bin", "*.pth"):
            for path in hf_dir.glob(pattern):
                path.unlink()
        if hf_dir.is_dir() and not any(hf_dir.iterdir()):
            shutil.rmtree(hf_dir)
