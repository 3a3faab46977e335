"""The Gemini and Bedrock agents over real HTTP, against the fake provider server.

The real SDKs talk to ``miniagents.testing`` on a local port: Google's ``google-genai``
(``streamGenerateContent`` server-sent events) and aiobotocore (ConverseStream in AWS's
binary event-stream framing, each request signed with SigV4 and checked by the server).
Their clients are the ones a ``MiniAgents`` context makes from the environment, pointed at
the server. Each test runs for both providers where the behaviour is shared.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.ext.llm import (
    AssistantMessage,
    Budget,
    BudgetExceededError,
    ImagePart,
    LLMRefusalError,
    LLMToolCallMessage,
    LLMToolResultMessage,
    TokenUsage,
    UserMessage,
    partial_outputs,
    structured,
)
from miniagents.ext.llm.bedrock import BedrockMessage, BedrockProvider, bedrock_agent
from miniagents.ext.llm.errors import (
    LLMAuthenticationError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMOutputValidationError,
    LLMRateLimitError,
    LLMRequestError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
)
from miniagents.ext.llm.gemini import GeminiOptions, gemini_agent
from miniagents.ext.llm.pricing import cost_usd
from miniagents.testing import AWS_TEST_CREDENTIALS, FakeLLMServer, ToolCall
from miniagents.testing import thinking_signature as signature
from tests.ext.llm.natives import BEDROCK, GEMINI, Native
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401
from tests.fakes.tracing import Traces, traces  # noqa: F401
from tests.messages.images import WHOLE_PNG


@pytest.fixture(params=[GEMINI, BEDROCK], ids=["gemini", "bedrock"])
def native(
    request: pytest.FixtureRequest,
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Native:
    chosen = cast(Native, request.param)
    chosen.environment(fake_llm, monkeypatch)
    return chosen


@pytest.fixture
def server(fake_llm: FakeLLMServer) -> FakeLLMServer:  # noqa: F811
    return fake_llm


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


# -- streaming, metadata, usage and cost ---------------------------------------------------


def test_a_client_of_another_kind_is_refused_naming_the_sdks_classes_after_a() -> None:
    # on main: "an google.genai.Client" (an article written for a class named with a vowel)
    with pytest.raises(LLMConfigurationError) as raised:
        GeminiOptions(model="gemini", async_client=object()).check("GEMINI_AGENT")  # type: ignore[arg-type]
    assert str(raised.value).startswith(
        "The agent GEMINI_AGENT needs async_client to be a google.genai.Client or "
        "google.genai.client.AsyncClient; got <"
    )


async def test_tokens_stream_one_by_one_with_the_metadata_first(
    native: Native, server: FakeLLMServer
) -> None:
    server.reply(["Hel", "lo", "!"], usage=(12, 3), cached_tokens=4, pause_after=2)
    async with MiniAgents():
        reply = native.ask("Hi", system="Be brief.")
        promise = await anext(aiter(reply))
        assert promise.metadata["model"] == native.model
        assert promise.metadata["agent_alias"] == native.agent.alias
        tokens = aiter(promise)
        assert [await anext(tokens), await anext(tokens)] == ["Hel", "lo"]
        record = await server.wait_paused_async(0, WAIT)
        assert not promise.done  # the server holds the rest: the tokens came as they came
        record.resume()
        message = await promise
    assert type(message) is native.message_class
    assert str(message) == "Hello!"
    assert message.finish_reason == native.stop
    assert message.usage is not None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 3)
    assert message.usage.cached_input_tokens == 4
    expected = cost_usd(
        native.model, message.usage.model_copy(update={"cost_usd": None}), native.price_provider
    )
    assert expected is not None
    assert message.usage.cost_usd == pytest.approx(expected)
    request = server.requests[0]
    assert request.stream
    assert request.model == native.model
    assert "Be brief." in json.dumps(request.json)


async def test_a_call_without_streaming_gives_the_whole_text_as_one_token(
    native: Native, server: FakeLLMServer
) -> None:
    server.reply(["Hel", "lo"], usage=(5, 2))
    async with MiniAgents():
        promise = await anext(aiter(native.ask("Hi", stream=False)))
        tokens = [token async for token in promise]
        message = await promise
    assert tokens == ["Hello"]
    assert message.usage is not None
    assert message.usage.output_tokens == 2
    assert not server.requests[0].stream


async def test_gemini_counts_the_thinking_tokens_as_output(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    GEMINI.environment(server, monkeypatch)
    server.reply(["Hi"], usage=(5, 9), reasoning_tokens=7)
    async with MiniAgents():
        message = (await GEMINI.ask("Hi"))[0]
    assert message.usage == TokenUsage(
        input_tokens=5, output_tokens=9, reasoning_tokens=7, cost_usd=message.usage.cost_usd
    )


async def test_the_typed_options_reach_the_api_under_its_names(
    native: Native, server: FakeLLMServer
) -> None:
    async with MiniAgents():
        await native.ask("Hi", max_tokens=50, temperature=0.25, top_p=0.5, stop_sequences=["END"])
    body = server.requests[0].json
    if native.name == "gemini":
        config = body["generationConfig"]
        assert (config["maxOutputTokens"], config["temperature"], config["topP"]) == (50, 0.25, 0.5)
        assert config["stopSequences"] == ["END"]
    else:
        config = body["inferenceConfig"]
        assert config == {
            "maxTokens": 50,
            "temperature": 0.25,
            "topP": 0.5,
            "stopSequences": ["END"],
        }


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("max_retries", -1, r"max_retries must be a whole number of at least 0; got -1"),
        ("max_retries", True, r"max_retries must be a whole number of at least 0; got True"),
        ("timeout", 0, r"timeout must be a positive, finite number of seconds; got 0"),
        ("timeout", float("inf"), r"timeout must be a positive, finite number of seconds; got inf"),
        ("timeout", float("nan"), r"timeout must be a positive, finite number of seconds; got nan"),
    ],
)
async def test_bad_retries_and_timeouts_are_refused_before_the_request(
    native: Native, server: FakeLLMServer, option: str, value: object, says: str
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=says):
            await native.ask("Hi", **{option: value})
    assert server.requests == []


async def test_an_extra_option_the_api_does_not_take_is_refused_before_the_request(
    native: Native, server: FakeLLMServer
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="spelling"):
            await native.ask("Hi", extra_options={"temprature": 1})
    assert server.requests == []


@pytest.mark.parametrize(
    ("option", "value"), [("temperature", "hot"), ("max_tokens", 1.5)], ids=["str", "fraction"]
)
async def test_an_option_of_the_wrong_type_is_refused_before_the_request(
    native: Native, server: FakeLLMServer, option: str, value: object
) -> None:
    """The agent checks the options it shares with the others (``check_sampling``) before
    the SDK would (Gemini's pydantic config, botocore's parameter validation)."""
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await native.ask("Hi", **{option: value})
    assert raised.value.parameter == option
    assert server.requests == []


async def test_several_gemini_candidates_are_refused_before_the_request(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``candidate_count=2``: the answers would be mixed into the reply's one text."""
    GEMINI.environment(server, monkeypatch)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="candidate_count=2, but an agent's"):
            await GEMINI.ask("Hi", extra_options={"candidate_count": 2})
    assert server.requests == []


async def test_extra_options_reach_the_api(native: Native, server: FakeLLMServer) -> None:
    if native.name == "gemini":
        extra: dict[str, object] = {"candidate_count": 1}
    else:
        extra = {"additionalModelRequestFields": {"top_k": 40}}
    async with MiniAgents():
        await native.ask("Hi", extra_options=extra)
    body = server.requests[0].json
    if native.name == "gemini":
        assert body["generationConfig"]["candidateCount"] == 1
    else:
        assert body["additionalModelRequestFields"] == {"top_k": 40}


@pytest.mark.parametrize("vertex", [False, True], ids=["developer-api", "vertex-ai"])
async def test_gemini_sends_the_same_request_for_its_config_as_for_the_sdks_own_class(
    server: FakeLLMServer, vertex: bool
) -> None:
    """The agent's config class (a faster ``in``) reads as ``GenerateContentConfig`` does."""
    import httpx2
    from google import genai

    from miniagents.ext.llm.gemini import _config_class

    fields: dict[str, Any] = {
        "system_instruction": "Be brief.",
        "temperature": 0.5,
        "max_output_tokens": 64,
        "candidate_count": 1,
        "stop_sequences": ["END"],
        "tools": [
            {
                "function_declarations": [
                    {
                        "name": "get_weather",
                        "description": "The weather in a city.",
                        "parameters_json_schema": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    }
                ]
            }
        ],
        "automatic_function_calling": {"disable": True},
        "response_mime_type": "application/json",
        "response_json_schema": {"type": "object"},
    }
    options = genai.types.HttpOptions(
        base_url=server.gemini_base_url,
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    client = genai.Client(vertexai=vertex, api_key="test", http_options=options)
    bodies = []
    for config_class in (_config_class(), genai.types.GenerateContentConfig):
        config = config_class(**fields)
        assert [name in config for name in fields] == [False] * len(fields)
        server.reply(["{}"])
        stream = await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Hi", config=config
        )
        assert "".join([chunk.text or "" async for chunk in stream]) == "{}"
        bodies.append(server.requests[-1].json)
    await client.aio.aclose()
    assert bodies[0] == bodies[1]
    assert bodies[0]["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert bodies[0]["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


# -- tools -----------------------------------------------------------------------------------


@miniagent
async def forecaster(ctx: InteractionContext, city: str = "") -> None:
    """The forecast of a city, streamed."""
    ctx.reply(f"Rain in {city} tomorrow.")


async def test_parallel_tool_calls_run_and_their_results_go_back(
    native: Native, server: FakeLLMServer
) -> None:
    server.reply(
        tool_calls=[
            ToolCall("get_weather", {"city": "Paris"}),
            ToolCall("get_weather", {"city": "Rome"}),
            ToolCall("FORECASTER", {"city": "Oslo"}),
        ]
    )
    server.reply(["Sunny", " both."])
    async with MiniAgents():
        messages = await native.ask("Weather?", tools=[get_weather, forecaster])
    calls = [m for m in messages if isinstance(m, LLMToolCallMessage)]
    results = [m for m in messages if isinstance(m, LLMToolResultMessage)]
    assert [dict(call.arguments) for call in calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
        {"city": "Oslo"},
    ]
    assert [str(result) for result in results] == [
        "Sunny in Paris.",
        "Sunny in Rome.",
        "Rain in Oslo tomorrow.",
    ]
    assert len({call.call_id for call in calls}) == 3
    assert str(messages[-1]) == "Sunny both."
    second = server.requests[1]  # the fake refused it (400) if the pairing were wrong
    assert second.status == 200
    sent = json.dumps(second.json)
    for result in results:
        assert str(result) in sent


async def test_gemini_sends_each_calls_thought_signature_back(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    GEMINI.environment(server, monkeypatch)
    server.reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call-7")])
    server.reply(["Done."])
    async with MiniAgents():
        messages = await GEMINI.ask("Weather?", tools=[get_weather])
    assert str(messages[-1]) == "Done."
    turn = server.requests[1].json["contents"][1]
    assert turn["role"] == "model"
    part = turn["parts"][0]
    assert part["functionCall"] == {
        "id": "call-7",
        "name": "get_weather",
        "args": {"city": "Paris"},
    }
    assert part["thoughtSignature"] == "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="
    answer = server.requests[1].json["contents"][2]["parts"][0]["functionResponse"]
    assert answer == {
        "id": "call-7",
        "name": "get_weather",
        "response": {"result": "Sunny in Paris."},
    }


async def test_gemini_sends_each_calls_own_signature_back_when_its_id_repeats(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a model that numbers its calls anew each round (call_0, then call_0 again), each call
    # with its own thought signature: the second is renamed in the conversation (call_0_2),
    # and each call goes back with its own signature (not the latest call_0's, nor the
    # documented stand-in for a call not known)
    GEMINI.environment(server, monkeypatch)

    def round_with(signature: bytes) -> dict[str, Any]:
        called = {"id": "call_0", "name": "get_weather", "args": {"city": "Paris"}}
        part = {"functionCall": called, "thoughtSignature": base64.b64encode(signature).decode()}
        content = {"role": "model", "parts": [part]}
        return {"candidates": [{"content": content, "finishReason": "STOP"}]}

    server.fail(200, body=round_with(b"first-round"))  # (a 200: a whole reply)
    server.fail(200, body=round_with(b"second-round"))
    server.reply(["Done."])
    async with MiniAgents():
        messages = await GEMINI.ask("Weather?", tools=[get_weather], stream=False)
    assert str(messages[-1]) == "Done."
    calls = [message for message in messages if isinstance(message, LLMToolCallMessage)]
    assert [call.call_id for call in calls] == ["call_0", "call_0_2"]
    contents = server.requests[2].json["contents"]
    sent = [
        (part["functionCall"]["id"], part["thoughtSignature"])
        for content in contents
        for part in content["parts"]
        if "functionCall" in part
    ]
    assert sent == [
        ("call_0", base64.b64encode(b"first-round").decode()),
        ("call_0_2", base64.b64encode(b"second-round").decode()),
    ]


async def test_a_streamed_gemini_call_whose_id_repeats_keeps_its_signature(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same, streamed: the fake's signature goes back with the renamed call too (not
    # Google's stand-in for a call whose signature is not known)
    GEMINI.environment(server, monkeypatch)
    for _ in "12":
        server.reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_0")])
    server.reply(["Done."])
    async with MiniAgents():
        await GEMINI.ask("Weather?", tools=[get_weather])
    sent = [
        (part["functionCall"]["id"], part["thoughtSignature"])
        for content in server.requests[2].json["contents"]
        for part in content["parts"]
        if "functionCall" in part
    ]
    fakes = "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="  # (the fake's signature of every call)
    assert sent == [("call_0", fakes), ("call_0_2", fakes)]


def _signed_call(signature: bytes) -> dict[str, Any]:
    """A whole Gemini reply calling ``get_weather`` as ``call_0``, signed ``signature``."""
    called = {"id": "call_0", "name": "get_weather", "args": {"city": "Paris"}}
    part = {"functionCall": called, "thoughtSignature": base64.b64encode(signature).decode()}
    return {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}]}


def _sent_signatures(server: FakeLLMServer, model: str) -> list[tuple[str, str]]:
    """The calls, and their signatures, that the requests for ``model`` sent back."""
    return [
        (part["functionCall"]["id"], part["thoughtSignature"])
        for request in server.requests
        if f"/{model}:" in request.path
        for content in request.json["contents"]
        for part in content["parts"]
        if "functionCall" in part
    ]


async def test_two_conversations_whose_calls_share_an_id_each_send_their_own_signature(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Vertex AI gives ids: two conversations at once, each given call_0 with its own
    # signature; both calls are made before either conversation sends its next request
    GEMINI.environment(server, monkeypatch)
    arrived: list[str] = []
    both = asyncio.Event()

    async def get_weather(city: str) -> str:
        """The weather in a city."""
        arrived.append(city)
        if len(arrived) == 2:
            both.set()
        await both.wait()
        return f"Sunny in {city}."

    for model in ("gemini-a", "gemini-b"):
        server.fail(200, body=_signed_call(model.encode()), for_model=model)
        server.reply(["Done."], for_model=model)
    async with MiniAgents():
        replies = [
            gemini_agent.inquire("Weather?", model=model, tools=[get_weather], stream=False)
            for model in ("gemini-a", "gemini-b")
        ]
        await asyncio.gather(*(reply.aresolve_messages() for reply in replies))
    for model in ("gemini-a", "gemini-b"):
        assert _sent_signatures(server, model) == [
            ("call_0", base64.b64encode(model.encode()).decode())
        ]


async def test_a_saved_history_keeps_each_calls_signature(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a conversation saved, another one given the same call id meanwhile, then the first
    # loaded back and carried on: it sends its own call's signature
    from miniagents.ext.history.markdown import ChatHistoryMD

    GEMINI.environment(server, monkeypatch)
    path = tmp_path / "chat.md"
    for model in ("gemini-a", "gemini-b"):
        server.fail(200, body=_signed_call(model.encode()), for_model=model)
        server.reply(["Done."], for_model=model)
    async with MiniAgents():
        first = await gemini_agent.inquire(
            "Weather?", model="gemini-a", tools=[get_weather], stream=False
        )
        await ChatHistoryMD(path).store([UserMessage(text="Weather?"), *first])
        await gemini_agent.inquire("Weather?", model="gemini-b", tools=[get_weather])
    assert "thought_signature" in path.read_text()
    server.reply(["Still sunny."], for_model="gemini-a")
    async with MiniAgents():
        history = await ChatHistoryMD(path).load()
        assert [type(message) for message in history][1] is LLMToolCallMessage
        await gemini_agent.inquire(
            [*history, UserMessage(text="And now?")], model="gemini-a", tools=[get_weather]
        )
    signed = base64.b64encode(b"gemini-a").decode()
    assert _sent_signatures(server, "gemini-a") == [("call_0", signed), ("call_0", signed)]


async def test_gemini_sends_the_documented_signature_for_a_call_from_elsewhere(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from miniagents.ext.tools import ToolCallMessage, ToolResultMessage

    GEMINI.environment(server, monkeypatch)
    history = [
        UserMessage(text="Weather?"),
        ToolCallMessage(tool_name="get_weather", arguments={"city": "Rome"}, call_id="old-1"),
        ToolResultMessage(tool_name="get_weather", call_id="old-1", text="Rainy."),
    ]
    async with MiniAgents():
        await GEMINI.ask(history, tools=[get_weather])
    part = server.requests[0].json["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == "skip_thought_signature_validator"


THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_bedrock_sends_a_tool_loops_reasoning_back_first_with_its_signature(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    # Claude's extended thinking with tools: the model reasons (a signed reasoningText, a
    # redacted block) before its call; the loop's next request must start the assistant
    # turn with those blocks unchanged, or the model refuses it (400), as the fake does
    BEDROCK.environment(server, monkeypatch)
    server.reply(
        ["Let me check."],
        thinking=["Paris: ", "ask the tool."],
        redacted_thinking="c2VjcmV0",
        tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")],
    )
    server.reply(["Sunny."])
    async with MiniAgents():
        messages = await BEDROCK.ask(
            "Weather in Paris?",
            tools=[get_weather],
            extra_options={"additionalModelRequestFields": THINKING},
            stream=stream,
        )
    assert str(messages[-1]) == "Sunny."
    second = server.requests[1]
    assert second.status == 200
    assert second.json["additionalModelRequestFields"] == THINKING
    turn = second.json["messages"][1]
    assert turn["role"] == "assistant"
    thought = "Paris: ask the tool."
    assert turn["content"] == [
        {"reasoningContent": {"reasoningText": {"text": thought, "signature": signature(thought)}}},
        {"reasoningContent": {"redactedContent": "c2VjcmV0"}},
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": "c1", "name": "get_weather", "input": {"city": "Paris"}}},
    ]
    call = next(m for m in messages if isinstance(m, LLMToolCallMessage))
    assert json.loads(str(call.thought_signature)) == [  # (kept in Converse's own terms)
        {"reasoningText": {"text": thought, "signature": signature(thought)}},
        {"redactedContent": "c2VjcmV0"},
    ]


async def test_bedrock_keeps_each_calls_own_reasoning_and_ignores_another_apis(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a hand-made turn of two calls, each keeping reasoning (Converse's), and a third
    # keeping Gemini's signature (base64, not Converse's): the first call's reasoning goes
    # first in the turn, the second's just before it, the third has none
    BEDROCK.environment(server, monkeypatch)
    kept = [{"reasoningText": {"text": "A.", "signature": signature("A.")}}]
    other = [{"redactedContent": "c2VjcmV0"}]
    history = [
        UserMessage(text="Weather?"),
        AssistantMessage(text="Checking."),
        *(
            LLMToolCallMessage(
                tool_name="get_weather",
                arguments={"city": city},
                call_id=f"c{number}",
                thought_signature=given,
            )
            for number, (city, given) in enumerate(
                [("Paris", json.dumps(kept)), ("Rome", json.dumps(other)), ("Oslo", "ZmFrZQ==")]
            )
        ),
        *(
            LLMToolResultMessage(tool_name="get_weather", call_id=f"c{number}", text="Sunny.")
            for number in range(3)
        ),
    ]
    server.reply(["Done."])
    async with MiniAgents():
        await BEDROCK.ask(
            history, tools=[get_weather], extra_options={"additionalModelRequestFields": THINKING}
        )
    assert server.requests[0].status == 200
    content = server.requests[0].json["messages"][1]["content"]
    assert [next(iter(block)) for block in content] == [
        "reasoningContent",
        "text",
        "toolUse",
        "reasoningContent",
        "toolUse",
        "toolUse",
    ]
    assert content[0]["reasoningContent"] == kept[0]
    assert content[3]["reasoningContent"] == other[0]


@pytest.mark.parametrize(
    ("kept", "says"),
    [
        (None, "Expected `thinking` or `redacted_thinking`, but found `toolUse`"),
        (
            [{"reasoningText": {"text": "Sub.", "signature": signature("A.")}}],
            "Invalid `signature` in `thinking` block",
        ),
    ],
    ids=["dropped", "altered"],
)
async def test_bedrock_refuses_a_tool_loop_without_its_reasoning_when_thinking_is_on(
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    kept: list[dict[str, Any]] | None,
    says: str,
) -> None:
    # as Claude on Bedrock refuses it: the fake's 400, an LLMRequestError
    BEDROCK.environment(server, monkeypatch)
    history = [
        UserMessage(text="Weather?"),
        LLMToolCallMessage(
            tool_name="get_weather",
            arguments={"city": "Paris"},
            call_id="c1",
            thought_signature=None if kept is None else json.dumps(kept),
        ),
        LLMToolResultMessage(tool_name="get_weather", call_id="c1", text="Sunny."),
    ]
    async with MiniAgents():
        with pytest.raises(LLMRequestError, match=re.escape(says)):
            await BEDROCK.ask(
                history,
                tools=[get_weather],
                extra_options={"additionalModelRequestFields": THINKING},
            )
    assert server.requests[0].status == 400


# -- structured output and images ---------------------------------------------------------


class Weather(Message):
    """The weather in a city."""

    city: str
    celsius: float


async def test_structured_output_is_asked_natively_and_partials_stream(
    native: Native, server: FakeLLMServer
) -> None:
    tokens = ['{"city": "Paris", ', '"celsius": 21', ".5", "}"]
    server.reply(tokens, pause_after=2)
    async with MiniAgents():
        reply = structured(native.agent, Weather).inquire(
            "Weather?",
            model=native.model,
            **({"max_retries": 0} if native.name == "bedrock" else {}),
        )
        promise = await anext(aiter(reply))
        partials = aiter(partial_outputs(promise, Weather))
        first = await asyncio.wait_for(anext(partials), WAIT)
        assert (first.city, first.celsius) == ("Paris", 21.0)
        record = await server.wait_paused_async(0, WAIT)
        record.resume()
        weather = await promise
    assert isinstance(weather, Weather)
    assert weather.celsius == 21.5
    asked = server.requests[0].output_format
    assert asked is not None
    assert set(asked["schema"]["properties"]) == {"city", "celsius"}


async def test_a_structured_answer_cut_off_by_max_tokens_is_not_retried(
    native: Native, server: FakeLLMServer
) -> None:
    """Gemini's ``MAX_TOKENS`` and Bedrock's ``max_tokens``: cut short, so not retried."""
    server.reply(['{"city": "Pa', 'ris", "cel'], finish_reason="length", times=2)
    async with MiniAgents():
        with pytest.raises(LLMOutputValidationError) as raised:
            await structured(native.agent, Weather, output_retries=1).inquire(
                "Weather?",
                model=native.model,
                **({"max_retries": 0} if native.name == "bedrock" else {}),
            )
    assert len(server.requests) == 1
    reason = "MAX_TOKENS" if native.name == "gemini" else "max_tokens"
    assert f"reached its max_tokens (finish reason {reason!r})" in str(raised.value)


async def test_a_gemini_structured_answer_cut_off_by_its_continuation_is_not_retried(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gemini's ``CONTINUATION``: its per-request token limit cut the reply, as ``MAX_TOKENS``.

    On main it was taken for a whole answer: its JSON, cut short, was retried (and cut again).
    Its advice is its own (it was max_tokens', which does not lift that limit).
    """
    GEMINI.environment(server, monkeypatch)
    server.reply(['{"city": "Pa', 'ris", "cel'], finish_reason="CONTINUATION", times=2)
    async with MiniAgents():
        with pytest.raises(LLMOutputValidationError) as raised:
            await structured(gemini_agent, Weather, output_retries=1).inquire(
                "Weather?", model=GEMINI.model
            )
    assert len(server.requests) == 1
    said = str(raised.value)
    assert "reached the API's token limit of one request (finish reason 'CONTINUATION')" in said
    assert "leave the Gemini SDK's automatic continuation on" in said
    assert "max_tokens=" not in said


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_gemini_tool_calls_cut_off_by_its_continuation_are_not_run(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    # (on main they ran, and the model was asked again: a reply Gemini had not finished)
    GEMINI.environment(server, monkeypatch)
    ran: list[str] = []

    def weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return "sunny"

    server.reply(tool_calls=[ToolCall("weather", {"city": "Paris"})], finish_reason="CONTINUATION")
    async with MiniAgents():
        with pytest.raises(LLMResponseError) as raised:
            await GEMINI.ask("Weather?", tools=[weather], stream=stream)
    assert str(raised.value) == (
        "The agent GEMINI_AGENT stopped: the model 'gemini-2.5-flash' reached the API's token "
        "limit of one request (finish reason 'CONTINUATION') while it wrote its tool calls "
        "('weather'), so their arguments may be cut short and none was run. A larger "
        "max_tokens does not lift that limit: leave the Gemini SDK's automatic continuation "
        "on, which asks for the rest of the reply in requests of its own (on by default in "
        "a google-genai recent enough to have it; extra_options={'automatic_continuation': "
        "False} turns it off), or ask the model for a shorter reply."
    )  # (was: "Give it more room with gemini_agent.fork(max_tokens=...)", no use here)
    assert ran == []
    assert len(server.requests) == 1


async def test_a_bedrock_structured_answer_cut_off_by_the_context_window_is_not_retried(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Converse's ``model_context_window_exceeded``: on main, retried with a longer prompt."""
    BEDROCK.environment(server, monkeypatch)
    server.reply(
        ['{"city": "Pa', 'ris", "cel'], finish_reason="model_context_window_exceeded", times=2
    )
    async with MiniAgents():
        with pytest.raises(LLMOutputValidationError) as raised:
            await structured(bedrock_agent, Weather, output_retries=1).inquire(
                "Weather?", model=BEDROCK.model, max_retries=0
            )
    assert len(server.requests) == 1
    assert (
        "filled its context window (finish reason 'model_context_window_exceeded') while it "
        "wrote it, so its JSON is cut short"
    ) in str(raised.value)
    assert str(raised.value).endswith(
        "Shorten the conversation (fewer or shorter messages and tool results), or use a model "
        "with a larger context window."
    )


async def test_an_image_goes_as_bytes(native: Native, server: FakeLLMServer) -> None:
    image = ImagePart(data=WHOLE_PNG, media_type="image/png")
    async with MiniAgents():
        await native.ask(UserMessage(text="What is this?", images=(image,)))
    assert server.requests[0].status == 200
    assert [(sent.data, sent.media_type) for sent in server.requests[0].images] == [
        (WHOLE_PNG, "image/png")
    ]


async def test_an_image_url_is_a_file_part_for_gemini_and_refused_by_bedrock(
    native: Native, server: FakeLLMServer
) -> None:
    image = ImagePart(url="https://example.com/cat.png")
    async with MiniAgents():
        if native.name == "bedrock":
            with pytest.raises(LLMConfigurationError, match="bytes, not a URL"):
                await native.ask(UserMessage(text="What is this?", images=(image,)))
            assert server.requests == []
            return
        await native.ask(UserMessage(text="What is this?", images=(image,)))
    assert [sent.url for sent in server.requests[0].images] == ["https://example.com/cat.png"]
    part = server.requests[0].json["contents"][0]["parts"][1]
    # (the SDK sends the inner fields by their proto names, which the API takes too)
    assert part == {
        "fileData": {"file_uri": "https://example.com/cat.png", "mime_type": "image/png"}
    }


async def test_a_conversation_ending_with_the_models_text_and_a_newline_is_taken(
    native: Native, server: FakeLLMServer
) -> None:
    # another agent's draft, given as this one's input: LLM replies often end with "\n",
    # which Converse refuses at the end of a last assistant message (Claude's rule); on main
    # Bedrock sent it as it was and failed with an LLMRequestError (ValidationException)
    server.reply(["Better."])
    async with MiniAgents():
        reply = await native.ask(["Write a line.", AssistantMessage(text="Rivers run.\n\n")])
    assert str(reply[-1]) == "Better."
    if native.name == "bedrock":
        last = server.requests[0].json["messages"][-1]
        assert last == {"role": "assistant", "content": [{"text": "Rivers run."}]}


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, LLMRateLimitError),
        (401, LLMAuthenticationError),
        (403, LLMAuthenticationError),
        (400, LLMRequestError),
        (404, LLMRequestError),
        (500, LLMServerError),
        (503, LLMServerError),
        (504, LLMTimeoutError),  # a gateway's timeout, as for every provider
    ],
)
async def test_http_errors_are_llm_errors(
    native: Native, server: FakeLLMServer, status: int, kind: type[LLMError]
) -> None:
    server.fail(status, message="scripted failure")
    async with MiniAgents():
        with pytest.raises(kind) as raised:
            await native.ask("Hi")
    assert "scripted failure" in str(raised.value)
    assert raised.value.__cause__ is not None


@pytest.mark.parametrize(
    "error_type",
    [None, "RequestTimeout", ""],
    ids=["bedrocks-own", "a-front-ends", "none"],
)
async def test_http_408_is_a_timeout_whatever_its_error_type(
    native: Native, server: FakeLLMServer, error_type: str | None
) -> None:
    # (Bedrock's own 408 is a ModelTimeoutException; one from a front end or a proxy before
    # it has another type, or none: the status decides, as for the other SDKs)
    headers = {} if error_type is None else {"x-amzn-ErrorType": error_type}
    server.fail(408, message="scripted timeout", headers=headers)
    async with MiniAgents():
        with pytest.raises(LLMTimeoutError) as raised:
            await native.ask("Hi")
    assert "scripted timeout" in str(raised.value)
    assert len(server.requests) == 1


def test_bedrock_takes_http_409_as_the_other_sdks_do() -> None:
    from botocore.exceptions import ClientError

    response: Any = {
        "Error": {"Code": "ConflictException", "Message": "scripted conflict"},
        "ResponseMetadata": {"HTTPStatusCode": 409},
    }
    translated = BedrockProvider().translate(ClientError(response, "ConverseStream"))
    assert type(translated) is LLMServerError
    assert str(translated).startswith("Bedrock kept failing with a conflict (HTTP 409): ")


@pytest.mark.parametrize(
    ("status", "kind", "says"),
    [
        (408, LLMTimeoutError, "Gemini did not answer in time (HTTP 408): "),
        (409, LLMRequestError, "Gemini refused the request (409): "),
    ],
    ids=["408-a-timeout", "409-refused-not-retried"],
)
async def test_gemini_takes_408_as_the_other_sdks_do_but_not_409_which_its_sdk_never_retries(
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    kind: type[LLMError],
    says: str,
) -> None:
    GEMINI.environment(server, monkeypatch)
    server.fail(status, message="scripted status")
    async with MiniAgents():
        with pytest.raises(kind) as raised:
            await GEMINI.ask("Hi")
    assert type(raised.value) is kind
    assert str(raised.value).startswith(says)
    assert "scripted status" in str(raised.value)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"error_event_after": 1}, LLMError),
        ({"malformed_after": 1}, LLMResponseError),
        ({"cut_after": 1}, LLMConnectionError),
        ({"omit_final": True}, LLMResponseError),
    ],
    ids=["error-event", "malformed", "cut", "no-final-event"],
)
async def test_a_broken_stream_gives_its_tokens_then_an_llm_error(
    native: Native, server: FakeLLMServer, fault: dict[str, Any], kind: type[LLMError]
) -> None:
    server.reply(["Hel", "lo"], **fault)
    tokens: list[str] = []

    async def read(reply: Any) -> None:
        async for promise in reply:
            async for token in promise:
                tokens.append(token)

    async with MiniAgents():
        with pytest.raises(kind):
            await read(native.ask("Hi"))
    assert tokens[0] == "Hel"


BEDROCK_EARLY = "before the reply began"
BEDROCK_BROKE = "Bedrock sent an error instead of the rest of the reply"
GEMINI_BROKE = "Gemini sent an error instead of the rest of the reply"

ERROR_EVENT_CAUSES = {
    "bedrock": ("__name__", "EventStreamError"),
    "gemini": ("__module__", "google.genai.errors"),
}
"""What the SDK raised for an error event, per provider: an attribute of its class, its value."""


@pytest.mark.parametrize(
    ("provider", "error_type", "script", "kind", "says"),
    [
        (
            BEDROCK,
            "throttlingException",
            {},
            LLMRateLimitError,
            "Bedrock refused the request for its",
        ),
        (
            BEDROCK,
            "internalServerException",
            {},
            LLMServerError,
            "Bedrock failed with a server error",
        ),
        (
            BEDROCK,
            "serviceUnavailableException",
            {},
            LLMServerError,
            "Bedrock was unavailable before",
        ),
        (
            BEDROCK,
            "throttlingException",
            {"thinking": ["Hm."]},
            LLMRateLimitError,
            "Bedrock refused",
        ),
        (BEDROCK, "modelStreamErrorException", {}, LLMResponseError, BEDROCK_BROKE),
        (
            BEDROCK,
            "throttlingException",
            {"error_event_after": 1},
            LLMResponseError,
            BEDROCK_BROKE,
        ),
        (
            BEDROCK,
            "internalServerException",
            {"error_event_after": 1},
            LLMResponseError,
            BEDROCK_BROKE,
        ),
        (
            BEDROCK,
            "serviceUnavailableException",
            {"tokens": [], "tool_calls": [ToolCall("get_weather", {"city": "Paris"})]},
            LLMResponseError,
            BEDROCK_BROKE,
        ),
        (GEMINI, "UNAVAILABLE", {}, LLMServerError, "Gemini failed with a server error (503)"),
        (
            GEMINI,
            "RESOURCE_EXHAUSTED",
            {},
            LLMRateLimitError,
            "Gemini refused the request for its",
        ),
        (GEMINI, "UNAVAILABLE", {"error_event_after": 1}, LLMResponseError, GEMINI_BROKE),
        (GEMINI, "RESOURCE_EXHAUSTED", {"error_event_after": 1}, LLMResponseError, GEMINI_BROKE),
        (GEMINI, "INVALID_ARGUMENT", {"error_event_after": 1}, LLMResponseError, GEMINI_BROKE),
    ],
    ids=[
        "bedrock-throttled",
        "bedrock-server-error",
        "bedrock-unavailable",
        "bedrock-after-thinking",
        "bedrock-model-stream-error",
        "bedrock-throttled-after-a-token",
        "bedrock-server-error-after-a-token",
        "bedrock-unavailable-after-a-call",
        "gemini-unavailable",
        "gemini-exhausted",
        "gemini-unavailable-after-a-token",
        "gemini-exhausted-after",
        "gemini-invalid",
    ],
)
async def test_an_error_event_is_what_its_status_would_be_only_before_a_token(
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    provider: Native,
    error_type: str,
    script: dict[str, Any],
    kind: type[LLMError],
    says: str,
) -> None:
    # before the first token, nothing of the reply was streamed: a throttled (an erring)
    # stream is the 429 (the 500) it stands for, which a pipeline's retry_on retries; after
    # one, part of the reply reached its readers and a call again would give it twice: the
    # reply broke (on main, a Bedrock throttlingException after a token was an
    # LLMRateLimitError, and a Gemini UNAVAILABLE (a RESOURCE_EXHAUSTED) chunk after a token
    # an LLMServerError (an LLMRateLimitError), retried by a pipeline's retry_on, which gave
    # the reply's streamed tokens again)
    provider.environment(server, monkeypatch)
    script = {"tokens": ["Hel", "lo"], "error_event_after": 0, **script}
    server.reply(**script, error_type=error_type)
    tokens: list[str] = []

    async def read(reply: Any) -> None:
        async for promise in reply:
            async for token in promise:
                tokens.append(token)

    asked = {"tools": [get_weather]} if provider is BEDROCK else {}  # (Gemini's: no tools)
    async with MiniAgents():
        with pytest.raises(LLMError) as raised:
            await read(provider.ask("Hi", **asked))
    assert tokens == script["tokens"][: script["error_event_after"]]
    error = raised.value
    assert type(error) is kind
    assert str(error).startswith(says), str(error)
    if provider is BEDROCK:  # (Gemini's early chunk says its HTTP status instead)
        assert (BEDROCK_EARLY in str(error)) is (kind is not LLMResponseError)
    attribute, value = ERROR_EVENT_CAUSES[provider.name]
    assert getattr(type(error.__cause__), attribute) == value
    assert len(server.requests) == 1


async def test_a_bedrock_error_event_is_raised_only_while_its_stream_is_read(
    server: FakeLLMServer,
) -> None:
    # what lets BedrockProvider.reply decide every event stream's exception (and
    # translate_bedrock_error never see one): botocore's converse_stream reads no event
    # (Converse's rest-json stream has no initial response), so the EventStreamError of an
    # exception sent first comes out of the iteration, inside the reply's try
    import aiobotocore.session
    from botocore.exceptions import EventStreamError

    server.reply(["Hel", "lo"], error_event_after=0, error_type="throttlingException")
    session = aiobotocore.session.get_session()
    async with session.create_client(
        "bedrock-runtime",
        endpoint_url=server.bedrock_base_url,
        region_name=AWS_TEST_CREDENTIALS["region_name"],
        aws_access_key_id=AWS_TEST_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=AWS_TEST_CREDENTIALS["aws_secret_access_key"],
    ) as client:
        response = await client.converse_stream(
            modelId="m", messages=[{"role": "user", "content": [{"text": "Hi"}]}]
        )
        stream = response["stream"]
        with pytest.raises(EventStreamError) as raised:
            async for _ in stream:
                pass
        stream.close()
    assert raised.value.response["Error"]["Code"] == "throttlingException"


async def test_a_safety_stop_is_a_refusal(native: Native, server: FakeLLMServer) -> None:
    server.reply(refusal=["I can't ", "help."])  # Gemini: SAFETY; Bedrock: content_filtered
    async with MiniAgents():
        with pytest.raises(LLMRefusalError) as raised:
            await native.ask("Something bad")
    assert raised.value.text == "I can't help."
    assert len(server.requests) == 1  # not retried


async def test_a_bedrock_guardrail_is_a_refusal(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    BEDROCK.environment(server, monkeypatch)
    server.reply(
        ["Sorry, the model cannot answer this question."], finish_reason="guardrail_intervened"
    )
    async with MiniAgents():
        with pytest.raises(LLMRefusalError, match="cannot answer"):
            await BEDROCK.ask("Something bad")


async def test_a_gemini_prompt_block_is_a_refusal(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    GEMINI.environment(server, monkeypatch)
    server.reply([], finish_reason="prompt_blocked")
    async with MiniAgents():
        with pytest.raises(LLMRefusalError):
            await GEMINI.ask("Something bad")


@pytest.mark.parametrize(
    ("reason", "kind", "says"),
    [
        ("MALFORMED_FUNCTION_CALL", LLMResponseError, "a function call that could not be parsed"),
        ("UNEXPECTED_TOOL_CALL", LLMResponseError, "a function that the request did not declare"),
        ("OTHER", LLMResponseError, "for a reason Gemini does not say"),
        ("MISSING_THOUGHT_SIGNATURE", LLMRequestError, "lacked its thought signature"),
    ],
)
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_a_gemini_reply_stopped_for_no_answer_is_an_error_naming_its_reason(
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    reason: str,
    kind: type[LLMError],
    says: str,
    stream: bool,
) -> None:
    # (was: an empty answer, its finish_reason the only trace of what happened)
    GEMINI.environment(server, monkeypatch)
    server.reply([], finish_reason=reason)
    async with MiniAgents():
        with pytest.raises(kind) as raised:
            await GEMINI.ask("Weather?", tools=[get_weather], stream=stream)
    assert type(raised.value) is kind
    assert str(raised.value).startswith(
        f"Gemini stopped the reply with the finish reason {reason}: "
    )
    assert says in str(raised.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize("reason", ["malformed_tool_use", "malformed_model_output"])
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_a_bedrock_reply_stopped_as_malformed_is_an_error_and_its_calls_are_not_run(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, reason: str, stream: bool
) -> None:
    # (was: its tool calls run with whatever arguments could be read, the model asked again)
    BEDROCK.environment(server, monkeypatch)
    ran: list[str] = []

    def get_weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return "sunny"

    server.reply(
        tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")], finish_reason=reason
    )
    async with MiniAgents():
        with pytest.raises(LLMResponseError) as raised:
            await BEDROCK.ask("Weather?", tools=[get_weather], stream=stream)
    assert type(raised.value) is LLMResponseError
    assert str(raised.value).startswith(f"Bedrock stopped the reply with the stop reason {reason}")
    assert ran == []
    assert len(server.requests) == 1


async def test_gemini_refuses_an_invalid_api_key_in_a_400(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    GEMINI.environment(server, monkeypatch)
    server.fail(400, message="API key not valid. Please pass a valid API key.")
    async with MiniAgents():
        with pytest.raises(LLMAuthenticationError):
            await GEMINI.ask("Hi")


async def test_without_credentials_a_call_is_an_authentication_error(
    native: Native, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GEMINI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    async with MiniAgents():
        with pytest.raises(LLMAuthenticationError, match=r"GEMINI_API_KEY|AWS_ACCESS_KEY_ID"):
            await native.ask("Hi")
    assert server.requests == []


async def test_bedrock_refuses_a_wrong_signature(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    BEDROCK.environment(server, monkeypatch)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    async with MiniAgents():
        with pytest.raises(LLMAuthenticationError, match="signature"):
            await BEDROCK.ask("Hi")
    assert server.requests[0].status == 403
    assert server.requests[0].headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")


async def test_bedrock_takes_its_settings_from_its_own_client(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    BEDROCK.environment(server, monkeypatch)
    import aiobotocore.session

    session = aiobotocore.session.get_session()
    async with (
        session.create_client(
            "bedrock-runtime",
            endpoint_url=server.bedrock_base_url,
            region_name=AWS_TEST_CREDENTIALS["region_name"],
            aws_access_key_id=AWS_TEST_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=AWS_TEST_CREDENTIALS["aws_secret_access_key"],
        ) as client,
        MiniAgents(),
    ):
        assert str(await bedrock_agent.inquire("Hi", model="m", async_client=client)) == "Hi"
        with pytest.raises(LLMConfigurationError, match="that client's"):
            await bedrock_agent.inquire("Hi", model="m", async_client=client, max_retries=0)


# -- cancellation and budgets -------------------------------------------------------------


async def test_giving_up_on_a_reply_closes_the_http_stream(
    native: Native, server: FakeLLMServer
) -> None:
    server.reply(["Hel", "lo"], hang_after=1)
    async with MiniAgents():
        reply = native.ask("Hi")
        promise = await anext(aiter(reply))
        assert await anext(aiter(promise)) == "Hel"

        async def consume() -> None:
            await promise

        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0)
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        assert await server.wait_disconnected_async(0, WAIT)


async def test_a_budget_counts_the_calls_and_stops_the_next(
    native: Native, server: FakeLLMServer
) -> None:
    budget = Budget(max_requests=1)
    async with MiniAgents():
        await native.ask("Hi", budget=budget)
        with pytest.raises(BudgetExceededError):
            await native.ask("Again", budget=budget)
    assert budget.usage.requests == 1
    assert len(server.requests) == 1


# -- across providers: fallback, tracing ---------------------------------------------------


async def test_a_fallback_goes_from_openai_to_gemini_to_bedrock(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from miniagents.ext.llm import fallback_agent
    from miniagents.ext.llm.openai import openai_agent

    GEMINI.environment(server, monkeypatch)
    BEDROCK.environment(server, monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    server.fail(503, for_model="gpt-test")  # OpenAI is down
    server.fail(429, for_model=GEMINI.model)  # Gemini is out of quota
    server.reply(["From ", "Bedrock"], for_model=BEDROCK.model)
    agent = fallback_agent(
        openai_agent.fork(model="gpt-test", max_retries=0),
        gemini_agent.fork(model=GEMINI.model, max_retries=0),
        bedrock_agent.fork(model=BEDROCK.model, max_retries=0),
    )
    async with MiniAgents():
        messages = await agent.inquire("Hi")
    assert [str(message) for message in messages] == ["From Bedrock"]
    assert type(messages[0]) is BedrockMessage
    assert [request.provider for request in server.requests] == ["openai", "gemini", "bedrock"]


async def test_each_call_is_a_span_with_its_providers_name(
    native: Native,
    server: FakeLLMServer,
    traces: Traces,  # noqa: F811
) -> None:
    server.reply(["Hi"], usage=(3, 1))
    async with MiniAgents():
        await native.ask("Hello", temperature=0.5)
    chat = traces.one(f"chat {native.model}")
    attributes = dict(chat.attributes or {})
    expected = {"gemini": "gcp.gemini", "bedrock": "aws.bedrock"}[native.name]
    assert attributes["gen_ai.provider.name"] == expected
    assert attributes["gen_ai.request.model"] == native.model
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.usage.input_tokens"] == 3
    assert attributes["gen_ai.usage.output_tokens"] == 1


@pytest.mark.parametrize("auth", ["api-key", "project"])
async def test_gemini_on_vertex_ai(server: FakeLLMServer, auth: str) -> None:
    import httpx2
    from google import genai
    from google.oauth2.credentials import Credentials

    options = genai.types.HttpOptions(
        base_url=server.gemini_base_url,
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    if auth == "api-key":  # Vertex AI's express mode
        client = genai.Client(vertexai=True, api_key="test", http_options=options)
    else:  # a project, a location and Google credentials
        credentials = Credentials(token="vertex-token")  # type: ignore[no-untyped-call]
        client = genai.Client(
            vertexai=True,
            project="my-project",
            location="us-central1",
            credentials=credentials,
            http_options=options,
        )
    server.reply(["From ", "Vertex"])
    async with MiniAgents():
        reply = await gemini_agent.inquire("Hi", model="gemini-2.5-flash", async_client=client)
    await client.aio.aclose()
    assert str(reply[0]) == "From Vertex"
    request = server.requests[0]
    assert request.model == "gemini-2.5-flash"
    if auth == "api-key":
        assert request.path.startswith("/v1beta1/publishers/google/models/gemini-2.5-flash:")
        assert request.headers["x-goog-api-key"] == "test"
    else:
        assert request.path.startswith(
            "/v1beta1/projects/my-project/locations/us-central1/publishers/google/models/"
        )
        assert request.headers["authorization"] == "Bearer vertex-token"


@pytest.mark.parametrize(
    ("native", "module", "extra"),
    [(GEMINI, "google.genai", "gemini"), (BEDROCK, "aiobotocore", "bedrock")],
    ids=["gemini", "bedrock"],
)
async def test_a_missing_sdk_is_an_import_error_naming_the_extra(
    native: Native,
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    extra: str,
) -> None:
    native.environment(server, monkeypatch)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    async with MiniAgents():
        with pytest.raises(ImportError, match=rf'pip install "miniagents\[{extra}\]"'):
            await native.ask("Hi")
    assert server.requests == []


async def test_bedrock_takes_an_api_key_as_a_bearer_token(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    BEDROCK.environment(server, monkeypatch)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-123")
    async with MiniAgents():
        assert str(await BEDROCK.ask("Hi there")) == "Hi there"
    assert server.requests[0].headers["authorization"] == "Bearer bedrock-api-key-123"


async def test_a_bedrock_token_event_without_its_delta_is_a_response_error() -> None:
    # botocore leaves out what it could not parse: a contentBlockDelta with no delta fails
    # the reply (after the tokens before it), and the HTTP stream is closed
    from miniagents.ext.llm.bedrock import BedrockOptions
    from miniagents.ext.llm.provider import LLMCall

    class _Stream:
        closed = False

        def __init__(self, events: list[dict[str, Any]]) -> None:
            self._events = iter(events)

        def __aiter__(self) -> _Stream:
            return self

        async def __anext__(self) -> dict[str, Any]:
            try:
                return next(self._events)
            except StopIteration:
                raise StopAsyncIteration from None

        def close(self) -> None:
            self.closed = True

    events: list[dict[str, Any]] = [
        {"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"contentBlockIndex": 0}},
    ]
    stream = _Stream(events)

    class _Client:
        async def converse_stream(self, **arguments: object) -> dict[str, Any]:
            return {"stream": stream}

    call = LLMCall(model="amazon.nova-lite-v1:0", stream=True, system=None, messages=())
    options = BedrockOptions(model="amazon.nova-lite-v1:0", async_client=cast(Any, _Client()))
    taken: list[object] = []

    async def read() -> None:
        async for event in BedrockProvider().reply(call, options):
            taken.append(event)

    with pytest.raises(LLMResponseError, match="malformed contentBlockDelta"):
        await read()
    assert taken == ["Hi"]
    assert stream.closed


@pytest.mark.parametrize(
    ("output", "missing"),
    [
        (None, "a reply with no output "),
        ({"message": {"role": "assistant"}}, r"no output\.message\.content list"),
        (
            {"message": {"role": "assistant", "content": [{"toolUse": {"input": {}}}]}},
            "toolUse block 0 has no toolUseId or no name",
        ),
        # botocore's parser refuses these before the agent sees them (a union with no
        # member; a string where a list goes): its errors are translated
        ({}, "malformed response.*ConverseOutput must have one and only one member"),
        ({"message": {"role": "assistant", "content": [{}]}}, "malformed response.*Content"),
        ({"message": {"role": "assistant", "content": "Hi"}}, "malformed response"),
    ],
    ids=[
        "no-output",
        "no-content",
        "tool-use-without-id",
        "no-message",
        "block-without-text",
        "content-not-a-list",
    ],
)
async def test_a_malformed_whole_bedrock_reply_is_a_response_error_naming_what_is_missing(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, output: Any, missing: str
) -> None:
    # stream=False: a 200 whose body is not a whole Converse reply (a server of another
    # make, a proxy): an LLMResponseError saying what was missing, not a KeyError
    BEDROCK.environment(server, monkeypatch)
    body: dict[str, Any] = {"stopReason": "end_turn", "usage": {"inputTokens": 1}}
    if output is not None:
        body["output"] = output
    server.fail(200, body=body)  # (a 200: a reply)
    async with MiniAgents():
        with pytest.raises(LLMResponseError, match=f"Bedrock.*{missing}"):
            await BEDROCK.ask("Hi", stream=False)
