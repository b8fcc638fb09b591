"""Prompt tokens per proposal at 10, 100 and 1000 finished trials (compressed vs chat), and
seconds per proposal with the embedded Gemma model. Prints Markdown tables.

    .venv/bin/python scripts/llm_prompt_size.py [--proposals 5]
    .venv/bin/python scripts/llm_prompt_size.py --orders first last none --trials 10 \
        --tasks toy/branin hpobench/car     # who chose the trials, per rationale order
    .venv/bin/python scripts/llm_prompt_size.py --orders last --candidates 1 4 --trials 10
        # ... and per number of candidates asked in one request

    .venv/bin/python scripts/llm_prompt_size.py --guided-picks 9   # --guided-action choose
        # seconds per llm-guided LLM trial (GP fit and the embedded model's point or pick)

The second form runs a short LLMSampler study per (rationale order, task) with the embedded
model and prints the share of trials the LLM chose itself (``llm`` or a near-miss repair) and
the median seconds per trial (proposal + a table lookup). Wrap it in
``flock /work/notes/embedded.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

from optuna_llm._attrs import LLM_CALLS, LLM_COMPLETION_TOKENS
from optuna_llm.llm.embedded import EmbeddedLlamaClient
from optuna_llm.llm.factory import make_client
from optuna_llm.llm.prompts import (
    DEFAULT_EXAMPLE,
    EXAMPLES,
    PromptBuilder,
    PromptSettings,
    example_configs,
    jsonable,
)
from optuna_llm.llm.proposer import resolve_example
from optuna_llm.llm.schema import RATIONALE_ORDERS
from optuna_llm.objectives._suggest import suggest
from optuna_llm.samplers import LLMSampler

SPACE = {
    "optimizer": CategoricalDistribution(["adam", "sgd"]),
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    "train_batch_size": CategoricalDistribution([32, 64, 128, 256, 512]),
    "weight_decay": FloatDistribution(1e-5, 1e-1, log=True),
    "label_smoothing": FloatDistribution(0.0, 0.2),
}
PROBLEM = "ResNet-9 on CIFAR-10; minimise the validation error after 10 epochs."


def study_with(n: int, seed: int = 0) -> optuna.Study:
    rng = np.random.default_rng(seed)
    study = optuna.create_study()
    trials = []
    for _ in range(n):
        params = {
            "optimizer": str(rng.choice(["adam", "sgd"])),
            "learning_rate": float(10 ** rng.uniform(-4, -1)),
            "train_batch_size": int(rng.choice([32, 64, 128, 256, 512])),
            "weight_decay": float(10 ** rng.uniform(-5, -1)),
            "label_smoothing": float(rng.uniform(0, 0.2)),
        }
        trials.append(
            optuna.trial.create_trial(
                params=params, distributions=SPACE, value=float(rng.uniform(0.05, 0.9))
            )
        )
    study.add_trials(trials)
    return study


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proposals", type=int, default=5)
    parser.add_argument("--histories", nargs="+", default=["compressed", "chat"])
    parser.add_argument("--skip-tokens", action="store_true")
    parser.add_argument("--orders", nargs="*", choices=RATIONALE_ORDERS)
    parser.add_argument("--tasks", nargs="*", default=["toy/branin", "hpobench/car"])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--candidates", type=int, nargs="*", default=[1])
    parser.add_argument("--examples", nargs="*", choices=EXAMPLES, default=[DEFAULT_EXAMPLE])
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument(
        "--show", action="store_true", help="print each trial's source and refusals to stderr"
    )
    parser.add_argument("--guided-picks", type=int, default=0, metavar="N")
    parser.add_argument("--guided-action", default="auto", choices=("auto", "propose", "choose"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.guided_picks:
        print_guided_pick_table(args.guided_picks, args.guided_action)
        return
    if args.orders:
        print_order_table(
            args.orders,
            args.tasks,
            args.trials,
            args.candidates,
            args.show,
            examples=args.examples,
            temperature=args.temperature,
        )
        return
    client = EmbeddedLlamaClient()
    if not args.skip_tokens:
        print_token_table(client)
    print_speed_table(args.proposals, args.histories)


def print_token_table(client: EmbeddedLlamaClient) -> None:
    print("| finished trials | compressed: prompt tokens | chat: prompt tokens |")
    print("|---:|---:|---:|")
    for n in (10, 100, 1000):
        study = study_with(n)
        row = []
        for history in ("compressed", "chat"):
            builder = PromptBuilder(PromptSettings(problem=PROBLEM, history=history))
            messages = builder.build(SPACE, study.trials, study.directions, None)
            text = "".join(m["content"] for m in messages)
            row.append(client.count_tokens(text))
        print(f"| {n} | {row[0]:,} | {row[1]:,} |")
    print()


def timed_proposal(study: optuna.Study, value: float) -> tuple[float, dict]:
    """Seconds of one proposal of the study's sampler over SPACE (relative sampling happens at
    the first suggest), and the trial's user attrs; the trial is then told ``value``."""
    t0 = time.perf_counter()
    trial = study.ask()
    for name, dist in SPACE.items():
        suggest(trial, name, dist)
    spent = time.perf_counter() - t0
    attrs = study._storage.get_trial(trial._trial_id).user_attrs
    study.tell(trial, value)
    return spent, attrs


def print_speed_table(proposals: int, histories: list[str]) -> None:
    print(
        "| embedded Gemma 3 270M, history at 10 trials | seconds per proposal (median) | "
        "LLM calls per proposal (mean) | seconds per LLM call (mean) | "
        "answer tokens per LLM call (mean) | sources |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for history in histories:
        study = study_with(10)
        sampler = LLMSampler(
            PROBLEM, client=make_client(), history=history, search_space=SPACE, seed=0
        )
        study.sampler = sampler
        seconds, calls, answer_tokens = [], [], []
        for _ in range(proposals):
            spent, attrs = timed_proposal(study, 0.5)
            seconds.append(spent)
            calls.append(attrs.get(LLM_CALLS, 0))
            answer_tokens.append(attrs.get(LLM_COMPLETION_TOKENS, 0))
        sources = [t.user_attrs.get("source") for t in study.trials[10:]]
        per_call = sum(seconds) / max(1, sum(calls))
        tokens_per_call = sum(answer_tokens) / max(1, sum(calls))
        print(
            f"| {history} | {statistics.median(seconds):.2f} | {statistics.mean(calls):.1f} | "
            f"{per_call:.2f} | {tokens_per_call:.0f} | "
            f"{', '.join(sorted(set(map(str, sources))))} |"
        )


def print_guided_pick_table(picks: int, action: str = "auto") -> None:
    """Seconds per LLM trial of LLMGuidedSampler on its defaults (GP; ``action="auto"`` is a
    point proposed in the region, ``"choose"`` a pick among candidates) after 10 random trials
    of the ResNet-9 space: the whole proposal (GP fit, the LLM, the gate or the candidates)
    and the LLM's requests alone (``llm_seconds``). Every trial after the 10 is an LLM trial
    here (``llm_share=1``) so each ask measures one."""
    from optuna_llm.samplers import LLMGuidedSampler

    study = study_with(10)
    study.sampler = LLMGuidedSampler(
        PROBLEM, search_space=SPACE, seed=0, llm_share=1.0, n_trials=10 + picks, action=action
    )
    total, llm, calls, sources = [], [], [], []
    for k in range(picks):
        spent, attrs = timed_proposal(study, 0.5 + 0.01 * k)
        total.append(spent)
        llm.append(float(attrs.get("llm_seconds", float("nan"))))
        calls.append(int(attrs.get("llm_calls", 0)))
        sources.append(str(attrs.get("source")))
    print(
        "| llm-guided LLM trial, 10+ trials of history | seconds per proposal (median) | "
        "of it the LLM's request (median) | LLM calls per proposal (mean) | sources |"
    )
    print("|---|---:|---:|---:|---|")
    counts = ", ".join(f"{s} {sources.count(s)}" for s in sorted(set(sources)))
    print(
        f"| {picks} LLM trials, action {action} | {statistics.median(total):.2f} | "
        f"{statistics.median(llm):.2f} | "
        f"{statistics.mean(calls):.1f} | {counts} |"
    )


def print_order_table(
    orders: list[str],
    tasks: list[str],
    n_trials: int,
    candidates: list[int],
    show: bool = False,
    *,
    examples: list[str] = [DEFAULT_EXAMPLE],  # noqa: B006 (read only)
    temperature: float = 0.0,
) -> None:
    from optuna_llm.bench._tasks import get_task

    print(
        f"Temperature of the first request: {temperature}.\n\n"
        "| example | rationale | candidates | task | trials | "
        "chosen by the LLM (llm + llm-repaired) | "
        "of them the ask's example | fallback | LLM calls per trial (mean) | "
        "seconds per trial (median) |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    client = make_client()
    for example, order, k, name in itertools.product(examples, orders, candidates, tasks):
        task = get_task(name)
        task.reseed(0)
        sampler = LLMSampler(
            task.description,
            client=client,
            search_space=task.distributions(),
            seed=0,
            rationale=order,
            n_trials=n_trials,
            candidates=k,
            example=example,
            temperature=temperature,
        )
        study = optuna.create_study(sampler=sampler)
        seconds = []
        for _ in range(n_trials):
            t0 = time.perf_counter()
            study.optimize(lambda t, task=task: task.evaluate(t).seen, n_trials=1)
            seconds.append(time.perf_counter() - t0)
        sources = [str(t.user_attrs.get("source")) for t in study.trials]
        if show:
            for t in study.trials:
                errors = "; ".join(t.user_attrs.get("llm_errors", []))[:600]
                print(f"#{t.number} {sources[t.number]} {t.params} | {errors}", file=sys.stderr)
        chosen = sum(s.startswith("llm") for s in sources)
        shown_examples = (
            [
                json.dumps(c, sort_keys=True)
                for c in example_configs(task.distributions(), max(k, 1))
            ]
            if resolve_example(example, client) == "values"
            else []
        )
        copied = sum(
            str(t.user_attrs.get("source")).startswith("llm")
            and json.dumps(_jsonable_params(t.params), sort_keys=True) in shown_examples
            for t in study.trials
        )
        calls = statistics.mean(int(t.user_attrs.get("llm_calls", 0)) for t in study.trials)
        print(
            f"| {example} | {order} | {k} | {name} | {n_trials} | {chosen}/{n_trials} | {copied} | "
            f"{n_trials - chosen} | {calls:.1f} | {statistics.median(seconds):.1f} |",
            flush=True,
        )


def _jsonable_params(params: dict) -> dict:
    return {k: jsonable(v) for k, v in params.items()}


if __name__ == "__main__":
    main()
