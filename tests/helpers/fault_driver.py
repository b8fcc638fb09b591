"""The fault benchmark's driver: real ``optuna-llm run`` workers on one PostgreSQL study while
workers are SIGKILLed and the database restarts; then what the study holds, measured.

``run_case`` starts ``workers`` processes of the real CLI (heartbeat 1 s, grace period 2 s by
default, ``--seed 0`` on every worker as the README says) on a fresh database of a
:class:`~tests.helpers.pg_instance.PgInstance`, objective
:mod:`tests.helpers.fault_objective` (Branin plus a short random sleep), and, by scenario:

* ``kill``: every ``kill_every`` seconds (x0.5 to x1.5, at random) a random live worker gets
  SIGKILL and a new one is started at once;
* ``db-restart``: once ``db_at`` of the trials are COMPLETE the server is stopped
  (``pg_ctl stop -m fast``, every connection cut) for ``db_down`` seconds and started again;
* ``kill+db``: both (the short version in the test suite: one kill, one restart).

A worker that exits non-zero without being killed is a *crash*: it is counted, and replaced
(once the database is up again) as a supervisor would. The case ends when every worker has
exited, when the study is done but workers still run ``final_wait`` seconds later, when nothing
changes in the study for ``stall_timeout`` seconds (counted once it holds a trial), or at
``timeout``; workers alive then are
*stuck*: before they are killed, each one dumps the stacks of all its threads into its log
(``faulthandler`` on ``SIGUSR1``, installed in every worker by a ``sitecustomize`` on its
``PYTHONPATH``), and the dumps land in :attr:`CaseResult.stuck_stacks`. The workers' logs and
the objective's trial log are removed at the end unless ``keep_logs`` names a folder to keep
them in. :func:`analyse` reads the study back and :func:`format_table` prints the columns.

Example:
    >>> case = FaultCase("soo", "kill", workers=2, trials=10)
    >>> with PgInstance() as pg:  # doctest: +SKIP
    ...     print(format_table([run_case(case, pg)]))
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.fault_objective import LOG_ENV, SLEEP_ENV
from tests.helpers.pg_instance import PgInstance

ROOT = Path(__file__).resolve().parents[2]
STUDY = "faults"
SAMPLERS = ("soo", "bamsoo", "lhs", "llm", "llm-seeded-tpe")
SCENARIOS = ("kill", "db-restart", "kill+db")
KILL_POLICIES = ("random", "any", "in-trial")
LLM_SAMPLERS = ("llm", "llm-seeded", "llm-seeded-tpe", "llm-seeded-gp")
TREE_TAGS = {"soo": "soo", "bamsoo": "bamsoo"}


@dataclass
class FaultCase:
    sampler: str
    scenario: str
    workers: int = 8
    trials: int = 200
    kill_every: float = 3.0
    max_kills: int | None = None
    kill_policy: str = "random"
    """``random``: any worker that has begun a trial, at any moment (the published tables);
    ``any``: any live worker, started up or not, busy or waiting; ``in-trial``: a worker
    inside its objective whose trial has a heartbeat (the test suite's deterministic kill).
    Near the end of a study, when one trial is left and the other workers wait (replacements
    that never began a trial are not eligible under ``random``), ``random`` nearly always
    kills the worker of that last trial, so its retry chain runs out at ``--max-retry``;
    ``any`` spreads the kills over every worker, as a preemption would."""
    db_at: float = 0.4
    db_down: float = 10.0
    heartbeat: int = 1
    grace: int = 2
    seed: int = 0
    sleep: tuple[float, float] = (0.05, 0.3)
    timeout: float = 1200.0
    stall_timeout: float = 60.0
    final_wait: float = 30.0
    lhs_samples: int | None = None
    max_retry: int = 3
    """``--max-retry`` of every worker (the CLI's default, passed explicitly): a trial whose
    worker dies is retried, and a retry chain killed ``max_retry + 1`` times in a row is given
    up (its slot in ``--n-trials`` goes to a fresh trial), so that a trial that kills its worker
    every time stops being retried."""
    keep_logs: Path | None = None
    """A folder to keep the workers' logs in (one sub-folder a case); ``None`` removes them."""

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}.")
        if self.scenario not in SCENARIOS:
            raise ValueError(
                f"scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}."
            )
        if self.kill_policy not in KILL_POLICIES:
            raise ValueError(
                f"kill_policy must be one of {', '.join(KILL_POLICIES)}, got {self.kill_policy!r}."
            )
        if self.workers < 1 or self.trials < 1:
            raise ValueError("workers and trials must be at least 1.")
        if self.max_retry < 0:
            raise ValueError(f"max_retry must be 0 or more, got {self.max_retry}.")

    @property
    def n_samples(self) -> int:
        """LHS design size: a quarter of the trials, so the study is 4 whole Latin blocks."""
        if self.lhs_samples is not None:
            return self.lhs_samples
        return self.trials // 4 if self.trials % 4 == 0 and self.trials >= 8 else self.trials


@dataclass
class CaseResult:
    sampler: str
    scenario: str
    workers: int
    requested: int
    complete: int = 0
    total_trials: int = 0
    duplicate_vectors: int = 0
    duplicate_nodes: int | None = None
    hit_trials: int = 0
    hit_failed_retried_once: int = 0
    given_up: int = 0
    """Hit trials given up at the cap: marked given up by the worker (their slot in
    --n-trials went to a fresh trial) *and* the last of a chain of exactly ``max_retry + 1``
    trials, each killed in turn. By ``--max-retry`` such a trial is not retried again; a trial
    marked given up with a shorter or longer chain is not counted here (it is lost)."""
    max_retry: int = 3
    no_source: int = 0
    """COMPLETE trials without a ``source`` user attr (every sampler of the bench writes one)."""
    failed: int = 0
    left_running: int = 0
    stuck_workers: int = 0
    kills: int = 0
    kills_in_objective: int = 0
    db_restarts: int = 0
    crashes: int = 0
    crash_errors: list[str] = field(default_factory=list)
    worker_failures: dict[int, str] = field(default_factory=dict)
    lhs_strata_off: int | None = None
    wall_s: float = 0.0
    end: str = ""
    sources: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    stuck_stacks: dict[int, str] = field(default_factory=dict)
    """``{pid: the stacks of every thread}`` of the workers stuck at the end."""
    logs: str | None = None
    """Where the workers' logs were kept (``keep_logs``), else ``None``."""

    @property
    def other_misses(self) -> int:
        """Hit trials neither FAIL with one retry nor given up at --max-retry: FAIL and never
        retried, retried more than once, or left RUNNING/WAITING (a loss, whatever the cause)."""
        return self.hit_trials - self.hit_failed_retried_once - self.given_up

    def goals_met(self) -> dict[str, bool]:
        goals = {
            "complete == requested": self.complete == self.requested,
            "no duplicate vectors": self.duplicate_vectors == 0,
            "every hit trial FAIL and retried once, or given up at the cap": self.other_misses == 0,
            "no worker stuck": self.stuck_workers == 0,
            "every COMPLETE trial has a source": self.no_source == 0,
        }
        if self.duplicate_nodes is not None:
            goals["no duplicate nodes"] = self.duplicate_nodes == 0
        if self.lhs_strata_off is not None:
            goals["Latin blocks intact"] = self.lhs_strata_off == 0
        return goals


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    index: int
    err: Path
    killed: bool = False


def cli_command() -> list[str]:
    """``optuna-llm`` of this interpreter's environment (the real console script)."""
    script = Path(sys.executable).with_name("optuna-llm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "optuna_llm"]


def worker_argv(case: FaultCase, url: str) -> list[str]:
    argv = [
        *cli_command(), "run",
        "--objective", "tests.helpers.fault_objective:objective",
        "--storage", url, "--study-name", STUDY, "--n-trials", str(case.trials),
        "--sampler", case.sampler, "--seed", str(case.seed),
        "--heartbeat-interval", str(case.heartbeat), "--grace-period", str(case.grace),
        "--max-retry", str(case.max_retry), "--quiet",
    ]  # fmt: skip
    if case.sampler == "lhs":
        argv += ["--sampler-arg", f"n_samples={case.n_samples}"]
    return argv


class _StudyProbe:
    """Trial counts read straight from the database (None while it is down or empty)."""

    def __init__(self, pg: PgInstance, database: str) -> None:
        self.pg, self.database = pg, database

    def counts(self) -> Counter[str] | None:
        import psycopg2

        try:
            conn = psycopg2.connect(
                host="127.0.0.1", port=self.pg.port, user="postgres", dbname=self.database,
                connect_timeout=2,
            )  # fmt: skip
        except psycopg2.Error:
            return None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT state, count(*) FROM trials GROUP BY state")
                return Counter({str(s): int(n) for s, n in cur.fetchall()})
        except psycopg2.Error:
            return None
        finally:
            conn.close()

    def beating_trials(self) -> set[int]:
        """Numbers of RUNNING trials with a recorded heartbeat."""
        import psycopg2

        try:
            conn = psycopg2.connect(
                host="127.0.0.1", port=self.pg.port, user="postgres", dbname=self.database,
                connect_timeout=2,
            )  # fmt: skip
        except psycopg2.Error:
            return set()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT t.number FROM trials t JOIN trial_heartbeats h "
                    "ON h.trial_id = t.trial_id WHERE t.state = 'RUNNING'"
                )
                return {int(r[0]) for r in cur.fetchall()}
        except psycopg2.Error:
            return set()
        finally:
            conn.close()


def read_trial_log(path: Path) -> dict[int, dict[int, str]]:
    """``{pid: {trial number: "start" | "end"}}`` from the objective's log."""
    seen: dict[int, dict[int, str]] = {}
    if not path.exists():
        return seen
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            seen.setdefault(int(parts[0]), {})[int(parts[1])] = parts[2]
    return seen


@contextmanager
def llm_server(seed: int) -> Iterator[str]:
    """The scripted OpenAI-compatible server with the fault mix; yields its base URL."""
    from tests.helpers.hostile import hostile_responder
    from tests.helpers.llm_servers import ScriptedOpenAIServer

    with ScriptedOpenAIServer(hostile_responder(seed)) as server:
        yield server.base_url


def run_case(
    case: FaultCase, pg: PgInstance, *, say: Callable[[str], None] | None = None
) -> CaseResult:
    """Run one sampler x scenario on a fresh database of ``pg`` and measure it."""
    if case.sampler in LLM_SAMPLERS:
        with llm_server(case.seed) as base_url:
            return _run_case(case, pg, base_url, say)
    return _run_case(case, pg, None, say)


def _run_case(
    case: FaultCase, pg: PgInstance, base_url: str | None, say: Callable[[str], None] | None
) -> CaseResult:
    say = say or (lambda _: None)
    database = f"faults_{uuid.uuid4().hex[:10]}"
    url = pg.create_database(database)
    if case.keep_logs is not None:
        case.keep_logs.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(
            prefix=f"{case.sampler}_{case.scenario}_" if case.keep_logs else "optuna_llm_faults_",
            dir=case.keep_logs,
        )
    )
    trial_log = tmp / "trials.log"
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    paths = (str(site), str(ROOT), os.environ.get("PYTHONPATH"))
    env = {
        **os.environ,
        LOG_ENV: str(trial_log),
        SLEEP_ENV: f"{case.sleep[0]},{case.sleep[1]}",
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "OMP_NUM_THREADS": "1",
    }
    if base_url is not None:
        env.update(OPENAI_BASE_URL=base_url, OPTUNA_LLM_MODEL="scripted-model")
    argv = worker_argv(case, url)
    result = CaseResult(
        case.sampler, case.scenario, case.workers, case.trials, max_retry=case.max_retry
    )
    rng = random.Random(case.seed + 7919)
    workers: list[_Worker] = []
    spawned = 0

    def spawn() -> None:
        nonlocal spawned
        err = tmp / f"worker{spawned}.err"
        with open(err, "wb") as fh:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=fh,
                start_new_session=True,
            )  # fmt: skip
        workers.append(_Worker(proc, spawned, err))
        spawned += 1

    kills = "kill" in case.scenario
    db_restart = "db" in case.scenario
    max_kills = (
        case.max_kills
        if case.max_kills is not None
        else (1 if case.scenario == "kill+db" else None)
    )
    probe = _StudyProbe(pg, database)
    start = time.monotonic()
    next_kill = start + case.kill_every * rng.uniform(0.5, 1.5)
    db_down_since: float | None = None
    db_done = False
    restarts_owed = 0
    done_since: float | None = None
    last_counts: Counter[str] | None = None
    last_change = start
    try:
        for _ in range(case.workers):
            spawn()
        while True:
            now = time.monotonic()
            counts = probe.counts() if db_down_since is None else None
            complete = counts["COMPLETE"] if counts else 0
            if counts is not None and counts != last_counts:
                last_counts, last_change = counts, now
            done = complete >= case.trials

            for w in [w for w in workers if w.proc.poll() is not None]:
                workers.remove(w)
                if w.killed or w.proc.returncode == 0:
                    continue
                result.crashes += 1
                result.crash_errors.append(_last_error(w.err))
                restarts_owed += 1
            if restarts_owed and db_down_since is None and not done:
                for _ in range(restarts_owed):
                    spawn()
                restarts_owed = 0

            if kills and not done and now >= next_kill and workers:
                if max_kills is None or result.kills < max_kills:
                    victim = _pick_victim(case, workers, rng, trial_log, probe)
                    if victim is not None:
                        victim.killed = True
                        victim.proc.send_signal(signal.SIGKILL)
                        victim.proc.wait()
                        workers.remove(victim)
                        result.kills += 1
                        _record_kill(result, victim, trial_log)
                        say(f"  killed worker {victim.proc.pid} ({result.kills} kills)")
                        spawn()
                        next_kill = now + case.kill_every * rng.uniform(0.5, 1.5)

            if db_restart and not db_done and db_down_since is None:
                if complete >= case.db_at * case.trials and (not kills or result.kills):
                    say(f"  stopping the database for {case.db_down:g} s")
                    pg.stop("fast")
                    db_down_since = now
            if db_down_since is not None and now - db_down_since >= case.db_down:
                pg.start()
                say("  database started again")
                db_down_since, db_done = None, True
                result.db_restarts += 1
                last_change = time.monotonic()

            if not workers and not restarts_owed:
                result.end = "all workers exited"
                break
            if done:
                done_since = done_since or now
                if now - done_since > case.final_wait:
                    result.end = f"study done, workers still running {case.final_wait:g} s later"
                    break
            # The stall clock runs once the study holds a trial: before that the workers are
            # starting (over 60 s each at nice 19 beside a nice -15 job), and only the timeout
            # ends the case.
            if last_counts and db_down_since is None and now - last_change > case.stall_timeout:
                result.end = f"no change in the study for {case.stall_timeout:g} s"
                break
            if now - start > case.timeout:
                result.end = f"timeout after {case.timeout:g} s"
                break
            time.sleep(0.2)
        result.wall_s = time.monotonic() - start
        result.stuck_workers = len(workers)
        result.stuck_stacks = dump_stacks(workers)
    finally:
        for w in workers:
            w.proc.send_signal(signal.SIGKILL)
            w.proc.wait()
        if db_down_since is not None:
            pg.start()
    result.worker_failures = worker_failures(tmp)
    try:
        analyse(result, url, case)
        if case.keep_logs is not None:
            dump_trials(url, tmp / "trials.json")
    finally:
        pg.drop_database(database)
        if case.keep_logs is None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            result.logs = str(tmp)
    return result


_SITECUSTOMIZE = """\
# Written by tests/helpers/fault_driver.py: SIGUSR1 dumps every thread's stack to stderr.
import faulthandler
import signal

faulthandler.register(signal.SIGUSR1, all_threads=True)
"""

_DUMP_START = re.compile(r"^(Current thread|Thread) 0x[0-9a-f]+", re.MULTILINE)


def dump_stacks(workers: list[_Worker], wait: float = 2.0) -> dict[int, str]:
    """``{pid: stacks}``: every live worker writes the stacks of its threads to its log
    (``faulthandler`` on ``SIGUSR1``); what it wrote is read back."""
    sizes: dict[int, int] = {}
    for w in workers:
        if w.proc.poll() is None:
            sizes[w.proc.pid] = w.err.stat().st_size if w.err.exists() else 0
            w.proc.send_signal(signal.SIGUSR1)
    if not sizes:
        return {}
    time.sleep(wait)
    stacks: dict[int, str] = {}
    for w in workers:
        if w.proc.pid in sizes:
            with open(w.err, "rb") as fh:
                fh.seek(sizes[w.proc.pid])
                text = fh.read().decode(errors="replace")
            found = _DUMP_START.search(text)
            stacks[w.proc.pid] = text[found.start() :] if found else "(no stack dump)"
    return stacks


def _pick_victim(
    case: FaultCase, workers: list[_Worker], rng: random.Random, trial_log: Path, probe: _StudyProbe
) -> _Worker | None:
    if case.kill_policy == "any":
        return rng.choice(workers) if workers else None
    log = read_trial_log(trial_log)
    if case.kill_policy == "random":
        # Any worker past its start-up (it has begun a trial), at a random moment: inside the
        # objective, in the sampler, waiting for the lock or between trials.
        active = [w for w in workers if w.proc.pid in log]
        return rng.choice(active) if active else None
    beating = probe.beating_trials()
    inside = [
        w
        for w in workers
        if any(
            event == "start" and number in beating
            for number, event in log.get(w.proc.pid, {}).items()
        )
    ]
    return rng.choice(inside) if inside else None


def _record_kill(result: CaseResult, victim: _Worker, trial_log: Path) -> None:
    events = read_trial_log(trial_log).get(victim.proc.pid, {})
    if any(event == "start" for event in events.values()):
        result.kills_in_objective += 1


_FAILED = re.compile(r"Trial (\d+) failed with parameters: .* because of the following error: (.*)")


def worker_failures(folder: Path) -> dict[int, str]:
    """``{trial number: error}`` for trials a worker failed itself (Optuna logs them to
    stderr); a trial FAIL without an entry was failed by another worker's heartbeat check."""
    failures: dict[int, str] = {}
    for path in sorted(folder.glob("worker*.err")):
        for line in path.read_text(errors="replace").splitlines():
            match = _FAILED.search(line)
            if match:
                failures[int(match.group(1))] = match.group(2).rstrip(".")[:200]
    return failures


def _last_error(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "?"
    for line in reversed(lines):
        if not line.startswith((" ", "\t", "^", "~")):
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"


def analyse(result: CaseResult, url: str, case: FaultCase) -> CaseResult:
    """Fill ``result`` from the study in ``url``."""
    import optuna
    from optuna.trial import TrialState

    from optuna_llm._attrs import GIVEN_UP, SOURCE, tree_attr

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=STUDY, storage=url)
    except KeyError:
        result.problems.append("the study was never created")
        return result
    trials = study.get_trials(deepcopy=False)
    result.total_trials = len(trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    result.complete = len(complete)
    result.failed = sum(t.state == TrialState.FAIL for t in trials)
    left = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    result.left_running = len(left)

    vectors = Counter(json.dumps(t.params, sort_keys=True) for t in complete)
    result.duplicate_vectors = sum(n - 1 for n in vectors.values())
    for vector, n in vectors.items():
        if n > 1:
            same = [t for t in complete if json.dumps(t.params, sort_keys=True) == vector]
            result.problems.append(
                "same parameters in trials "
                + ", ".join(f"{t.number} ({t.user_attrs.get(SOURCE, 'no source')})" for t in same)
                + f": {vector}"
            )
    tag = TREE_TAGS.get(case.sampler)
    if tag is not None:
        key = tree_attr(tag, "node")
        nodes = Counter(
            (t.system_attrs.get(tree_attr(tag, "space")), t.system_attrs[key])
            for t in complete
            if t.system_attrs.get(key)
        )
        result.duplicate_nodes = sum(n - 1 for n in nodes.values())

    # Trials a fault hit: those FAIL (the objective never raises, so only a dead worker or a
    # lost database fails a trial) and those left RUNNING/WAITING at the end.
    by_number = {t.number: t for t in trials}
    hit = {t.number for t in trials if t.state == TrialState.FAIL} | {t.number for t in left}
    retries = Counter(
        t.system_attrs["retry_history"][-1] for t in trials if t.system_attrs.get("retry_history")
    )
    result.hit_trials = len(hit)
    result.hit_failed_retried_once = sum(
        1 for n in hit if by_number[n].state == TrialState.FAIL and retries[n] == 1
    )
    marked = {
        t.number
        for t in trials
        if t.state == TrialState.FAIL and t.system_attrs.get(GIVEN_UP) == t.number
    }
    # Given up at the cap: the chain is max_retry + 1 trials long (this one the last).
    given_up = {
        n
        for n in marked
        if len(by_number[n].system_attrs.get("retry_history") or []) == case.max_retry
    }
    for n in sorted(marked - given_up):
        history = by_number[n].system_attrs.get("retry_history") or []
        result.problems.append(
            f"trial {n} marked given up with a chain of {len(history) + 1} trials "
            f"(--max-retry {case.max_retry} gives up at {case.max_retry + 1}): counted as lost"
        )
    result.given_up = len(given_up & hit)
    beaten = _beaten_trial_ids(url, [t._trial_id for t in left])
    for n in sorted(hit):
        t = by_number[n]
        if t.state == TrialState.FAIL and retries[n] != 1:
            history = t.system_attrs.get("retry_history", [])
            why = (
                f" (retry chain {[*history, n]} at --max-retry {case.max_retry})"
                if len(history) >= case.max_retry
                else ""
            )
            if n in given_up:
                why += " (given up: its slot went to a fresh trial)"
            if n in result.worker_failures:
                why += f" (its worker failed it: {result.worker_failures[n]})"
            result.problems.append(f"trial {n} FAIL, retried {retries[n]} time(s){why}")
        elif t.state != TrialState.FAIL:
            beat = "with" if t._trial_id in beaten else "without ever"
            result.problems.append(f"trial {n} left {t.state.name} {beat} a heartbeat")
    result.sources = dict(Counter(str(t.user_attrs.get(SOURCE, "?")) for t in complete))
    unsourced = [t for t in complete if SOURCE not in t.user_attrs]
    result.no_source = len(unsourced)
    for t in unsourced:
        history = t.system_attrs.get("retry_history")
        result.problems.append(
            f"trial {t.number} COMPLETE without a source"
            + (f" (a retry of {history[-1]})" if history else "")
            + f"; user attrs {sorted(t.user_attrs)}"
        )

    if case.sampler == "lhs" and case.trials % case.n_samples == 0:
        result.lhs_strata_off = lhs_strata_off(
            complete, case.n_samples, case.trials // case.n_samples
        )
    if result.complete > case.trials:
        result.problems.append(f"{result.complete - case.trials} trial(s) over --n-trials")
    counted = result.complete + sum(
        1
        for t in trials
        if t.state == TrialState.FAIL and retries[t.number] == 0 and t.number not in marked
    )
    if result.complete < case.trials:
        result.problems.append(
            f"{case.trials - result.complete} trial(s) missing; the CLI's count (COMPLETE + "
            f"FAIL never retried nor given up) is {counted}"
        )
    return result


def dump_trials(url: str, path: Path) -> None:
    """Write every trial of the study (state, params, attrs, times) to ``path`` as JSON, so a
    miss can be traced after the database is dropped (``keep_logs``)."""
    import optuna

    try:
        study = optuna.load_study(study_name=STUDY, storage=url)
    except KeyError:  # never created: analyse() says so
        path.write_text("[]")
        return
    rows = [
        {
            "number": t.number,
            "state": t.state.name,
            "values": t.values,
            "params": t.params,
            "user_attrs": t.user_attrs,
            "system_attrs": t.system_attrs,
            "start": str(t.datetime_start),
            "complete": str(t.datetime_complete),
        }
        for t in study.get_trials(deepcopy=False)
    ]
    path.write_text(json.dumps(rows, indent=1, default=str))


def _beaten_trial_ids(url: str, trial_ids: list[int]) -> set[int]:
    if not trial_ids:
        return set()
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids"
                ).bindparams(sqlalchemy.bindparam("ids", expanding=True)),
                {"ids": trial_ids},
            )
            return {int(r[0]) for r in rows}
    finally:
        engine.dispose()


def lhs_strata_off(trials: list[Any], n: int, blocks: int) -> int:
    """(dimension, stratum) pairs of an ``n``-row design not hit exactly ``blocks`` times by
    ``trials`` (0 when the trials form ``blocks`` whole Latin hypercubes)."""
    off = 0
    names = sorted({name for t in trials for name in t.params})
    for name in names:
        counts: Counter[int] = Counter()
        for t in trials:
            dist = t.distributions[name]
            u = (t.params[name] - dist.low) / (dist.high - dist.low)
            counts[min(n - 1, int(u * n))] += 1
        off += sum(1 for s in range(n) if counts[s] != blocks)
    return off


def _cell(ok: bool, text: str) -> str:
    return text if ok else f"**{text}**"


def format_table(results: list[CaseResult]) -> str:
    """A Markdown table, one row per case; a missed goal is in bold.

    Every trial a fault hit (FAIL, or left RUNNING/WAITING) is in exactly one of three
    columns: FAIL and retried once; given up at the cap (the last of a chain of
    ``--max-retry`` + 1 trials, each killed in turn: by that flag not retried again, its slot
    went to a fresh trial); lost (never retried, retried twice, left RUNNING, or given up off
    the cap: a defect, goal 0).
    """
    header = (
        "| sampler | scenario | workers | COMPLETE / requested (goal =) | dup. vectors (goal 0) "
        "| dup. nodes (goal 0) | COMPLETE without source (goal 0) "
        "| hit trials (FAIL or left RUNNING) | of them: FAIL, retried once "
        "| of them: given up at the cap (--max-retry) "
        "| of them: lost (goal 0) "
        "| stuck workers (goal 0) | wall s | kills (in objective) "
        "| worker crashes "
        "| left RUNNING | LHS strata off (goal 0) |"
    )
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in results:
        rows.append(
            "| "
            + " | ".join(
                [
                    r.sampler,
                    r.scenario,
                    str(r.workers),
                    _cell(r.complete == r.requested, f"{r.complete} / {r.requested}"),
                    _cell(r.duplicate_vectors == 0, str(r.duplicate_vectors)),
                    "-"
                    if r.duplicate_nodes is None
                    else _cell(r.duplicate_nodes == 0, str(r.duplicate_nodes)),
                    _cell(r.no_source == 0, str(r.no_source)),
                    str(r.hit_trials),
                    str(r.hit_failed_retried_once),
                    f"{r.given_up} (cap {r.max_retry})",
                    _cell(r.other_misses == 0, str(r.other_misses)),
                    _cell(r.stuck_workers == 0, str(r.stuck_workers)),
                    f"{r.wall_s:.0f}",
                    f"{r.kills} ({r.kills_in_objective})",
                    str(r.crashes),
                    str(r.left_running),
                    "-"
                    if r.lhs_strata_off is None
                    else _cell(r.lhs_strata_off == 0, str(r.lhs_strata_off)),
                ]
            )
            + " |"
        )
    return "\n".join(rows)


def as_json(results: list[CaseResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=1)


def from_json(text: str) -> list[CaseResult]:
    """The results :func:`as_json` wrote (to print their table again, in today's columns)."""
    names = set(CaseResult.__dataclass_fields__)
    return [CaseResult(**{k: v for k, v in row.items() if k in names}) for row in json.loads(text)]
