"""Run samplers x tasks x seeds x budgets (x simulated workers), in parallel processes, resumably.

Every finished run is one JSON line appended to a results file, keyed by
``(sampler, task, seed, budget, noise, workers)``; a run with ``workers`` > 1 is N asynchronous
workers on a simulated clock (:mod:`optuna_llm.bench._parallel`). Only the parent process
writes, one complete line at a time (``flock`` + ``fsync``), so a run killed at any moment leaves
at most a truncated last line, which is ignored on reading; restarting skips every key already
in the file.

Example:
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/results.jsonl"
    >>> keys = make_keys(["random", "tpe"], ["hpobench/car"], seeds=[0, 1], budgets=[10])
    >>> records = run_all(keys, path, jobs=1)
    >>> len(records), len(ResultsFile(path).done_keys())
    (4, 4)
"""

from __future__ import annotations

import fcntl
import json
import math
import multiprocessing
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from optuna_llm._attrs import CHOICE_ORIGIN, FALLBACK_REASON, LLM_SECONDS, SOURCE
from optuna_llm.analysis.stats import chosen_regret_curve
from optuna_llm.bench._parallel import simulate
from optuna_llm.bench._tasks import Task, get_task
from optuna_llm.samplers._factory import GUIDED_SAMPLERS, LLM_SAMPLERS

NOISE_LOW, NOISE_HIGH = 0.9, 1.1


@dataclass(frozen=True, order=True)
class RunKey:
    """Identity of one run. ``noise``: the sampler sees values times U(0.9, 1.1); ``workers``:
    trials in flight on the simulated clock (records written before it existed read as 1)."""

    sampler: str
    task: str
    seed: int
    budget: int
    noise: bool = False
    workers: int = 1

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RunKey:
        return cls(
            str(record["sampler"]),
            str(record["task"]),
            int(record["seed"]),
            int(record["budget"]),
            bool(record.get("noise", False)),
            int(record.get("workers", 1)),
        )


def make_keys(
    samplers: Sequence[str],
    tasks: Sequence[str],
    *,
    seeds: Sequence[int],
    budgets: Sequence[int],
    noise: Sequence[bool] = (False,),
    workers: Sequence[int] = (1,),
) -> list[RunKey]:
    """The full grid, seeds outermost so that an interrupted run has every sampler (and every
    worker count) on few seeds."""
    return [
        RunKey(s, t, seed, b, n, w)
        for seed in seeds
        for n in noise
        for b in budgets
        for t in tasks
        for w in workers
        for s in samplers
    ]


def sampler_kwargs_for(
    key: RunKey, task: Task, extra: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Keyword arguments for ``make_sampler``: user extras plus what depends on the run."""
    kw = dict(extra.get(key.sampler, {}))
    if key.sampler == "lhs":
        kw.setdefault("n_samples", key.budget)  # one design spread over the whole budget
    if key.sampler in LLM_SAMPLERS:
        kw.setdefault("problem", task.description)
        # The whole space up front: the LLM proposes whole configurations (and the seeded
        # sampler its whole batch) from the first trial, not one parameter at a time.
        kw.setdefault("search_space", task.distributions())
    if key.sampler in GUIDED_SAMPLERS:
        # llm-guided and its optimizer alone get the same arguments (same start, same space);
        # the LLM is told the trials left.
        kw.setdefault("problem", task.description)
        kw.setdefault("search_space", task.distributions())
        kw.setdefault("n_trials", key.budget)
        if isinstance(kw.get("llm"), Mapping):  # built by LLMGuidedSampler itself
            kw.update({k: v for k, v in kw.pop("llm").items() if k not in kw})
    if key.sampler != "llm" and isinstance(kw.get("llm"), Mapping):
        # LLMSeededSampler takes its LLM as an LLMSampler: build it here, in the worker, from
        # the picklable settings (model, base_url, cache) the command line gave. Temperature 0
        # and no seed (the published seeded rows' setting): the answer does not depend on the
        # seed, and identical requests then share one cache entry across seeds and budgets.
        from optuna_llm.samplers import LLMSampler

        kw["llm"] = LLMSampler(problem=kw["problem"], **{"temperature": 0.0, **kw["llm"]})
    return kw


def fallback_kind(reason: str) -> str:
    """A fallback reason without its particulars (the point, the numbers): the words before
    the first ``:``, ``{`` or ``(``, so the reasons of many trials can be counted.

    Example:
        >>> fallback_kind("the GP gate refused the LLM's point {'x': 1.0} (its point): ...")
        "the GP gate refused the LLM's point"
        >>> fallback_kind("the LLM gave no usable point: 3 answers refused")
        'the LLM gave no usable point'
    """
    cut = min((i for i in (reason.find(c) for c in ":{(") if i >= 0), default=len(reason))
    return reason[:cut].strip()


def run_one(key: RunKey, extra_kwargs: Mapping[str, Mapping[str, Any]] | None = None) -> dict:
    """Run one (sampler, task, seed, budget, noise, workers) and return its JSON-ready record."""
    from optuna_llm.samplers import make_sampler

    # A failing run is recorded with its error; Optuna's per-trial tracebacks would only
    # scramble the progress bar. Experimental-feature warnings (QMC, GP) are not news here.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    started = time.perf_counter()
    record: dict[str, Any] = asdict(key)
    try:
        task = get_task(key.task)
        task.reseed(key.seed)
        noise_rng = np.random.default_rng([key.seed, 7919])
        kwargs = sampler_kwargs_for(key, task, extra_kwargs or {})
        sampler = make_sampler(key.sampler, seed=key.seed, **kwargs)
        study = optuna.create_study(direction="minimize", sampler=sampler)

        def noisy(value: float) -> float:
            return value * float(noise_rng.uniform(NOISE_LOW, NOISE_HIGH))

        # Values and regrets in finishing order: the curve is over completed evaluations.
        done = simulate(
            study,
            task.evaluate,
            budget=key.budget,
            workers=key.workers,
            seed=key.seed,
            transform=noisy if key.noise else None,
        )
        seen = [d.seen for d in done]
        regret = [d.regret for d in done]
        curve = chosen_regret_curve(seen, regret)
        sources = Counter(str(t.user_attrs.get(SOURCE, "-")) for t in study.trials)
        origins = Counter(
            str(t.user_attrs[CHOICE_ORIGIN]) for t in study.trials if CHOICE_ORIGIN in t.user_attrs
        )
        llm_seconds = [
            t.user_attrs[LLM_SECONDS] for t in study.trials if LLM_SECONDS in t.user_attrs
        ]
        fallbacks = Counter(
            fallback_kind(str(t.user_attrs[FALLBACK_REASON]))
            for t in study.trials
            if FALLBACK_REASON in t.user_attrs
        )
        record.update(
            final_regret=float(curve[-1]),
            best_evaluated_regret=float(min(regret)),
            curve=[float(c) for c in curve],
            seen=seen,
            finish_time=[d.finish for d in done],
            start_time=[d.start for d in done],
            trial_number=[d.number for d in done],
            sources=dict(sources),
            error=None,
        )
        if origins:
            record["choice_origins"] = dict(origins)
        if llm_seconds:
            record["llm_seconds"] = [float(x) for x in llm_seconds]
        if fallbacks:
            record["fallback_reasons"] = dict(fallbacks)
    except Exception as exc:  # a failing sampler is a result, recorded, not a crash of the grid
        record.update(
            final_regret=math.nan,
            curve=[],
            seen=[],
            finish_time=[],
            sources={},
            error=f"{type(exc).__name__}: {exc}",
        )
    record["wall_s"] = round(time.perf_counter() - started, 3)
    record["optuna"] = optuna.__version__
    record["pid"] = os.getpid()
    return record


class ResultsFile:
    """Append-only JSON-lines results, safe against kills and concurrent writers.

    Example:
        >>> import tempfile
        >>> results = ResultsFile(tempfile.mkdtemp() + "/results.jsonl")
        >>> results.done_keys()
        set()
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def records(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with self.path.open("r", encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # truncated by a kill mid-write: that run did not finish
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    def done_keys(self) -> set[RunKey]:
        return {RunKey.from_record(r) for r in self.records()}

    def append(self, record: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, allow_nan=True) + "\n"
        with self.path.open("a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(f.tell() - 1)
                    if f.read(1) != "\n":  # finish a line a killed writer left half-written
                        f.write("\n")
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="run", desc="bench")


def run_all(
    keys: Iterable[RunKey],
    results: str | os.PathLike[str],
    *,
    jobs: int = 1,
    sampler_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
) -> list[dict]:
    """Run every key not already in ``results``; return the new records (in finishing order).

    ``jobs`` > 1 runs that many worker processes (spawned, so each has its own sampler state
    and LLM); ``jobs`` = 1 runs in this process.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}.")
    store = ResultsFile(results)
    keys = list(dict.fromkeys(keys))
    done = store.done_keys()
    todo = [k for k in keys if k not in done]
    extra = {k: dict(v) for k, v in (sampler_kwargs or {}).items()}
    new: list[dict] = []
    bar = _progress(len(keys), len(keys) - len(todo), progress)
    try:
        if jobs == 1:
            for key in todo:
                record = run_one(key, extra)
                store.append(record)
                new.append(record)
                bar.update(1)
                bar.set_postfix_str(
                    f"{key.sampler} {key.task} s{key.seed} b{key.budget} w{key.workers}"
                )
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                # Keep only a few runs queued so that a kill loses little and order is kept.
                pending: set[Future[dict]] = set()
                queue = iter(todo)
                try:
                    for key in queue:
                        pending.add(pool.submit(run_one, key, extra))
                        if len(pending) >= 2 * jobs:
                            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for fut in finished:
                                _collect(fut, store, new, bar)
                    for fut in as_completed(pending):
                        _collect(fut, store, new, bar)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return new


def _collect(fut: Future[dict], store: ResultsFile, new: list[dict], bar: Any) -> None:
    record = fut.result()
    store.append(record)
    new.append(record)
    bar.update(1)
    bar.set_postfix_str(f"{record['sampler']} {record['task']} s{record['seed']}")


def load_records(paths: Sequence[str | os.PathLike[str]]) -> list[dict]:
    """All records of several results files; a key seen twice keeps its first record."""
    out: dict[RunKey, dict] = {}
    for path in paths:
        for record in ResultsFile(path).records():
            out.setdefault(RunKey.from_record(record), record)
    return list(out.values())
