"""scripts/llm_pick_signal.py: the pick questions read from the kept exchange cache, the
rotations that put every candidate under every label, and the rank score (no model needed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "docs/results/llm-benchmark-cache.jsonl"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "llm_pick_signal", ROOT / "scripts/llm_pick_signal.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not CACHE.exists(), reason="the kept exchange cache is not in this checkout")
def test_questions_parse_and_rotate() -> None:
    script = _script()
    first = next(script.questions(CACHE))
    assert first.labels == ["A", "B", "C", "D"]
    assert len(first.configs) == 4 and len(first.gp_mean) == 4
    assert first.task.startswith(("hpobench/", "bbob/"))
    # Every candidate under every label once over the 4 rotations, the prompt rewritten alike.
    seen: dict[int, set[str]] = {i: set() for i in range(4)}
    for shift in range(4):
        q = script.rotated(first, shift)
        rows = [r for r in q.messages[-1]["content"].splitlines() if script._CANDIDATE.match(r)]
        for slot, row in enumerate(rows):
            original = first.configs.index(q.configs[slot])
            seen[original].add(row[0])
            assert row.startswith(f"{q.labels[slot]}: ")
    assert all(labels == {"A", "B", "C", "D"} for labels in seen.values())
    assert script.rotated(first, 0).messages == first.messages
    # The true regret of a candidate is the task's noiseless one, the same on every call.
    value = script.true_regret(first.task, first.configs[0])
    assert value >= 0 and value == script.true_regret(first.task, first.configs[0])


def test_rank_of() -> None:
    script = _script()
    assert script.rank_of([0.1, 0.2, 0.3, 0.4], 0) == 0.0
    assert script.rank_of([0.1, 0.2, 0.3, 0.4], 3) == 1.0
    assert script.rank_of([0.2, 0.2, 0.3, 0.4], 0) == pytest.approx(1 / 6)
