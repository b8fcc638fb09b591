"""The LoRA objective and ``optuna-llm finetune`` on a tiny random-initialised Llama.

Real parts only: ``python -m litgpt finetune_lora``, LitGPT's conversion, transformers and
lm-eval scoring local HellaSwag/MMLU-format tasks, SQLite studies. The tiny checkpoint,
tokenizer, Alpaca file and tasks are built once per session (tests/helpers/tiny_llm.py).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_llm.cli import _finetune as cli_finetune
from optuna_llm.objectives._litgpt import (
    FinetuneCommand,
    check_alpaca_data,
    check_checkpoint,
    parse_metrics,
    read_curve,
)
from optuna_llm.objectives.finetune import (
    FinetuneError,
    LoRAFinetuneObjective,
    default_search_space,
)
from tests.helpers import tiny_llm


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tiny_llm.TinyLLM:
    return tiny_llm.build(tmp_path_factory.mktemp("tiny_llm"))


def _objective(tiny: tiny_llm.TinyLLM, out_dir: Path, **overrides: object) -> LoRAFinetuneObjective:
    kwargs = tiny_llm.tiny_objective_kwargs(tiny)
    kwargs.update(overrides)
    return LoRAFinetuneObjective(out_dir=out_dir, **kwargs)  # type: ignore[arg-type]


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="optuna-llm")
    cli_finetune.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["finetune", *argv])
    return int(args.func(args))


# ------------------------------------------------------------------ fast: no subprocess


def test_default_search_space_is_the_slides() -> None:
    space = default_search_space()
    lr, wd = space["lr"], space["weight_decay"]
    assert (lr.low, lr.high, lr.log) == (1e-10, 1e-1, True)  # type: ignore[attr-defined]
    assert (wd.low, wd.high, wd.log) == (1e-5, 1e-1, True)  # type: ignore[attr-defined]
    assert isinstance(space["lora_r"], optuna.distributions.IntDistribution)
    assert (space["lora_r"].low, space["lora_r"].high) == (2, 512)  # type: ignore[attr-defined]
    assert isinstance(space["lora_alpha"], optuna.distributions.IntDistribution)
    assert (space["lora_alpha"].low, space["lora_alpha"].high) == (1, 64)  # type: ignore[attr-defined]
    assert (space["lora_dropout"].low, space["lora_dropout"].high) == (0.0, 0.5)  # type: ignore[attr-defined]


def test_command_puts_lr_and_weight_decay_in_optimizer_init_args(tmp_path: Path) -> None:
    params = {"lr": 3e-4, "weight_decay": 0.01, "lora_r": 8, "lora_alpha": 16,
              "lora_dropout": 0.1, "train.micro_batch_size": 2}  # fmt: skip
    argv = FinetuneCommand(tmp_path / "ckpt", tmp_path / "out", params, devices=4).argv("py")
    assert argv[:5] == ["py", "-m", "litgpt", "finetune_lora", str(tmp_path / "ckpt")]
    opt = json.loads(argv[argv.index("--optimizer") + 1])
    assert opt == {"class_path": "torch.optim.AdamW",
                   "init_args": {"lr": 3e-4, "weight_decay": 0.01}}  # fmt: skip
    assert argv[argv.index("--lora_alpha") + 1] == "16"
    assert argv[argv.index("--devices") + 1] == "4"
    assert argv[argv.index("--train.micro_batch_size") + 1] == "2"
    assert "--lr" not in argv and "--optimizer.lr" not in argv
    with pytest.raises(ValueError, match="lora_alpha must be an integer"):
        FinetuneCommand(tmp_path, tmp_path, {"lora_alpha": 16.5}).argv("py")
    with pytest.raises(ValueError, match="no LitGPT equivalent"):
        LoRAFinetuneObjective(search_space={"momentum": default_search_space()["lr"]})
    with pytest.raises(ValueError, match="never be the one optimised"):
        LoRAFinetuneObjective(val_task="hellaswag", test_tasks=("hellaswag",))


def test_parse_metrics_attributes_validation_to_iterations_and_skips_torn_lines() -> None:
    text = (
        "epoch,iter,loss,step,val_loss,val_ppl\n"
        "0,1,5.0,1,,\n"
        "0,2,4.5,2,,\n"
        ",,,2,4.4,81.4\n"
        "0,3,4.0,3,,\n"
        ",,,7,3.9,49.4\n"
        "0,4,3.5,4,"  # being written right now
    )
    curve = parse_metrics(text)
    assert curve.train_losses == [(1, 5.0), (2, 4.5), (3, 4.0)]
    assert curve.val_losses == [(2, 4.4), (3, 3.9)]
    assert (curve.final_train_loss, curve.final_val_loss) == (4.0, 3.9)


def test_missing_checkpoint_names_the_download_command(tmp_path: Path, tiny) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match=(
        r"litgpt download meta-llama/Llama-3\.2-3B --checkpoint_dir .*checkpoints"
    )):  # fmt: skip
        check_checkpoint(tmp_path / "checkpoints" / "meta-llama" / "Llama-3.2-3B")
    partial = tmp_path / "partial"
    shutil.copytree(tiny.checkpoint_dir, partial)
    (partial / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks config\.json"):
        check_checkpoint(partial)
    # Through the CLI: exit code 2 and the fix on stderr, before any study is created.
    db = tmp_path / "s.db"
    code = _cli(["--checkpoint-dir", str(tmp_path / "none" / "org" / "model"),
                 "--storage", f"sqlite:///{db}", "--precision", "32-true"])  # fmt: skip
    assert code == 2 and not db.exists()


def test_a_path_that_names_no_model_gets_a_download_command_that_fills_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--checkpoint-dir /tmp/x/nockpt` used to suggest `litgpt download x/nockpt --checkpoint_dir
    # /tmp`: "x/nockpt" is no model. The hint must be a command that works.
    missing = tmp_path / "x" / "nockpt"
    assert _cli(["--checkpoint-dir", str(missing), "--storage", f"sqlite:///{tmp_path}/s.db"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "litgpt download x/nockpt" not in err
    assert f"litgpt download meta-llama/Llama-3.2-3B --checkpoint_dir {missing}`" in err
    assert f"--checkpoint-dir {missing / 'meta-llama' / 'Llama-3.2-3B'}" in err
    assert "litgpt download list" in err


def test_broken_or_missing_alpaca_data_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "alpaca_data_cleaned_archive.json").write_text('[{"instruction": "x", "out')
    with pytest.raises(ValueError, match=r"not valid JSON.*curl -L"):
        check_alpaca_data(tmp_path)
    (tmp_path / "alpaca_data_cleaned_archive.json").write_text('[{"instruction": "x"}]')
    with pytest.raises(ValueError, match=r"record 0 lacks 'instruction'/'output'"):
        check_alpaca_data(tmp_path)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"is missing.*curl -L"):
        check_alpaca_data(tmp_path / "empty")


def test_gpu_configurations_fail_fast_without_gpus(tmp_path: Path, tiny) -> None:  # type: ignore[no-untyped-def]
    import torch

    n_gpus = torch.cuda.device_count()
    for overrides in ({"devices": 2}, {"precision": "bf16-true"}):
        objective = _objective(tiny, tmp_path, **overrides)
        needed = overrides.get("devices", 1)
        if n_gpus >= needed:  # a GPU machine: the same configuration passes the check
            objective.check()
        else:
            with pytest.raises(RuntimeError, match=r"--devices 1 --precision 32-true"):
                objective.check()


# ------------------------------------------------------------------ slow: real LitGPT + lm-eval


def _check_complete_trial(trial: optuna.trial.FrozenTrial, runs: Path) -> None:
    """One trial ran the real fine-tune, conversion and lm-eval scoring, and recorded it all."""
    attrs = trial.user_attrs
    assert trial.state == TrialState.COMPLETE, attrs
    assert 0.0 <= trial.value <= 1.0
    assert trial.value == attrs["tiny_hellaswag_acc_norm"]  # the validation task is optimised
    assert 0.0 <= attrs["tiny_hellaswag_acc"] <= 1.0
    assert 0.0 <= attrs["tiny_mmlu_acc"] <= 1.0  # the test task: recorded only
    # LitGPT's validation loss every 2 optimizer steps of 2 micro-batches, reported at the
    # iteration (micro-batch) LitGPT logs it with.
    assert sorted(trial.intermediate_values) == [4, 8]
    assert all(math.isfinite(v) and v > 0 for v in trial.intermediate_values.values())
    assert math.isfinite(attrs["train_loss"]) and attrs["train_loss"] > 0
    assert attrs["val_loss"] == trial.intermediate_values[8]
    trial_dir = Path(attrs["trial_dir"])
    assert trial_dir == (runs / "lora" / f"trial_{trial.number:04d}").resolve()
    assert Path(attrs["lora_checkpoint"]).is_file()
    assert (Path(attrs["hf_dir"]) / "config.json").is_file()
    assert list(Path(attrs["hf_dir"]).glob("*.safetensors"))
    log = Path(attrs["finetune_log"]).read_text()
    assert f"--lora_r {trial.params['lora_r']}" in log
    assert f'"lr": {trial.params["lr"]}' in log  # in the optimizer's init_args
    scores = json.loads((trial_dir / "eval.json").read_text())["scores"]
    assert scores["tiny_mmlu"]["acc"] == attrs["tiny_mmlu_acc"]
    for key in ("time_finetune_s", "time_convert_s", "time_eval_s"):
        assert attrs[key] > 0


@pytest.mark.slow
def test_cli_two_trial_soo_study_on_sqlite_completes_and_resumes(tmp_path: Path, tiny) -> None:  # type: ignore[no-untyped-def]
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    argv = [
        "--sampler", "soo", "--n-trials", "2", "--storage", storage, "--study-name", "lora",
        "--checkpoint-dir", str(tiny.checkpoint_dir), "--data-dir", str(tiny.data_dir),
        "--data-arg", "num_workers=0", "--out-dir", str(tmp_path / "runs"), "--keep-weights",
        "--devices", "1", "--precision", "32-true", "--max-steps", "4",
        "--micro-batch-size", "2", "--global-batch-size", "4", "--max-seq-length", "128",
        "--train", "lr_warmup_steps=1", "--train", "save_interval=null",
        "--eval", "interval=2", "--eval", "max_iters=2", "--eval", "max_new_tokens=8",
        "--val-task", tiny.val_task, "--test-tasks", tiny.test_task,
        "--include-path", str(tiny.tasks_dir),
    ]  # fmt: skip
    assert _cli(argv) == 0
    trials = optuna.load_study(study_name="lora", storage=storage).get_trials()
    assert len(trials) == 2
    for trial in trials:
        _check_complete_trial(trial, tmp_path / "runs")
        assert "source" in trial.user_attrs
    # Optuna gives a relative sampler no search space before a trial completes, so SOO's first
    # trial comes from its independent sampler; from then on SOO picks nodes of its tree.
    assert trials[1].user_attrs["source"] == "soo" and trials[1].user_attrs["node"] == "0:0"
    assert trials[0].params != trials[1].params
    # Started again (another machine, or after a crash): the study's 2 trials are its budget.
    assert _cli(argv) == 0
    assert len(optuna.load_study(study_name="lora", storage=storage).trials) == 2


@pytest.mark.slow
def test_crash_fails_the_trial_with_its_log_then_the_study_goes_on_and_prunes(
    tmp_path: Path, tiny
) -> None:  # type: ignore[no-untyped-def]
    # Trial 0 crashes inside LitGPT (micro batch 8 > global batch 4: its gradient-accumulation
    # assert); trial 1 trains and a real pruner stops it at its first validation loss, long
    # before the 100 epochs (~2900 optimizer steps) it was given.
    space = {
        **default_search_space(),
        "train.micro_batch_size": optuna.distributions.CategoricalDistribution([2, 8]),
    }
    objective = _objective(tiny, tmp_path / "runs", search_space=space, epochs=100,
                           max_steps=None)  # fmt: skip
    storage = f"sqlite:///{tmp_path / 'crash.db'}"
    study = optuna.create_study(direction="maximize", storage=storage, study_name="crash",
                                pruner=optuna.pruners.ThresholdPruner(upper=0.0))  # fmt: skip
    base = {"lr": 1e-3, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "weight_decay": 0.01}
    study.enqueue_trial({**base, "train.micro_batch_size": 8})
    study.enqueue_trial({**base, "train.micro_batch_size": 2})
    study.optimize(objective, n_trials=2, catch=(FinetuneError,))

    crashed, pruned = optuna.load_study(study_name="crash", storage=storage).trials
    assert crashed.state == TrialState.FAIL
    log = Path(crashed.user_attrs["finetune_log"]).read_text()
    assert "--train.micro_batch_size 8" in log and "Traceback" in log
    reason = crashed.user_attrs["fail_reason"]
    assert reason.startswith("litgpt finetune_lora failed (exit code 1)")
    assert "gradient_accumulation_iters > 0" in reason  # the log's tail: the cause

    assert pruned.state == TrialState.PRUNED
    # Pruned at the first poll of LitGPT's metrics that saw a validation loss. How many
    # validation losses that poll already holds depends on the machine's speed and on when
    # LitGPT's logger flushes (seen: 4..24 here, 4..44 on a faster CI machine), so the test
    # checks that every one was reported, in order, and that training stopped early.
    steps = sorted(pruned.intermediate_values)
    assert steps == list(range(4, 4 * len(steps) + 1, 4)), steps
    out = Path(pruned.user_attrs["trial_dir"]) / "finetune"
    # When a new column appears, Lightning's CSV logger rewrites metrics.csv whole (open "w",
    # then write), and the stop that prunes the trial can land in between: an empty file was
    # seen after the run on an idle machine, although the polls had read the validation losses
    # from it. The reported steps then bound how far training went.
    train_losses = read_curve(out).train_losses
    last_iter = train_losses[-1][0] if train_losses else steps[-1]
    assert last_iter < 600, last_iter  # a few polls in, far from the end of 100 epochs
    assert not (out / "final").exists()


def test_conversion_gives_a_hf_model_with_litgpts_logits(tmp_path: Path, tiny) -> None:  # type: ignore[no-untyped-def]
    """What lm-eval scores is the model LitGPT trained: same logits after the conversion."""
    import torch
    from litgpt import Config
    from litgpt.model import GPT
    from transformers import AutoModelForCausalLM

    from optuna_llm.objectives._lm_eval import convert_to_hf

    hf_dir = convert_to_hf(tiny.checkpoint_dir, tmp_path / "hf")
    assert not (hf_dir / "model.pth").exists()  # the intermediate file is removed
    lit = GPT(Config.from_file(tiny.checkpoint_dir / "model_config.yaml"))
    lit.load_state_dict(torch.load(tiny.checkpoint_dir / "lit_model.pth", weights_only=True))
    hf = AutoModelForCausalLM.from_pretrained(hf_dir)
    ids = torch.randint(0, 512, (2, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, lit.eval()(ids), rtol=1e-4, atol=1e-4)
