"""The study's history as our samplers see it: search space union and duplicate detection."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    check_distribution_compatibility,
)
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import PROPOSAL, set_system_attrs


def union_search_space(trials: Iterable[FrozenTrial]) -> dict[str, BaseDistribution]:
    """Every parameter seen in ``trials`` with its latest distribution.

    Unlike Optuna's intersection search space, conditional parameters stay in (an LLM can
    propose them all; a trial ignores those it does not suggest). A parameter whose
    distributions are incompatible across trials (float then int, other choices) is left to
    ``sample_independent``, and so is a single-valued one.
    """
    latest: dict[str, BaseDistribution] = {}
    broken: set[str] = set()
    for trial in sorted(trials, key=lambda t: t.number):
        for name, distribution in trial.distributions.items():
            if name in broken:
                continue
            previous = latest.get(name)
            if previous is not None:
                try:
                    check_distribution_compatibility(previous, distribution)
                except ValueError:
                    broken.add(name)
                    latest.pop(name, None)
                    continue
            latest[name] = distribution
    return {name: d for name, d in latest.items() if not d.single()}


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return type(a) is type(b) and a == b


def covers(proposal: Mapping[str, Any], used: Mapping[str, Any]) -> bool:
    """Whether a trial that used ``used`` would run again if given ``proposal``: every
    parameter it used is in the proposal with the same value."""
    return bool(used) and all(
        name in proposal and same_value(proposal[name], value) for name, value in used.items()
    )


def trial_config(trial: FrozenTrial) -> dict[str, Any]:
    """Parameters a trial used, or for a running trial that has not suggested them yet, the
    configuration it claimed."""
    if trial.params:
        return dict(trial.params)
    claimed = trial.system_attrs.get(PROPOSAL)
    return dict(claimed) if isinstance(claimed, dict) else {}


def duplicate_of(
    proposal: Mapping[str, Any],
    trials: Iterable[FrozenTrial],
    *,
    exclude_number: int,
    search_space: Mapping[str, BaseDistribution],
) -> FrozenTrial | None:
    """A trial (finished, running or waiting) that already has this configuration."""
    for trial in trials:
        if trial.number == exclude_number:
            continue
        config = {k: v for k, v in trial_config(trial).items() if k in search_space}
        if config and covers(proposal, config) and _space_matches(config, search_space, trial):
            return trial
    return None


def _space_matches(
    config: Mapping[str, Any], search_space: Mapping[str, BaseDistribution], trial: FrozenTrial
) -> bool:
    # A categorical value is only "the same" under the same choices.
    for name in config:
        mine, theirs = search_space[name], trial.distributions.get(name)
        if isinstance(mine, CategoricalDistribution) and theirs is not None and theirs != mine:
            return False
    return True


def describe_state(trial: FrozenTrial) -> str:
    if trial.state in (TrialState.RUNNING, TrialState.WAITING):
        return f"trial #{trial.number} is evaluating it right now"
    return f"trial #{trial.number} already evaluated it ({trial.state.name})"


NEAR_REPEAT = 1e-3
"""A proposal whose every number lies within this fraction of its range (log ranges in log
space) of a trial's value, and every other value equal, repeats that trial up to rounding."""


def near_repeat_of(
    proposal: Mapping[str, Any],
    trials: Iterable[FrozenTrial],
    *,
    exclude_number: int,
    search_space: Mapping[str, BaseDistribution],
    tolerance: float = NEAR_REPEAT,
) -> FrozenTrial | None:
    """A trial whose configuration ``proposal`` repeats up to rounding: a small model writes
    back a value of the prompt's history shortened to a few digits, which no exact test
    catches (``3.2322`` for trial #0's ``3.232202558909872``), and that is no choice.

    Example:
        >>> import optuna
        >>> from optuna.distributions import FloatDistribution
        >>> space = {"x": FloatDistribution(-5, 10)}
        >>> t = optuna.trial.create_trial(params={"x": 3.232202558909872}, distributions=space,
        ...                               value=1.0)
        >>> near_repeat_of({"x": 3.2322}, [t], exclude_number=9, search_space=space) is t
        True
        >>> near_repeat_of({"x": 3.3}, [t], exclude_number=9, search_space=space) is None
        True
    """
    for trial in trials:
        if trial.number == exclude_number:
            continue
        config = {k: v for k, v in trial_config(trial).items() if k in search_space}
        if not config or not _space_matches(config, search_space, trial):
            continue
        if all(
            name in proposal and _near(proposal[name], value, search_space[name], tolerance)
            for name, value in config.items()
        ):
            return trial
    return None


def repeat_reason(
    proposal: Mapping[str, Any],
    trials: Iterable[FrozenTrial],
    *,
    exclude_number: int,
    search_space: Mapping[str, BaseDistribution],
) -> str | None:
    """Why an LLM's ``proposal`` is no new choice (a trial has it, exactly or up to
    rounding), or None: the ``forbidden`` test every LLM sampler gives its proposer."""
    # One scan: a near repeat includes an exact one (``_near`` tests equality first).
    near = near_repeat_of(
        proposal, trials, exclude_number=exclude_number, search_space=search_space
    )
    if near is None:
        return None
    config = {k: v for k, v in trial_config(near).items() if k in search_space}
    if covers(proposal, config):
        return describe_state(near)
    return describe_state(near) + " up to rounding: a copy is not a new choice"


def _near(a: Any, b: Any, distribution: BaseDistribution, tolerance: float) -> bool:
    if same_value(a, b):
        return True
    low, high = getattr(distribution, "low", None), getattr(distribution, "high", None)
    if isinstance(distribution, CategoricalDistribution) or low is None or high is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        return False
    if getattr(distribution, "log", False) and a > 0 and b > 0:
        a, b, low, high = math.log(a), math.log(b), math.log(low), math.log(high)
    width = high - low
    return width > 0 and abs(a - b) <= tolerance * width


def claim_config(
    study: optuna.Study,
    trial: FrozenTrial,
    params: Mapping[str, Any],
    search_space: Mapping[str, BaseDistribution],
) -> bool:
    """Write ``params`` as this trial's claim, then re-read every trial from storage (running
    ones uncached): False if another trial has or claims the same configuration. Of two
    workers claiming at once, at least one sees the other, so no duplicate gets through."""
    set_system_attrs(study, trial, {PROPOSAL: jsonable_params(params)})
    fresh = study._storage.get_all_trials(study._study_id, deepcopy=False)
    return (
        duplicate_of(params, fresh, exclude_number=trial.number, search_space=search_space) is None
    )


def jsonable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
        for k, v in params.items()
    }


def has_given_params(trial: FrozenTrial) -> bool:
    """Enqueued or retried trials come with their parameters: no sampler chooses them."""
    return bool(trial.params) or "fixed_params" in trial.system_attrs


def space_of_other_trials(
    study: Study, trial: FrozenTrial, extra: Mapping[str, BaseDistribution]
) -> dict[str, BaseDistribution]:
    """The union of every other trial's distributions, updated with ``extra`` (a space given
    up front): what the LLM samplers propose from, so conditional parameters are included."""
    trials = study._get_trials(deepcopy=False, use_cache=True)
    space = union_search_space(t for t in trials if t.number != trial.number)
    space.update(extra)
    return space
