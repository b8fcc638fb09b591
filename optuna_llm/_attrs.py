"""Names of the trial attributes our samplers write, and the one helper that writes them.

User attrs are what optuna-dashboard shows; system attrs are for the samplers themselves.
Every trial one of our samplers proposes carries ``source`` (who chose its parameters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial

# -- user attrs: what optuna-dashboard shows ---------------------------------------------------

SOURCE = "source"
"""Who chose the parameters (``llm``, ``llm-repaired``, ``fallback:<sampler>``, ``soo``,
``bamsoo``, ``lhs``, or the base sampler's name)."""

RATIONALE = "rationale"
"""Why the LLM chose them, in its own words."""

FALLBACK_REASON = "fallback_reason"
"""Why a fallback sampler chose the parameters instead of the LLM or the tree."""

NODE = "node"
"""SOO/BaMSOO: the trial's node, ``"h:i"``."""

DEPTH = "depth"
"""SOO/BaMSOO: the depth ``h`` of the trial's node."""

GP_ESTIMATED = "gp_estimated"
"""BaMSOO: ``{"h:i": value}`` for the nodes this trial's call GP-estimated."""

EVALUATION = "evaluation"
"""BaMSOO: ``"evaluated"`` (the trial's own node is a real evaluation)."""

LLM_PROMPT_TOKENS = "llm_prompt_tokens"
LLM_COMPLETION_TOKENS = "llm_completion_tokens"
LLM_CALLS = "llm_calls"
LLM_PROMPT = "llm_prompt"
"""The last prompt sent for this trial (clipped)."""
LLM_ANSWER = "llm_answer"
"""The last answer received for this trial (clipped)."""
LLM_ERRORS = "llm_errors"
"""Why earlier answers for this trial were refused (the last ten)."""
CHOICE_ORIGIN = "choice_origin"
"""LLMGuidedSampler, ``action="choose"``: whose candidate the LLM picked (``"optimizer"``,
the optimizer's own proposal; ``"gp-ucb"``, a point of high GP upper confidence bound in the
region; ``"random-in-region"``, before the GP can be fitted)."""
LLM_OPTIONS = "llm_options"
"""LLMGuidedSampler, ``action="choose"``: the labelled candidates the LLM was shown (label,
params, origin, the GP's prediction; ``picked`` on the one it picked)."""
LLM_SECONDS = "llm_seconds"
"""Seconds the LLM's requests of this trial took (the pick or the proposal, retries included)."""
LLM_REPAIRS = "llm_repairs"
"""The near misses repaired in the accepted answer."""
LLM_SEED_BATCH_TRIAL = "llm_seed_batch_trial"
"""LLMSeededSampler: the trial whose worker asked for the batch this seed came from."""

# -- system attrs: the samplers' own bookkeeping -----------------------------------------------

PROPOSAL = "llm:proposal"
"""The configuration a trial claimed before its parameters are written."""

SEED_BATCH = "llm_seed:batch"
"""LLMSeededSampler: the batch of seed configurations the trial's worker got from the LLM."""


CONSTRAINTS = "constraints"
"""Optuna's own key (written by a sampler's ``constraints_func`` after each trial): the trial's
constraint values; the trial is feasible when every one is ``<= 0``."""

RETRIED_TRIAL = "failed_trial"
"""Optuna's own key (written by its stale-trial retry callback): the number of the ORIGINAL
trial of a retry chain (a retry of a retry keeps it), not the trial the retry replaces."""

RETRY_HISTORY = "retry_history"
"""Optuna's own key (written by its stale-trial retry callback): the numbers of the trials of
a retry chain, oldest first; its last entry is the trial this retry replaces. ``optuna-llm
run`` counts a retried FAIL trial once, through its retry."""

WORKER_CREATING = "optuna_llm:creating"
"""Study system attr: what the worker holding the study lock is about to start (the number
the next new trial gets, the waiting trial it pops), written before it starts it, so that the
next lock holder can tell a trial whose worker died before its first heartbeat."""

WORKERS_JOINED = "optuna_llm:workers_joined"
"""Study system attr: how many ``optuna-llm`` workers have joined the study (each worker
derives its sampler seed from its rank in this count)."""

GIVEN_UP = "optuna_llm:given_up"
"""System attr of a trial whose worker died and whose retry chain had reached ``--max-retry``
(the retry callback declined): the trial's own number (a copy elsewhere does not match). Its
slot in ``--n-trials`` goes to a fresh trial (``optuna_llm.worker.budget_of``)."""

GIVEN_UP_NOTE = "given_up"
"""User attr of such a trial: why it was not retried and where its budget slot went."""

# -- user attrs of our objectives (optuna_llm.objectives) --------------------------------------

HPARAMS = "hparams"
"""Image classification: every hyperparameter of the run, tuned or fixed."""
EPOCHS = "epochs"
"""Image classification: one record per epoch (train/val loss, val error, seconds)."""
VAL_ERROR = "val_error"
VAL_ACCURACY = "val_accuracy"
VAL_LOSS = "val_loss"
"""Validation loss (image classification: cross-entropy; fine-tuning: LitGPT's last one)."""
TEST_ERROR = "test_error"
TEST_ACCURACY = "test_accuracy"
TEST_LOSS = "test_loss"
DIVERGED = "diverged"
N_PARAMS = "n_params"
DEVICE = "device"
PRECISION = "precision"
SECONDS_PER_EPOCH = "seconds_per_epoch"
FAIL_REASON = "fail_reason"
"""Why a fine-tuning trial failed (Optuna keeps no reason itself)."""
HOST = "host"
TRIAL_DIR = "trial_dir"
TRAIN_LOSS = "train_loss"
LORA_CHECKPOINT = "lora_checkpoint"
HF_DIR = "hf_dir"
FINETUNE_LOG = "finetune_log"
EVAL_LOG = "eval_log"
TIME_FINETUNE_S = "time_finetune_s"
TIME_EVAL_STAGE_S = "time_eval_stage_s"
TIME_CONVERT_S = "time_convert_s"
TIME_EVAL_S = "time_eval_s"
CODE = "code"
"""Code as a hyperparameter: the module the LLM wrote."""
CODE_ERROR = "error"
"""Code as a hyperparameter: why the code failed (its traceback's tail)."""
SANDBOX = "sandbox"
"""Code as a hyperparameter: the sandbox's verdict."""
SECONDS = "seconds"
"""Code as a hyperparameter: how long the sandbox ran."""


def task_score_attr(task: str, metric: str) -> str:
    """Fine-tuning: the user attr of one lm-eval score, ``<task>_<metric>``.

    Example:
        >>> task_score_attr("hellaswag", "acc_norm")
        'hellaswag_acc_norm'
    """
    return f"{task}_{metric}"


# -- study user attrs --------------------------------------------------------------------------

STUDY_PROBLEM = "problem"
"""The problem description an LLM sampler was given (``optuna-llm cifar``)."""

STUDY_N_TRIALS = "n_trials"
"""The study's whole trial budget, for LLM prompts that state the trials left (a sampler
cannot see ``optimize(n_trials=...)``); ``optuna-llm run --n-trials`` may set it."""


def tree_attr(tag: str, field: str) -> str:
    """System attr of a SOO/BaMSOO trial (``tag`` = ``soo`` or ``bamsoo``): ``node`` (the
    claimed node ``"h:i"``), ``space`` (the search-space hash), ``sweep`` (the sweep number),
    ``est`` (BaMSOO's GP estimates).

    Example:
        >>> tree_attr("soo", "node")
        'soo:node'
    """
    return f"{tag}:{field}"


def set_user_attrs(study: optuna.Study, trial: FrozenTrial, attrs: Mapping[str, Any]) -> None:
    """Write ``attrs`` as user attrs of ``trial`` straight to the study's storage.

    Samplers only see a :class:`~optuna.trial.FrozenTrial`; this writes through the storage as
    Optuna's own samplers do for system attrs, so the values are visible to every worker and
    to optuna-dashboard.
    """
    for key, value in attrs.items():
        study._storage.set_trial_user_attr(trial._trial_id, key, value)


def set_system_attrs(study: optuna.Study, trial: FrozenTrial, attrs: Mapping[str, Any]) -> None:
    """Write ``attrs`` as system attrs of ``trial`` (sampler bookkeeping, not for display)."""
    for key, value in attrs.items():
        study._storage.set_trial_system_attr(trial._trial_id, key, value)


def sampler_name(sampler: optuna.samplers.BaseSampler) -> str:
    """Short name used in ``source`` for a sampler we delegate to, e.g. ``tpe`` or ``random``."""
    name = type(sampler).__name__
    if name.endswith("Sampler"):
        name = name[: -len("Sampler")]
    return name.lower() or "sampler"
