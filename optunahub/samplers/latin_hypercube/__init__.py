"""LatinHypercubeSampler from optuna-llm (https://hub.optuna.org/samplers/latin_hypercube/)."""

from __future__ import annotations


try:
    from optuna_llm.samplers import LatinHypercubeSampler
except ModuleNotFoundError as error:
    if error.name != "optuna_llm":
        raise
    raise ModuleNotFoundError(
        "samplers/latin_hypercube re-exports LatinHypercubeSampler from the optuna-llm package, which is not "
        "installed. Install it with `pip install -r "
        "https://hub.optuna.org/samplers/latin_hypercube/requirements.txt` (or `pip install optuna-llm`)."
    ) from error


__all__ = ["LatinHypercubeSampler"]
