"""Fault benchmark: real ``optuna-llm run`` workers on one PostgreSQL study while a driver
SIGKILLs workers every few seconds (and starts new ones), and while the database is stopped
for 10 s and started again. Prints a Markdown table, one row per sampler x scenario.

    .venv/bin/python scripts/faults.py                      # 8 workers x 200 trials, all
    .venv/bin/python scripts/faults.py --workers 4 --trials 40 --samplers soo,lhs
    .venv/bin/python scripts/faults.py --scenarios db-restart --json out.json
    .venv/bin/python scripts/faults.py --samplers soo --scenarios db-restart --keep-logs /tmp/f
    .venv/bin/python scripts/faults.py --table-from out.json   # print a saved run's table again

The database is a PostgreSQL server of the script's own (``initdb``/``pg_ctl`` of the
installed server, another port, a temporary directory; see tests/helpers/pg_instance.py): the
shared server at 5432 is never touched, and the instance is removed at the end, on Ctrl-C too.
LLM samplers talk to the scripted OpenAI-compatible server (tests/helpers/llm_servers.py) with
the fault mix of tests/helpers/hostile.py: repeated configurations, garbage, near misses,
HTTP 500 and dropped connections.

Every worker runs with ``--max-retry`` (``--max-retry`` here, 3 by default as in the CLI): a
trial whose worker dies is retried, and a chain killed max-retry + 1 times in a row is given up
at that cap (a trial that kills its worker every time must stop being retried); its slot in
--n-trials goes to a fresh trial.

Columns (goal in the header; a missed goal in bold): COMPLETE trials against --n-trials;
duplicated parameter vectors among COMPLETE trials; duplicated SOO/BaMSOO nodes among COMPLETE
trials; COMPLETE trials without a ``source`` user attr; trials a fault hit (FAIL, or left
RUNNING/WAITING), and each of them in exactly one of three columns: FAIL and retried once;
given up at the cap (the last of a chain of max-retry + 1 trials, each killed in turn); lost
(FAIL never retried, retried twice, left RUNNING, or given up off the cap: a defect, goal 0);
workers still running at the end;
wall time; kills (those that landed inside the objective); workers that exited non-zero
without being killed (replaced, as a supervisor would); trials left RUNNING/WAITING; LHS:
(dimension, stratum) pairs not hit exactly once per Latin block.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers.fault_driver import (  # noqa: E402
    KILL_POLICIES,
    SAMPLERS,
    CaseResult,
    FaultCase,
    as_json,
    format_table,
    from_json,
    run_case,
)
from tests.helpers.pg_instance import PgInstance  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--scenarios", default="kill,db-restart")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument(
        "--kill-policy", choices=KILL_POLICIES[:2], default="random",
        help="random: a worker that has begun a trial (the published tables); any: any live "
        "worker, busy or waiting",
    )  # fmt: skip
    parser.add_argument("--db-down", type=float, default=10.0, help="seconds the database is down")
    parser.add_argument("--db-at", type=float, default=0.4, help="share of trials before the stop")
    parser.add_argument("--heartbeat", type=int, default=1)
    parser.add_argument(
        "--max-retry", type=int, default=3,
        help="--max-retry of every worker (the CLI's default): a chain killed this + 1 times "
        "in a row is given up at the cap and its slot goes to a fresh trial",
    )  # fmt: skip
    parser.add_argument("--grace", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per case at most")
    parser.add_argument(
        "--stall", type=float, default=60.0, help="seconds without progress = stuck"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--table-from", type=Path, default=None, metavar="JSON",
        help="run nothing: print the table of results written earlier with --json",
    )  # fmt: skip
    parser.add_argument(
        "--keep-logs", type=Path, default=None, metavar="DIR",
        help="keep each case's worker logs (stderr, stack dumps of stuck workers) under DIR",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.table_from is not None:
        print(format_table(from_json(args.table_from.read_text())))
        return 0

    # Ctrl-C or a plain kill: unwind through the `with` below so the instance is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[CaseResult] = []
    started = time.monotonic()
    with PgInstance() as pg:
        print(f"PostgreSQL {pg.bin_dir.parent.name} of our own on port {pg.port}", flush=True)
        for scenario in args.scenarios.split(","):
            for sampler in args.samplers.split(","):
                case = FaultCase(
                    sampler, scenario, workers=args.workers, trials=args.trials,
                    kill_every=args.kill_every, kill_policy=args.kill_policy,
                    db_down=args.db_down, db_at=args.db_at,
                    heartbeat=args.heartbeat, grace=args.grace, seed=args.seed,
                    max_retry=args.max_retry,
                    timeout=args.timeout, stall_timeout=args.stall, keep_logs=args.keep_logs,
                )  # fmt: skip
                print(f"{sampler} / {scenario}: {args.workers} workers x {args.trials} trials",
                      flush=True)  # fmt: skip
                result = run_case(case, pg, say=lambda line: print(line, flush=True))
                if args.kill_policy != "random" and "kill" in scenario:
                    result.scenario += f" ({args.kill_policy} kills)"
                results.append(result)
                print(f"  -> {result.complete}/{result.requested} COMPLETE, {result.end}, "
                      f"{result.wall_s:.0f} s", flush=True)  # fmt: skip
                for error in sorted(set(result.crash_errors)):
                    print(f"  crash: {error}", flush=True)
                for problem in result.problems:
                    print(f"  problem: {problem}", flush=True)
                for pid, stacks in result.stuck_stacks.items():
                    print(f"  stuck worker {pid}, its threads:", flush=True)
                    print("    " + stacks.strip().replace("\n", "\n    "), flush=True)
                if result.logs:
                    print(f"  logs kept in {result.logs}", flush=True)
    print()
    print(format_table(results))
    print()
    print(f"total {time.monotonic() - started:.0f} s; sources of COMPLETE trials:")
    for r in results:
        print(f"- {r.sampler} / {r.scenario}: {r.sources}; end: {r.end}")
    if args.json:
        args.json.write_text(as_json(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
