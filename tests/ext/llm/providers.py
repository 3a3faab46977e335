"""What the tests of the LLM providers share: each API under test, its SDK client, asking.

``LLM`` is one provider API (OpenAI Chat Completions, Anthropic Messages, the Responses
API); the fixtures ``llm`` (each API in turn), ``server`` (the fake server) and ``client``
(the API's real SDK client for it) are imported by the test modules and conftests that use them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, cast

import anthropic
import openai
import pytest

from miniagents import Message, MessageSequencePromise, MessageType, MiniAgent
from miniagents.ext.llm import AssistantMessage
from miniagents.ext.llm.anthropic import AnthropicMessage, anthropic_agent
from miniagents.ext.llm.errors import LLMError
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import fake_llm  # noqa: F401

# -- the two providers ---------------------------------------------------------------------

SDKClient = openai.AsyncOpenAI | anthropic.AsyncAnthropic

WAIT = 10.0  # seconds: far more than anything here takes, so a hang fails instead of blocking


@dataclass(frozen=True)
class LLM:
    """One provider API under test: its agent, its SDK, and the words of its API."""

    name: Literal["openai", "anthropic", "responses"]
    label: str  # how its error messages name it
    agent: MiniAgent[...]
    message_class: type[AssistantMessage]
    alias: str
    model: str
    stop: str  # the finish reason of a reply that ended normally
    length: str  # the finish reason of a reply cut by max_tokens
    env: str  # the prefix of its environment variables

    @property
    def sdk(self) -> Literal["openai", "anthropic"]:
        """The SDK of the API: the Responses API is OpenAI's."""
        return "anthropic" if self.name == "anthropic" else "openai"

    def base_url(self, server: FakeLLMServer) -> str:
        return server.openai_base_url if self.sdk == "openai" else server.anthropic_base_url

    def client(self, server: FakeLLMServer, **options: Any) -> SDKClient:
        """A real SDK client for the fake server (``max_retries=2`` unless told)."""
        settings: dict[str, Any] = {
            "base_url": self.base_url(server),
            "api_key": "test",
            "max_retries": 2,
            **options,
        }
        if self.sdk == "openai":
            return openai.AsyncOpenAI(**settings)
        return anthropic.AsyncAnthropic(**settings)

    def pick(self, per_provider: tuple[Any, Any] | tuple[Any, Any, Any]) -> Any:
        """The item of ``(openai, anthropic, responses)`` for this API.

        Of a pair, the Responses API takes OpenAI's item (what the two OpenAI APIs share).
        """
        if self.name == "responses":
            return per_provider[2] if len(per_provider) == 3 else per_provider[0]
        return per_provider[0] if self.name == "openai" else per_provider[1]


OPENAI = LLM(
    name="openai",
    label="OpenAI",
    agent=openai_agent,
    message_class=OpenAIMessage,
    alias="OPENAI_AGENT",
    model="gpt-test",
    stop="stop",
    length="length",
    env="OPENAI",
)
ANTHROPIC = LLM(
    name="anthropic",
    label="Anthropic",
    agent=anthropic_agent,
    message_class=AnthropicMessage,
    alias="ANTHROPIC_AGENT",
    model="claude-test",
    stop="end_turn",
    length="max_tokens",
    env="ANTHROPIC",
)


RESPONSES = LLM(
    name="responses",
    label="OpenAI",
    agent=openai_agent.fork(api="responses"),
    message_class=OpenAIMessage,
    alias="OPENAI_AGENT",
    model="gpt-test",
    stop="completed",
    length="max_output_tokens",
    env="OPENAI",
)


@pytest.fixture(params=[OPENAI, ANTHROPIC, RESPONSES], ids=["openai", "anthropic", "responses"])
def llm(request: pytest.FixtureRequest) -> LLM:
    return cast(LLM, request.param)


@pytest.fixture
def server(fake_llm: FakeLLMServer) -> FakeLLMServer:  # noqa: F811
    return fake_llm


@pytest.fixture
async def client(llm: LLM, server: FakeLLMServer) -> AsyncIterator[SDKClient]:
    """The provider's SDK client for the fake server, closed after the test."""
    async with llm.client(server) as made:
        yield made


def ask(
    llm: LLM, client: SDKClient | None, messages: MessageType, **kwargs: Any
) -> MessageSequencePromise:
    """Inquire the provider's agent with the test model (and ``client``, if any)."""
    if client is not None:
        kwargs["async_client"] = client
    return llm.agent.inquire(messages, model=llm.model, **kwargs)


async def only_message(reply: MessageSequencePromise) -> Message:
    """The one message of an LLM agent's reply."""
    messages = await reply
    assert len(messages) == 1
    return messages[0]


async def collect_tokens(reply: MessageSequencePromise, tokens: list[str]) -> None:
    """Iterate the reply's messages and their tokens, keeping the tokens."""
    async for promise in reply:
        async for token in promise:
            tokens.append(token)


async def replay_tokens(
    reply: MessageSequencePromise, tokens: list[str], error: BaseException
) -> None:
    """Replay the reply's tokens after it failed; each message fails with ``error`` too."""
    async for promise in reply:
        with pytest.raises(LLMError) as from_message:
            await promise
        assert from_message.value is error
        async for token in promise:
            tokens.append(token)


async def tokens_then_error(
    reply: MessageSequencePromise, order: Literal["iterate", "await"]
) -> tuple[list[str], LLMError]:
    """The tokens a consumer gets before the error that ends the reply, and that error.

    ``iterate``: the consumer iterates the reply's messages and their tokens, then awaits
    the reply. ``await``: the consumer awaits the reply first, then replays the tokens.
    Both ways must give the same error, after the same tokens.
    """
    tokens: list[str] = []
    if order == "iterate":
        with pytest.raises(LLMError) as raised:
            await collect_tokens(reply, tokens)
        with pytest.raises(LLMError) as again:
            await reply
    else:
        with pytest.raises(LLMError) as raised:
            await reply
        with pytest.raises(LLMError) as again:
            await replay_tokens(reply, tokens, raised.value)
    assert again.value is raised.value
    return tokens, raised.value
