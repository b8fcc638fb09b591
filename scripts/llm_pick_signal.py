"""Does the embedded model's pick among the guided candidates carry any signal?

The guided benchmark's picks (issue 16) were all "A": with the candidates shuffled, that pick
is a random one. Its answer is one token of a schema enum, so the model's whole preference is
the distribution of that token. This script reads it for the recorded pick questions of an
exchange cache (``docs/results/llm-benchmark-cache.jsonl``): the probability of each label as
the token after ``{"choice": "``, from one forward pass of the embedded model per question.
Each candidate is then evaluated on its benchmark task (true regret: the table's mean over
seeds, or BBOB's noiseless precision), and every way of picking is scored by the rank of the
true value of what it picked among the question's candidates (0 = best, 1 = worst; a random
pick scores 0.5 on average):

* ``llm``: the label the model finds most likely (what the grammar-constrained answer is);
* ``llm-calibrated``: the same after dividing each label's probability by its mean over all
  questions (contextual calibration, Zhao et al. 2021: removes a bias to a position);
* ``llm-permuted``: each candidate's probability averaged over the cyclic rotations of the
  candidate list (the same question asked ``n`` times, each candidate under every label once:
  permutation debiasing, Zheng et al. 2024); the rotations differ only in the last lines, so
  llama.cpp re-evaluates only those;
* ``gp-mean``: the lowest GP prediction shown in the prompt; ``gp-ucb``: the lowest mean minus
  its standard deviation;
* ``first``: the first-listed candidate.

Needs the embedded model (load it alone: see docs/llm.md) for the questions not yet in
``--out``; with the kept file, the table prints offline. Example::

    OMP_NUM_THREADS=1 python scripts/llm_pick_signal.py --limit 40 --among 528
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from llama_cpp.llama_chat_format import format_gemma

from optuna_llm.bench._tasks import Task, expand_tasks, get_task
from optuna_llm.llm.embedded import (
    GEMMA_CHAT_FORMAT,
    default_model_path,
    load_llama,
    merge_system_turn,
)

CACHE = Path("docs/results/llm-benchmark-cache.jsonl")
_CANDIDATE = re.compile(r"^([A-Z]): (.*) \(GP predicts (\S+) \+- (\S+)\)$")


@dataclass
class Question:
    task: str
    messages: list[dict[str, str]]
    labels: list[str]
    configs: list[dict[str, Any]]
    gp_mean: list[float]
    gp_std: list[float]


def _task_names() -> dict[str, str]:
    """First line of a prompt (the problem) -> task name, for the suites the guided benchmark
    ran on (scripts/llm_benchmark.py: HPOBench-NN tables and BBOB 5-D)."""
    return {f"Problem: {_task(n).description}": n for n in expand_tasks(["hpobench", "bbob-5d"])}


@cache
def _task(name: str) -> Task:
    return get_task(name)


def _value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def questions(path: Path) -> Iterator[Question]:
    """The pick questions of the exchange cache at ``path``, in file order."""
    tasks = _task_names()
    with open(path) as f:
        for line in f:
            request = json.loads(line)["request"]
            schema = request.get("json_schema") or {}
            choice = schema.get("properties", {}).get("choice")
            if not choice:
                continue
            text = request["messages"][-1]["content"]
            task = tasks.get(text.splitlines()[0])
            if task is None:
                continue
            configs, means, stds = [], [], []
            for row in text.splitlines():
                m = _CANDIDATE.match(row)
                if m:
                    pairs = (p.split("=", 1) for p in m.group(2).split(", "))
                    configs.append({k: _value(v) for k, v in pairs})
                    means.append(float(m.group(3)))
                    stds.append(float(m.group(4)))
            labels = list(choice["enum"])
            if len(configs) == len(labels):
                yield Question(task, request["messages"], labels, configs, means, stds)


def true_regret(task_name: str, config: dict[str, Any]) -> float:
    trial = optuna.trial.FixedTrial(config)
    return float(_task(task_name)._evaluate(trial, np.random.default_rng(0)).regret)  # type: ignore[arg-type]


def label_probabilities(llama: Any, q: Question) -> list[float]:
    """P(label) of the token after ``{"choice": "``, from llama.cpp's logits of the last
    prompt token (the grammar lets only a label through, so the answer is their argmax)."""
    # The embedded client's own rendering: Gemma's chat format, the system turn merged first.
    prompt = format_gemma(merge_system_turn(q.messages)).prompt + '{"choice": "'
    llama.create_completion(prompt, max_tokens=1, temperature=0.0)  # reuses the cached prefix
    logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
    logp = logits - np.logaddexp.reduce(logits)
    ids = [llama.tokenize(label.encode(), add_bos=False)[0] for label in q.labels]
    return [float(np.exp(logp[i])) for i in ids]


def rotated(q: Question, shift: int) -> Question:
    """``q`` with candidate ``(i + shift) % n`` under label ``i`` (the prompt rewritten)."""
    text = q.messages[-1]["content"]
    rows = text.splitlines()
    at = [i for i, row in enumerate(rows) if _CANDIDATE.match(row)]
    bodies = [rows[i].split(": ", 1)[1] for i in at]
    n = len(at)
    for slot, i in enumerate(at):
        rows[i] = f"{q.labels[slot]}: {bodies[(slot + shift) % n]}"
    messages = [*q.messages[:-1], {**q.messages[-1], "content": "\n".join(rows)}]
    order = [(slot + shift) % n for slot in range(n)]
    return Question(
        q.task,
        messages,
        q.labels,
        [q.configs[c] for c in order],
        [q.gp_mean[c] for c in order],
        [q.gp_std[c] for c in order],
    )


def permuted_probabilities(llama: Any, q: Question, unrotated: list[float]) -> list[float]:
    """Each candidate's label probability averaged over the cyclic rotations of the list
    (``unrotated``: the probabilities of ``q`` itself, rotation 0)."""
    n = len(q.labels)
    total = [0.0] * n
    for shift in range(n):
        probs = unrotated if shift == 0 else label_probabilities(llama, rotated(q, shift))
        for slot in range(n):
            total[(slot + shift) % n] += probs[slot] / n
    return total


def rank_of(values: list[float], i: int) -> float:
    """Rank of ``values[i]`` among ``values`` scaled to [0, 1] (ties share the mean rank)."""
    below = sum(v < values[i] for v in values)
    equal = sum(v == values[i] for v in values) - 1
    return (below + equal / 2) / (len(values) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--limit", type=int, default=0, help="questions, drawn at random")
    parser.add_argument(
        "--among",
        type=int,
        default=0,
        help="draw among the cache's first N pick questions (file order; the cache only grows, "
        "so --among 528 draws what the published run drew, before the reruns added theirs)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("docs/results/llm-pick-signal.jsonl"),
        help="one JSON line a question, appended to and resumed from",
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    qs = list(questions(args.cache))
    if args.among:
        qs = qs[: args.among]
    if args.limit:
        qs = random.Random(0).sample(qs, min(args.limit, len(qs)))
    llama = None  # loaded only if some question is not in --out yet
    rows = []
    done = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done[r["key"]] = r
    started = time.perf_counter()
    with open(args.out, "a") as out:
        for q in qs:
            key = json.dumps(q.messages)[-2000:] + q.task
            if key in done:
                rows.append(done[key])
                continue
            if llama is None:
                llama = load_llama(default_model_path(), 8192, chat_format=GEMMA_CHAT_FORMAT)
            probs = label_probabilities(llama, q)
            row = {
                "key": key,
                "task": q.task,
                "probs": probs,
                "permuted": permuted_probabilities(llama, q, probs),
                "regret": [true_regret(q.task, c) for c in q.configs],
                "gp_mean": q.gp_mean,
                "gp_std": q.gp_std,
            }
            out.write(json.dumps(row) + "\n")
            out.flush()
            rows.append(row)
    seconds = time.perf_counter() - started
    prior = np.mean([np.asarray(r["probs"]) / max(sum(r["probs"]), 1e-12) for r in rows], axis=0)
    pickers = {
        "llm": lambda r: int(np.argmax(r["probs"])),
        "llm-calibrated": lambda r: int(np.argmax(np.asarray(r["probs"]) / prior)),
        "llm-permuted": lambda r: int(np.argmax(r["permuted"])),
        "gp-mean": lambda r: int(np.argmin(r["gp_mean"])),
        "gp-ucb": lambda r: int(np.argmin(np.asarray(r["gp_mean"]) - np.asarray(r["gp_std"]))),
        "first": lambda r: 0,
    }
    print(f"{len(rows)} pick questions ({seconds:.0f} s of model time this run)")
    print("mean label probability (A, B, ...): " + ", ".join(f"{p:.3f}" for p in prior))
    print("\n| picker | mean rank of the pick's true value (0 best, 0.5 random) | best of the 4 |")
    print("|---|---|---|")
    for name, pick in pickers.items():
        ranks = [rank_of(r["regret"], pick(r)) for r in rows]
        best = [r["regret"][pick(r)] == min(r["regret"]) for r in rows]
        sem = float(np.std(ranks) / math.sqrt(len(ranks)))
        print(f"| {name} | {np.mean(ranks):.3f} +- {sem:.3f} | {np.mean(best):.0%} |")


if __name__ == "__main__":
    main()
