"""One name a sampler, shared by the CLI (``--sampler``), the benchmark harness and examples."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna


def _llm(seed: int | None, **kw: Any) -> optuna.samplers.BaseSampler:
    from optuna_llm.samplers._llm import LLMSampler

    return LLMSampler(seed=seed, **kw)


def _guided(llm_share: float | None = None) -> Callable[..., optuna.samplers.BaseSampler]:
    def build(seed: int | None, **kw: Any) -> optuna.samplers.BaseSampler:
        from optuna_llm.samplers._llm_guided import LLMGuidedSampler

        llm = kw.pop("llm", None)  # what the bench harness gives the LLM samplers
        if isinstance(llm, Mapping):
            for key, value in llm.items():
                kw.setdefault(key, value)
        elif llm is not None:
            kw.setdefault("client", getattr(llm, "_client", llm))
        if llm_share is not None:  # the optimizer alone: no LLM, so no LLM settings
            for key in ("model", "base_url", "api_key", "cache", "client"):
                kw.pop(key, None)
            kw["llm_share"] = llm_share
        return LLMGuidedSampler(seed=seed, **kw)

    return build


def _seeded(base: str) -> Callable[..., optuna.samplers.BaseSampler]:
    def build(seed: int | None, **kw: Any) -> optuna.samplers.BaseSampler:
        from optuna_llm.samplers._seeded import LLMSeededSampler

        n_seed_trials = kw.pop("n_seed_trials", 10)
        llm = kw.pop("llm", None)
        return LLMSeededSampler(
            make_sampler(base, seed=seed), n_seed_trials=n_seed_trials, llm=llm, seed=seed, **kw
        )

    return build


def _soo(seed: int | None, **kw: Any) -> optuna.samplers.BaseSampler:
    from optuna_llm.samplers._soo import SOOSampler

    return SOOSampler(seed=seed, **kw)


def _bamsoo(seed: int | None, **kw: Any) -> optuna.samplers.BaseSampler:
    from optuna_llm.samplers._bamsoo import BaMSOOSampler

    return BaMSOOSampler(seed=seed, **kw)


def _lhs(seed: int | None, **kw: Any) -> optuna.samplers.BaseSampler:
    from optuna_llm.samplers._lhs import LatinHypercubeSampler

    return LatinHypercubeSampler(kw.pop("n_samples", 50), seed=seed, **kw)


def _lhs_gp(seed: int | None, **kw: Any) -> optuna.samplers.BaseSampler:
    # The slides' BO-GP: a GP after a 10-point Latin hypercube design.
    from optuna_llm.samplers._lhs import LatinHypercubeSampler

    n_init = kw.pop("n_startup_trials", 10)
    return optuna.samplers.GPSampler(
        seed=seed,
        n_startup_trials=n_init,
        independent_sampler=LatinHypercubeSampler(n_init, seed=seed),
        **kw,
    )


SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "random": lambda seed, **kw: optuna.samplers.RandomSampler(seed=seed, **kw),
    "tpe": lambda seed, **kw: optuna.samplers.TPESampler(seed=seed, **kw),
    "gp": lambda seed, **kw: optuna.samplers.GPSampler(seed=seed, **kw),
    "qmc": lambda seed, **kw: optuna.samplers.QMCSampler(seed=seed, **kw),
    "cmaes": lambda seed, **kw: optuna.samplers.CmaEsSampler(seed=seed, **kw),
    "lhs": _lhs,
    "lhs-gp": _lhs_gp,
    "soo": _soo,
    "bamsoo": _bamsoo,
    "llm": _llm,
    "llm-guided": _guided(),
    "guided-base": _guided(llm_share=0.0),
    "llm-seeded": _seeded("tpe"),
    "llm-seeded-tpe": _seeded("tpe"),
    "llm-seeded-gp": _seeded("gp"),
}


LLM_SAMPLERS = ("llm", "llm-seeded", "llm-seeded-tpe", "llm-seeded-gp", "llm-guided")
"""The names in :data:`SAMPLERS` whose samplers call an LLM."""

GUIDED_SAMPLERS = ("llm-guided", "guided-base")
"""LLMGuidedSampler with and without its LLM (``guided-base``: the optimizer alone, the same
start design and seeds): both take ``problem``, ``search_space`` and ``n_trials``."""


def make_sampler(
    name: str, *, seed: int | None = None, **kwargs: Any
) -> optuna.samplers.BaseSampler:
    """Build a sampler from its short name (``tpe``, ``soo``, ``llm``, ``lhs-gp``, ...).

    Example:
        >>> sampler = make_sampler("tpe", seed=0)
    """
    try:
        build = SAMPLERS[name]
    except KeyError:
        raise ValueError(
            f"Unknown sampler {name!r}. Choose one of: {', '.join(sorted(SAMPLERS))}."
        ) from None
    return build(seed, **kwargs)
