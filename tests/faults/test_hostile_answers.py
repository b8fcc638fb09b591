"""A slice of the hostile-answer corpus (tests/helpers/hostile.py; the full 10,000 run by
scripts/hostile_answers.py): read by the real proposer/validator, and through the scripted
server into a real LLMSampler study. Goals: no crash, no out-of-space value accepted, and each
answer classed as expected where that is defined."""

from __future__ import annotations

import itertools
from collections import Counter

import optuna
import pytest
from optuna.distributions import FloatDistribution

from optuna_llm.llm.validate import InvalidAnswer, validate_value
from tests.helpers.hostile import (
    SPACES,
    HostileAnswer,
    Outcome,
    check_params,
    iter_corpus,
    read_directly,
    run_server_pass,
)

optuna.logging.set_verbosity(optuna.logging.ERROR)

SLICE = 300


@pytest.fixture(scope="module")
def direct() -> list[tuple[HostileAnswer, Outcome]]:
    return [(a, read_directly(a)) for a in itertools.islice(iter_corpus(seed=0), SLICE)]


def test_the_corpus_is_seeded_labelled_and_its_intended_values_are_valid() -> None:
    first = [a.text for a in iter_corpus(seed=0, n=200)]
    assert first == [a.text for a in iter_corpus(seed=0, n=200)]
    assert first != [a.text for a in iter_corpus(seed=1, n=200)]
    answers = list(iter_corpus(seed=0, n=2000))
    assert {a.space for a in answers} == set(SPACES)
    assert {a.expected for a in answers} == {"accept", "repair", "refuse", None}
    kinds = {a.kind for a in answers}
    for family in ("truncated", "nested", "huge", "wrong_type", "unicode", "nan_inf",
                   "duplicate_key", "far_out_of_range", "near_out_of_range", "injection",
                   "batch"):  # fmt: skip
        assert any(family in k for k in kinds), family
    for a in answers:  # the generator's own promise: what a correct reading yields is valid
        for config in a.intended or []:
            assert check_params(config, SPACES[a.space]) == ([], []), (a.kind, config)


def test_no_out_of_space_value_is_accepted(direct: list[tuple[HostileAnswer, Outcome]]) -> None:
    bad = [(a.kind, o.out_of_space) for a, o in direct if o.out_of_space]
    assert bad == []
    assert [(a.kind, o.error) for a, o in direct if o.intended_mismatch] == []


def test_no_answer_crashes_the_reader(direct: list[tuple[HostileAnswer, Outcome]]) -> None:
    crashes = Counter((a.kind, o.error) for a, o in direct if o.observed == "crash")
    assert crashes == Counter()


def test_each_answer_is_classed_as_expected(direct: list[tuple[HostileAnswer, Outcome]]) -> None:
    wrong = Counter(
        (a.kind, a.expected, o.observed)
        for a, o in direct
        if a.expected is not None and a.expected != o.observed
    )
    assert wrong == Counter()


def test_through_the_scripted_server_no_study_crashes() -> None:
    answers = [a for a in iter_corpus(seed=1, n=200) if a.n_configs == 1 and a.space == "float"]
    result = run_server_pass(answers)
    assert result.trials == len(answers) == result.requests  # one request per trial
    outcomes = Counter(o.observed for o in result.outcomes)
    assert outcomes["accept"] and outcomes["repair"] and outcomes["refuse"]
    assert [
        (a.kind, o.out_of_space)
        for a, o in zip(answers, result.outcomes, strict=True)
        if o.out_of_space
    ] == []
    assert [o.error for o in result.outcomes if o.observed == "crash"] == []


def test_a_huge_integer_literal_is_an_invalid_answer() -> None:
    with pytest.raises(InvalidAnswer):
        validate_value(int("9" * 400), FloatDistribution(0.0, 1.0))
