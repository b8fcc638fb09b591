"""The fault benchmark's accounting (``tests/helpers/fault_driver.analyse``) on a study built by
hand in SQLite: every trial a fault hit lands in exactly one column (retried once, given up at
the cap, lost), and a COMPLETE trial without ``source`` is counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from optuna_llm._attrs import GIVEN_UP, SOURCE
from tests.helpers.fault_driver import STUDY, CaseResult, FaultCase, analyse, format_table

SPACE = {"x": FloatDistribution(0.0, 1.0)}


def _add(study: optuna.Study, state: TrialState, x: float, **attrs: Any) -> None:
    system = {k: v for k, v in attrs.items() if k != "user"}
    study.add_trial(
        create_trial(
            state=state, params={"x": x}, distributions=SPACE,
            value=x if state == TrialState.COMPLETE else None,
            user_attrs=attrs.get("user", {SOURCE: "soo"}), system_attrs=system,
        )
    )  # fmt: skip


def test_each_hit_trial_is_retried_once_given_up_at_the_cap_or_lost(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'faults.db'}"
    study = optuna.create_study(storage=url, study_name=STUDY)
    # A chain killed 4 times at --max-retry 3: trials 0, 1, 2 retried once, 3 given up.
    _add(study, TrialState.FAIL, 0.1)
    _add(study, TrialState.FAIL, 0.1, retry_history=[0], failed_trial=0)
    _add(study, TrialState.FAIL, 0.1, retry_history=[0, 1], failed_trial=0)
    _add(study, TrialState.FAIL, 0.1, retry_history=[0, 1, 2], failed_trial=0, **{GIVEN_UP: 3})
    # Trial 4 retried once; its retry 5 marked given up after 2 trials: not the cap, so lost.
    _add(study, TrialState.FAIL, 0.2)
    _add(study, TrialState.FAIL, 0.2, retry_history=[4], failed_trial=4, **{GIVEN_UP: 5})
    # Never retried: lost. Then COMPLETE trials, one without a source.
    _add(study, TrialState.FAIL, 0.3)
    _add(study, TrialState.COMPLETE, 0.4)
    _add(study, TrialState.COMPLETE, 0.5, user={})
    case = FaultCase("soo", "kill", workers=2, trials=2, max_retry=3)
    result = analyse(CaseResult("soo", "kill", 2, 2, max_retry=3), url, case)
    assert result.hit_trials == 7
    assert result.hit_failed_retried_once == 4  # trials 0, 1, 2 and 4
    assert result.given_up == 1  # trial 3 only
    assert result.other_misses == 2  # 5 (given up off the cap) and 6 (never retried)
    assert result.no_source == 1
    assert any("trial 5 marked given up with a chain of 2" in p for p in result.problems)
    assert any("trial 8 COMPLETE without a source" in p for p in result.problems)
    assert not result.goals_met()["every hit trial FAIL and retried once, or given up at the cap"]
    assert "| 1 (cap 3) |" in format_table([result])
