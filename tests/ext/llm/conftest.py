"""The fixtures of the tests that run one check on each wire format with the real SDKs.

``llm`` is each API in turn (OpenAI Chat Completions, Anthropic Messages, the Responses
API), ``client`` its real SDK client for the fake server. A test module with its own
``llm`` or ``client`` (another list of APIs, a client of its own) keeps its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from miniagents.testing import FakeLLMServer
from tests.ext.llm.test_llm_providers import ANTHROPIC, LLM, OPENAI, RESPONSES, SDKClient
from tests.fakes.fixtures import fake_llm  # noqa: F401


@pytest.fixture(params=[OPENAI, ANTHROPIC, RESPONSES], ids=["openai", "anthropic", "responses"])
def llm(request: pytest.FixtureRequest) -> LLM:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def client(llm: LLM, fake_llm: FakeLLMServer) -> AsyncIterator[SDKClient]:  # noqa: F811
    async with llm.client(fake_llm) as made:
        yield made
