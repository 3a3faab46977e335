"""``openai_agent.fork(api="responses")``: the OpenAI Responses API, over real HTTP.

What the Responses API shares with the other APIs runs in the shared suites, with the
real SDK against the fake server: streaming text and metadata, options, HTTP errors,
broken streams (cut, reset, timeout, malformed, error event, no final event), the stall
timeout, a consumer giving up closing the stream, the client from the environment and
the logs in ``tests/ext/llm/test_llm_providers.py`` (the ``responses`` cases); single,
parallel and multi-round tool calls, errors sent back to the model, the round limit,
cancellation while tools run, a sub-agent streaming in place, MCP tools and a history
resumed from its file in ``tests/ext/tools`` (the ``responses`` cases); images in
``tests/ext/llm/test_images.py``; the provider contract in
``tests/testing/test_llm_provider_contract.py``. Here: what is the Responses API's own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import pytest

from miniagents import Message, MiniAgents
from miniagents.ext.llm import (
    ImagePart,
    LLMCall,
    OutputFormat,
    PromptText,
    SystemMessage,
    TokenUsage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from miniagents.ext.llm.errors import (
    LLMConfigurationError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
)
from miniagents.ext.llm.offline import OfflineOptions, OfflineProvider
from miniagents.ext.llm.openai import OpenAIMessage, OpenAIOptions, OpenAIProvider, openai_agent
from miniagents.messages import MessageType
from miniagents.testing import FakeLLMServer
from tests.ext.llm.providers import RESPONSES, tokens_then_error
from tests.ext.llm.wire import response
from tests.ext.tools.loop_support import add
from tests.fakes.fixtures import fake_llm  # noqa: F401
from tests.messages.images import URL

MODEL = "gpt-test"


@pytest.fixture
async def client(fake_llm: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:  # noqa: F811
    async with openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test") as made:
        yield made


responses_agent = RESPONSES.agent


async def test_chat_completions_stays_the_default_and_api_picks_the_responses_api(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
) -> None:
    fake_llm.reply(["Chat."])
    fake_llm.reply(["Responses."])
    async with MiniAgents():
        chat = await openai_agent.inquire("hi", model=MODEL, async_client=client)
        responses = await openai_agent.inquire(
            "hi", model=MODEL, async_client=client, api="responses"
        )
    assert [request.path for request in fake_llm.requests] == [
        "/v1/chat/completions",
        "/v1/responses",
    ]
    for reply, reason in ((chat, "stop"), (responses, "completed")):
        message = reply[0]
        assert isinstance(message, OpenAIMessage)
        assert (message.role, message.model, message.agent_alias) == (
            "assistant",
            MODEL,
            "OPENAI_AGENT",
        )
        assert message.finish_reason == reason  # each API's own words
    assert [str(chat[0]), str(responses[0])] == ["Chat.", "Responses."]


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("hi", "hi"),
        ([SystemMessage(text="Be brief."), "hi"], "hi"),  # the system: instructions
        (
            ["hi", "there"],
            [{"role": "user", "content": "hi"}, {"role": "user", "content": "there"}],
        ),
        (
            [Message(text="earlier", role="assistant")],
            [{"role": "assistant", "content": "earlier"}],
        ),
        (
            UserMessage(text="See.", images=(ImagePart(url=URL),)),
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "See."},
                        {"type": "input_image", "image_url": URL, "detail": "auto"},
                    ],
                }
            ],
        ),
    ],
    ids=["one-user-message", "with-a-system-prompt", "two", "not-the-user", "an-image"],
)
async def test_one_user_message_goes_as_the_input_text_and_any_other_as_input_items(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
    given: MessageType,
    sent: object,
) -> None:
    """A conversation of one user message without images is the API's text input."""
    fake_llm.reply(["Ok."])
    async with MiniAgents():
        assert str(await responses_agent.inquire(given, model=MODEL, async_client=client)) == "Ok."
    [request] = fake_llm.requests
    assert request.json["input"] == sent
    assert request.json.get("instructions") == (
        "Be brief." if isinstance(given, list) and isinstance(given[0], SystemMessage) else None
    )


async def test_a_failed_response_gives_its_tokens_then_an_llm_response_error(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
) -> None:
    fake_llm.reply(
        ["Hel", "lo", " there"],
        failed_after=2,
        error_type="server_error",
        error_message="The model crashed.",
    )
    async with MiniAgents():
        reply = responses_agent.inquire("hi", model=MODEL, async_client=client)
        tokens, error = await tokens_then_error(reply, "iterate")
    assert tokens == ["Hel", "lo"]
    assert type(error) is LLMResponseError
    assert str(error) == "OpenAI failed the response: The model crashed. (code server_error)"
    assert error.__cause__ is None
    assert len(fake_llm.requests) == 1  # a failed response is not retried


@pytest.mark.parametrize(
    ("code", "kind", "says"),
    [
        (
            "server_error",
            LLMServerError,
            "OpenAI failed with a server error before the reply began (server_error, a failed "
            "response after the HTTP 200, which the SDK does not retry): The model crashed. ",
        ),
        (
            "rate_limit_exceeded",
            LLMRateLimitError,
            "OpenAI refused the request for its rate limit before the reply began "
            "(rate_limit_exceeded, a failed response after the HTTP 200, ",
        ),
        (
            "invalid_prompt",
            LLMResponseError,
            "OpenAI failed the response: The model crashed. (code invalid_prompt)",
        ),
    ],
    ids=["server-error", "rate-limit", "invalid"],
)
async def test_a_whole_failed_response_is_the_error_of_a_stream_failed_before_its_first_token(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
    code: str,
    kind: type[LLMError],
    says: str,
) -> None:
    # a whole reply gave nothing to its readers: a pipeline's retry_on=(LLMServerError,) may
    # call it again, as it may a stream failed before its first token (on main, a whole
    # reply's server_error was an LLMResponseError, which no retry_on takes)
    errors: list[BaseException] = []
    for stream in (True, False):
        fake_llm.reply(
            ["Hel", "lo"], failed_after=0, error_type=code, error_message="The model crashed."
        )
        async with MiniAgents():
            reply = responses_agent.inquire("hi", model=MODEL, async_client=client, stream=stream)
            tokens, error = await tokens_then_error(reply, "iterate")
        assert tokens == []
        errors.append(error)
    streamed, whole = errors
    assert type(whole) is kind
    assert type(streamed) is kind
    assert str(whole) == str(streamed)
    assert str(whole).startswith(says), str(whole)
    assert [request.json.get("stream") for request in fake_llm.requests] == [True, None]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
@pytest.mark.parametrize(
    ("scripted", "reason"), [("length", "max_output_tokens"), ("refusal", "content_filter")]
)
async def test_an_incomplete_response_ends_the_reply_with_why_it_stopped(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
    stream: bool,
    scripted: str,
    reason: str,
) -> None:
    fake_llm.reply(["Once upon"], finish_reason=scripted, usage=(4, 16))
    async with MiniAgents():
        [message] = await responses_agent.inquire(
            "a story", model=MODEL, async_client=client, stream=stream, max_tokens=16
        )
    assert isinstance(message, OpenAIMessage)
    assert message.text == "Once upon"
    assert message.finish_reason == reason
    assert message.usage == TokenUsage(
        input_tokens=4, output_tokens=16, cached_input_tokens=0, reasoning_tokens=0
    )
    assert fake_llm.requests[0].json["max_output_tokens"] == 16


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("stop", ["END"]),
        ("seed", 3),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 0.5),
        ("logit_bias", {"12": -100}),
    ],
)
async def test_an_option_of_chat_completions_only_is_refused_before_the_request(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
    option: str,
    value: object,
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await responses_agent.inquire("hi", model=MODEL, async_client=client, **{option: value})
    assert str(raised.value) == (
        f"The Responses API has no option {option!r} (it belongs to Chat Completions): leave "
        "it out with api='responses', or use api='chat_completions'."
    )
    assert fake_llm.requests == []


async def test_max_completion_tokens_is_max_output_tokens_and_only_one_may_be_given(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
) -> None:
    async with MiniAgents():
        await responses_agent.inquire(
            "hi", model=MODEL, async_client=client, max_completion_tokens=64
        )
        with pytest.raises(LLMConfigurationError, match="give only one of them"):
            await responses_agent.inquire(
                "hi", model=MODEL, async_client=client, max_tokens=32, max_completion_tokens=64
            )
    [request] = fake_llm.requests
    assert request.json["max_output_tokens"] == 64
    assert "max_completion_tokens" not in request.json


async def test_extra_options_reach_the_api_and_input_is_the_agents_own(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
) -> None:
    async with MiniAgents():
        await responses_agent.inquire(
            "hi",
            model=MODEL,
            async_client=client,
            extra_options={"store": False, "text": {"verbosity": "low"}},
        )
        with pytest.raises(LLMConfigurationError, match="extra_options has 'input'"):
            await responses_agent.inquire(
                "hi", model=MODEL, async_client=client, extra_options={"input": "other"}
            )
    [request] = fake_llm.requests
    assert (request.json["store"], request.json["text"]) == (False, {"verbosity": "low"})


@pytest.mark.parametrize(
    ("given", "extra", "named"),
    [
        ({"reasoning_effort": "high"}, {"reasoning": {"summary": "auto"}}, "reasoning_effort"),
        ({"system": "Be brief."}, {"instructions": "In French."}, "the system prompt"),
        ({"max_tokens": 500}, {"max_output_tokens": 20}, "max_tokens"),
        ({"max_completion_tokens": 500}, {"max_output_tokens": 20}, "max_completion_tokens"),
    ],
)
async def test_an_extra_option_the_agent_sends_itself_is_refused_naming_both(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
    given: dict[str, Any],
    extra: dict[str, object],
    named: str,
) -> None:
    """Each would silently replace the other (the Responses API's names are not the agent's)."""
    [entry] = extra
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await responses_agent.inquire(
                "hi", model=MODEL, async_client=client, extra_options=extra, **given
            )
        # alone, either one is sent
        await responses_agent.inquire("hi", model=MODEL, async_client=client, extra_options=extra)
    assert f"extra_options has {entry!r}, which the agent sends itself" in str(raised.value)
    assert f"for {named}" in str(raised.value)
    [request] = fake_llm.requests
    assert request.json[entry] == extra[entry]


async def test_an_api_that_is_neither_is_refused_and_the_reply_fails(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
) -> None:
    wrong = openai_agent.fork(model=MODEL, async_client=client, api="completions")  # type: ignore[arg-type]
    async with MiniAgents():
        reply = wrong.inquire("hi")
        with pytest.raises(LLMConfigurationError) as raised:
            await reply
        with pytest.raises(LLMConfigurationError):
            await anext(aiter(await anext(aiter(reply))))  # the message fails too
    assert str(raised.value) == (
        "The OpenAI agent needs api to be 'chat_completions' or 'responses'; got "
        "'completions'. Pass e.g. openai_agent.fork(api='responses')."
    )
    assert raised.value.parameter == "api"
    assert fake_llm.requests == []


# -- events of other servers ---------------------------------------------------------------


def sse(*events: dict[str, Any]) -> bytes:
    """A server-sent events body of ``events`` (each with its ``type`` as its name)."""
    return b"".join(
        b"event: %s\ndata: %s\n\n" % (event["type"].encode(), json.dumps(event).encode())
        for event in events
    )


async def test_arguments_that_come_whole_instead_of_in_deltas_are_taken() -> None:
    # Some servers give a call's arguments in its output_item.added, or only in the
    # function_call_arguments.done event: no delta at all.
    whole = {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "add"}
    events = sse(
        {"type": "response.created", "sequence_number": 0, "response": response("in_progress", [])},
        {
            "type": "response.output_item.added",
            "sequence_number": 1,
            "output_index": 0,
            "item": {**whole, "arguments": '{"a": 1, "b": 2}', "status": "completed"},
        },
        {
            "type": "response.output_item.added",
            "sequence_number": 2,
            "output_index": 1,
            "item": {**whole, "id": "fc_2", "call_id": "c2", "arguments": ""},
        },
        {
            "type": "response.function_call_arguments.done",
            "sequence_number": 3,
            "output_index": 1,
            "item_id": "fc_2",
            "name": "add",
            "arguments": '{"a": 3, "b": 4}',
        },
        {"type": "response.completed", "sequence_number": 4, "response": response("completed", [])},
    )
    answer = sse(
        {
            "type": "response.output_text.delta",
            "sequence_number": 0,
            "item_id": "m",
            "output_index": 0,
            "content_index": 0,
            "delta": "3 and 7.",
            "logprobs": [],
        },
        {"type": "response.completed", "sequence_number": 1, "response": response("completed", [])},
    )
    bodies = iter([events, answer])
    sent: list[Any] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=next(bodies))

    http = openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(handle))
    async with openai.AsyncOpenAI(api_key="test", http_client=http) as client, MiniAgents():
        messages = await responses_agent.inquire(
            "1 + 2, 3 + 4?", model=MODEL, async_client=client, tools=[add]
        )
    calls = [message for message in messages if isinstance(message, ToolCallMessage)]
    results = [message for message in messages if isinstance(message, ToolResultMessage)]
    assert [(call.call_id, dict(call.arguments)) for call in calls] == [
        ("c1", {"a": 1, "b": 2}),
        ("c2", {"a": 3, "b": 4}),
    ]
    assert [result.text for result in results] == ["3", "7"]
    assert str(messages[-1]) == "3 and 7."
    assert [item.get("type") for item in sent[1]["input"]] == [
        None,
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
    ]


# -- the hook for structured output --------------------------------------------------------

WEATHER = OutputFormat(
    name="Weather",
    schema={
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
        "required": ["city", "celsius"],
        "additionalProperties": False,
    },
    description="The weather in a city.",
)


async def drain(events: AsyncIterator[object]) -> list[object]:
    return [event async for event in events]


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_an_output_format_asks_each_openai_api_for_its_json_schema(
    fake_llm: FakeLLMServer,  # noqa: F811
    client: openai.AsyncOpenAI,
    api: Any,
) -> None:
    fake_llm.reply(['{"city": "Paris", ', '"celsius": 21}'])
    call = LLMCall(MODEL, True, None, (PromptText("user", "Weather in Paris?"),), {}, (), WEATHER)
    extra = {"text": {"verbosity": "low"}} if api == "responses" else None
    options = OpenAIOptions(model=MODEL, async_client=client, api=api, extra_options=extra)
    events = await drain(OpenAIProvider().reply(call, options))
    assert "".join(event for event in events if isinstance(event, str)) == (
        '{"city": "Paris", "celsius": 21}'
    )
    body = fake_llm.requests[0].json
    schema = {"name": "Weather", "schema": dict(WEATHER.schema), "strict": True}
    schema["description"] = "The weather in a city."
    if api == "responses":
        assert body["text"] == {"verbosity": "low", "format": {"type": "json_schema", **schema}}
        assert "response_format" not in body
    else:
        assert body["response_format"] == {"type": "json_schema", "json_schema": schema}


async def test_the_offline_model_answers_an_output_format_with_json_of_its_schema() -> None:
    call = LLMCall("m", False, None, (PromptText("user", "Weather?"),), {}, (), WEATHER)
    events = await drain(OfflineProvider().reply(call, OfflineOptions(token_delay=0)))
    text = "".join(event for event in events if isinstance(event, str))
    assert set(json.loads(text)) == {"city", "celsius"}
