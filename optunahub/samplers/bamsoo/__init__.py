"""BaMSOOSampler from optuna-llm (https://hub.optuna.org/samplers/bamsoo/)."""

from __future__ import annotations


try:
    from optuna_llm.samplers import BaMSOOSampler
except ModuleNotFoundError as error:
    if error.name != "optuna_llm":
        raise
    raise ModuleNotFoundError(
        "samplers/bamsoo re-exports BaMSOOSampler from the optuna-llm package, which is not "
        "installed. Install it with `pip install -r "
        "https://hub.optuna.org/samplers/bamsoo/requirements.txt` (or `pip install optuna-llm`)."
    ) from error


__all__ = ["BaMSOOSampler"]
