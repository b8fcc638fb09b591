"""Who chose a trial and why, where optuna-dashboard shows it first: the trial's note.

A trial page of optuna-dashboard (0.21) shows, from the top: the title, the state, the trial's
**note** (Markdown), then value, parameters, times and a fixed-height **user attrs** box
sorted by key, one line per key. Seven ``llm_*`` keys push ``source`` and ``rationale`` out of
that box, so :func:`publish_choice` puts who and why in the note and keeps the box short:

* the **note** (when optuna-dashboard is installed): ``source``, the rationale, and the other
  short facts the caller passes in ``extra`` (token counts, calls, repairs, fallback reason);
* the full **prompt and answer as artifacts** (:mod:`optuna.artifacts`) when the caller passes
  an artifact store (start the dashboard with the same store, e.g. ``--artifact-dir DIR``, to
  list and open them on the trial page);
* the **short user attrs it returns**, for the caller to write: ``source``, ``rationale`` and
  ``extra`` always (so without optuna-dashboard the attrs still say who and why), plus
  ``llm_prompt``/``llm_answer`` only when no artifact store holds them (nothing is lost).

How optuna-dashboard stores a note (``optuna_dashboard/_note.py``): in the *study's* system
attrs, under keys of that trial only, ``dashboard:<trial_id>:note_ver`` (a version the editor
checks before it saves) and ``dashboard:<trial_id>:note_str:<i>`` (the body in 2045-character
chunks). Every write sets its own keys, so workers writing the notes of different trials never
overwrite each other (no shared blob), and a finished trial's note can still be written.
There is no way to read one key, so a save reads all the study's system attrs: a cost that
grows with the number of notes (``scripts/note_cost.py`` measures it). The public
``optuna_dashboard.save_note`` reads them twice and takes a Study or a Trial only (a
sampler has a :class:`~optuna.trial.FrozenTrial`, and building an ``optuna.Trial`` would call
the sampler's ``before_trial`` again), so this module writes the same keys with
optuna-dashboard's own key and chunking functions after a single read. A note someone wrote on
the trial by hand is kept below ours.

Artifacts are uploaded once per trial and file name; a later call for the same trial rewrites
the same artifact (no duplicates when a sampler records a trial in several steps).

Example:
    >>> import optuna
    >>> from optuna_llm._dashboard import choice_note, publish_choice
    >>> study = optuna.create_study()
    >>> trial = study.ask()
    >>> attrs = publish_choice(
    ...     study, trial, source="llm",
    ...     rationale="lr near 1e-3 did best", prompt="[user] ...", answer='{"config": {}}',
    ...     extra={"llm_calls": 1},
    ... )
    >>> sorted(attrs)
    ['llm_answer', 'llm_calls', 'llm_prompt', 'rationale', 'source']
    >>> print(choice_note(study, trial._trial_id))
    **source:** `llm`
    <BLANKLINE>
    **rationale:**
    <BLANKLINE>
    > lr near 1e-3 did best
    <BLANKLINE>
    **llm_calls:** 1
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from optuna.artifacts import get_all_artifact_meta, upload_artifact
from optuna.trial import FrozenTrial, Trial

from optuna_llm._attrs import LLM_ANSWER, LLM_PROMPT, RATIONALE, SOURCE, set_user_attrs

if TYPE_CHECKING:
    import optuna

    from optuna_llm._compat import ArtifactStore

NOTE_HEAD = "**source:**"
"""Our note starts with this; a note that does not is someone's own and is kept below ours."""

NOTE_SEPARATOR = "\n\n---\n\n"
"""Between our part of a trial's note and the part someone wrote by hand."""

NOTE_VALUE_LIMIT = 2000
"""Characters of one ``extra`` value shown in the note (the user attr keeps it whole)."""


def publish_choice(
    study: optuna.Study,
    trial: FrozenTrial | Trial,
    *,
    source: str,
    rationale: str = "",
    prompt: str | None = None,
    answer: str | None = None,
    extra: Mapping[str, Any] | None = None,
    artifact_store: ArtifactStore | None = None,
) -> dict[str, Any]:
    """Show who chose ``trial`` and why on its optuna-dashboard page; return the user attrs
    the caller writes (short: prompt and answer only when no artifact store holds them).

    Args:
        study: The trial's study (a sampler's ``study`` argument).
        trial: The trial, as a sampler sees it (or the ``optuna.Trial`` of an objective).
        source: Who chose the parameters (``llm``, ``llm-repaired``, ``fallback:<name>``...).
        rationale: Why, in the chooser's words.
        prompt: The prompt sent (whole); an artifact ``trial-<n>-prompt.txt`` if
            ``artifact_store`` is given, else the user attr ``llm_prompt``.
        answer: The answer received (whole); an artifact ``trial-<n>-answer.txt``, else the
            user attr ``llm_answer``.
        extra: Other short facts as ``{user attr key: value}`` (token counts, calls, repairs,
            errors, fallback reason): returned as user attrs and listed in the note.
        artifact_store: Where the prompt and answer go (any :mod:`optuna.artifacts` store,
            e.g. ``FileSystemArtifactStore(DIR)``; the dashboard lists them when started
            with the same store, ``optuna-dashboard URL --artifact-dir DIR``).

    Safe to call again for the same trial (a sampler that records a trial in steps): the
    note and the artifacts are rewritten, not doubled. The trial must still be running when
    artifacts are written (Optuna refuses system attrs of a finished trial); the note can be
    written at any time.
    """
    extra = dict(extra or {})
    attrs: dict[str, Any] = {SOURCE: source}
    if rationale:
        attrs[RATIONALE] = rationale
    attrs.update(extra)
    stored: list[str] = []
    if artifact_store is not None:
        for kind, text in (("prompt", prompt), ("answer", answer)):
            if text is not None:
                name = f"trial-{trial.number}-{kind}.txt"
                _write_text_artifact(study, trial, artifact_store, name, text)
                stored.append(name)
    else:
        if prompt is not None:
            attrs[LLM_PROMPT] = prompt
        if answer is not None:
            attrs[LLM_ANSWER] = answer
    _save_note(study, trial._trial_id, _note_body(source, rationale, extra, stored))
    return attrs


def record_choice(
    study: optuna.Study,
    trial: FrozenTrial,
    attrs: Mapping[str, Any],
    *,
    artifact_store: ArtifactStore | None = None,
) -> None:
    """What the LLM samplers write for a trial: who chose it and why in the trial's note
    (:func:`publish_choice`), the prompt and answer as artifacts when ``artifact_store`` is
    given, the rest as short user attrs.

    ``attrs`` is ``{user attr key: value}`` as the sampler built it; without a ``source`` key
    (e.g. a lone fallback reason: nothing chosen yet) it is written as user attrs only.

    Example:
        >>> import optuna
        >>> from optuna_llm._attrs import SOURCE
        >>> study = optuna.create_study()
        >>> trial = study.ask()
        >>> frozen = study._storage.get_trial(trial._trial_id)
        >>> record_choice(study, frozen, {SOURCE: "llm", "rationale": "near the best so far"})
        >>> study._storage.get_trial(trial._trial_id).user_attrs["source"]
        'llm'
    """
    attrs = dict(attrs)
    if SOURCE not in attrs:
        set_user_attrs(study, trial, attrs)
        return
    short = publish_choice(
        study,
        trial,
        source=str(attrs.pop(SOURCE)),
        rationale=str(attrs.pop(RATIONALE, "") or ""),
        prompt=attrs.pop(LLM_PROMPT, None),
        answer=attrs.pop(LLM_ANSWER, None),
        extra=attrs,
        artifact_store=artifact_store,
    )
    set_user_attrs(study, trial, short)


def note_module() -> ModuleType | None:
    """optuna-dashboard's note code (``optuna_dashboard/_note.py``), or None without it.

    Loaded from its file, without the package's ``__init__``: that imports the whole web app
    (pandas, scikit-learn through optuna.importance; 2.4 s at a load of 2), which every LLM
    worker paid inside its first trial, where a killed worker loses it. The module needs only
    optuna. If the package is imported already its own module is used; a ``None`` in
    ``sys.modules`` (Python's mark of a blocked import) means it is absent.
    """
    if "optuna_dashboard" in sys.modules and sys.modules["optuna_dashboard"] is None:
        return None
    loaded = sys.modules.get("optuna_dashboard._note") or sys.modules.get(_NOTE_MODULE)
    if loaded is not None:
        return loaded
    try:
        spec = importlib.util.find_spec("optuna_dashboard")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "_note.py"
    file_spec = importlib.util.spec_from_file_location(_NOTE_MODULE, path)
    if file_spec is None or file_spec.loader is None or not path.is_file():
        return None
    loaded = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(loaded)
    sys.modules[_NOTE_MODULE] = loaded
    return loaded


_NOTE_MODULE = "optuna_llm._optuna_dashboard_note"


def choice_note(study: optuna.Study, trial_id: int) -> str:
    """The trial's note as optuna-dashboard shows it ("" without optuna-dashboard or note)."""
    note = note_module()
    if note is None:
        return ""
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    return str(note.get_note_from_system_attrs(system_attrs, trial_id)["body"])


def _note_body(source: str, rationale: str, extra: Mapping[str, Any], artifacts: list[str]) -> str:
    """Markdown: ``source`` first, then the rationale, then the short facts."""
    parts = [f"{NOTE_HEAD} `{_inline(source)}`"]
    if rationale:
        quoted = "\n".join(f"> {line}" if line else ">" for line in rationale.splitlines())
        parts.append(f"**rationale:**\n\n{quoted}")
    facts = [f"**{key}:** {_fact(value)}" for key, value in extra.items()]
    if facts:
        parts.append(" · ".join(facts))
    if artifacts:
        names = ", ".join(f"`{name}`" for name in artifacts)
        parts.append(f"Full prompt and answer: {names} (Artifacts, below).")
    return "\n\n".join(parts)


def _inline(text: str) -> str:
    """One line of Markdown inline code (backticks cannot close it early)."""
    return " ".join(str(text).split()).replace("`", "'")


def _fact(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    if len(text) > NOTE_VALUE_LIMIT:
        text = text[:NOTE_VALUE_LIMIT] + " …"
    return f"`{_inline(text)}`" if not isinstance(value, (int, float)) else text


def _merge_note(ours: str, current: str) -> str:
    """Our part, then whatever someone else wrote in the note (kept, below a rule)."""
    if not current.strip():
        return ours
    if current.startswith(NOTE_HEAD):  # ours from an earlier call: keep only its tail
        _, sep, theirs = current.partition(NOTE_SEPARATOR)
        return ours + NOTE_SEPARATOR + theirs if sep and theirs.strip() else ours
    return ours + NOTE_SEPARATOR + current


def _save_note(study: optuna.Study, trial_id: int, body: str) -> None:
    note = note_module()
    if note is None:  # optuna-dashboard is an optional extra: the user attrs say it all
        return
    get_note_from_system_attrs = note.get_note_from_system_attrs
    note_str_key_prefix, note_ver_key = note.note_str_key_prefix, note.note_ver_key
    split_body = note.split_body
    storage, study_id = study._storage, study._study_id
    system_attrs = storage.get_study_system_attrs(study_id)  # the one read of all notes
    current = get_note_from_system_attrs(system_attrs, trial_id)
    body = _merge_note(body, str(current["body"]))
    if body == current["body"]:
        return
    # What optuna-dashboard's save_note_with_version writes (a version one above the current,
    # the chunks, stale chunks blanked), from the read above rather than two more reads.
    prefix = note_str_key_prefix(trial_id)
    n_stale = sum(1 for key in system_attrs if key.startswith(prefix))
    chunks = split_body(body, trial_id)
    storage.set_study_system_attr(study_id, note_ver_key(trial_id), int(current["version"]) + 1)
    for key, chunk in chunks.items():
        storage.set_study_system_attr(study_id, key, chunk)
    for i in range(len(chunks), n_stale):
        storage.set_study_system_attr(study_id, f"{prefix}{i}", "")


def _write_text_artifact(
    study: optuna.Study, trial: FrozenTrial | Trial, store: ArtifactStore, name: str, text: str
) -> str:
    """Upload ``text`` as the trial's artifact ``name``, or rewrite it if already there."""
    storage = study._storage
    for meta in get_all_artifact_meta(trial, storage=storage):
        if meta.filename == name:
            store.write(meta.artifact_id, io.BytesIO(text.encode("utf-8")))
            return meta.artifact_id
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        return upload_artifact(
            artifact_store=store,
            file_path=str(path),
            study_or_trial=trial,
            storage=storage,
            mimetype="text/plain",
        )


__all__ = ["NOTE_HEAD", "choice_note", "publish_choice", "record_choice"]
