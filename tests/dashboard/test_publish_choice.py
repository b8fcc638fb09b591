"""``publish_choice``: the trial note and artifacts behind the dashboard's first screen.

Real storages (SQLite, PostgreSQL with two worker processes), the real optuna-dashboard note
format (read back with optuna-dashboard's own functions) and a real FileSystemArtifactStore.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna_dashboard import get_note, save_note

from optuna_llm._attrs import LLM_ANSWER, LLM_CALLS, LLM_PROMPT, RATIONALE, SOURCE
from optuna_llm._dashboard import NOTE_SEPARATOR, choice_note, publish_choice

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", study_name="s")


def test_note_says_who_and_why_and_attrs_stay_short(tmp_path: Path) -> None:
    study = _study(tmp_path)
    store = FileSystemArtifactStore(str(tmp_path / "artifacts"))
    (tmp_path / "artifacts").mkdir()
    trial = study.ask()
    prompt = "[system]\nYou are ...\n\n[user]\n" + "history line\n" * 5_000  # ~65 KB
    attrs = publish_choice(
        study,
        study._storage.get_trial(trial._trial_id),  # what a sampler has: a FrozenTrial
        source="llm-repaired",
        rationale="Small lr did best.\nWider nets next.",
        prompt=prompt,
        answer='{"config": {"lr": 0.001}}',
        extra={LLM_CALLS: 2, "llm_repairs": ["lr: 0.5 clipped to 0.1"]},
        artifact_store=store,
    )
    assert attrs == {
        SOURCE: "llm-repaired",
        RATIONALE: "Small lr did best.\nWider nets next.",
        LLM_CALLS: 2,
        "llm_repairs": ["lr: 0.5 clipped to 0.1"],
    }
    note = get_note(trial)  # optuna-dashboard's own reader
    assert note.splitlines()[0] == "**source:** `llm-repaired`"
    assert "> Small lr did best.\n> Wider nets next." in note
    assert "**llm_calls:** 2" in note and "lr: 0.5 clipped to 0.1" in note
    assert len(note) < 1_000  # the prompt is not in the note (it lives in study system attrs)

    metas = {m.filename: m for m in get_all_artifact_meta(trial)}
    assert set(metas) == {f"trial-{trial.number}-prompt.txt", f"trial-{trial.number}-answer.txt"}
    out = tmp_path / "prompt.txt"
    download_artifact(
        artifact_store=store,
        artifact_id=metas[f"trial-{trial.number}-prompt.txt"].artifact_id,
        file_path=str(out),
    )
    assert out.read_text() == prompt  # whole, not clipped


def test_again_for_the_same_trial_rewrites_and_keeps_a_hand_written_note(
    tmp_path: Path,
) -> None:
    study = _study(tmp_path)
    (tmp_path / "a").mkdir()
    store = FileSystemArtifactStore(str(tmp_path / "a"))
    trial = study.ask()
    frozen = study._storage.get_trial(trial._trial_id)
    publish_choice(
        study, frozen, source="llm", rationale="first", prompt="p1", artifact_store=store
    )
    save_note(trial, get_note(trial) + NOTE_SEPARATOR + "my own remark")  # a user, in the UI
    publish_choice(
        study, frozen, source="llm", rationale="second", prompt="p2", artifact_store=store
    )
    note = get_note(trial)
    assert "second" in note and "first" not in note
    assert note.endswith(NOTE_SEPARATOR + "my own remark")
    metas = get_all_artifact_meta(trial)
    assert [m.filename for m in metas] == [f"trial-{trial.number}-prompt.txt"]  # not doubled
    with store.open_reader(metas[0].artifact_id) as reader:
        assert reader.read() == b"p2"
    # A note someone wrote before the sampler did is kept too.
    other = study.ask()
    save_note(other, "hand-written first")
    publish_choice(study, study._storage.get_trial(other._trial_id), source="soo")
    assert get_note(other) == "**source:** `soo`" + NOTE_SEPARATOR + "hand-written first"


def test_without_optuna_dashboard_the_attrs_still_say_who_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = _study(tmp_path)
    trial = study.ask()
    # The optional extra is absent: importing it fails as it would without the package.
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    monkeypatch.setitem(sys.modules, "optuna_dashboard._note", None)
    attrs = publish_choice(
        study, trial, source="llm", rationale="why", prompt="the prompt", answer="the answer"
    )
    assert attrs == {
        SOURCE: "llm",
        RATIONALE: "why",
        LLM_PROMPT: "the prompt",  # no artifact store: kept as user attrs, nothing is lost
        LLM_ANSWER: "the answer",
    }
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    assert not [k for k in system_attrs if k.startswith("dashboard:")]
    assert choice_note(study, trial._trial_id) == ""


def _worker(url: str, worker: int, n_trials: int) -> None:
    study = optuna.load_study(study_name="shared", storage=url)
    for _ in range(n_trials):
        trial = study.ask()
        frozen = study._storage.get_trial(trial._trial_id)
        for step in range(2):  # a sampler may record one trial in several steps
            publish_choice(
                study,
                frozen,
                source="llm",
                rationale=f"worker {worker} trial {trial.number} step {step} " + "x" * 3_000,
            )
        study.tell(trial, float(trial.number))


@pytest.mark.postgres
def test_workers_writing_notes_of_their_trials_lose_nothing(postgres_url: str) -> None:
    optuna.create_study(storage=postgres_url, study_name="shared")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(postgres_url, w, 12)) for w in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    assert len(study.trials) == 24
    for trial in study.trials:
        note = choice_note(study, trial._trial_id)
        assert f" trial {trial.number} step 1 " in note, note[:200]  # its own, the last step
        assert note.count("worker") == 1 and "step 0" not in note
        assert len(note) > 3_000  # both 2045-character chunks intact


def test_a_note_is_written_without_importing_the_dashboard_app(tmp_path: Path) -> None:
    # Every LLM worker writes a note in its first trial; optuna-dashboard's package __init__
    # imports its web app (pandas, scikit-learn), seconds a killed worker lost each time.
    import subprocess

    script = f"""
import sys, optuna
from optuna_llm._dashboard import publish_choice
study = optuna.create_study(storage="sqlite:///{tmp_path}/n.db", study_name="n")
trial = study.ask()
publish_choice(study, trial, source="llm", rationale="why", prompt="p", answer="a")
heavy = sorted(m for m in ("optuna_dashboard", "pandas", "sklearn") if m in sys.modules)
from optuna_dashboard import get_note
print(repr(heavy).replace(" ", ""), repr(get_note(optuna.trial.Trial(study, trial._trial_id))))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=True
    ).stdout
    heavy, note = out.strip().split(" ", 1)
    assert heavy == "[]", out
    assert "**source:** `llm`" in note and "why" in note
