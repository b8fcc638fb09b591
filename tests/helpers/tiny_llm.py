"""Build a tiny random-initialised LitGPT Llama, its tokenizer, a local Alpaca file and local
HellaSwag/MMLU-format lm-eval tasks: everything the LoRA objective needs, offline, in seconds.

Used by tests/test_finetune.py (session fixture), scripts/finetune_time.py and
examples/finetune_lora.py (``--tiny``). Nothing here is a stand-in for a component: LitGPT,
lm-eval and transformers run for real on these files.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

_SUBJECTS = ["cats", "rivers", "music", "bread", "stars", "trains", "gardens", "maths"]
_VERBS = ["describe", "explain", "list", "summarise", "compare", "name"]
_WORDS = (
    "the a small big red blue quick slow water light sound stone tree house road river cloud "
    "bird song cold warm day night first last many few often never always"
).split()


@dataclass(frozen=True)
class TinyLLM:
    """Paths of the tiny setup."""

    checkpoint_dir: Path
    data_dir: Path
    tasks_dir: Path
    val_task: str = "tiny_hellaswag"
    test_task: str = "tiny_mmlu"


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def alpaca_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        subject = rng.choice(_SUBJECTS)
        rows.append(
            {
                "instruction": f"{rng.choice(_VERBS).capitalize()} {subject} in one line.",
                "input": "" if i % 3 else _sentence(rng, 6),
                "output": f"{subject.capitalize()} are {_sentence(rng, rng.randint(4, 12))}.",
            }
        )
    return rows


def _train_tokenizer(out: Path, corpus: list[str], vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<|begin_of_text|>",
                "eos_token": "<|end_of_text|>",
                "add_bos_token": True,
                "model_max_length": 256,
            }
        )
    )
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 1}))


def build_checkpoint(out: Path, corpus: list[str], seed: int = 0) -> Path:
    """A 2-layer, 64-wide Llama (LitGPT ``lit_model.pth`` + ``model_config.yaml``), a BPE
    tokenizer trained on ``corpus`` and the matching Hugging Face ``config.json``."""
    import torch
    from litgpt import Config
    from litgpt.model import GPT
    from litgpt.utils import save_config
    from transformers import LlamaConfig

    out.mkdir(parents=True, exist_ok=True)
    config = Config.from_name(
        "Llama-3.2-1B",
        block_size=256,
        vocab_size=512,
        padded_vocab_size=512,
        n_layer=2,
        n_embd=64,
        n_head=4,
        n_query_groups=2,
        head_size=16,
        intermediate_size=128,
        rope_adjustments=None,
    )
    torch.manual_seed(seed)
    model = GPT(config)
    torch.save(model.state_dict(), out / "lit_model.pth")
    save_config(config, out)
    _train_tokenizer(out, corpus, config.vocab_size)
    LlamaConfig(
        vocab_size=config.padded_vocab_size,
        hidden_size=config.n_embd,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        num_key_value_heads=config.n_query_groups,
        head_dim=config.head_size,
        max_position_embeddings=config.block_size,
        rms_norm_eps=config.norm_eps,
        rope_theta=config.rope_base,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=1,
        architectures=["LlamaForCausalLM"],
    ).to_json_file(str(out / "config.json"))
    return out


_HELLASWAG_YAML = """\
task: {name}
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    train: {train}
    validation: {validation}
output_type: multiple_choice
training_split: train
validation_split: validation
test_split: null
process_docs: !function hellaswag_utils.process_docs
doc_to_text: "{{{{query}}}}"
doc_to_target: "{{{{label}}}}"
doc_to_choice: "choices"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

_MMLU_YAML = """\
task: {name}
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    dev: {dev}
    test: {test}
test_split: test
fewshot_split: dev
fewshot_config:
  sampler: first_n
output_type: multiple_choice
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. \
{{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def hellaswag_rows(n: int, split: str, seed: int) -> list[dict[str, object]]:
    """Rows with the fields of the Hub's Rowan/hellaswag (label is a string there too)."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for i in range(n):
        ctx_a, ctx_b = _sentence(rng, 8), _sentence(rng, 3)
        rows.append(
            {
                "ind": i,
                "activity_label": rng.choice(_SUBJECTS).capitalize(),
                "ctx_a": ctx_a,
                "ctx_b": ctx_b,
                "ctx": f"{ctx_a} {ctx_b}",
                "endings": [_sentence(rng, rng.randint(3, 8)) for _ in range(4)],
                "source_id": f"tiny~{i}",
                "split": split,
                "split_type": "indomain",
                "label": str(rng.randrange(4)),
            }
        )
    return rows


def mmlu_rows(n: int, seed: int) -> list[dict[str, object]]:
    """Rows with the fields of the Hub's cais/mmlu."""
    rng = random.Random(seed)
    return [
        {
            "question": f"Which {rng.choice(_WORDS)} is {_sentence(rng, 4)}?",
            "subject": "tiny",
            "choices": [_sentence(rng, 2) for _ in range(4)],
            "answer": rng.randrange(4),
        }
        for _ in range(n)
    ]


def build_tasks(out: Path, n_eval: int = 12) -> Path:
    """``tiny_hellaswag`` (validation split, HellaSwag's own ``process_docs``) and
    ``tiny_mmlu`` (test split, MMLU's template) as lm-eval task YAMLs in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "hellaswag_train.jsonl", hellaswag_rows(8, "train", 1))
    _write_jsonl(out / "hellaswag_val.jsonl", hellaswag_rows(n_eval, "val", 2))
    _write_jsonl(out / "mmlu_dev.jsonl", mmlu_rows(5, 3))
    _write_jsonl(out / "mmlu_test.jsonl", mmlu_rows(n_eval, 4))
    (out / "hellaswag_utils.py").write_text(
        "from lm_eval.tasks.hellaswag.utils import process_docs  # noqa: F401\n"
    )
    (out / "tiny_hellaswag.yaml").write_text(
        _HELLASWAG_YAML.format(
            name="tiny_hellaswag",
            train=out / "hellaswag_train.jsonl",
            validation=out / "hellaswag_val.jsonl",
        )
    )
    (out / "tiny_mmlu.yaml").write_text(
        _MMLU_YAML.format(
            name="tiny_mmlu", dev=out / "mmlu_dev.jsonl", test=out / "mmlu_test.jsonl"
        )
    )
    return out


def build(root: Path, n_alpaca: int = 120, n_eval: int = 12) -> TinyLLM:
    """Everything under ``root``: ``checkpoint/``, ``alpaca/``, ``tasks/``."""
    rows = alpaca_rows(n_alpaca)
    data_dir = root / "alpaca"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "alpaca_data_cleaned_archive.json").write_text(json.dumps(rows))
    corpus = [" ".join(r.values()) for r in rows] + [" ".join(_WORDS)] * 4
    checkpoint = build_checkpoint(root / "checkpoint", corpus)
    tasks = build_tasks(root / "tasks", n_eval)
    return TinyLLM(checkpoint_dir=checkpoint, data_dir=data_dir, tasks_dir=tasks)


def tiny_objective_kwargs(tiny: TinyLLM) -> dict[str, object]:
    """Objective arguments that make one trial take seconds on a CPU."""
    return {
        "checkpoint_dir": tiny.checkpoint_dir,
        "data_dir": tiny.data_dir,
        "data_args": {"num_workers": 0},
        "max_steps": 4,
        "devices": 1,
        "precision": "32-true",
        "train_args": {
            "global_batch_size": 4,
            "micro_batch_size": 2,
            "lr_warmup_steps": 1,
            "max_seq_length": 128,
            "save_interval": None,
        },
        "eval_args": {"interval": 2, "max_iters": 2, "max_new_tokens": 8},
        "val_task": tiny.val_task,
        "test_tasks": (tiny.test_task,),
        "include_path": tiny.tasks_dir,
        "eval_batch_size": 8,
        "poll_interval": 0.5,
    }
