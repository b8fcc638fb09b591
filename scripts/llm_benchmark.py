"""Issue 16's benchmark: llm-guided against its optimizer alone, random, TPE, GP, CMA-ES and `llm`.

Over ``optuna-llm bench``'s Python API (same seeds for every sampler; resumable: every finished
run is a line of the results file and is skipped on a rerun), in phases:

    python scripts/llm_benchmark.py baselines   # every sampler without an LLM
    python scripts/llm_benchmark.py base-gp     # the optimizer alone with GP instead of TPE
    python scripts/llm_benchmark.py guided      # llm-guided (embedded model, one run at a time)
    python scripts/llm_benchmark.py llm         # the paper's `llm` at 10 evaluations
    python scripts/llm_benchmark.py report      # the tables (offline, from the results file)

and, since the guided sampler's defaults became GP as its optimizer and, on the embedded
model, a pick among labelled candidates (``action="choose"``), into their own results file:

    python scripts/llm_benchmark.py gp-base     # guided-base (GP), the optimizer alone
    python scripts/llm_benchmark.py gp-guided   # llm-guided on its defaults (embedded model)
    python scripts/llm_benchmark.py gp-report   # those against random/TPE/GP/CMA-ES above

and the paper's ``llm`` on the embedded model's defaults since the answer grammar keeps
numbers in range and the first request samples at temperature 1 (it was 0), into its own
results file:

    python scripts/llm_benchmark.py llm-t1      # `llm` at 10 evaluations on the 11 tasks
    python scripts/llm_benchmark.py llm-t1 --tasks hpobench/australian hpobench/car \\
        hpobench/credit_g hpobench/kc1 hpobench/segment --budgets 50   # and at 50 on the tables
    python scripts/llm_benchmark.py llm-t1-report
    python scripts/llm_benchmark.py llm-t1-report --results \\
        docs/results/llm-sampler-t1-flat-retries.jsonl   # the same before the retry schedule

and the same ``llm`` since the prompt keeps what changes each trial (the budget) after the
history, so llama.cpp reuses the cached history (a prompt unlike llm-t1's, so its own file):

    python scripts/llm_benchmark.py llm-prefix
    python scripts/llm_benchmark.py llm-t1-report --results docs/results/llm-sampler-prefix.jsonl
    python scripts/llm_benchmark.py guided-prefix   # llm-guided on its defaults, the same prompt
    python scripts/llm_benchmark.py gp-report --results docs/results/llm-guided-prefix.jsonl

and ``llm-guided`` asked for a point in its region again (``action="propose"``, HOLLM's ask
behind the GP gate) now that a proposal samples at the embedded model's default temperature
of 1 with the range grammar, as ``llm-t1`` does (its earlier ``propose`` rows were at 0):

    python scripts/llm_benchmark.py guided-propose
    python scripts/llm_benchmark.py gp-report --results docs/results/llm-guided-propose.jsonl

and its control, the same sampler and gate with the LLM replaced by a uniform draw inside the
box the LLM is shown (:class:`BoxRandomClient`, no model), so the LLM's share of any
difference from ``guided-base`` can be told from a trust region's:

    python scripts/llm_benchmark.py guided-box-random
    python scripts/llm_benchmark.py gp-report --results docs/results/llm-guided-box-random.jsonl

LLM phases record every exchange in ``docs/results/llm-benchmark-cache.jsonl`` (committed), so
a rerun replays them without the model. ``--tasks`` / ``--budgets`` / ``--seeds`` cut a phase
to what fits (the report says what ran). Starting configuration: ``llm-guided`` and
``guided-base`` start from the same Latin hypercube (same seed), so the LLM never gets a
default that the baselines lack; ``llm`` chooses its first trial itself (the paper's setting),
which the random/TPE/GP/CMA-ES rows do not get: its rows are compared at 10 evaluations only.

Example:
    >>> grid = GRID["baselines"]
    >>> len(grid.tasks), grid.budgets
    (11, (10, 50))
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from optuna_llm.llm.base import ChatResult

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "llm-benchmark.jsonl"
CACHE = ROOT / "docs" / "results" / "llm-benchmark-cache.jsonl"
BASE_GP = ROOT / "docs" / "results" / "llm-benchmark-base-gp.jsonl"
"""``guided-base`` with GP as its optimizer (the choice of base: TPE or GP, no LLM)."""
GP_GUIDED = ROOT / "docs" / "results" / "llm-guided-gp.jsonl"
"""``llm-guided`` and ``guided-base`` on the defaults since the switch: GP as the optimizer,
the LLM picking among candidates on the embedded model."""
LLM_T1 = ROOT / "docs" / "results" / "llm-sampler-t1.jsonl"
"""``llm`` with the numbers of its answer grammar kept in range, first request at temperature 1."""
LLM_PREFIX = ROOT / "docs" / "results" / "llm-sampler-prefix.jsonl"
"""``llm-t1`` again on the prompt whose history is a stable prefix (the budget after it)."""
GUIDED_PREFIX = ROOT / "docs" / "results" / "llm-guided-prefix.jsonl"
"""``gp-guided``'s ``llm-guided`` again on that prompt (its ``guided-base`` uses no LLM)."""
GUIDED_PROPOSE = ROOT / "docs" / "results" / "llm-guided-propose.jsonl"
"""``llm-guided`` with ``action="propose"`` at the embedded model's default temperature (1)."""
GUIDED_BOX_RANDOM = ROOT / "docs" / "results" / "llm-guided-box-random.jsonl"
"""``guided-propose`` with the LLM replaced by a uniform draw in the box (the control)."""

TABLES = (
    "hpobench/australian",
    "hpobench/car",
    "hpobench/credit_g",
    "hpobench/kc1",
    "hpobench/segment",
)
BBOB = tuple(f"bbob/f{f:02d}-d5-i1" for f in (1, 3, 8, 10, 15, 21))
TASKS = TABLES + BBOB
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Phase:
    samplers: tuple[str, ...]
    tasks: tuple[str, ...]
    budgets: tuple[int, ...]


GRID = {
    "baselines": Phase(("random", "tpe", "gp", "cmaes", "guided-base"), TASKS, (10, 50)),
    "guided": Phase(("llm-guided",), TASKS, (10, 50)),
    "llm": Phase(("llm",), TASKS, (10,)),
    "base-gp": Phase(("guided-base",), TASKS, (10, 50)),
    "gp-base": Phase(("guided-base",), TASKS, (10, 50)),
    "gp-guided": Phase(("llm-guided",), TASKS, (10, 50)),
    "llm-t1": Phase(("llm",), TASKS, (10,)),
    "llm-prefix": Phase(("llm",), TASKS, (10,)),
    "guided-prefix": Phase(("llm-guided",), TASKS, (10, 50)),
    "guided-propose": Phase(("llm-guided",), TASKS, (10, 50)),
    "guided-box-random": Phase(("llm-guided",), TASKS, (10, 50)),
}
BASELINES = ("random", "tpe", "gp", "cmaes")


class BoxRandomClient:
    """The control of ``guided-propose``: a chat client that answers every request with a
    point drawn uniformly inside the box its answer schema allows (the region the LLM is
    shown), log-uniformly on a positive range of two decades or more, seeded by the request
    (its seed and text), so a rerun draws the same points. It declares ``enforces_schema``
    like the embedded model, so the sampler asks it exactly as it asks that model.

    Example:
        >>> schema = {"properties": {"config": {"properties": {
        ...     "x": {"type": "number", "minimum": 0.0, "maximum": 1.0},
        ...     "n": {"type": "integer", "minimum": 1, "maximum": 3},
        ...     "c": {"enum": ["a", "b"]}}}}}
        >>> text = BoxRandomClient().chat([{"role": "user", "content": "q"}],
        ...                               json_schema=schema, seed=0).text
        >>> sorted(json.loads(text)["config"])
        ['c', 'n', 'x']
    """

    model = "box-random"
    enforces_schema = True

    def chat(self, messages: list[dict], **kwargs: object) -> ChatResult:
        schema = kwargs.get("json_schema") or {}
        assert isinstance(schema, dict)
        text = json.dumps([kwargs.get("seed"), messages], sort_keys=True)
        rng = random.Random(hashlib.sha256(text.encode()).hexdigest())
        config = {
            name: _draw_in(rule, rng)
            for name, rule in schema["properties"]["config"]["properties"].items()
        }
        answer = json.dumps({"config": config, "rationale": "a uniform draw in the box"})
        return ChatResult(answer, 0, 0, self.model)


def _draw_in(rule: dict, rng: random.Random) -> object:
    if "enum" in rule:
        return rng.choice(rule["enum"])
    low, high = rule["minimum"], rule["maximum"]
    if rule.get("type") == "integer":
        return rng.randint(int(low), int(high))
    if low > 0 and high >= 100 * low:
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)


def run_phase(name: str, tasks: list[str] | None, budgets: list[int] | None, seeds: int) -> None:
    from optuna_llm.bench import make_keys, run_all

    phase = GRID[name]
    keys = make_keys(
        list(phase.samplers),
        list(tasks or phase.tasks),
        seeds=list(SEEDS[:seeds]),
        budgets=list(budgets or phase.budgets),
    )
    llm = {"cache": str(CACHE)}
    # Each phase names the settings it was measured with where a default has changed since,
    # so a rerun reproduces its rows: the first phases ran TPE as the optimizer and asked at
    # temperature 0; gp-guided and guided-prefix ran the pick (the default until guided-propose).
    first = {"llm": llm, "base": "tpe", "action": "propose", "temperature": 0.0}
    kwargs: dict[str, dict] = {
        "guided-base": {"base": "tpe"},
        "llm-guided": first,
        "llm": {**llm, "temperature": 0.0},
    }
    pick = {"llm-guided": {"llm": llm, "action": "choose"}}
    results = RESULTS
    if name == "base-gp":
        kwargs, results = {"guided-base": {"base": "gp"}}, BASE_GP
    elif name.startswith("gp-"):
        kwargs, results = pick, GP_GUIDED
    elif name == "guided-prefix":
        kwargs, results = pick, GUIDED_PREFIX
    elif name == "guided-propose":
        kwargs, results = {"llm-guided": {"llm": llm, "action": "propose"}}, GUIDED_PROPOSE
    elif name == "guided-box-random":
        control = {"client": BoxRandomClient(), "action": "propose"}
        kwargs, results = {"llm-guided": control}, GUIDED_BOX_RANDOM
    elif name in ("llm-t1", "llm-prefix"):
        kwargs = {"llm": {**llm, "temperature": 1.0}}
        results = LLM_T1 if name == "llm-t1" else LLM_PREFIX
    run_all(keys, results, jobs=1, sampler_kwargs=kwargs, progress=True)


# -- report ------------------------------------------------------------------------------------


def _final(records: list[dict]) -> dict[tuple[str, str, int, int], float]:
    return {
        (r["sampler"], r["task"], int(r["seed"]), int(r["budget"])): float(r["final_regret"])
        for r in records
        if r.get("error") is None and not r.get("noise")
    }


def win_rate(
    final: dict[tuple[str, str, int, int], float], a: str, b: str, budget: int
) -> tuple[int, int, int]:
    """(wins, ties, runs) of ``a`` against ``b`` on the (task, seed) pairs both have.

    Example:
        >>> f = {("a", "t", 0, 10): 0.1, ("b", "t", 0, 10): 0.2, ("a", "t", 1, 10): 0.3,
        ...      ("b", "t", 1, 10): 0.3}
        >>> win_rate(f, "a", "b", 10)
        (1, 1, 2)
    """
    wins = ties = n = 0
    for (s, task, seed, bud), value in final.items():
        if s != a or bud != budget:
            continue
        other = final.get((b, task, seed, bud))
        if other is None or math.isnan(value) or math.isnan(other):
            continue
        n += 1
        if math.isclose(value, other, rel_tol=1e-12, abs_tol=1e-12):
            ties += 1
        elif value < other:
            wins += 1
    return wins, ties, n


def base_choice(tpe: list[dict], gp: list[dict]) -> str:
    """The optimizer alone with TPE against with GP, per budget (wins of TPE, ties, runs)."""
    final = _final([r for r in tpe if r["sampler"] == "guided-base"])
    final.update({("guided-base-gp", *k[1:]): v for k, v in _final(gp).items()})
    lines = ["## Choice of the optimizer (no LLM): guided-base with TPE against with GP", ""]
    for budget in sorted({k[3] for k in final}):
        w, t, n = win_rate(final, "guided-base", "guided-base-gp", budget)
        if n:
            lines.append(
                f"- {budget} evaluations: TPE better on {w}, tie {t}, GP better on "
                f"{n - w - t} of {n} runs"
            )
    return "\n".join(lines)


def report(records: list[dict]) -> str:
    final = _final(records)
    samplers = sorted({k[0] for k in final})
    budgets = sorted({k[3] for k in final})
    out = ["## Win rates (final regret; a tie is an equal regret)", ""]
    out.append("| sampler | budget | opponent | wins | ties | runs | wins+ties |")
    out.append("|---|---|---|---|---|---|---|")
    for a in ("llm-guided", "guided-base", "llm"):
        for budget in budgets:
            for b in ("random", "guided-base", "tpe", "gp", "cmaes"):
                if a == b or a not in samplers:
                    continue
                w, t, n = win_rate(final, a, b, budget)
                if n:
                    out.append(
                        f"| {a} | {budget} | {b} | {w} | {t} | {n} | {100 * (w + t) / n:.0f}% |"
                    )
    out += ["", "## Median final regret per task (over seeds)", ""]
    tasks = sorted({k[1] for k in final})
    for budget in budgets:
        cols = [s for s in samplers if any(k[0] == s and k[3] == budget for k in final)]
        out.append(f"### {budget} evaluations")
        out.append("| task | " + " | ".join(cols) + " |")
        out.append("|---|" + "---|" * len(cols))
        for task in tasks:
            cells = []
            for s in cols:
                vals = sorted(v for k, v in final.items() if k[:2] == (s, task) and k[3] == budget)
                cells.append(f"{vals[len(vals) // 2]:.4g}" if vals else "-")
            out.append(f"| {task} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["## Trial sources (all trials of the runs)", ""]
    sources: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for r in records:
        if r.get("error") is None:
            sources[(r["sampler"], int(r["budget"]))].update(r.get("sources", {}))
    out.append("| sampler | budget | runs | sources |")
    out.append("|---|---|---|---|")
    for (s, budget), counts in sorted(sources.items()):
        if s not in ("llm-guided", "llm", "guided-base"):
            continue
        runs = sum(1 for r in records if r["sampler"] == s and int(r["budget"]) == budget)
        total = sum(counts.values())
        text = ", ".join(f"{k} {v} ({100 * v / total:.0f}%)" for k, v in counts.most_common())
        out.append(f"| {s} | {budget} | {runs} | {text} |")
    errors = [r for r in records if r.get("error")]
    if errors:
        out += ["", f"{len(errors)} runs failed, e.g. {errors[0]['error'][:200]}"]
    return "\n".join(out)


def guided_rows_by_budget(records: list[dict]) -> list[tuple[int, list[dict]]]:
    """The finished ``llm-guided`` runs of each budget, budgets in order."""
    budgets = sorted({int(r["budget"]) for r in records})
    return [
        (b, [r for r in records if r["sampler"] == "llm-guided" and int(r["budget"]) == b
             and not r.get("error")])
        for b in budgets
    ]  # fmt: skip


def choice_report(records: list[dict]) -> str:
    """Whose candidates the LLM picked, and how long its requests took (``llm-guided``)."""
    lines = ["## The LLM's picks (llm-guided, action=choose)", ""]
    lines.append("| budget | runs | picks | optimizer's | GP's | other | seconds a pick (median) |")
    lines.append("|---|---|---|---|---|---|---|")
    for budget, rows in guided_rows_by_budget(records):
        origins: Counter[str] = Counter()
        seconds: list[float] = []
        for r in rows:
            origins.update(r.get("choice_origins", {}))
            seconds += r.get("llm_seconds", [])
        total = sum(origins.values())
        if not rows or not total:
            continue
        other = total - origins["optimizer"] - origins["gp-ucb"]
        median = sorted(seconds)[len(seconds) // 2] if seconds else math.nan
        lines.append(
            f"| {budget} | {len(rows)} | {total} | {origins['optimizer']} | {origins['gp-ucb']} "
            f"| {other} | {median:.1f} |"
        )
    return "\n".join(lines)


def fallback_report(records: list[dict]) -> str:
    """Why the LLM trials of ``llm-guided`` took the optimizer's point, counted per budget."""
    lines = ["## Why LLM trials took the optimizer's point (llm-guided)", ""]
    lines.append("| budget | runs | reason | trials |")
    lines.append("|---|---|---|---|")
    for budget, rows in guided_rows_by_budget(records):
        reasons: Counter[str] = Counter()
        for r in rows:
            reasons.update(r.get("fallback_reasons", {}))
        for reason, count in reasons.most_common():
            lines.append(f"| {budget} | {len(rows)} | {reason} | {count} |")
    return "\n".join(lines)


def gp_report(guided_file: Path = GP_GUIDED) -> str:
    """The GP-based guided rows against the baselines of the main results file; the
    ``llm-guided`` rows from ``guided_file``, ``guided-base``'s (no LLM) from GP_GUIDED."""
    from optuna_llm.bench import load_records

    baselines = [r for r in load_records([RESULTS]) if r["sampler"] in BASELINES]
    base = [r for r in load_records([GP_GUIDED]) if r["sampler"] == "guided-base"]
    guided = [r for r in load_records([guided_file]) if r["sampler"] == "llm-guided"]
    parts = [report(baselines + base + guided), choice_report(guided), fallback_report(guided)]
    return "\n\n".join(parts)


def control_report(guided_file: Path, control_file: Path) -> str:
    """``llm-guided`` of ``guided_file`` against the same sampler with the LLM replaced by a
    uniform draw in the box (``control_file``) and both against ``guided-base``, per budget:
    wins, ties, losses over the (task, seed) pairs, and the two-sided sign test's p-value
    (ties left out), so a difference can be told from seed noise."""
    from scipy.stats import binomtest

    from optuna_llm.bench import load_records

    def final(path: Path, name: str) -> dict[tuple[str, str, int, int], float]:
        rows = [r for r in load_records([path]) if r["sampler"] == "llm-guided"]
        return {(name, *k[1:]): v for k, v in _final(rows).items()}

    base = [r for r in load_records([GP_GUIDED]) if r["sampler"] == "guided-base"]
    scores = {**final(guided_file, "llm"), **final(control_file, "box-random"), **_final(base)}
    lines = ["| budget | sampler | opponent | wins | ties | losses | sign test p |"]
    lines.append("|---|---|---|---|---|---|---|")
    pairs = (("llm", "box-random"), ("llm", "guided-base"), ("box-random", "guided-base"))
    for budget in sorted({k[3] for k in scores}):
        for a, b in pairs:
            w, t, n = win_rate(scores, a, b, budget)
            if not n:
                continue
            p = binomtest(w, n - t).pvalue if n > t else 1.0
            lines.append(f"| {budget} | {a} | {b} | {w} | {t} | {n - w - t} | {p:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "phase", choices=(*GRID, "report", "gp-report", "llm-t1-report", "control-report")
    )
    parser.add_argument("--tasks", nargs="+", help="cut the phase to these tasks")
    parser.add_argument("--budgets", type=int, nargs="+", help="cut the phase to these budgets")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (at most 3)")
    parser.add_argument(
        "--results",
        type=Path,
        help="llm-t1-report: the llm rows to report (default: llm-sampler-t1.jsonl); "
        "gp-report: the llm-guided rows (default: llm-guided-gp.jsonl); control-report: the "
        "llm-guided rows set against the control (default: llm-guided-propose.jsonl)",
    )
    args = parser.parse_args(argv)
    if args.phase == "control-report":
        print(control_report(args.results or GUIDED_PROPOSE, GUIDED_BOX_RANDOM))
        return 0
    if args.phase == "gp-report":
        guided = args.results or GP_GUIDED
        if not guided.exists():
            parser.error(f"--results {guided} does not exist; run the guided-prefix phase first.")
        print(gp_report(guided))
        return 0
    if args.phase == "llm-t1-report":
        from optuna_llm.bench import load_records

        baselines = [r for r in load_records([RESULTS]) if r["sampler"] in BASELINES]
        rows = args.results or LLM_T1
        if not rows.exists():
            parser.error(f"--results {rows} does not exist; run the llm-t1 phase first.")
        print(report(baselines + load_records([rows])))
        return 0
    if args.phase == "report":
        from optuna_llm.bench import load_records

        print(report(load_records([RESULTS])))
        if BASE_GP.exists():
            print()
            print(base_choice(load_records([RESULTS]), load_records([BASE_GP])))
        return 0
    run_phase(args.phase, args.tasks, args.budgets, min(args.seeds, len(SEEDS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
