"""Fixtures of the tool loop tests: each provider API, the fake server, an SDK client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from miniagents.testing import FakeLLMServer
from tests.ext.llm.test_llm_providers import ANTHROPIC, LLM, OPENAI, RESPONSES, SDKClient


@pytest.fixture(params=[OPENAI, ANTHROPIC, RESPONSES], ids=["openai", "anthropic", "responses"])
def llm(request: pytest.FixtureRequest) -> LLM:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server(fake_llm: FakeLLMServer) -> FakeLLMServer:
    return fake_llm


@pytest.fixture
async def client(llm: LLM, server: FakeLLMServer) -> AsyncIterator[SDKClient]:
    async with llm.client(server) as made:
        yield made
