"""Create or join the study of a worker, refusing before anything is written what cannot work."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import optuna


def check_sampler_directions(
    sampler: optuna.samplers.BaseSampler, directions: Sequence[str]
) -> None:
    """Raise ``ValueError`` if ``sampler`` cannot optimise ``len(directions)`` objectives.

    The sampler itself is asked, as Optuna asks it at the first trial: a copy of it infers its
    search space and samples an empty one for a throwaway in-memory study with these
    directions (SOO and BaMSOO refuse a multi-objective study in the first step, CMA-ES in the
    second; an empty space costs no LLM call). So the refusal comes before the real study
    exists, instead of a traceback after it holds one FAIL trial.

    Example:
        >>> from optuna_llm.samplers import SOOSampler
        >>> check_sampler_directions(SOOSampler(), ["minimize", "minimize"])
        Traceback (most recent call last):
        ...
        ValueError: SOOSampler cannot run a study with 2 objectives: SOOSampler optimises ...
    """
    probe = optuna.create_study(
        directions=list(directions),  # type: ignore[arg-type]  # checked by Optuna
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    trial = probe.ask()
    frozen = probe._storage.get_trial(trial._trial_id)
    try:
        asked = copy.deepcopy(sampler)
    except Exception:  # a client holding a lock or a socket: asking the sampler itself is safe
        asked = sampler
    try:
        asked.infer_relative_search_space(probe, frozen)
        asked.sample_relative(probe, frozen, {})
    except (ValueError, NotImplementedError) as exc:
        raise ValueError(
            f"{type(sampler).__name__} cannot run a study with {len(directions)} objectives: {exc}"
        ) from None


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    sampler: optuna.samplers.BaseSampler,
    directions: Sequence[str],
    *,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create the study, or join it if it exists (``load_if_exists``), after checking that the
    sampler handles ``directions`` and that an existing study has the same ones.

    Example:
        >>> storage = optuna.storages.InMemoryStorage()
        >>> study = open_study(storage, "s", optuna.samplers.TPESampler(), ["minimize"])
        >>> open_study(storage, "s", optuna.samplers.TPESampler(), ["maximize"])
        Traceback (most recent call last):
        ...
        ValueError: Study 's' already exists with directions ['minimize']; ...
    """
    wanted = [d.lower() for d in directions]
    check_sampler_directions(sampler, wanted)
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        pass
    else:
        existing = [d.name.lower() for d in storage.get_study_directions(study_id)]
        if existing != wanted:
            raise ValueError(
                f"Study {study_name!r} already exists with directions {existing}; pass the same "
                f"directions (--direction; got {wanted}) or another --study-name."
            )
    return optuna.create_study(
        storage=storage,
        study_name=study_name,
        sampler=sampler,
        pruner=pruner,
        directions=wanted,  # type: ignore[arg-type]  # Optuna checks the names
        load_if_exists=True,
    )
