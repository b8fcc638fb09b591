"""A trial's heartbeat that outlives a database restart.

Optuna's own heartbeat thread ends at the first storage error, so a trial running while the
database restarts stops beating and is failed as stale although its worker is alive. This one
records the first beat before it returns (the worker starts it right after creating the
trial, while it still holds the study lock), then one every ``interval`` seconds; a failed beat
is reported to the :class:`~optuna_llm.worker._retry.StorageRetry` and tried again at the next
one.
"""

from __future__ import annotations

import threading

import optuna

from optuna_llm.worker._retry import StorageRetry, _counts_as_outage


class Heartbeat:
    """Beat for ``trial_id`` from :meth:`start` to :meth:`stop`.

    Example:
        >>> from optuna_llm.storage import make_storage
        >>> study = optuna.create_study(storage=make_storage("sqlite:///:memory:", heartbeat=1))
        >>> trial_id = study._storage.create_new_trial(study._study_id)
        >>> beat = Heartbeat(study._storage, trial_id, 1.0, StorageRetry(log=None))
        >>> beat.start()
        >>> beat.stop()
    """

    def __init__(
        self,
        storage: optuna.storages.BaseStorage,
        trial_id: int,
        interval: float,
        retry: StorageRetry,
    ) -> None:
        self._storage = storage
        self._trial_id = trial_id
        self._interval = interval
        self._retry = retry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        self._storage.record_heartbeat(self._trial_id)  # type: ignore[attr-defined]

    def start(self) -> None:
        """Record the first beat (riding out an outage, as every storage call does), then
        beat in a daemon thread."""
        self._retry("recording the first heartbeat", self._beat)
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{self._trial_id}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception as exc:  # the next beat tries again
                if _counts_as_outage(exc):
                    self._retry.mark_outage()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # a beat stuck in a connect is left behind
            self._thread = None
