"""Optuna's sampler conformance suite on LLMSampler, through a real HTTP server on loopback
that answers every request with a random configuration valid for the request's schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)

from optuna_llm.samplers import LLMSampler
from tests.helpers.llm_servers import ScriptedOpenAIServer, random_valid_responder


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(random_valid_responder(seed=1)) as srv:
        yield srv


class _WithLLMSampler:
    @pytest.fixture
    def sampler(self, server: ScriptedOpenAIServer) -> Callable[[], LLMSampler]:
        return lambda: LLMSampler("conformance", base_url=server.base_url, seed=0)


class TestLLMSamplerBasic(_WithLLMSampler, BasicSamplerTestCase):
    pass


class TestLLMSamplerRelative(_WithLLMSampler, RelativeSamplerTestCase):
    pass


class TestLLMSamplerMultiObjective(_WithLLMSampler, MultiObjectiveSamplerTestCase):
    pass
