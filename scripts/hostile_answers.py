"""Hostile LLM answers at scale: a seeded corpus (tests/helpers/hostile.py) of at least 10,000
answers for five search spaces, read by the real answer-reading code (optuna_llm.llm.propose +
optuna_llm.llm.validate, in process, no HTTP), then a few hundred through the scripted
OpenAI-compatible server into real LLMSampler studies (SQLite). Prints Markdown tables.

    .venv/bin/python scripts/hostile_answers.py                  # 10,000 + 400 answers
    .venv/bin/python scripts/hostile_answers.py --n 2000 --server 100 --json out.json

Columns: crashes (any exception but a refusal; goal 0), out-of-space values accepted (goal 0),
how many were accepted as-is (source llm), repaired (llm-repaired), refused (the sampler then
falls back), and the agreement with each answer's expected class where it is defined (accept /
repair / refuse; a crash counts as a disagreement). "intended" counts accepted or repaired
answers whose values differ from what a correct reading gives.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers.hostile import (  # noqa: E402
    SPACES,
    HostileAnswer,
    Outcome,
    iter_corpus,
    read_directly,
    run_server_pass,
)

CLASSES = ("accept", "repair", "refuse")


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _bold(ok: bool, text: object) -> str:
    return str(text) if ok else f"**{text}**"


def _agreement(pairs: list[tuple[HostileAnswer, Outcome]]) -> tuple[int, int]:
    defined = [(a, o) for a, o in pairs if a.expected is not None]
    return sum(a.expected == o.observed for a, o in defined), len(defined)


def summary_table(groups: dict[str, list[tuple[HostileAnswer, Outcome]]], first: str) -> str:
    header = [
        first, "answers", "crashes (goal 0)", "out-of-space accepted (goal 0)", "accepted as-is",
        "repaired", "refused", "agreement with expected", "intended values missed",
    ]  # fmt: skip
    lines = [_row(header), "|" + "---|" * len(header)]
    for name, pairs in groups.items():
        observed = Counter(o.observed for _, o in pairs)
        agree, defined = _agreement(pairs)
        oos = sum(bool(o.out_of_space) for _, o in pairs)
        lines.append(
            _row(
                [
                    name,
                    len(pairs),
                    _bold(observed["crash"] == 0, observed["crash"]),
                    _bold(oos == 0, oos),
                    observed["accept"],
                    observed["repair"],
                    observed["refuse"],
                    f"{agree}/{defined} ({100 * agree / max(defined, 1):.1f}%)",
                    sum(o.intended_mismatch for _, o in pairs),
                ]
            )
        )
    return "\n".join(lines)


def kind_table(pairs: list[tuple[HostileAnswer, Outcome]]) -> str:
    by_kind: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for a, o in pairs:
        by_kind[(a.kind, a.expected or "-")].append(o)
    header = ["kind", "expected", "n", "accept", "repair", "refuse", "crash", "agreement"]
    lines = [_row(header), "|" + "---|" * len(header)]
    for (kind, expected), outcomes in sorted(by_kind.items()):
        c = Counter(o.observed for o in outcomes)
        agree = "-" if expected == "-" else f"{100 * c[expected] / len(outcomes):.0f}%"
        if expected != "-" and c[expected] != len(outcomes):
            agree = f"**{agree}**"
        lines.append(
            _row(
                [
                    kind,
                    expected,
                    len(outcomes),
                    c["accept"],
                    c["repair"],
                    c["refuse"],
                    _bold(c["crash"] == 0, c["crash"]),
                    agree,
                ]
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="answers read directly")
    parser.add_argument("--server", type=int, default=400, help="answers through the server")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)

    started = time.perf_counter()
    direct: list[tuple[HostileAnswer, Outcome]] = []
    for answer in iter_corpus(args.seed, args.n):
        outcome = read_directly(answer)
        # Keep the outcome, drop the text (huge answers would fill memory).
        direct.append((HostileAnswer(**{**answer.__dict__, "text": ""}), outcome))
    direct_s = time.perf_counter() - started

    by_space: dict[str, list[tuple[HostileAnswer, Outcome]]] = {s: [] for s in SPACES}
    for a, o in direct:
        by_space[a.space].append((a, o))
    by_space["all"] = direct
    print(f"## Read directly: {len(direct)} answers, seed {args.seed}, {direct_s:.1f} s\n")
    print(summary_table(by_space, "space"))
    print("\n### By kind\n")
    print(kind_table(direct))
    crashes = Counter((o.error.split(":")[0], a.kind) for a, o in direct if o.observed == "crash")
    if crashes:
        print("\n### Crashes\n")
        examples = {
            (o.error.split(":")[0], a.kind): o.error for a, o in direct if o.observed == "crash"
        }
        for (error, kind), n in crashes.most_common():
            print(f"- {n} x {kind}: {examples[(error, kind)]}")
    oos = [(a, o) for a, o in direct if o.out_of_space]
    if oos:
        print("\n### Out-of-space values accepted\n")
        for a, o in oos[:20]:
            print(f"- answer {a.index} ({a.space}, {a.kind}): {', '.join(o.out_of_space[:3])}")

    server_pairs: list[tuple[HostileAnswer, Outcome]] = []
    server_rows: dict[str, list[tuple[HostileAnswer, Outcome]]] = {}
    server_notes: list[str] = []
    if args.server:
        started = time.perf_counter()
        singles = [a for a in iter_corpus(args.seed + 1, args.server * 2) if a.n_configs == 1]
        singles = singles[: args.server]
        with tempfile.TemporaryDirectory() as tmp:
            for space in SPACES:
                group = [a for a in singles if a.space == space]
                if not group:
                    continue
                storage = f"sqlite:///{Path(tmp) / f'{space}.db'}"
                result = run_server_pass(group, storage=storage)
                pairs = list(zip(result.answers, result.outcomes, strict=True))
                # A valid answer refused as a duplicate of an earlier trial is not a reading
                # error: leave those out of the agreement.
                kept = [
                    (a, o)
                    for a, o in pairs
                    if not (o.observed == "refuse" and ("already evaluated" in o.error
                                                        or "evaluating it right now" in o.error))
                ]  # fmt: skip
                server_rows[space] = kept
                server_pairs += kept
                server_notes.append(
                    f"{space}: {len(group)} answers, {result.trials} trials, {result.requests} "
                    f"requests, {len(pairs) - len(kept)} valid answers refused as duplicates "
                    "(left out)"
                )
        server_rows["all"] = server_pairs
        print(
            f"\n## Through the scripted server into LLMSampler studies (max_attempts=1, "
            f"SQLite): {len(server_pairs)} answers, seed {args.seed + 1}, "
            f"{time.perf_counter() - started:.1f} s\n"
        )
        print(summary_table(server_rows, "space").replace("| refused |", "| fell back |"))
        print()
        for note in server_notes:
            print(f"- {note}")
        server_crashes = Counter(o.error for _, o in server_pairs if o.observed == "crash")
        for message, n in server_crashes.most_common():
            print(f"- crash x {n}: {message}")

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "direct": [
                        {
                            "index": a.index,
                            "space": a.space,
                            "kind": a.kind,
                            "expected": a.expected,
                            "observed": o.observed,
                            "error": o.error,
                            "out_of_space": o.out_of_space,
                        }
                        for a, o in direct
                    ],
                    "server": [
                        {
                            "index": a.index,
                            "space": a.space,
                            "kind": a.kind,
                            "expected": a.expected,
                            "observed": o.observed,
                            "error": o.error,
                        }
                        for a, o in server_pairs
                    ],
                },
                indent=0,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
