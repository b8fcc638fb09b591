"""Answer parsing, validation and repair, on hand-written answers."""

from __future__ import annotations

import math

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from optuna_llm.llm.schema import answer_schema
from optuna_llm.llm.validate import (
    InvalidAnswer,
    config_from_answer,
    extract_json,
    validate_config,
    validate_value,
)

SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "layers": IntDistribution(1, 9, step=2),
    "dropout": FloatDistribution(0.0, 0.5, step=0.1),
    "opt": CategoricalDistribution(["adam", "sgd"]),
    "flag": CategoricalDistribution([True, False]),
    "act": CategoricalDistribution([None, "relu", 1, 2.5]),
}


def test_extract_json_from_fenced_or_chatty_text() -> None:
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Sure!\n```json\n{"a": 2}\n```\nGood luck') == {"a": 2}
    assert extract_json('I propose {"config": {"a": 3}} as next.') == {"config": {"a": 3}}
    with pytest.raises(InvalidAnswer, match="not valid JSON"):
        extract_json("no json here")
    with pytest.raises(InvalidAnswer):
        extract_json("{" * 100_000)  # huge and broken: an error, not a crash


def test_valid_config_is_unchanged() -> None:
    raw = {"lr": 0.001, "layers": 3, "dropout": 0.2, "opt": "sgd", "flag": False, "act": None}
    checked = validate_config(raw, SPACE)
    assert checked.params == raw
    assert checked.repairs == []


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("lr", 0.102, 0.1),  # clipped: 2 % of the width above, and a hair in log terms
        ("lr", "1e-3", 0.001),  # coerced
        ("layers", 4, 5),  # snapped to step 2 from 1 (4 -> 5 rounds half to even on 1.5)
        ("layers", 2.9, 3),
        ("layers", 9.3, 9),  # 3.75 % of the width above: clipped
        ("dropout", 0.23, 0.2),
        ("opt", "SGD", "sgd"),
        ("flag", "true", True),
        ("flag", "False", False),
        ("act", "null", None),
        ("act", "2.5", 2.5),
        ("act", 1.0, 1),
    ],
)
def test_near_misses_are_repaired(name: str, value: object, expected: object) -> None:
    repaired, note = validate_value(value, SPACE[name])
    assert note
    assert repaired == expected and type(repaired) is type(expected)


def test_int_repair_lands_on_grid() -> None:
    for raw in [0.9, 1, 2, 3.4, 4, 7.6, 8, 9, 9.2]:
        value, _ = validate_value(raw, SPACE["layers"])
        assert value in (1, 3, 5, 7, 9)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lr", 1e15),  # issue 16: was clipped to 0.1 and stored as the LLM's choice
        ("lr", 0.2),  # 100 % of the width above
        ("lr", 0.0),  # not positive on a log scale
        ("lr", -0.001),
        ("layers", 100),
        ("layers", -3),
        ("dropout", 0.7),
        ("layers", int("9" * 400)),  # float() of it raised OverflowError
        ("lr", -int("9" * 400)),
    ],
)
def test_far_misses_are_refused_with_the_range(name: str, value: object) -> None:
    with pytest.raises(InvalidAnswer, match="choose a value in"):
        validate_value(value, SPACE[name])


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), "abc", None, [1], {"a": 1}, True, "x" * 100_000]
)
def test_unusable_numbers_are_errors(value: object) -> None:
    with pytest.raises(InvalidAnswer) as info:
        validate_value(value, SPACE["lr"])
    assert len(str(info.value)) < 400  # a 100 kB string is not echoed back whole


def test_unknown_choice_and_missing_keys_are_errors() -> None:
    with pytest.raises(InvalidAnswer, match="not one of the choices"):
        validate_value("rmsprop", SPACE["opt"])
    with pytest.raises(InvalidAnswer, match="'layers' is missing"):
        validate_config({"lr": 0.01, "dropout": 0.1, "opt": "adam", "flag": True, "act": 1}, SPACE)
    with pytest.raises(InvalidAnswer):
        validate_value("", SPACE["opt"])


def test_extra_keys_are_ignored_and_reported() -> None:
    raw = {
        "lr": 0.01,
        "layers": 1,
        "dropout": 0.0,
        "opt": "adam",
        "flag": True,
        "act": 1,
        "momentum": 0.9,
    }
    checked = validate_config(raw, SPACE)
    assert "momentum" not in checked.params
    assert any("momentum" in r for r in checked.repairs)


def test_config_from_answer_accepts_wrapped_and_bare() -> None:
    assert config_from_answer({"rationale": "r", "config": {"a": 1}}) == {"a": 1}
    assert config_from_answer({"a": 1}) == {"a": 1}
    with pytest.raises(InvalidAnswer):
        config_from_answer([1, 2])


def test_schema_lists_every_parameter() -> None:
    schema = answer_schema(SPACE)
    config = schema["properties"]["config"]
    assert config["required"] == list(SPACE)
    assert config["properties"]["layers"] == {"type": "integer", "minimum": 1, "maximum": 9}
    assert config["properties"]["act"] == {"enum": [None, "relu", 1, 2.5]}
    batch = answer_schema(SPACE, n_configs=4)["properties"]["configs"]
    assert batch["minItems"] == batch["maxItems"] == 4
    assert math.isfinite(config["properties"]["lr"]["maximum"])
