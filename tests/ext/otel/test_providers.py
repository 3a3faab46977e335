"""Spans and metrics of real SDK calls over HTTP, for every API: the fake server answers.

OpenAI Chat Completions, the OpenAI Responses API and Anthropic Messages, with the real
``openai`` and ``anthropic`` clients against :class:`~miniagents.testing.FakeLLMServer`.
"""

from __future__ import annotations  # noqa: I001

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

import httpx2
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from miniagents import InteractionContext, MiniAgents
from miniagents.errors import StreamCancelledError
from miniagents.ext.llm import (
    Budget,
    BudgetExceededError,
    LLMCall,
    LLMEvent,
    LLMProvider,
    fallback_agent,
)
from miniagents.ext.llm.errors import LLMAuthenticationError, LLMRateLimitError
from miniagents.ext.llm.recording import record_llm_calls
from miniagents.ext.otel import instrument
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.llm.providers import ANTHROPIC, LLM, OPENAI, RESPONSES, SDKClient
from tests.fakes.tracing import Traces, parent_of, traces  # noqa: F401
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401

KEY = "sk-otel-test-0123456789abcdefKEY"
"""The API key of the test clients: it must appear in no span and no metric."""


@pytest.fixture(params=[OPENAI, ANTHROPIC, RESPONSES], ids=["openai", "anthropic", "responses"])
def llm(request: pytest.FixtureRequest) -> LLM:
    return cast(LLM, request.param)


@pytest.fixture
async def client(llm: LLM, fake_llm: FakeLLMServer) -> AsyncIterator[SDKClient]:  # noqa: F811
    """The API's real SDK client, with ``KEY`` as its API key, for the fake server."""
    async with llm.client(fake_llm, api_key=KEY) as made:
        yield made


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


async def test_a_call_is_a_client_span_that_ends_after_the_last_event(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    fake_llm.reply(["Hel", "lo"], usage=(5, 2), model=f"{llm.model}-2026", pause_after=2)
    async with MiniAgents():
        reply = llm.agent.inquire(
            "Hi", model=llm.model, async_client=client, temperature=0.5, max_tokens=20
        )
        message = await anext(aiter(reply))
        tokens = aiter(message)
        assert [await anext(tokens), await anext(tokens)] == ["Hel", "lo"]
        record = await fake_llm.wait_paused_async(0, WAIT)
        assert traces.spans() == []  # the model has not ended its reply: nothing has ended
        resumed = time.time_ns()
        record.resume()
        assert str(await reply) == "Hello"
    chat = traces.one(f"chat {llm.model}")
    interaction = traces.one(f"invoke_agent {llm.alias}")
    assert parent_of(chat, interaction)
    assert chat.kind is SpanKind.CLIENT
    assert chat.end_time is not None
    assert interaction.end_time is not None
    assert chat.end_time >= resumed
    assert interaction.end_time >= chat.end_time
    (first_chunk,) = chat.events
    assert chat.start_time is not None
    assert chat.start_time <= first_chunk.timestamp <= resumed
    attributes = dict(chat.attributes or {})
    assert attributes.pop("gen_ai.response.time_to_first_chunk") > 0  # type: ignore[operator]
    response_id = attributes.pop("gen_ai.response.id")  # the API's id of the reply
    assert str(response_id).startswith(llm.pick(("chatcmpl-fake", "msg_fake", "resp_fake")))
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": llm.sdk,
        "gen_ai.request.model": llm.model,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.max_tokens": 20,
        "gen_ai.request.stream": True,
        "gen_ai.response.model": f"{llm.model}-2026",
        "gen_ai.response.finish_reasons": (llm.stop,),
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 2,
        **llm.pick(
            (
                {  # the two OpenAI APIs report the cached and reasoning tokens, 0 here
                    "gen_ai.usage.cache_read.input_tokens": 0,
                    "gen_ai.usage.reasoning.output_tokens": 0,
                },
                {  # Anthropic its cache reads and writes
                    "gen_ai.usage.cache_read.input_tokens": 0,
                    "gen_ai.usage.cache_creation.input_tokens": 0,
                },
            )
        ),
    }


async def test_a_tool_loop_nests_its_spans_and_counts_its_tokens(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")], usage=(10, 3))
    fake_llm.reply(["Sunny."], usage=(20, 2))
    agent = llm.agent.fork(model=llm.model, async_client=client, tools=[get_weather])
    async with MiniAgents():
        assert str(await agent.inquire("Weather in Paris?")).endswith("Sunny.")
    assert traces.tree() == [
        f"invoke_agent {llm.alias}",
        f"  chat {llm.model}",
        "  execute_tool get_weather",
        f"  chat {llm.model}",
    ]
    tool = traces.one("execute_tool get_weather").attributes or {}
    assert tool["gen_ai.tool.call.id"] == "c1"
    first, second = traces.named(f"chat {llm.model}")
    assert (first.attributes or {})["gen_ai.usage.input_tokens"] == 10
    assert (second.attributes or {})["gen_ai.response.finish_reasons"] == (llm.stop,)

    usage = traces.points("gen_ai.client.token.usage")
    by_type = {point.attributes["gen_ai.token.type"]: point for point in usage if point.attributes}
    assert (by_type["input"].count, by_type["input"].sum) == (2, 30)
    assert (by_type["output"].count, by_type["output"].sum) == (2, 5)
    assert dict(by_type["input"].attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": llm.sdk,
        "gen_ai.request.model": llm.model,
        "gen_ai.response.model": llm.model,
        "gen_ai.token.type": "input",
    }
    (duration,) = traces.points("gen_ai.client.operation.duration")
    assert duration.count == 2
    assert duration.sum > 0


def _exported_text(traces: Traces) -> str:  # noqa: F811
    spans: list[ReadableSpan] = traces.spans()
    metrics = traces.reader.get_metrics_data()
    return "".join(span.to_json() for span in spans) + (
        metrics.to_json() if metrics is not None else ""
    )


@pytest.mark.parametrize("capture_content", [False, True], ids=["content-off", "content-on"])
async def test_the_api_key_appears_nowhere_in_any_mode(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
    capture_content: bool,
) -> None:
    instrument(
        traces.tracer_provider,
        capture_content=capture_content,
        meter_provider=traces.meter_provider,
    )
    fake_llm.reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])
    fake_llm.reply(["Sunny."])
    fake_llm.fail(401, message=f"Incorrect API key provided: {KEY}.")
    agent = llm.agent.fork(model=llm.model, async_client=client, system="Be brief.")
    async with MiniAgents():
        await agent.inquire("Weather?", tools=[get_weather])
        with pytest.raises(LLMAuthenticationError, match=KEY):  # the SDK quotes it
            await agent.inquire("Again?")
    assert all(KEY in str(request.headers) for request in fake_llm.requests)
    failed = traces.named(f"chat {llm.model}")[-1]
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "LLMAuthenticationError"
    exported = _exported_text(traces)
    assert ("Be brief." in exported) is capture_content  # content: only when asked
    assert KEY not in exported
    assert KEY[-12:] not in exported  # nor a part of it


async def test_giving_up_on_a_streaming_reply_ends_its_spans_as_cancelled(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    fake_llm.reply(["Hel", "lo", " world"], hang_after=1)
    async with MiniAgents():
        reply = llm.agent.inquire("Hi", model=llm.model, async_client=client)
        message = await anext(aiter(reply))
        assert await anext(aiter(message)) == "Hel"
        assert traces.spans() == []
        reply.cancel()
        with pytest.raises(StreamCancelledError):
            await reply
    chat = traces.one(f"chat {llm.model}")
    interaction = traces.one(f"invoke_agent {llm.alias}")
    for span in (chat, interaction):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "cancelled"
    assert (chat.attributes or {})["error.type"] == "CancelledError"
    assert (interaction.attributes or {})["error.type"] == "StreamCancelledError"
    assert "gen_ai.usage.output_tokens" not in (chat.attributes or {})
    assert chat.end_time is not None
    assert interaction.end_time is not None
    assert chat.end_time <= interaction.end_time  # the call's cancellation ends first


async def test_a_call_records_its_cached_and_reasoning_tokens_and_one_stop_sequence_as_a_list(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    fake_llm.reply(
        ["Hi"], usage=(50, 9), cached_tokens=20, cache_write_tokens=5, reasoning_tokens=4
    )
    stop = llm.pick(({"stop": "END"}, {"stop_sequences": ["END"]}, {}))  # (Responses: none)
    async with MiniAgents():
        assert str(await llm.agent.inquire("Hi", model=llm.model, async_client=client, **stop))
    attributes = traces.one(f"chat {llm.model}").attributes or {}
    if stop:  # a string[], even for the one text of OpenAI's stop="END"
        assert attributes["gen_ai.request.stop_sequences"] == ("END",)
    assert attributes["gen_ai.usage.input_tokens"] == 50  # the cached ones included
    assert attributes["gen_ai.usage.output_tokens"] == 9  # the reasoning ones included
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 20
    assert attributes.get("gen_ai.usage.cache_creation.input_tokens") == llm.pick((None, 5))
    assert attributes.get("gen_ai.usage.reasoning.output_tokens") == llm.pick((4, None))


async def test_a_call_that_does_not_stream_has_no_first_chunk_and_one_that_does_has_its_metric(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    fake_llm.reply(["Whole."], usage=(3, 1))
    fake_llm.reply(["Str", "eamed."], usage=(3, 2))
    agent = llm.agent.fork(model=llm.model, async_client=client)
    async with MiniAgents():
        assert str(await agent.inquire("Hi", stream=False)) == "Whole."
        assert str(await agent.inquire("Hi", stream=True)) == "Streamed."
    whole, streamed = traces.named(f"chat {llm.model}")
    ids = [(span.attributes or {})["gen_ai.response.id"] for span in (whole, streamed)]
    prefix = llm.pick(("chatcmpl-fake", "msg_fake", "resp_fake"))
    assert all(str(each).startswith(prefix) for each in ids)  # the API's id of each reply
    assert ids[0] != ids[1]
    # gen_ai.request.stream is set if and only if the request streams; a reply that came
    # whole has no first chunk (its first event is its end)
    assert "gen_ai.request.stream" not in (whole.attributes or {})
    assert "gen_ai.response.time_to_first_chunk" not in (whole.attributes or {})
    assert not whole.events
    assert (streamed.attributes or {})["gen_ai.request.stream"] is True
    seconds = (streamed.attributes or {})["gen_ai.response.time_to_first_chunk"]
    (first,) = traces.points("gen_ai.client.operation.time_to_first_chunk")
    assert (first.count, first.sum) == (1, seconds)  # the streamed call's only
    assert dict(first.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": llm.sdk,
        "gen_ai.request.model": llm.model,
        "gen_ai.response.model": llm.model,
    }
    assert list(first.explicit_bounds) == [0.01 * 2.0**power for power in range(14)]


async def test_the_interaction_of_an_llm_agent_names_its_provider_model_and_tokens(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")], usage=(10, 3))
    fake_llm.reply(["Sunny."], usage=(20, 2))
    agent = llm.agent.fork(model=llm.model, async_client=client, tools=[get_weather])
    async with MiniAgents():
        assert str(await agent.inquire("Weather in Paris?")).endswith("Sunny.")
    interaction = dict(traces.one(f"invoke_agent {llm.alias}").attributes or {})
    assert interaction.pop("gen_ai.agent.description")
    assert interaction == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": llm.alias,
        "gen_ai.provider.name": llm.sdk,  # required on invoke_agent: its calls' provider
        "gen_ai.request.model": llm.model,
        "gen_ai.usage.input_tokens": 30,  # the tokens of its calls, both rounds
        "gen_ai.usage.output_tokens": 5,
    }


async def test_a_failed_call_has_its_error_type_and_no_status_description_repeating_it(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    fake_llm.fail(429)
    async with MiniAgents():
        with pytest.raises(LLMRateLimitError):
            await llm.agent.inquire("Hi", model=llm.model, async_client=client, max_retries=0)
    for span in (traces.one(f"chat {llm.model}"), traces.one(f"invoke_agent {llm.alias}")):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description is None  # no duplicate of error.type, no message
        assert (span.attributes or {})["error.type"] == "LLMRateLimitError"
    (duration,) = traces.points("gen_ai.client.operation.duration")
    assert (duration.attributes or {})["error.type"] == "LLMRateLimitError"  # as the span's


async def test_a_fallback_that_answers_fails_only_the_spans_of_the_agent_that_failed(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    fake_llm.fail(500)
    fake_llm.reply(["Backup."], usage=(2, 1))
    primary = llm.agent.fork(model=llm.model, async_client=client, max_retries=0)
    backup = llm.agent.fork(alias="BACKUP", model=llm.model, async_client=client)
    async with MiniAgents():
        assert str(await fallback_agent(primary, backup).inquire("Hi")) == "Backup."
    assert traces.tree() == [
        "invoke_agent FALLBACK_AGENT",
        f"  invoke_agent {llm.alias}",
        f"    chat {llm.model}",
        "  invoke_agent BACKUP",
        f"    chat {llm.model}",
    ]
    failed, answered = traces.named(f"chat {llm.model}")
    for span in (failed, traces.one(f"invoke_agent {llm.alias}")):
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == "LLMServerError"
    # the error was handled: the fallback agent's own span, and the answer's, did not fail
    for span in (
        answered,
        traces.one("invoke_agent BACKUP"),
        traces.one("invoke_agent FALLBACK_AGENT"),
    ):
        assert span.status.status_code is StatusCode.UNSET
        assert "error.type" not in (span.attributes or {})


async def test_captured_tool_call_arguments_are_an_object_or_the_text_that_is_not_json(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    instrument(traces.tracer_provider, capture_content=True, meter_provider=traces.meter_provider)
    fake_llm.reply(
        tool_calls=[
            ToolCall("get_weather", {"city": "Paris"}, id="c1"),
            ToolCall("get_weather", '{"city": "Par', id="c2"),  # cut short: not JSON
        ]
    )
    fake_llm.reply(["Sunny."])
    agent = llm.agent.fork(model=llm.model, async_client=client, tools=[get_weather])
    async with MiniAgents():
        await agent.inquire("Weather in Paris?")
    first = traces.named(f"chat {llm.model}")[0]
    (output,) = json.loads(str((first.attributes or {})["gen_ai.output.messages"]))
    calls = {part["id"]: part["arguments"] for part in output["parts"] if "arguments" in part}
    assert calls == {"c1": {"city": "Paris"}, "c2": '{"city": "Par'}


async def test_two_calls_of_one_id_keep_their_own_parts_and_tool_spans(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    # a model that writes one id for two calls: the chat span's output has both calls, each
    # with its arguments and the id it goes on with; each ran in its own execute_tool span
    instrument(traces.tracer_provider, capture_content=True, meter_provider=traces.meter_provider)
    fake_llm.reply(
        tool_calls=[ToolCall("get_weather", {"city": city}, id="dup") for city in ("Paris", "Rome")]
    )
    fake_llm.reply(["Sunny."])
    agent = llm.agent.fork(model=llm.model, async_client=client, tools=[get_weather])
    async with MiniAgents():
        await agent.inquire("Weather in Paris and Rome?")
    first = traces.named(f"chat {llm.model}")[0]
    (output,) = json.loads(str((first.attributes or {})["gen_ai.output.messages"]))
    calls = [(part["id"], part["arguments"]) for part in output["parts"] if "arguments" in part]
    # (the second renamed whichever provider: the ids the model's next turn sees, not the
    # model's own on one provider and renamed on another, OpenAI's Chat Completions)
    assert calls == [("dup", {"city": "Paris"}), ("dup_2", {"city": "Rome"})]
    ran = sorted(
        (
            str((span.attributes or {})["gen_ai.tool.call.id"]),
            str((span.attributes or {})["gen_ai.tool.call.arguments"]),
        )
        for span in traces.named("execute_tool get_weather")
    )
    assert [call_id for call_id, _ in ran] == ["dup", "dup_2"]
    assert [json.loads(arguments) for _, arguments in ran] == [{"city": "Paris"}, {"city": "Rome"}]


# -- the call's span is current in the provider's request ---------------------------------


class _TracedTransport(httpx2.AsyncBaseTransport):
    """An HTTP transport that makes a span of each request, as an instrumented client does."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        with self._tracer.start_as_current_span(f"HTTP {request.method}", kind=SpanKind.CLIENT):
            return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def traced_client(
    llm: LLM,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> AsyncIterator[SDKClient]:
    """The API's real SDK client whose HTTP requests make spans (``HTTP POST``)."""
    tracer = traces.tracer_provider.get_tracer("http-client")
    http_client = httpx2.AsyncClient(transport=_TracedTransport(tracer))
    async with llm.client(fake_llm, http_client=http_client) as made:
        yield made


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_the_sdks_http_request_is_a_child_of_the_calls_span(
    llm: LLM,
    traced_client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
    stream: bool,
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")])
    fake_llm.reply(["Sunny."])
    agent = llm.agent.fork(
        model=llm.model, async_client=traced_client, tools=[get_weather], stream=stream
    )
    async with MiniAgents():
        assert str(await agent.inquire("Weather in Paris?")).endswith("Sunny.")
    assert traces.tree() == [
        f"invoke_agent {llm.alias}",
        f"  chat {llm.model}",
        "    HTTP POST",  # made by the SDK's client, in the call's span
        "  execute_tool get_weather",  # (the tool runs under the agent's, not the call's)
        f"  chat {llm.model}",
        "    HTTP POST",
    ]
    for chat, request in zip(
        traces.named(f"chat {llm.model}"), traces.named("HTTP POST"), strict=True
    ):
        assert parent_of(request, chat)
        assert chat.start_time is not None
        assert request.start_time is not None
        assert request.end_time is not None
        assert chat.end_time is not None
        assert chat.start_time <= request.start_time <= request.end_time <= chat.end_time


# -- a call that a budget refuses sends no request: no chat span --------------------------


async def test_a_call_a_budget_refuses_has_no_span_and_fails_the_agents_span(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")])
    agent = llm.agent.fork(model=llm.model, async_client=client, tools=[get_weather])
    async with MiniAgents():
        with pytest.raises(BudgetExceededError, match="did not call the model"):
            await agent.inquire("Weather in Paris?", budget=Budget(max_requests=1))
    assert len(fake_llm.requests) == 1  # the second call was refused: never sent
    assert traces.tree() == [
        f"invoke_agent {llm.alias}",
        f"  chat {llm.model}",  # the one request sent (CLIENT)
        "  execute_tool get_weather",
    ]
    assert traces.one(f"chat {llm.model}").status.status_code is StatusCode.UNSET
    interaction = traces.one(f"invoke_agent {llm.alias}")  # the refusal is the agent's error
    assert interaction.status.status_code is StatusCode.ERROR
    assert (interaction.attributes or {})["error.type"] == "BudgetExceededError"
    (duration,) = traces.points("gen_ai.client.operation.duration")
    assert duration.count == 1  # the operation that was made, and only it


# -- the finish reason of a captured output message is never null -------------------------


def _body_without_a_finish_reason(llm: LLM, calls: bool) -> dict[str, object]:
    """A whole reply of an OpenAI-compatible server that names no finish
    reason (``null``), as some servers send: a text, or a tool call."""
    arguments = {"city": "Paris"}
    usage = {"input_tokens": 3, "output_tokens": 2}
    if llm.name == "openai":
        message: dict[str, object] = {"role": "assistant", "content": None if calls else "Hi."}
        if calls:
            function = {"name": "get_weather", "arguments": json.dumps(arguments)}
            message["tool_calls"] = [{"id": "c1", "type": "function", "function": function}]
        return {
            "id": "chatcmpl-null",
            "object": "chat.completion",
            "created": 0,
            "model": llm.model,
            "choices": [{"index": 0, "message": message, "finish_reason": None}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    if llm.name == "anthropic":
        block: dict[str, object] = (
            {"type": "tool_use", "id": "c1", "name": "get_weather", "input": arguments}
            if calls
            else {"type": "text", "text": "Hi."}
        )
        return {
            "id": "msg_null",
            "type": "message",
            "role": "assistant",
            "model": llm.model,
            "content": [block],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
    item: dict[str, object] = (
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "c1",
            "name": "get_weather",
            "arguments": json.dumps(arguments),
            "status": "completed",
        }
        if calls
        else {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Hi.", "annotations": []}],
        }
    )
    return {
        "id": "resp_null",
        "object": "response",
        "created_at": 0,
        "model": llm.model,
        "status": None,
        "output": [item],
        "usage": {**usage, "total_tokens": 5},
    }


@pytest.mark.parametrize("calls", [False, True], ids=["text", "tool-call"])
# (Anthropic's whole reply without a stop_reason is refused: an LLMResponseError, tested in
# tests/ext/llm/test_llm_providers.py)
@pytest.mark.parametrize("llm", [OPENAI, RESPONSES], ids=["openai", "responses"])
async def test_an_output_message_without_the_apis_finish_reason_gets_the_conventions_one(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
    calls: bool,
) -> None:
    """``finish_reason`` is required in ``gen_ai.output.messages``: never ``null``."""
    instrument(traces.tracer_provider, capture_content=True, meter_provider=traces.meter_provider)
    fake_llm.fail(200, body=_body_without_a_finish_reason(llm, calls))  # (a 200: a reply)
    fake_llm.reply(["Sunny."], finish_reason="stop")
    agent = llm.agent.fork(model=llm.model, async_client=client, tools=[get_weather])
    async with MiniAgents():
        await agent.inquire("Weather in Paris?", stream=False)
    first = traces.named(f"chat {llm.model}")[0]
    (output,) = json.loads(str((first.attributes or {})["gen_ai.output.messages"]))
    assert output["finish_reason"] == ("tool_call" if calls else "stop")  # the conventions'
    assert [part["type"] for part in output["parts"]] == ["tool_call" if calls else "text"]
    # the API's own words only: it said none
    assert "gen_ai.response.finish_reasons" not in (first.attributes or {})
    if calls:  # and the call after the tool's, as the API said it
        (last,) = json.loads(
            str((traces.named(f"chat {llm.model}")[1].attributes or {})["gen_ai.output.messages"])
        )
        assert last["finish_reason"] == llm.stop


class _LiveRecorder:
    """A recorder that makes every call (as a durable run's first run does): its stream."""

    def __init__(self) -> None:
        self.calls = 0

    def llm_call(
        self,
        ctx: InteractionContext,
        provider: LLMProvider[Any, Any],
        call: LLMCall,
        start: Callable[[], AsyncIterator[LLMEvent]],
    ) -> AsyncIterator[LLMEvent]:
        self.calls += 1
        return start()


@pytest.fixture
def live_recorder() -> Iterator[_LiveRecorder]:
    recorder = _LiveRecorder()
    previous = record_llm_calls(recorder)
    try:
        yield recorder
    finally:
        record_llm_calls(previous)


async def test_a_recorded_call_is_traced_once_admitted_its_request_in_its_span(
    llm: LLM,
    traced_client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
    live_recorder: _LiveRecorder,
) -> None:
    """The path of a recorded call (a durable run), metered by its own stream."""
    fake_llm.reply(["Hi."])
    agent = llm.agent.fork(model=llm.model, async_client=traced_client)
    async with MiniAgents():
        assert str(await agent.inquire("Hi", budget=Budget(max_requests=1))) == "Hi."
        with pytest.raises(BudgetExceededError, match="did not call the model"):
            await agent.inquire("Again", budget=Budget(max_requests=0))
    assert live_recorder.calls == 2
    assert len(fake_llm.requests) == 1
    assert traces.tree() == [
        f"invoke_agent {llm.alias}",
        f"  chat {llm.model}",
        "    HTTP POST",
        f"invoke_agent {llm.alias}",  # the refused call: no chat span, the agent's error
    ]
    refused = traces.named(f"invoke_agent {llm.alias}")[1]
    assert (refused.attributes or {})["error.type"] == "BudgetExceededError"
