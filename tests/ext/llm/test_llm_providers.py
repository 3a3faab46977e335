"""The OpenAI and Anthropic agents over real HTTP, against the fake provider server.

The real SDK clients (openai 3.5x, anthropic 2.1x) talk to ``miniagents.testing`` on a
local port: nothing here touches the internet. Each test runs for every API where the
behaviour is shared: OpenAI Chat Completions, the OpenAI Responses API
(``openai_agent.fork(api="responses")``) and Anthropic Messages. Failures that the SDKs
retry are scripted with ``FAST_RETRY`` headers, so the retries are instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import anthropic
import httpx2
import openai
import pytest

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MiniAgent,
    MiniAgents,
    miniagent,
)
from miniagents.errors import StreamCancelledError
from miniagents.ext.llm import AssistantMessage, SystemMessage, TokenUsage, UserMessage
from miniagents.ext.llm.anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicOptions,
)
from miniagents.ext.llm.errors import (
    LLMAuthenticationError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMRequestError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
)
from miniagents.ext.llm.fallback import is_provider_failure
from miniagents.ext.llm.openai import OpenAIMessage
from miniagents.messages.image import ImagePart
from miniagents.promising.sentinels import DEFAULT
from miniagents.testing import FAST_RETRY, FakeLLMServer, ToolCall, manual_time, thinking_signature
from tests.ext.llm.providers import (
    ANTHROPIC,
    LLM,
    OPENAI,
    RESPONSES,
    WAIT,
    SDKClient,
    ask,
    only_message,
    tokens_then_error,
)
from tests.ext.llm.wire import response
from tests.fakes.fixtures import fake_llm  # noqa: F401


async def give_up_on(
    awaited: MessageSequencePromise | MessagePromise, server: FakeLLMServer
) -> None:
    """A consumer waits for ``awaited``; once the request has reached ``server``, it gives up."""
    waiting = asyncio.Event()

    async def consume() -> None:
        waiting.set()  # the rest of this step of the task starts the wait
        await awaited.aresolve()

    consumer = asyncio.ensure_future(consume())
    await server.wait_requests_async(1, WAIT)
    await waiting.wait()
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@miniagent
async def restream(ctx: InteractionContext) -> None:
    """Reply with each input message again, re-streamed token by token."""
    async for message in ctx.message_promises:
        ctx.reply(MessagePromise.from_observable(message.as_observable()))


@miniagent
async def forward(ctx: InteractionContext) -> None:
    """Reply with the input messages as they are."""
    ctx.reply(ctx.message_promises)


# -- streaming and metadata ----------------------------------------------------------------


async def test_tokens_arrive_one_by_one_through_a_chain_of_agents(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    # The server sends two tokens, then waits until the client has closed the connection:
    # so the first tokens can only have come through the chain while the reply was going on.
    server.reply(tokens=["One", " two", " three", " four"], hang_after=2)
    tokens: list[str] = []
    async with MiniAgents():
        reply = restream.inquire(ask(llm, client, "count to four"))
        promise = await anext(aiter(reply))
        async for token in promise:
            tokens.append(token)
            if len(tokens) == 2:
                break
        assert not server.requests[0].finished
        assert not promise.done
        await give_up_on(reply, server)  # on the rest
        assert await server.wait_disconnected_async(0, WAIT)
    assert tokens == ["One", " two"]
    assert server.requests[0].stream


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_the_reply_is_an_assistant_message_with_the_call_metadata(
    llm: LLM, client: SDKClient, server: FakeLLMServer, stream: bool
) -> None:
    server.reply(tokens=["Hel", "lo"], finish_reason="length", usage=(11, 2))
    async with MiniAgents():
        promise = await anext(aiter(ask(llm, client, "say hello", stream=stream)))
        assert promise.metadata["model"] == llm.model  # known before the text
        assert promise.metadata["agent_alias"] == llm.alias
        message = await promise
    assert type(message) is llm.message_class
    assert isinstance(message, AssistantMessage)
    assert message.text == "Hello"
    assert message.role == "assistant"
    assert message.model == llm.model
    assert message.agent_alias == llm.alias
    assert message.finish_reason == llm.length  # in the provider's own words
    assert message.usage is not None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 2)


async def test_the_finish_reason_of_a_normal_end(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(tokens=["Done."])
    async with MiniAgents():
        message = await only_message(ask(llm, client, "finish"))
    assert isinstance(message, AssistantMessage)
    assert message.finish_reason == llm.stop  # "stop" / "end_turn": not made uniform


async def test_a_forked_agent_names_its_replies_with_its_alias(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    writer = llm.agent.fork(alias="WRITER", model=llm.model, async_client=client)
    async with MiniAgents():
        message = await only_message(writer.inquire("write"))
    assert isinstance(message, llm.message_class)
    assert message.agent_alias == "WRITER"
    assert server.requests[0].json["model"] == llm.model


async def test_the_model_in_the_metadata_is_the_one_asked_for_not_the_one_answering(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    # Real services name a dated snapshot ("gpt-4o" -> "gpt-4o-2024-08-06"); the reply's
    # metadata keeps the model the agent asked for.
    server.reply(tokens=["hi"], model=f"{llm.model}-2024-01-01")
    async with MiniAgents():
        message = await only_message(ask(llm, client, "hi"))
    assert isinstance(message, AssistantMessage)
    assert message.model == llm.model


# -- the request ---------------------------------------------------------------------------


async def test_system_prompts_and_roles_reach_the_request(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    conversation: list[Message | str] = [
        SystemMessage(text="Answer in French."),
        "What is a cat?",
        Message(text="Un chat.", role="assistant"),
        "And a dog?",
    ]
    async with MiniAgents():
        await ask(llm, client, conversation, system="Be brief.")
    body = server.requests[0].json
    turns = [
        {"role": "user", "content": "What is a cat?"},
        {"role": "assistant", "content": "Un chat."},
        {"role": "user", "content": "And a dog?"},
    ]
    system = "Be brief.\n\nAnswer in French."  # system= first, then the SystemMessages
    if llm.name == "openai":
        assert body["messages"] == [{"role": "system", "content": system}, *turns]
        assert "system" not in body
    elif llm.name == "responses":
        assert body["instructions"] == system
        assert body["input"] == turns
    else:
        assert body["system"] == system
        assert body["messages"] == turns
    assert body["model"] == llm.model


async def test_without_a_system_prompt_none_is_sent(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    async with MiniAgents():
        await ask(llm, client, ["first", "second"])
    body = server.requests[0].json
    separate = [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}]
    # Anthropic's turns alternate: two user messages in a row are one turn, of two blocks
    merged = [
        {
            "role": "user",
            "content": [{"type": "text", "text": text} for text in ("first", "second")],
        }
    ]
    assert body[llm.pick(("messages", "messages", "input"))] == llm.pick((separate, merged))
    assert "system" not in body
    assert "instructions" not in body


OPENAI_OPTIONS: dict[str, Any] = {
    "max_tokens": 17,
    "max_completion_tokens": 30,
    "temperature": 0.25,
    "top_p": 0.5,
    "stop": ["END"],
    "seed": 3,
    "presence_penalty": 0.1,
    "frequency_penalty": -0.2,
    "logit_bias": {"1234": -100},
    "reasoning_effort": "low",
}
ANTHROPIC_OPTIONS: dict[str, Any] = {
    "max_tokens": 17,
    "temperature": 0.25,
    "top_p": 0.5,
    "top_k": 40,
    "stop_sequences": ["END"],
}
RESPONSES_OPTIONS: dict[str, Any] = {
    "max_tokens": 17,
    "temperature": 0.25,
    "top_p": 0.5,
    "reasoning_effort": "low",
}
RESPONSES_NAMES = {"max_tokens": "max_output_tokens", "reasoning_effort": "reasoning"}
"""The Responses API's names of options, where they are not the agent's."""
RESPONSES_VALUES = {"reasoning_effort": {"effort": "low"}}


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_every_typed_option_reaches_the_server_under_its_api_name(
    llm: LLM, client: SDKClient, server: FakeLLMServer, stream: bool
) -> None:
    # The seeds' inquire(..., max_tokens=1000, temperature=0.0) works with both SDKs; with
    # anthropic 2.x, whose messages.create() has no temperature, top_p nor top_k, those go
    # in the request body all the same.
    options = llm.pick((OPENAI_OPTIONS, ANTHROPIC_OPTIONS, RESPONSES_OPTIONS))
    names = RESPONSES_NAMES if llm.name == "responses" else {}
    values = RESPONSES_VALUES if llm.name == "responses" else {}
    async with MiniAgents():
        await ask(llm, client, "hi", stream=stream, **options)
        await ask(llm, client, "hi", stream=stream, max_tokens=1000, temperature=0.0)
    first, second = (request.json for request in server.requests)
    for name, value in options.items():
        assert first[names.get(name, name)] == values.get(name, value), name
    max_tokens = names.get("max_tokens", "max_tokens")
    assert (second[max_tokens], second["temperature"]) == (1000, 0.0)
    assert first.get("stream") is (True if stream else None)


async def test_an_option_the_api_refuses_is_an_llm_request_error(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    too_hot = {"extra_body": {"temperature": 7.0}}  # (temperature=7.0 is refused as bound)
    async with MiniAgents():
        with pytest.raises(LLMRequestError) as raised:
            await ask(llm, client, "hi", extra_options=too_hot)
    assert "temperature: Input should be between 0 and" in str(raised.value)
    assert server.requests[0].json["temperature"] == 7.0


async def test_options_not_given_are_not_sent(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    async with MiniAgents():
        await ask(llm, client, "hi")
    body = server.requests[0].json
    sent = llm.pick(
        (
            {"model", "messages", "stream", "stream_options"},
            {"model", "messages", "stream", "max_tokens"},  # Anthropic requires max_tokens
            {"model", "input", "stream"},
        )
    )
    assert set(body) == sent


async def test_extra_options_reach_the_server_unchanged(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    extra: dict[str, object] = {
        "metadata": {"user_id": "u-1"},
        "extra_headers": {"x-test": "yes"},
        "extra_body": {"custom_field": 1},
    }
    async with MiniAgents():
        await ask(llm, client, "hi", temperature=0.5, extra_options=extra)
    request = server.requests[0]
    assert request.json["metadata"] == {"user_id": "u-1"}
    assert request.json["custom_field"] == 1
    assert request.json["temperature"] == 0.5  # with extra_body given, for Anthropic too
    assert request.headers["x-test"] == "yes"


async def test_an_extra_option_the_sdk_does_not_take_is_refused_before_the_request(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await ask(llm, client, "hi", extra_options={"frequncy_penalty": 1.0})
    method = llm.pick(("chat.completions", "messages", "responses"))
    assert str(raised.value) == (
        f"The {llm.label} SDK's {method}.create() takes no argument 'frequncy_penalty' "
        "(given in extra_options). Check its spelling; to send a field the installed SDK "
        "does not know, put it in extra_options={'extra_body': {'frequncy_penalty': ...}}."
    )
    assert server.requests == []


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_several_chat_choices_are_refused_before_the_request(
    server: FakeLLMServer, stream: bool
) -> None:
    """``n=2``: the answers of two choices would be mixed into the reply's one text."""
    async with OPENAI.client(server) as client, MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await ask(OPENAI, client, "hi", extra_options={"n": 2}, stream=stream)
        server.reply(["One answer."])
        assert str(await only_message(ask(OPENAI, client, "hi", extra_options={"n": 1}))) == (
            "One answer."
        )
    assert str(raised.value) == (
        "extra_options has n=2, but an agent's reply is one answer: the OpenAI answers of "
        "several n would be mixed into one text. Leave n out, and call the agent once per "
        "answer you want (e.g. concurrently)."
    )
    assert len(server.requests) == 1


async def test_openai_stream_options_given_are_sent_as_they_are(server: FakeLLMServer) -> None:
    server.reply(tokens=["a", "b"])
    async with OPENAI.client(server) as client, MiniAgents():
        message = await only_message(
            ask(OPENAI, client, "hi", extra_options={"stream_options": {"include_usage": False}})
        )
    assert server.requests[0].json["stream_options"] == {"include_usage": False}
    assert isinstance(message, OpenAIMessage)
    assert message.text == "ab"
    assert message.finish_reason == "stop"
    assert message.usage == TokenUsage()  # not asked for, so not known


async def test_anthropic_max_tokens_defaults_to_default_max_tokens(server: FakeLLMServer) -> None:
    async with ANTHROPIC.client(server) as client, MiniAgents():
        await ask(ANTHROPIC, client, "hi")
    assert server.requests[0].json["max_tokens"] == DEFAULT_MAX_TOKENS == 4096


async def test_anthropic_sends_the_last_assistant_text_without_its_trailing_whitespace(
    server: FakeLLMServer,
) -> None:
    # the API refuses a final assistant text that ends with whitespace (the fake too); a
    # text left alone is the message's content, texts of one turn its text blocks
    server.reply(["Better."])
    server.reply(["Better."])
    draft = AssistantMessage(text="Rivers run.\n\n")
    async with ANTHROPIC.client(server) as client, MiniAgents():
        await ask(ANTHROPIC, client, ["Write a line.", draft])
        await ask(ANTHROPIC, client, ["Write a line.", AssistantMessage(text="Draft: "), draft])
    assert server.requests[0].json["messages"][-1] == {
        "role": "assistant",
        "content": "Rivers run.",
    }
    assert server.requests[1].json["messages"][-1]["content"] == [
        {"type": "text", "text": "Draft: "},
        {"type": "text", "text": "Rivers run."},
    ]


async def test_anthropic_leaves_out_the_blank_text_of_a_message_with_images(
    server: FakeLLMServer,
) -> None:
    # the API refuses a text block of whitespace only; Bedrock left it out already, while
    # Anthropic sent it (an LLMRequestError for an image sent with a " " caption)
    server.reply(["A cat."])
    image = ImagePart(url="https://example.com/cat.png")
    async with ANTHROPIC.client(server) as client, MiniAgents():
        [answer] = await ask(ANTHROPIC, client, UserMessage(text=" \n", images=(image,)))
    assert str(answer) == "A cat."
    assert server.requests[0].json["messages"] == [
        {
            "role": "user",
            "content": [{"type": "image", "source": {"type": "url", "url": image.url}}],
        }
    ]


@pytest.mark.parametrize("how", ["agent-argument", "context-default"])
async def test_stream_false_sends_one_non_streamed_request_and_gives_one_token(
    llm: LLM, client: SDKClient, server: FakeLLMServer, how: str
) -> None:
    server.reply(tokens=["Hello", " there", "!"], usage=(3, 3))
    options: dict[str, Any] = {"stream": False} if how == "agent-argument" else {}
    async with MiniAgents(stream_llm_tokens_by_default=how == "agent-argument"):
        promise = await anext(aiter(ask(llm, client, "hi", **options)))
        tokens = [token async for token in promise]
        message = await promise
    assert tokens == ["Hello there!"]
    assert isinstance(message, llm.message_class)
    assert message.finish_reason == llm.stop
    assert message.usage is not None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 3)
    request = server.requests[0]
    assert not request.stream
    assert request.json.get("stream") in (None, False)
    assert "stream_options" not in request.json
    assert len(server.requests) == 1


async def test_a_client_of_another_sdk_is_refused_before_any_request(
    llm: LLM, server: FakeLLMServer
) -> None:
    other = OPENAI if llm.sdk == "anthropic" else ANTHROPIC
    sync = openai.OpenAI if llm.sdk == "openai" else anthropic.Anthropic
    wanted = "openai.AsyncOpenAI" if llm.sdk == "openai" else "anthropic.AsyncAnthropic"
    kinds = (
        wanted
        if llm.sdk == "openai"
        else f"{wanted} or anthropic.AsyncAnthropicBedrock or anthropic.AsyncAnthropicVertex"
    )
    async with other.client(server) as wrong, MiniAgents():
        for given in (wrong, sync(base_url=llm.base_url(server), api_key="test")):
            with pytest.raises(LLMConfigurationError) as raised:
                await ask(llm, given, "hi")  # type: ignore[arg-type]
            assert str(raised.value).startswith(
                f"The agent {llm.alias} needs async_client to be an {kinds}; got <"
            )
            assert f"e.g. {llm.alias.lower()}.fork(async_client={wanted}())" in str(raised.value)
            assert raised.value.parameter == "async_client"
    assert server.requests == []


def test_the_anthropic_sdks_bedrock_and_vertex_clients_are_anthropic_clients() -> None:
    for client in (
        anthropic.AsyncAnthropicBedrock(
            aws_region="us-east-1", aws_access_key="a", aws_secret_key="b"
        ),
        anthropic.AsyncAnthropicVertex(region="us-east5", project_id="p", access_token="t"),
    ):
        AnthropicOptions(model="claude", async_client=client).check("ANTHROPIC_AGENT")  # no error


@pytest.mark.parametrize("max_tokens", [None, 0, 1.5, True])
async def test_anthropic_needs_a_whole_max_tokens(
    server: FakeLLMServer, max_tokens: object
) -> None:
    async with ANTHROPIC.client(server) as client, MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await ask(ANTHROPIC, client, "hi", max_tokens=max_tokens)
    assert str(raised.value) == (
        "The agent ANTHROPIC_AGENT needs max_tokens to be a whole number of at least 1; got "
        f"{max_tokens!r}. The Messages API requires one: e.g. anthropic_agent.fork("
        f"max_tokens=1024), or leave it out for the default, {DEFAULT_MAX_TOKENS}."
    )
    assert server.requests == []


def _adder(ran: list[int]) -> Callable[[int, int], int]:
    """A tool that adds two numbers, each sum it made kept in ``ran``."""

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        ran.append(a + b)
        return a + b

    return add


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_tool_calls_cut_off_by_max_tokens_are_not_run(
    llm: LLM, client: SDKClient, server: FakeLLMServer, stream: bool
) -> None:
    ran: list[int] = []
    add = _adder(ran)
    cut = [ToolCall("add", {"a": 2, "b": 3}), ToolCall("add", '{"a": 1, "b"')]
    server.reply(tool_calls=cut, finish_reason="length")  # in each API's words
    async with MiniAgents():
        reply = ask(llm, client, "2 + 3?", tools=[add], max_tokens=30, stream=stream)
        with pytest.raises(LLMResponseError) as raised:
            await reply
    assert str(raised.value) == (
        f"The agent {llm.alias} stopped: the model '{llm.model}' reached its max_tokens (finish "
        f"reason '{llm.length}') while it wrote its tool calls ('add', 'add'), so their "
        "arguments may be cut short and none was run. Give it more room with "
        f"{llm.alias.lower()}.fork(max_tokens=...), or leave max_tokens out."
    )
    assert ran == []
    assert len(server.requests) == 1  # the model is not asked again


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_tool_calls_cut_off_by_the_context_window_are_not_run(
    server: FakeLLMServer, stream: bool
) -> None:
    # Anthropic's stop reason (Bedrock's too) of a reply that filled the model's context
    # window: on main the calls ran, the last with its arguments cut short, and the model
    # was asked again with an even longer prompt
    ran: list[int] = []
    add = _adder(ran)
    cut = [ToolCall("add", {"a": 2, "b": 3}), ToolCall("add", '{"a": 1, "b"')]
    server.reply(tool_calls=cut, finish_reason="model_context_window_exceeded")
    async with ANTHROPIC.client(server) as client, MiniAgents():
        with pytest.raises(LLMResponseError) as raised:
            await ask(ANTHROPIC, client, "2 + 3?", tools=[add], stream=stream)
    assert str(raised.value) == (
        "The agent ANTHROPIC_AGENT stopped: the model 'claude-test' filled its context window "
        "(finish reason 'model_context_window_exceeded') while it wrote its tool calls ('add', "
        "'add'), so their arguments may be cut short and none was run. Shorten the "
        "conversation (fewer or shorter messages and tool results), or use a model with a "
        "larger context window."
    )
    assert ran == []
    assert len(server.requests) == 1  # the model is not asked again


# -- failures ------------------------------------------------------------------------------


async def test_a_rate_limit_then_success_is_retried_by_the_sdk(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.fail(429, headers=FAST_RETRY)
    server.reply(tokens=["made", " it"])
    async with MiniAgents():
        message = await only_message(ask(llm, client, "hi"))
    assert message.text == "made it"
    requests = server.requests
    assert len(requests) == 2
    assert [r.status for r in requests] == [429, 200]
    assert requests[1].headers["x-stainless-retry-count"] == "1"


@dataclass(frozen=True)
class HTTPFault:
    """An HTTP error status, sent for every try the SDK makes."""

    id: str
    status: int
    tries: int  # requests made: 1 + max_retries if the SDK retries the status
    error: type[LLMError]
    says: str  # a regular expression the error's message matches
    causes: tuple[type[BaseException], type[BaseException]]  # (OpenAI's, Anthropic's)
    message: str | None = None


HTTP_FAULTS = [
    HTTPFault(
        "server-error",
        500,
        3,
        LLMServerError,
        "kept failing with a server error: Error code: 500",
        (openai.InternalServerError, anthropic.InternalServerError),
    ),
    HTTPFault(
        "overloaded",
        529,
        3,
        LLMServerError,
        "kept failing with a server error: Error code: 529",
        (openai.InternalServerError, anthropic.OverloadedError),
    ),
    HTTPFault(
        "rate-limit",
        429,
        3,
        LLMRateLimitError,
        "kept refusing the request for its rate limit: Error code: 429",
        (openai.RateLimitError, anthropic.RateLimitError),
    ),
    HTTPFault(
        "request-timeout",
        408,
        3,
        LLMTimeoutError,
        r"did not answer in time \(HTTP 408, after the SDK's retries\): Error code: 408",
        (openai.APIStatusError, anthropic.RequestTimeoutError),
    ),
    HTTPFault(  # a gateway's timeout: a timeout, as Gemini's and Bedrock's 504 are
        "gateway-timeout",
        504,
        3,
        LLMTimeoutError,
        r"did not answer in time \(HTTP 504, after the SDK's retries\): Error code: 504",
        (openai.InternalServerError, anthropic.GatewayTimeoutError),
    ),
    HTTPFault(
        "conflict",
        409,
        3,
        LLMServerError,
        r"kept failing with a conflict \(HTTP 409, after the SDK's retries\): Error code: 409",
        (openai.ConflictError, anthropic.ConflictError),
    ),
    HTTPFault(
        "unauthorized",
        401,
        1,
        LLMAuthenticationError,
        "refused the API key: Error code: 401",
        (openai.AuthenticationError, anthropic.AuthenticationError),
    ),
    HTTPFault(
        "forbidden",
        403,
        1,
        LLMAuthenticationError,
        "refused the API key for this request: Error code: 403",
        (openai.PermissionDeniedError, anthropic.PermissionDeniedError),
    ),
    HTTPFault(
        "bad-request",
        400,
        1,
        LLMRequestError,
        "refused the request: Error code: 400 .*max_tokens is too large",
        (openai.BadRequestError, anthropic.BadRequestError),
        message="max_tokens is too large",
    ),
    HTTPFault(
        "not-found",
        404,
        1,
        LLMRequestError,
        "refused the request: Error code: 404",
        (openai.NotFoundError, anthropic.NotFoundError),
    ),
]


@pytest.mark.parametrize("fault", HTTP_FAULTS, ids=[fault.id for fault in HTTP_FAULTS])
async def test_http_errors_reach_the_consumer_as_llm_errors(
    llm: LLM, client: SDKClient, server: FakeLLMServer, fault: HTTPFault
) -> None:
    # one failure more than the SDK tries: it must be left over
    server.fail(fault.status, headers=FAST_RETRY, message=fault.message, times=fault.tries + 1)
    async with MiniAgents():
        tokens, error = await tokens_then_error(ask(llm, client, "hi"), "iterate")
    assert tokens == []
    assert type(error) is fault.error
    assert type(error.__cause__) is llm.pick(fault.causes)
    assert str(error).startswith(llm.label)
    assert re.search(fault.says, str(error)), str(error)
    assert len(server.requests) == fault.tries
    assert server.pending == 1
    assert is_provider_failure(error) == (fault.tries > 1)  # transient: what the SDK retries


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_a_prompt_that_is_not_valid_unicode_is_a_request_error_naming_the_fix(
    llm: LLM, client: SDKClient, server: FakeLLMServer, stream: bool
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMRequestError) as raised:
            await ask(llm, client, "caf\udce9", stream=stream)  # surrogateescape'd bytes
    assert str(raised.value) == (
        f"The request to {llm.label} could not be sent: its text holds '\\udce9', which is "
        "not valid Unicode (a lone surrogate, e.g. from bytes decoded with "
        "errors='surrogateescape'). Remove or replace it before the call, e.g. "
        "text.encode('utf-8', 'replace').decode('utf-8')."
    )
    assert type(raised.value.__cause__) is UnicodeEncodeError
    assert server.requests == []


async def test_a_float_that_json_cannot_write_is_a_request_error_naming_the_fix(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    """An infinite float in ``extra_options`` (e.g. from a failed computation): JSON has none.

    (A ``temperature`` that is NaN or infinite is refused before, as a configuration
    error: see ``test_every_providers_agent_refuses_a_bad_option_where_it_is_bound``.)
    """
    extra: dict[str, object] = {"extra_body": {"custom_field": float("inf")}}
    async with MiniAgents():
        with pytest.raises(LLMRequestError) as raised:
            await ask(llm, client, "Hi", extra_options=extra)
    assert str(raised.value) == (
        f"The request to {llm.label} could not be sent: it holds a float that is NaN or "
        "infinite, which JSON cannot write (in an option, e.g. temperature, in extra_options "
        "or in a tool's schema). Give a finite number instead."
    )
    assert type(raised.value.__cause__) is ValueError
    assert server.requests == []


async def test_a_closed_client_is_a_configuration_error_naming_the_fix(
    llm: LLM, server: FakeLLMServer
) -> None:
    client = llm.client(server)
    await client.close()
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await ask(llm, client, "hi")
    agent = f"{llm.sdk}_agent"
    assert str(raised.value) == (
        f"The client of {agent} is closed (its async with block ended, or close() was "
        "called), so it can send no request: give the agent a client that stays open while "
        f"it runs, {agent}.fork(async_client=...), or none, for the one the MiniAgents "
        "context makes from the environment."
    )
    assert server.requests == []


@pytest.mark.parametrize("url", ["htp:/bad url", "localhost:8000", "http://", "ftp://x.y/v1"])
@pytest.mark.parametrize("given", ["async_client", "environment"])
async def test_a_malformed_base_url_is_a_configuration_error_naming_it(
    llm: LLM, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, url: str, given: str
) -> None:
    # issue 58, item 8: it was the LLMConnectionError of a server that refuses
    variable = f"{llm.sdk.upper()}_BASE_URL"
    agent = f"{llm.sdk}_agent"
    async with contextlib.AsyncExitStack() as stack:
        client: SDKClient | None = None
        if given == "async_client":
            client = await stack.enter_async_context(llm.client(server, base_url=url))
        else:
            monkeypatch.setenv(variable, url)
            monkeypatch.setenv(f"{llm.sdk.upper()}_API_KEY", "test-key")
        async with MiniAgents():
            with pytest.raises(LLMConfigurationError) as raised:
                await ask(llm, client, "hi")
    said = str(raised.value)
    assert said.startswith(f"The base URL of {agent}, "), said
    # issue 62, item 3: where the URL was set, not a list of the places it may have been
    source = (
        f"{variable} in the environment"
        if given == "environment"
        else "the base_url= of the client given as async_client= (or, if it was made "
        f"without one, {variable} in the environment, which the SDK then reads)"
    )
    assert said.endswith(
        " is not an http(s) URL (http:// or https://, a host, a port if any, then the path, "
        "e.g. https://api.example.com/v1), so no request could reach it: fix it where it "
        f"was set, {source}."
    ), said
    assert raised.value.__cause__ is None
    assert server.requests == []


async def test_a_refused_connection_is_an_llm_connection_error(
    llm: LLM, server: FakeLLMServer
) -> None:
    # max_retries=0: the SDKs retry a refused connection after 0.5 s, 1 s, ... of backoff
    url = f"http://127.0.0.1:{closed_port()}" + ("/v1" if llm.sdk == "openai" else "")
    async with llm.client(server, base_url=url, max_retries=0) as client, MiniAgents():
        tokens, error = await tokens_then_error(ask(llm, client, "hi"), "iterate")
    assert tokens == []
    assert type(error) is LLMConnectionError
    assert type(error.__cause__) is llm.pick(
        (openai.APIConnectionError, anthropic.APIConnectionError)
    )
    assert (
        str(error)
        == f"{llm.label} could not be reached, or the connection broke: Connection error."
    )
    assert server.requests == []


TOKENS = ["Hel", "lo", " wor", "ld"]


@dataclass(frozen=True)
class StreamFault:
    """A reply that goes wrong after some tokens."""

    id: str
    reply: Mapping[str, Any]  # FakeLLMServer.reply() arguments
    error: type[LLMError]
    says: str  # a regular expression the error's message matches
    causes: (  # OpenAI's, Anthropic's (and the Responses API's, if not OpenAI's)
        tuple[type[BaseException] | None, type[BaseException] | None]
        | tuple[type[BaseException] | None, type[BaseException] | None, type[BaseException] | None]
    )
    tokens: Sequence[str]  # what the consumer gets before the error
    client: Mapping[str, Any] = field(default_factory=dict)  # SDK client options
    call: Mapping[str, Any] = field(default_factory=dict)  # agent options


STREAM_FAULTS = [
    StreamFault(
        "cut",
        {"cut_after": 2},
        LLMConnectionError,
        r"(could not be reached, or the connection broke: Connection error\.|"
        r"The connection to Anthropic broke: peer closed connection)",
        (openai.APIConnectionError, httpx2.RemoteProtocolError),
        TOKENS[:2],
    ),
    StreamFault(
        "reset",
        {"cut_after": 2, "reset": True},
        LLMConnectionError,
        r"(could not be reached, or the connection broke|The connection to Anthropic broke)",
        (openai.APIConnectionError, httpx2.ReadError),
        TOKENS[:2],
    ),
    StreamFault(
        "read-timeout",
        {"hang_after": 2},
        LLMTimeoutError,
        "did not answer in time",
        (openai.APITimeoutError, httpx2.ReadTimeout),
        TOKENS[:2],
        client={"timeout": 0.2, "max_retries": 0},
    ),
    StreamFault(
        "no-final-event",
        {"omit_final": True},
        LLMResponseError,
        r"stream ended before its (final|message_stop) event \(the reply is incomplete\)",
        (None, None),
        TOKENS,
    ),
    StreamFault(
        "malformed-event",
        {"malformed_after": 1},
        LLMResponseError,
        "sent a malformed event: Unterminated string",
        (json.JSONDecodeError, json.JSONDecodeError),
        TOKENS[:1],
    ),
    StreamFault(
        "error-event",
        {"error_event_after": 3, "error_message": "Overloaded, try later"},
        LLMResponseError,
        r"sent an error instead of the rest of the reply.*Overloaded, try later",
        (openai.APIError, anthropic.APIStatusError, None),  # Responses: an event, not raised
        TOKENS[:3],
    ),
    StreamFault(
        "malformed-not-streamed",
        {"malformed_after": 0},
        LLMResponseError,
        "sent a malformed event",
        (json.JSONDecodeError, json.JSONDecodeError),
        [],
        call={"stream": False},
    ),
]


@pytest.mark.parametrize("order", ["iterate", "await"])
@pytest.mark.parametrize("fault", STREAM_FAULTS, ids=[fault.id for fault in STREAM_FAULTS])
async def test_a_broken_reply_gives_its_tokens_then_an_llm_error(
    llm: LLM,
    server: FakeLLMServer,
    fault: StreamFault,
    order: Literal["iterate", "await"],
) -> None:
    server.reply(tokens=TOKENS, **fault.reply)
    async with llm.client(server, **fault.client) as client, MiniAgents():
        tokens, error = await tokens_then_error(ask(llm, client, "hi", **fault.call), order)
    assert tokens == list(fault.tokens)  # never a silently short message
    assert type(error) is fault.error
    cause = llm.pick(fault.causes)
    if cause is None:
        assert error.__cause__ is None
    else:
        assert type(error.__cause__) is cause
    assert llm.label in str(error)
    assert re.search(fault.says, str(error)), str(error)
    assert len(server.requests) == 1  # a broken stream is not retried


OVERLOADED = ("server_error", "overloaded_error")  # OpenAI's code, Anthropic's error type
"""The error event an overloaded API sends, per API (the Responses API's: OpenAI's)."""
EARLY = r"(failed with a server error|was overloaded) before the reply began"


@pytest.mark.parametrize(
    ("error_type", "script", "kind", "says"),
    [
        (OVERLOADED, {}, LLMServerError, EARLY),
        (("server_error", "api_error"), {}, LLMServerError, "failed with a server error before"),
        (
            ("rate_limit_exceeded", "rate_limit_error"),
            {},
            LLMRateLimitError,
            "refused the request for its rate limit before the reply began",
        ),
        (OVERLOADED, {"thinking": "Hm."}, LLMServerError, EARLY),
        (OVERLOADED, {"failed_after": 0}, LLMServerError, EARLY),
        (
            ("invalid_request_error", "invalid_request_error", "invalid_prompt"),
            {},
            LLMResponseError,
            "sent an error instead of the rest of the reply",
        ),
        (
            OVERLOADED,
            {"error_event_after": 2},
            LLMResponseError,
            "sent an error instead of the rest of the reply",
        ),
        (
            OVERLOADED,
            {"failed_after": 2},
            LLMResponseError,
            "(sent an error instead of the rest of the reply|failed the response)",
        ),
        (
            OVERLOADED,
            {"tokens": [], "tool_calls": [ToolCall("add", {"a": 1})]},
            LLMResponseError,
            "sent an error instead of the rest of the reply",
        ),
    ],
    ids=[
        "overloaded",
        "server-error",
        "rate-limit",
        "after-thinking",
        "failed-response",
        "invalid",
        "after-tokens",
        "failed-after-tokens",
        "after-a-call",
    ],
)
async def test_an_error_event_before_the_first_token_is_what_its_status_would_be(
    llm: LLM,
    server: FakeLLMServer,
    error_type: tuple[str, str] | tuple[str, str, str],
    script: dict[str, Any],
    kind: type[LLMError],
    says: str,
) -> None:
    # an overloaded API answers 200, then an error event the SDK cannot retry: before the
    # first token it is the 529 (a 500, a 429) it stands for, retried as any server error
    # by a pipeline's retry_on=(LLMServerError,); after one, the reply broke: its tokens
    # were streamed, and a call again would give them twice (see the "error-event" fault).
    # On main, OpenAI's (Chat Completions', the Responses API's) were all LLMResponseErrors.
    def add(a: int) -> int:
        """Add."""
        return a

    fault = {} if "failed_after" in script else {"error_event_after": 0}
    server.reply(**{"tokens": TOKENS, **fault, "error_type": llm.pick(error_type), **script})
    async with llm.client(server) as client, MiniAgents():
        tokens, error = await tokens_then_error(ask(llm, client, "hi", tools=[add]), "iterate")
    after = script.get("error_event_after", script.get("failed_after", 0))
    assert tokens == TOKENS[:after]
    assert type(error) is kind
    assert re.match(f"{llm.label} {says}", str(error)), str(error)
    assert type(error.__cause__) is llm.pick(
        (openai.APIError, anthropic.APIStatusError, type(None))
    )
    assert len(server.requests) == 1


# -- stalled replies -----------------------------------------------------------------------

STALL = 0.05  # seconds: on a stopped clock, moved on by the test once it has seen the request


@pytest.mark.parametrize("where", ["agent", "context"])
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_a_stalled_reply_ends_with_an_llm_timeout_error_and_closes_the_connection(
    llm: LLM, client: SDKClient, server: FakeLLMServer, stream: bool, where: str
) -> None:
    # Streamed: two tokens, then nothing (the connection stays open); not streamed: no
    # response at all. The SDK's own read timeout (10 minutes) is far away. The loop's clock
    # stands still until the tokens (or the request) have arrived: then it moves on by the
    # stall timeout, whatever the speed of the machine.
    server.reply(tokens=TOKENS, hang_after=2)
    on_agent = {"stall_timeout": STALL} if where == "agent" else {}
    tokens: list[str] = []
    with manual_time() as clock:
        async with MiniAgents(llm_stall_timeout=STALL if where == "context" else DEFAULT):
            reply = ask(llm, client, "hi", stream=stream, **on_agent)
            promise = await anext(aiter(reply))
            if stream:
                async for token in promise:
                    tokens.append(token)
                    if len(tokens) == 2:
                        break
            else:
                await asyncio.to_thread(server.wait_requests, 1, WAIT)
            clock.advance(STALL)
            with pytest.raises(LLMTimeoutError) as raised:
                await reply
            assert await asyncio.to_thread(server.wait_disconnected, 0, WAIT)
    assert tokens == (TOKENS[:2] if stream else [])
    error = raised.value
    assert type(error) is LLMTimeoutError
    assert error.__cause__ is None
    assert str(error).startswith(
        f"The agent {llm.alias} stopped its call: the model '{llm.model}' sent nothing for "
        f"{STALL} seconds (its stall_timeout)."
    )
    assert server.requests[0].outcome == "disconnected"
    assert len(server.requests) == 1  # not retried


async def test_role_model_and_alias_are_known_before_the_first_token(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(tokens=TOKENS, hang_after=1)  # one token, then nothing more
    with manual_time() as clock:
        async with MiniAgents():
            promise = await anext(aiter(ask(llm, client, "hi", stall_timeout=STALL)))
            assert dict(promise.metadata) == {
                "role": "assistant",
                "model": llm.model,
                "agent_alias": llm.alias,
            }
            # the clock moves once the token has come: every event of the stream (the
            # preamble's too) gives the next one stall_timeout seconds from its arrival
            assert await anext(aiter(promise)) == TOKENS[0]
            assert not promise.done
            clock.advance(STALL)
            with pytest.raises(LLMTimeoutError):
                await promise


# -- a consumer that gives up --------------------------------------------------------------


@pytest.mark.parametrize("what", ["reply", "message", "not-streamed-reply"])
async def test_a_consumer_giving_up_closes_the_connection(
    llm: LLM, client: SDKClient, server: FakeLLMServer, what: str
) -> None:
    server.reply(tokens=TOKENS, hang_after=2)

    async def give_up() -> None:
        async with MiniAgents():
            reply = ask(llm, client, "hi", stream=what != "not-streamed-reply")
            awaited: MessageSequencePromise | MessagePromise = reply
            if what == "message":
                awaited = await anext(aiter(reply))
            await give_up_on(awaited, server)
            assert await server.wait_disconnected_async(0, WAIT)

    # The server never ends its response: a context that waited for it would never end.
    await asyncio.wait_for(give_up(), WAIT)
    assert server.requests[0].outcome == "disconnected"
    assert len(server.requests) == 1


async def fail_after_the_first_token(llm: LLM, client: SDKClient | None) -> None:
    """Leave a context with an error while an LLM call streams."""
    async with MiniAgents():
        promise = await anext(aiter(ask(llm, client, "hi")))
        assert await anext(aiter(promise)) == "Hel"
        raise KeyError("the caller failed")


async def test_leaving_the_context_with_an_error_closes_the_connection(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(tokens=TOKENS, hang_after=2)
    with pytest.raises(KeyError, match="the caller failed"):
        await fail_after_the_first_token(llm, client)
    assert await server.wait_disconnected_async(0, WAIT)


@pytest.mark.parametrize("chain", [forward, restream], ids=["forwarded", "re-streamed"])
async def test_giving_up_on_a_reply_passed_on_by_another_agent_closes_the_connection(
    llm: LLM, server: FakeLLMServer, chain: MiniAgent[[]]
) -> None:
    server.reply(tokens=TOKENS, hang_after=2)

    async def give_up(client: SDKClient) -> None:
        async with MiniAgents():
            reply = chain.inquire(ask(llm, client, "hi"))
            await give_up_on(reply, server)
            # (failing here leaves the context with an error, which does close it)
            assert await server.wait_disconnected_async(0, WAIT), "the LLM call goes on"
            with pytest.raises(StreamCancelledError):
                await reply  # a reply everyone gave up on is cancelled, for later readers too

    async with llm.client(server) as client:
        await asyncio.wait_for(give_up(client), WAIT)


# -- the client made from the environment --------------------------------------------------


def use_environment(monkeypatch: pytest.MonkeyPatch, llm: LLM, server: FakeLLMServer) -> None:
    """Point the provider's environment variables at the fake server."""
    for name in ("ORG_ID", "PROJECT_ID", "ADMIN_KEY", "AUTH_TOKEN"):
        monkeypatch.delenv(f"{llm.env}_{name}", raising=False)
    monkeypatch.setenv(f"{llm.env}_BASE_URL", llm.base_url(server))
    monkeypatch.setenv(f"{llm.env}_API_KEY", "test")


def record_made_clients(monkeypatch: pytest.MonkeyPatch, llm: LLM) -> list[SDKClient]:
    """Record the SDK clients the agent makes (it calls ``sdk.AsyncOpenAI()`` or alike)."""
    made: list[SDKClient] = []
    module: Any = openai if llm.sdk == "openai" else anthropic
    name = "AsyncOpenAI" if llm.sdk == "openai" else "AsyncAnthropic"
    real = getattr(module, name)

    def make(*args: Any, **kwargs: Any) -> SDKClient:
        client = cast(SDKClient, real(*args, **kwargs))
        made.append(client)
        return client

    monkeypatch.setattr(module, name, make)
    return made


async def test_the_client_comes_from_the_environment_once_per_context(
    llm: LLM, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_environment(monkeypatch, llm, server)
    made = record_made_clients(monkeypatch, llm)
    async with MiniAgents():
        assert made == []  # made at the first call, not before
        first = await only_message(ask(llm, None, "one"))
        second, third = await asyncio.gather(
            only_message(ask(llm, None, "two")), only_message(ask(llm, None, "three"))
        )
        assert len(made) == 1
        assert not made[0].is_closed()
    assert made[0].is_closed()  # closed at the context's exit
    assert [first.text, second.text, third.text] == ["one", "two", "three"]
    assert isinstance(first, llm.message_class)

    async with MiniAgents():
        await ask(llm, None, "four")
        assert len(made) == 2  # a new context makes its own client
    assert made[1] is not made[0]
    assert made[1].is_closed()
    assert len(server.requests) == 4
    for request in server.requests:  # the key from the environment (the SDKs send it so)
        assert request.headers["authorization"] == "Bearer test"


async def test_an_explicit_client_is_used_and_left_open(
    llm: LLM, client: SDKClient, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_environment(monkeypatch, llm, server)
    made = record_made_clients(monkeypatch, llm)
    async with MiniAgents():
        await ask(llm, client, "hi")
    assert made == []
    assert not client.is_closed()  # the caller's client: the caller closes it


async def test_the_environment_client_is_closed_when_the_context_fails(
    llm: LLM, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_environment(monkeypatch, llm, server)
    made = record_made_clients(monkeypatch, llm)
    server.reply(tokens=TOKENS, hang_after=2)
    with pytest.raises(KeyError, match="the caller failed"):
        await fail_after_the_first_token(llm, None)
    assert len(made) == 1
    assert made[0].is_closed()
    assert await server.wait_disconnected_async(0, WAIT)


async def test_a_missing_api_key_is_an_llm_authentication_error(
    llm: LLM, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_environment(monkeypatch, llm, server)  # a request would go to the fake server
    monkeypatch.delenv(f"{llm.env}_API_KEY")
    async with MiniAgents():
        with pytest.raises(Exception) as raised:  # noqa: PT011
            await ask(llm, None, "hi")
    assert server.requests == []
    assert isinstance(raised.value, LLMAuthenticationError), repr(raised.value)
    assert f"{llm.env}_API_KEY" in str(raised.value)
    assert "async_client=" in str(raised.value)


# -- LLM logs ------------------------------------------------------------------------------


async def test_each_call_is_logged_as_a_markdown_file(
    llm: LLM,
    client: SDKClient,
    server: FakeLLMServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    server.reply(tokens=["Bon", "jour"], usage=(6, 2))
    server.reply(tokens=["Au revoir"], usage=(1, 2))
    server.fail(401)
    async with MiniAgents(llm_logger_agent=True):
        await ask(
            llm, client, [SystemMessage(text="Answer in French."), "Hello"], system="Be brief."
        )
        await ask(llm, client, "Bye", stream=False)
        with pytest.raises(LLMAuthenticationError):
            await ask(llm, client, "Refused")
    files = sorted((tmp_path / "llm_logs").glob(f"*_{llm.alias}.md"))
    assert sorted((tmp_path / "llm_logs").iterdir()) == files
    assert len(files) == 2  # one per complete call: the failed call is not logged
    first = files[0].read_text(encoding="utf-8")
    assert first == (
        f"# LLM call of {llm.alias}\n\n"
        "## SYSTEM\n\nBe brief.\n\nAnswer in French.\n\n"
        "## USER\n\nHello\n\n"
        "## RESPONSE\n\n"
        "- role: assistant\n"
        f"- model: {llm.model}\n"
        f"- agent_alias: {llm.alias}\n"
        f"- finish_reason: {llm.stop}\n"
        "- usage: input_tokens=6 output_tokens=2 cached_input_tokens=0 "
        f"{llm.pick(('reasoning_tokens', 'cache_write_tokens'))}=0\n\n"  # as each API reports
        "Bonjour\n"
    )
    second = files[1].read_text(encoding="utf-8")
    assert "## USER\n\nBye\n\n## RESPONSE" in second
    assert second.endswith("\nAu revoir\n")


async def test_each_call_of_a_tool_loop_is_logged_with_its_own_usage(
    llm: LLM,
    client: SDKClient,
    server: FakeLLMServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    monkeypatch.chdir(tmp_path)
    server.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3})], usage=(100, 10))
    server.reply(tokens=["5"], usage=(200, 1))
    async with MiniAgents(llm_logger_agent=True):
        answer = (await ask(llm, client, "2 + 3?", tools=[add]))[-1]
    assert isinstance(answer, AssistantMessage)
    assert answer.usage is not None
    assert answer.usage.input_tokens == 300  # the answer's usage: the whole loop's
    logs = [path.read_text(encoding="utf-8") for path in (tmp_path / "llm_logs").iterdir()]
    [calls] = [log for log in logs if "- tool_calls:" in log]
    [answered] = [log for log in logs if "- tool_calls:" not in log]
    for log, counts in (
        (calls, "input_tokens=100 output_tokens=10"),
        (answered, "input_tokens=200 output_tokens=1"),
    ):
        response = log.split("## RESPONSE\n\n")[1]
        assert response.startswith(
            f"- role: assistant\n- model: {llm.model}\n- agent_alias: {llm.alias}\n"
        )
        assert f"- usage: {counts} " in response


@pytest.mark.parametrize("calls", [False, True], ids=["text", "tool-call"])
async def test_a_whole_anthropic_reply_without_a_stop_reason_is_a_response_error(
    server: FakeLLMServer, calls: bool
) -> None:
    # stream=False: Anthropic documents stop_reason as never null in a whole reply; a
    # null one is a message not finished (a proxy's snapshot), refused as a stream that
    # ends before its message_stop event is, not kept as if it were the whole answer
    block: dict[str, object] = (
        {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Paris"}}
        if calls
        else {"type": "text", "text": "Hi."}
    )
    server.fail(  # (a 200: a reply)
        200,
        body={
            "id": "msg_null",
            "type": "message",
            "role": "assistant",
            "model": ANTHROPIC.model,
            "content": [block],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 2},
        },
    )
    async with ANTHROPIC.client(server) as client, MiniAgents():
        with pytest.raises(
            LLMResponseError, match="Anthropic sent a whole reply with no stop_reason"
        ):
            await ask(ANTHROPIC, client, "hi", stream=False)
    assert len(server.requests) == 1


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_an_anthropic_turn_paused_by_the_api_is_not_taken_for_the_answer(
    server: FakeLLMServer, stream: bool
) -> None:
    # stop_reason "pause_turn": the API paused a long turn of its server tools (web search,
    # given in extra_options) before the model answered; on main the text so far ("Let me
    # search.") was the agent's answer, with nothing but its finish_reason to tell
    server.reply(["Let me ", "search."], finish_reason="pause_turn")
    async with ANTHROPIC.client(server) as client, MiniAgents():
        reply = ask(ANTHROPIC, client, "News today?", stream=stream)
        with pytest.raises(LLMResponseError) as raised:
            await reply
    said = str(raised.value)
    assert said.startswith(
        "The agent ANTHROPIC_AGENT got no answer: the API paused the turn of the model "
        "'claude-test' (finish reason 'pause_turn')"
    ), said
    assert "Before the pause it said: 'Let me search.'" in said
    assert "a lower max_uses" in said
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", ["in_progress", "queued", "cancelled"])
async def test_a_whole_response_not_finished_is_a_response_error(
    server: FakeLLMServer, status: str
) -> None:
    # stream=False: a Responses reply whose status says it is not finished (background=True
    # gives queued) is not a whole answer: refused as a stream that ends before its
    # response.completed event is (one with no status at all is kept: tests/ext/otel)
    item = {
        "type": "message",
        "id": "m1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Hi.", "annotations": []}],
    }
    body = response("completed", [item])
    body["status"] = status
    server.fail(200, body=body)  # (a 200: a reply)
    async with RESPONSES.client(server) as client, MiniAgents():
        with pytest.raises(LLMResponseError, match="OpenAI sent a whole response") as raised:
            await ask(RESPONSES, client, "hi", stream=False)
    assert f"status {status!r}" in str(raised.value)
    assert len(server.requests) == 1


async def test_a_hand_made_tool_result_without_text_goes_as_an_empty_one(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    # a ToolResultMessage made by hand with no text: Chat Completions refuses a tool
    # message whose content is null (400), as the fake does; every API gets an empty one
    from miniagents.ext.tools import ToolCallMessage, ToolResultMessage

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}."

    history = [
        UserMessage(text="Weather in Paris?"),
        ToolCallMessage(tool_name="get_weather", arguments={"city": "Paris"}, call_id="c1"),
        ToolResultMessage(tool_name="get_weather", call_id="c1"),
    ]
    server.reply(["No news."])
    async with MiniAgents():
        message = await only_message(ask(llm, client, history, tools=[get_weather]))
    assert str(message) == "No news."
    assert server.requests[0].status == 200
    if llm.name == "openai":
        sent = server.requests[0].json["messages"][-1]
        assert sent == {"role": "tool", "tool_call_id": "c1", "content": ""}


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_anthropic_sends_a_tool_loops_thinking_back_first_with_its_signature(
    server: FakeLLMServer, stream: bool
) -> None:
    # extended thinking with tools: the model thinks (a signed thinking block, a redacted
    # one) before its call; the loop's next request must start the assistant turn with
    # those blocks unchanged, or the API refuses it (400), as the fake does
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}."

    server.reply(
        ["Let me check."],
        thinking=["Paris: ", "ask the tool."],
        redacted_thinking="c2VjcmV0",
        tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")],
    )
    server.reply(["Sunny."])
    thinking = {"type": "enabled", "budget_tokens": 1024}
    async with ANTHROPIC.client(server) as client, MiniAgents():
        reply = ask(
            ANTHROPIC,
            client,
            "Weather in Paris?",
            tools=[get_weather],
            extra_options={"thinking": thinking},
            stream=stream,
        )
        messages = await reply
    assert str(messages[-1]) == "Sunny."
    second = server.requests[1]
    assert second.status == 200
    assert second.json["thinking"] == thinking
    turn = second.json["messages"][1]
    assert turn["role"] == "assistant"
    thought = "Paris: ask the tool."
    assert turn["content"] == [
        {"type": "thinking", "thinking": thought, "signature": thinking_signature(thought)},
        {"type": "redacted_thinking", "data": "c2VjcmV0"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
