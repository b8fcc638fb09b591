"""SOOSampler from optuna-llm (https://hub.optuna.org/samplers/soo/)."""

from __future__ import annotations


try:
    from optuna_llm.samplers import SOOSampler
except ModuleNotFoundError as error:
    if error.name != "optuna_llm":
        raise
    raise ModuleNotFoundError(
        "samplers/soo re-exports SOOSampler from the optuna-llm package, which is not "
        "installed. Install it with `pip install -r "
        "https://hub.optuna.org/samplers/soo/requirements.txt` (or `pip install optuna-llm`)."
    ) from error


__all__ = ["SOOSampler"]
