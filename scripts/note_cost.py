"""Milliseconds one ``publish_choice`` costs as a study's trial notes accumulate.

optuna-dashboard keeps every trial's note in the study's system attrs, and each save reads
them all (twice), so the cost of a note grows with the number of notes. This prints, for a
study that already has N trials with a note: the median time of ``publish_choice`` (note only,
and note + prompt/answer artifacts) against the time of reading all trials once
(``get_all_trials``, which every sampler call does anyway).

    .venv/bin/python scripts/note_cost.py [--storage URL] [--sizes 0 300 1000 3000]

The default storage is a fresh SQLite file; pass a PostgreSQL URL for a shared study (the
database should be empty: the script creates a study named ``note-cost-<N>`` per size).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from optuna_dashboard._note import split_body

from optuna_llm._dashboard import publish_choice

RATIONALE = "x0 near 3 gave the lowest value so far; this probes the unexplored upper half of x1."
EXTRA = {"llm_prompt_tokens": 1834, "llm_completion_tokens": 61, "llm_calls": 1}


def _fill(study: optuna.Study, n: int) -> None:
    """N finished trials, each with a note in optuna-dashboard's format (written directly)."""
    storage, study_id = study._storage, study._study_id
    for i in range(n):
        trial = optuna.trial.create_trial(
            params={"x0": i / max(n, 1)},
            distributions={"x0": FloatDistribution(0, 1)},
            value=float(i),
            user_attrs={"source": "llm", "rationale": RATIONALE, **EXTRA},
        )
        study.add_trial(trial)
    for frozen in study.get_trials(deepcopy=False):
        body = f"**source:** `llm`\n\n**rationale:**\n\n> {RATIONALE}\n\n" + "x" * 300
        storage.set_study_system_attr(study_id, f"dashboard:{frozen._trial_id}:note_ver", 1)
        for key, chunk in split_body(body, frozen._trial_id).items():
            storage.set_study_system_attr(study_id, key, chunk)


def _median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--storage", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 300, 1000, 3000])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="note-cost-"))
    url = args.storage or f"sqlite:///{tmp}/notes.db"
    store_dir = tmp / "artifacts"
    store_dir.mkdir()
    store = FileSystemArtifactStore(str(store_dir))
    print(f"storage={url.split('://')[0]} repeats={args.repeats}")
    print(
        f"{'notes':>6} {'note ms':>8} {'+artifacts ms':>14} {'get_all_trials ms':>18} "
        f"{'study sys attrs':>16}"
    )
    for n in args.sizes:
        study = optuna.create_study(storage=url, study_name=f"note-cost-{n}")
        _fill(study, n)
        note_times, artifact_times, read_times = [], [], []
        for _ in range(args.repeats):
            trial = study.ask()
            frozen = study._storage.get_trial(trial._trial_id)
            start = time.perf_counter()
            publish_choice(study, frozen, source="llm", rationale=RATIONALE, extra=EXTRA)
            note_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            publish_choice(
                study,
                frozen,
                source="llm",
                rationale=RATIONALE,
                prompt="[user] " + "history line\n" * 500,
                answer='{"config": {"x0": 0.5}}',
                extra=EXTRA,
                artifact_store=store,
            )
            artifact_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            study._storage.get_all_trials(study._study_id, deepcopy=False)
            read_times.append(time.perf_counter() - start)
            study.tell(trial, state=TrialState.COMPLETE, values=[0.0])
        n_attrs = len(study._storage.get_study_system_attrs(study._study_id))
        print(
            f"{n:>6} {_median_ms(note_times):>8.1f} {_median_ms(artifact_times):>14.1f} "
            f"{_median_ms(read_times):>18.1f} {n_attrs:>16}"
        )


if __name__ == "__main__":
    main()
