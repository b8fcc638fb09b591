"""The fault benchmark's objective: Branin plus a short random sleep, so trials overlap.

Workers run it as ``optuna-llm run --objective tests.helpers.fault_objective:objective``.
When ``OPTUNA_LLM_FAULT_LOG`` names a file, each call appends ``<pid> <trial> start`` before
and ``<pid> <trial> end`` after its work (one small ``O_APPEND`` write each, so lines from many
processes never interleave): the driver reads it to know which trial a worker it killed was in.
``OPTUNA_LLM_FAULT_SLEEP`` is ``"low,high"`` seconds (default ``0.05,0.3``).

Example:
    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study()
    >>> study.optimize(objective, n_trials=1)
"""

from __future__ import annotations

import os
import random
import time

import optuna

from optuna_llm.objectives.toy import TOY_FUNCTIONS

LOG_ENV = "OPTUNA_LLM_FAULT_LOG"
SLEEP_ENV = "OPTUNA_LLM_FAULT_SLEEP"


def _log(event: str, number: int) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {number} {event}\n".encode())
    finally:
        os.close(fd)


def sleep_range() -> tuple[float, float]:
    low, _, high = os.environ.get(SLEEP_ENV, "0.05,0.3").partition(",")
    return float(low), float(high or low)


def objective(trial: optuna.Trial) -> float:
    _log("start", trial.number)
    value = TOY_FUNCTIONS["branin"].objective(trial)
    time.sleep(random.uniform(*sleep_range()))
    _log("end", trial.number)
    return value
