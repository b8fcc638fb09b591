"""``optuna_llm/_compat.py``, the one boundary to Optuna's private API: every name it exports
exists in the installed Optuna, the installed Optuna is inside the range ``pyproject.toml``
claims, and the storage helpers see through Optuna's wrappers. Run on the newest Optuna
(``make test``) and on the oldest claimed (``make test-oldest``)."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from optuna_llm import _compat
from optuna_llm.storage import make_storage

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _claimed_range() -> str:
    match = re.search(r'"optuna([<>=!~][^"]*)"', PYPROJECT.read_text())
    assert match, "pyproject.toml names no optuna requirement"
    return match.group(1)


def test_every_exported_name_exists_in_this_optuna() -> None:
    missing = [name for name in _compat.__all__ if not hasattr(_compat, name)]
    assert missing == [], f"optuna {optuna.__version__} lacks {missing}"


def test_the_installed_optuna_is_inside_the_claimed_range() -> None:
    from packaging.specifiers import SpecifierSet

    claimed = SpecifierSet(_claimed_range())
    assert "<" in str(claimed), "pyproject.toml must give optuna an upper bound the tests saw"
    assert optuna.__version__ in claimed, (optuna.__version__, str(claimed))
    assert _compat.OPTUNA_VERSION == tuple(int(p) for p in optuna.__version__.split(".")[:2])


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")  # ask/tell here
@pytest.mark.parametrize("kind", ["sqlite", "journal", "memory"])
def test_storage_helpers_see_through_optunas_cache(kind: str, tmp_path: Path) -> None:
    if kind == "sqlite":
        storage = make_storage(f"sqlite:///{tmp_path / 'c.db'}", heartbeat=1)
    elif kind == "journal":
        storage = make_storage(str(tmp_path / "c.log"))
    else:
        storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    backend = _compat.unwrap_storage(study._storage)
    assert type(backend) is type(storage)
    path = _compat.journal_file_path(study._storage)
    assert path == (str(tmp_path / "c.log") if kind == "journal" else None)
    trial = study.ask()
    if kind == "sqlite":
        assert _compat.is_heartbeat_enabled(study._storage)
        study._storage.record_heartbeat(trial._trial_id)
        assert _compat.heartbeat_trial_ids(study._storage, [trial._trial_id, 999]) == {
            trial._trial_id
        }
        assert _compat.stale_trial_callback(backend) is not None
    else:
        assert _compat.heartbeat_trial_ids(study._storage, [trial._trial_id]) == set()


def test_the_retry_callback_is_given_by_the_keyword_this_optuna_takes(tmp_path: Path) -> None:
    keyword, callback = _compat.retry_stale_trial_callback(2)
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'r.db'}", heartbeat_interval=1, **{keyword: callback}
    )
    assert _compat.stale_trial_callback(storage) is callback
