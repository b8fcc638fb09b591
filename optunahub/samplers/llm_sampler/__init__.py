"""LLMSampler from optuna-llm (https://hub.optuna.org/samplers/llm_sampler/)."""

from __future__ import annotations


try:
    from optuna_llm.samplers import LLMSampler
except ModuleNotFoundError as error:
    if error.name != "optuna_llm":
        raise
    raise ModuleNotFoundError(
        "samplers/llm_sampler re-exports LLMSampler from the optuna-llm package, which is not "
        "installed. Install it with `pip install -r "
        "https://hub.optuna.org/samplers/llm_sampler/requirements.txt` (or `pip install optuna-llm`)."
    ) from error


__all__ = ["LLMSampler"]
