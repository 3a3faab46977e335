"""What every LLM agent shares, tested with the offline model: no network, no key."""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from miniagents import Message, MiniAgents
from miniagents.ext.llm import AssistantMessage, LLMCall, SystemMessage, TokenUsage, UserMessage
from miniagents.ext.llm._translate import translate_sdk_error
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.errors import (
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
)
from miniagents.ext.llm.llm_common import prompt_of
from miniagents.ext.llm.llm_logger import render_llm_log
from miniagents.ext.llm.offline import OfflineMessage, create_offline_agent, offline_agent
from miniagents.ext.llm.openai import create_openai_agent, openai_agent
from miniagents.messages import MessageTuple


async def test_the_offline_agent_streams_a_deterministic_reply_token_by_token() -> None:
    async with MiniAgents():
        reply = offline_agent.inquire("Hello there", token_delay=0.0)
        promises = [promise async for promise in reply]
        assert len(promises) == 1
        tokens = [token async for token in promises[0]]
        message = await promises[0]
    assert len(tokens) > 5
    assert "".join(tokens) == message.text
    assert message.text is not None
    assert message.text.endswith("You said: Hello there")
    assert isinstance(message, OfflineMessage)
    assert isinstance(message, AssistantMessage)
    assert message.role == "assistant"
    assert message.model == "offline"
    assert message.agent_alias == "OFFLINE_AGENT"
    assert message.finish_reason == "stop"
    assert message.usage == TokenUsage(input_tokens=2, output_tokens=len(message.text.split()))


async def test_metadata_known_before_the_text_is_there_at_once() -> None:
    async with MiniAgents():
        agent = create_offline_agent(model="m-1", token_delay=0.05, reply="slow words here")
        first = await anext(aiter(agent.inquire("hi")))
        assert first.metadata["model"] == "m-1"
        assert first.metadata["agent_alias"] == "OFFLINE_AGENT"
        assert not first.done
        assert (await first).text == "slow words here"


async def test_the_first_token_arrives_before_the_reply_is_complete() -> None:
    async with MiniAgents():
        reply = offline_agent.inquire("x", reply="one two three four", token_delay=0.05)
        promise = await anext(aiter(reply))
        start = time.perf_counter()
        first = await anext(aiter(promise))
        assert first == "one "
        assert time.perf_counter() - start < 0.15
        assert not promise.done
        await reply


@pytest.mark.parametrize(
    ("agent_stream", "call_stream", "default", "streams"),
    [
        (None, None, None, True),
        (None, None, False, False),
        (False, None, True, False),
        (True, None, False, True),
        (True, False, True, False),
        (None, True, False, True),
    ],
)
async def test_streaming_is_switchable_per_agent_per_call_and_globally(
    agent_stream: bool | None, call_stream: bool | None, default: bool | None, streams: bool
) -> None:
    agent = offline_agent.fork(reply="a b c d", token_delay=0.0)
    if agent_stream is not None:
        agent = agent.fork(stream=agent_stream)
    async with MiniAgents(stream_llm_tokens_by_default=default):
        reply = (
            agent.inquire("x") if call_stream is None else agent.inquire("x", stream=call_stream)
        )
        tokens = [token async for token in await anext(aiter(reply))]
    assert tokens == (["a ", "b ", "c ", "d"] if streams else ["a b c d"])


async def test_scripted_replies_a_text_an_iterator_or_a_function() -> None:
    def reply_to(call: LLMCall) -> str:
        return f"{call.model}: {call.system} / {call.messages}"

    async with MiniAgents():
        texts = iter(["first", "second"])
        scripted = offline_agent.fork(reply=texts, token_delay=0.0)
        assert str(await scripted.inquire("a")) == "first"
        assert str(await scripted.inquire("b")) == "second"
        with pytest.raises(LLMConfigurationError, match="used up"):
            await scripted.inquire("c")
        computed = await offline_agent.inquire(
            [SystemMessage(text="sys"), "q", Message(text="a", role="assistant")],
            reply=reply_to,
            system="be brief",
            model="m",
            token_delay=0.0,
        )
    assert str(computed) == "m: be brief\n\nsys / (('user', 'q'), ('assistant', 'a'))"


def test_the_prompt_takes_roles_from_messages_and_system_from_system_messages() -> None:
    messages = MessageTuple(
        [
            SystemMessage(text="rules"),
            UserMessage(text="hi"),
            Message(text="plain"),
            Message(text="earlier answer", role="assistant"),
        ]
    )
    system, conversation = prompt_of(messages, "first")
    assert system == "first\n\nrules"
    assert conversation == (("user", "hi"), ("user", "plain"), ("assistant", "earlier answer"))
    assert prompt_of(MessageTuple([UserMessage(text="x")]), None) == (None, (("user", "x"),))


@pytest.mark.parametrize("agent", [openai_agent, anthropic_agent], ids=["openai", "anthropic"])
async def test_a_missing_model_is_a_clear_error(agent: object) -> None:
    assert agent is openai_agent or agent is anthropic_agent
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await agent.inquire("hi")
    text = str(raised.value)
    assert "needs a model" in text
    assert "fork(model=...)" in text
    assert isinstance(raised.value, ValueError)


def test_create_functions_are_fork_with_arguments_bound() -> None:
    agent = create_openai_agent(model="gpt-test", temperature=0.5)
    assert agent.func is openai_agent.func
    assert agent.alias == "OPENAI_AGENT"
    assert repr(agent) == "<MiniAgent OPENAI_AGENT bound={'model': 'gpt-test', 'temperature': 0.5}>"


@pytest.fixture
def without_sdk(request: pytest.FixtureRequest) -> Iterator[str]:
    name = str(request.param)
    saved = sys.modules.get(name)
    sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        yield name
    finally:
        if saved is not None:
            sys.modules[name] = saved


@pytest.mark.parametrize("without_sdk", ["openai", "anthropic"], indirect=True)
async def test_a_missing_sdk_is_an_import_error_with_the_install_hint(without_sdk: str) -> None:
    agent = openai_agent if without_sdk == "openai" else anthropic_agent
    async with MiniAgents():
        with pytest.raises(ImportError, match=rf'pip install "miniagents\[{without_sdk}\]"'):
            await agent.inquire("hi", model="m")


async def test_the_llm_logger_writes_a_markdown_file_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with MiniAgents(llm_logger_agent=True):
        await offline_agent.inquire(
            [SystemMessage(text="be nice"), "Hello"], reply="Hi!", token_delay=0.0
        )
        await offline_agent.inquire("Again", reply="Bye!", token_delay=0.0)
    files = sorted((tmp_path / "llm_logs").glob("*_OFFLINE_AGENT.md"))
    assert len(files) == 2
    first = files[0].read_text(encoding="utf-8")
    assert first.startswith(
        "# LLM call of OFFLINE_AGENT\n\n## SYSTEM\n\nbe nice\n\n## USER\n\nHello"
    )
    assert "## RESPONSE" in first
    assert "- finish_reason: stop" in first
    assert first.rstrip().endswith("Hi!")
    assert files[1].read_text(encoding="utf-8").rstrip().endswith("Bye!")


async def test_no_log_files_without_the_logger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with MiniAgents():
        await offline_agent.inquire("Hello", token_delay=0.0)
    assert not (tmp_path / "llm_logs").exists()


def test_a_log_shows_every_prompt_message_then_the_response() -> None:
    text = render_llm_log(
        (Message(text="q", role="user"), AssistantMessage(text="a", model="m")), "AGENT"
    )
    assert text == (
        "# LLM call of AGENT\n\n## USER\n\nq\n\n## RESPONSE\n\n- role: assistant\n- model: m\n\na\n"
    )


def _sdk_errors(module: object, base: type[BaseException]) -> list[type[BaseException]]:
    return [
        value
        for value in list(vars(module).values())
        if inspect.isclass(value) and issubclass(value, base)
    ]


@pytest.mark.parametrize(
    ("module", "base", "provider"),
    [(openai, openai.OpenAIError, "OpenAI"), (anthropic, anthropic.AnthropicError, "Anthropic")],
    ids=["openai", "anthropic"],
)
def test_every_sdk_error_is_translated_into_an_llm_error(
    module: object, base: type[BaseException], provider: str
) -> None:
    errors = _sdk_errors(module, base)
    assert len(errors) > 10
    for kind in errors:
        error = kind.__new__(kind)
        translated = translate_sdk_error(error, provider, base)
        assert isinstance(translated, LLMError), kind
        assert translated.__cause__ is error
        assert provider in str(translated)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("RateLimitError", LLMRateLimitError),
        ("InternalServerError", LLMServerError),
        ("APITimeoutError", LLMTimeoutError),
        ("APIConnectionError", LLMConnectionError),
    ],
)
def test_the_main_sdk_errors_get_their_own_llm_error(name: str, expected: type[LLMError]) -> None:
    for module, base in ((openai, openai.OpenAIError), (anthropic, anthropic.AnthropicError)):
        kind = getattr(module, name)
        translated = translate_sdk_error(kind.__new__(kind), "P", base)
        assert type(translated) is expected


def test_other_errors_are_left_as_they_are() -> None:
    error = KeyError("mine")
    assert translate_sdk_error(error, "OpenAI", openai.OpenAIError) is error
    malformed = translate_sdk_error(
        __import__("json").JSONDecodeError("bad", "{", 0), "OpenAI", openai.OpenAIError
    )
    assert isinstance(malformed, LLMResponseError)


async def test_cancelling_the_consumer_stops_the_call() -> None:
    async with MiniAgents():
        reply = offline_agent.inquire("x", reply="many words " * 100, token_delay=0.05)
        with pytest.raises(asyncio.TimeoutError):  # TimeoutError from Python 3.11
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0.01)
        assert reply.done
