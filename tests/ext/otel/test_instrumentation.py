"""Spans of agents, model calls and tools (offline model): the tree, the timing, the faults."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from miniagents import InteractionContext, Message, MiniAgent, MiniAgents, miniagent
from miniagents.errors import ArgumentError, MissingExtraError, StreamCancelledError
from miniagents.ext.llm import (
    LLMCall,
    LLMEvent,
    LLMOptions,
    LLMToolApprovalRequest,
    make_llm_agent,
)
from miniagents.ext.llm.errors import LLMTimeoutError
from miniagents.ext.llm.observing import llm_call_observers
from miniagents.ext.llm.offline import OfflineMessage, offline_agent
from miniagents.ext.llm.offline_script import CallTool, one_per_call
from miniagents.ext.llm.provider import Finish
from miniagents.ext.otel import instrument, uninstrument
from miniagents.ext.otel._tracing import (
    ENDED_AFTER_PARENT,
    HOLD_LIMIT,
    UNFINISHED_CHILDREN,
    Telemetry,
)
from miniagents.ext.tools import FunctionTool
from miniagents.ext.tools.observing import tool_call_observers
from miniagents.ext.tools.tool_like import ToolLike
from miniagents.messages import MessageSequencePromise, MessageTokenAppender
from miniagents.miniagents.lowlevel import (
    adopt_carrier,
    interaction_observers,
    outgoing_carrier,
)
from miniagents.promising.lowlevel import core_of
from miniagents.testing import VirtualClock, scripted_agent
from tests.fakes.fixtures import virtual_clock  # noqa: F401
from tests.fakes.tracing import Traces, parent_of, plugged_observers, traces  # noqa: F401


@miniagent
async def weather(ctx: InteractionContext, city: str) -> None:
    """Say the weather in a city."""
    ctx.reply(offline_agent.inquire(f"Weather in {city}?", token_delay=0, reply="Sunny."))


def planner(system: str | None = None) -> MiniAgent[..., Message]:
    """The offline model calling ``weather`` for Paris, then answering "Sunny in Paris."."""
    return offline_agent.fork(
        tools=[weather],
        reply=one_per_call(CallTool("WEATHER", {"city": "Paris"}), "Sunny in Paris."),
        token_delay=0,
        system=system,
    )


async def test_a_two_level_agent_with_a_tool_makes_a_tree(traces: Traces) -> None:  # noqa: F811
    agent = offline_agent.fork(
        tools=[weather],
        reply=one_per_call(CallTool("WEATHER", {"city": "Paris"}), "Sunny in Paris."),
        token_delay=0,
    )
    async with MiniAgents():
        assert str(await agent.inquire("Weather in Paris?")).endswith("Sunny in Paris.")
    assert traces.tree() == [
        "invoke_agent OFFLINE_AGENT",
        "  chat offline",
        "  execute_tool WEATHER",
        "    invoke_agent WEATHER",
        "      invoke_agent OFFLINE_AGENT",
        "        chat offline",
        "  chat offline",
    ]
    top, inner = traces.named("invoke_agent OFFLINE_AGENT")
    assert top.parent is None
    assert top.attributes == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "OFFLINE_AGENT",
        "gen_ai.agent.description": (
            "An offline LLM stand-in: same interface as the OpenAI and Anthropic agents."
        ),
        # an LLM agent's interaction: the provider and model of its calls, their tokens
        "gen_ai.provider.name": "offline",
        "gen_ai.request.model": "offline",
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 5,
    }
    # an agent that calls no model itself names none (WEATHER asks an LLM agent)
    assert dict(traces.one("invoke_agent WEATHER").attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "WEATHER",
        "gen_ai.agent.description": "Say the weather in a city.",
    }
    tool = traces.one("execute_tool WEATHER")
    assert parent_of(tool, top)
    assert tool.kind is SpanKind.INTERNAL
    assert dict(tool.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "WEATHER",
        "gen_ai.tool.call.id": "offline_call_1",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "Say the weather in a city.",
    }
    assert parent_of(traces.one("invoke_agent WEATHER"), tool)
    first, inner_chat, last = traces.named("chat offline")
    assert parent_of(first, top)
    assert parent_of(last, top)
    assert parent_of(inner_chat, inner)
    assert first.kind is SpanKind.INTERNAL  # the offline model runs in this process
    attributes = dict(first.attributes or {})
    assert attributes.pop("gen_ai.response.time_to_first_chunk") >= 0  # type: ignore[operator]
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "offline",
        "gen_ai.request.model": "offline",
        "gen_ai.request.stream": True,
        "gen_ai.response.model": "offline",
        "gen_ai.response.finish_reasons": ("tool_calls",),
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 2,
    }
    # every span of the tree ends after its children
    for span in traces.spans():
        for child in traces.spans():
            if child.parent is not None and parent_of(child, span):
                assert span.end_time is not None
                assert child.end_time is not None
                assert child.end_time <= span.end_time, (child.name, span.name)


async def test_sub_agents_in_parallel_and_lazily_are_children_of_their_caller(
    traces: Traces,  # noqa: F811
) -> None:
    @miniagent
    async def leaf(ctx: InteractionContext) -> None:
        ctx.reply("leaf")

    @miniagent
    async def caller(ctx: InteractionContext) -> None:
        lazy = leaf.fork(alias="LAZY", start_asap=False).inquire()
        ctx.reply([leaf.fork(alias="A").inquire(), leaf.fork(alias="B").inquire()])
        ctx.reply(lazy)  # started only when the caller's consumer reads this far

    async with MiniAgents():
        reply = caller.inquire()
        assert [str(message) for message in await reply] == ["leaf", "leaf", "leaf"]
    top = traces.one("invoke_agent CALLER")
    for alias in ("A", "B", "LAZY"):
        assert parent_of(traces.one(f"invoke_agent {alias}"), top)
    lazy = traces.one("invoke_agent LAZY")
    assert lazy.start_time is not None
    assert top.start_time is not None
    assert lazy.start_time >= top.start_time


async def test_an_interaction_inquired_before_instrument_and_started_after_gets_a_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    @miniagent
    async def leaf(ctx: InteractionContext) -> None:
        ctx.reply("leaf")

    async with MiniAgents():
        early = leaf.fork(alias="EARLY").inquire()  # its task is made now, unobserved
        lazy = leaf.fork(alias="LAZY", start_asap=False).inquire()  # not started yet
        instrument(provider)
        try:
            assert [str(message) for message in await lazy] == ["leaf"]  # this starts it
            assert [str(message) for message in await early] == ["leaf"]
        finally:
            uninstrument()
    # The lazy one is observed from its start; the other one started unobserved, and stays so
    assert [span.name for span in exporter.get_finished_spans()] == ["invoke_agent LAZY"]


async def test_a_span_ends_with_the_last_token_not_when_the_agent_returns(
    traces: Traces,  # noqa: F811
) -> None:
    appender = MessageTokenAppender()

    @miniagent
    async def streaming(ctx: InteractionContext) -> None:
        ctx.reply(appender.promise)  # and return: the message streams on

    async with MiniAgents():
        reply = streaming.inquire()
        await core_of(reply).await_done()  # the function has returned, the sequence ended
        appender.append("Hel")
        assert traces.spans() == []
        appender.append("lo")
        last_token = time.time_ns()
        appender.complete()
        (span,) = traces.spans()
        assert span.end_time is not None
        assert span.end_time >= last_token
        assert str(await reply) == "Hello"


async def test_a_cancelled_stream_ends_its_span_with_the_cancellation(traces: Traces) -> None:  # noqa: F811
    started = asyncio.Event()

    @miniagent
    async def endless(ctx: InteractionContext) -> None:
        ctx.reply("first")
        started.set()
        await asyncio.Event().wait()

    async with MiniAgents():
        reply = endless.inquire()
        await started.wait()
        assert traces.spans() == []
        reply.cancel()
        with pytest.raises(StreamCancelledError):
            await reply
    span = traces.one("invoke_agent ENDLESS")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "cancelled"
    assert (span.attributes or {})["error.type"] == "StreamCancelledError"


async def test_a_failing_agent_records_the_class_of_its_error_not_its_message(
    traces: Traces,  # noqa: F811
) -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        ctx.reply("before")
        raise ValueError("secret detail sk-test-123")

    async with MiniAgents():
        with pytest.raises(ValueError, match="secret detail"):
            await failing.inquire()
    span = traces.one("invoke_agent FAILING")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ValueError"
    assert "sk-test-123" not in span.to_json()


async def test_a_failing_model_call_ends_its_span_with_the_error(traces: Traces) -> None:  # noqa: F811
    def broken(_call: object) -> str:
        raise RuntimeError("the model broke")

    async with MiniAgents():
        with pytest.raises(RuntimeError):
            await offline_agent.inquire("Hi", reply=broken, token_delay=0)
    chat = traces.one("chat offline")
    assert chat.status.status_code is StatusCode.ERROR
    assert (chat.attributes or {})["error.type"] == "RuntimeError"
    assert "gen_ai.usage.input_tokens" not in (chat.attributes or {})
    (duration,) = traces.points("gen_ai.client.operation.duration")
    assert duration.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "offline",
        "gen_ai.request.model": "offline",
        "error.type": "RuntimeError",
    }


async def test_a_tool_that_raises_ends_its_span_with_the_error_and_the_loop_goes_on(
    traces: Traces,  # noqa: F811
) -> None:
    def explode(city: str) -> str:
        """Fail."""
        raise KeyError(city)

    agent = offline_agent.fork(
        tools=[explode],
        reply=one_per_call(CallTool("explode", {"city": "Paris"}), "It failed."),
        token_delay=0,
    )
    async with MiniAgents():
        assert str(await agent.inquire("Go")).endswith("It failed.")
    tool = traces.one("execute_tool explode")
    assert tool.status.status_code is StatusCode.ERROR
    assert (tool.attributes or {})["error.type"] == "KeyError"
    assert traces.one("invoke_agent OFFLINE_AGENT").status.status_code is StatusCode.UNSET


async def test_time_to_first_chunk_is_an_event_between_the_start_and_the_end(
    traces: Traces,  # noqa: F811
) -> None:
    async with MiniAgents():
        await offline_agent.inquire("one two three", token_delay=0)
    chat = traces.one("chat offline")
    (event,) = chat.events
    assert event.name == "gen_ai.first_chunk"
    assert chat.start_time is not None
    assert chat.end_time is not None
    assert chat.start_time <= event.timestamp <= chat.end_time
    seconds = (chat.attributes or {})["gen_ai.response.time_to_first_chunk"]
    assert isinstance(seconds, float)
    assert 0 <= seconds * 1e9 <= event.timestamp - chat.start_time + 1e6  # the same moment


def _content_keys(spans: Sequence[ReadableSpan]) -> set[str]:
    content = {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
    return {key for span in spans for key in (span.attributes or {}) if key in content}


async def test_a_refused_call_ends_its_span_with_the_refusal_error(traces: Traces) -> None:  # noqa: F811
    from miniagents.ext.llm.errors import LLMRefusalError
    from miniagents.ext.llm.offline import Refuse

    instrument(traces.tracer_provider, capture_content=True)  # content kept: the refusal too
    async with MiniAgents():
        with pytest.raises(LLMRefusalError):
            await offline_agent.inquire("Hi", reply=Refuse("No."), token_delay=0)
    chat = traces.one("chat offline")
    assert chat.status.status_code is StatusCode.ERROR
    assert (chat.attributes or {})["error.type"] == "LLMRefusalError"


async def test_content_is_recorded_only_with_capture_content(traces: Traces) -> None:  # noqa: F811
    async with MiniAgents():
        await planner(system="Be brief.").inquire("Weather in Paris?")
    assert _content_keys(traces.spans()) == set()
    assert "Paris" not in "".join(span.to_json() for span in traces.spans())

    traces.exporter.clear()
    instrument(traces.tracer_provider, capture_content=True)
    async with MiniAgents():
        await planner(system="Be brief.").inquire("Weather in Paris?")
    assert _content_keys(traces.spans()) == {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
    first, _inner, last = traces.named("chat offline")
    attributes = first.attributes or {}
    assert attributes["gen_ai.system_instructions"] == '[{"type": "text", "content": "Be brief."}]'
    assert attributes["gen_ai.input.messages"] == (
        '[{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]'
    )
    assert attributes["gen_ai.output.messages"] == (
        '[{"role": "assistant", "parts": [{"type": "tool_call", "id": "offline_call_1", '
        '"name": "WEATHER", "arguments": {"city": "Paris"}}], '
        '"finish_reason": "tool_calls"}]'
    )
    assert '"type": "tool_call_response"' in str((last.attributes or {})["gen_ai.input.messages"])
    tool = traces.one("execute_tool WEATHER").attributes or {}
    assert tool["gen_ai.tool.call.arguments"] == '{"city": "Paris"}'
    assert tool["gen_ai.tool.call.result"] == "Sunny."


async def test_nothing_is_traced_once_uninstrumented(traces: Traces) -> None:  # noqa: F811
    uninstrument()
    uninstrument()  # again: nothing to do
    agent = offline_agent.fork(
        tools=[weather],
        reply=one_per_call(CallTool("WEATHER", {"city": "Paris"}), "Sunny."),
        token_delay=0,
    )
    async with MiniAgents():
        await agent.inquire("Hi")
    assert traces.spans() == []
    assert traces.points("gen_ai.client.operation.duration") == []


async def test_instrumenting_again_replaces_the_provider(traces: Traces) -> None:  # noqa: F811
    other = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(other))
    instrument(provider)
    async with MiniAgents():
        await offline_agent.inquire("Hi", token_delay=0)
    assert traces.spans() == []
    assert [span.name for span in other.get_finished_spans()] == [
        "chat offline",
        "invoke_agent OFFLINE_AGENT",
    ]


class _Quiet:
    """An observer of the interactions, the model calls and the tool calls that watches none."""

    def interaction_started(self, agent: object) -> None:
        return None

    def carrier(self) -> Mapping[str, str]:
        return {}

    def llm_call_started(self, *args: object) -> None:
        return None

    def tool_call_started(self, *args: object) -> None:
        return None


def test_uninstrument_beside_another_observer_leaves_the_telemetry_to_be_collected(
    traces: Traces,  # noqa: F811
) -> None:
    quiet = _Quiet()
    interaction_observers.add(quiet)
    llm_call_observers.add(quiet)
    tool_call_observers.add(quiet)
    installed = Telemetry.installed
    assert installed is not None
    telemetry = weakref.ref(installed)
    del installed
    uninstrument()
    interaction_observers.remove(quiet)
    llm_call_observers.remove(quiet)
    tool_call_observers.remove(quiet)
    assert plugged_observers() == (None,) * 3
    gc.collect()
    assert telemetry() is None  # no hook holds it, nor a combination it was in


def test_uninstrument_after_a_traced_run_leaves_the_telemetry_to_be_collected(
    traces: Traces,  # noqa: F811
) -> None:
    async def run() -> None:
        async with MiniAgents():
            assert str(await weather.inquire(city="Paris")) == "Sunny."

    installed = Telemetry.installed
    assert installed is not None
    telemetry = weakref.ref(installed)
    del installed
    asyncio.run(run())  # (its spans' watches lived in the tasks' contexts: gone with them)
    assert [span.name for span in traces.spans()][-1] == "invoke_agent WEATHER"
    uninstrument()
    gc.collect()
    assert telemetry() is None  # (nothing holds it once unplugged: no hook, no watch)


def test_the_telemetry_is_collectable_right_after_a_traced_run_in_its_loop(
    traces: Traces,  # noqa: F811
) -> None:
    installed = Telemetry.installed
    assert installed is not None
    telemetry = weakref.ref(installed)
    del installed

    async def run() -> None:
        async with MiniAgents():
            assert str(await weather.inquire(city="Paris")) == "Sunny."
        uninstrument()
        gc.collect()
        # (was: alive until the model call's stall timer, cancelled, came due 60 s later: its
        # handle kept the context of the call's task, and in it the spans' watches)
        assert telemetry() is None

    asyncio.run(run())


# -- telemetry never breaks a reply --------------------------------------------------------


class _RaisingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionError("the collector is down")


class _RaisingProcessor(SpanProcessor):
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        raise RuntimeError("broken processor")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("broken processor")


class _RaisingTracerProvider(TracerProvider):
    def get_tracer(self, *args: object, **kwargs: object) -> _RaisingTracer:  # type: ignore[override]
        return _RaisingTracer()


class _RaisingTracer:
    def start_span(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("broken tracer")


async def _two_level_reply() -> str:
    agent = offline_agent.fork(
        tools=[weather],
        reply=one_per_call(CallTool("WEATHER", {"city": "Paris"}), "Sunny in Paris."),
        token_delay=0,
    )
    async with MiniAgents():
        return str(await agent.inquire("Weather?"))


async def test_an_exporter_that_raises_never_breaks_a_reply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_RaisingExporter()))
    instrument(provider)
    try:
        with caplog.at_level(logging.CRITICAL, logger="opentelemetry"):  # the SDK logs it
            assert (await _two_level_reply()).endswith("Sunny in Paris.")
    finally:
        uninstrument()


@pytest.mark.parametrize("broken", ["processor", "tracer"])
async def test_a_span_processor_or_tracer_that_raises_is_logged_once_and_agents_go_on(
    broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider: TracerProvider
    if broken == "processor":
        provider = TracerProvider()
        provider.add_span_processor(_RaisingProcessor())
    else:
        provider = _RaisingTracerProvider()
    instrument(provider)
    try:
        with caplog.at_level(logging.WARNING, logger="miniagents"):
            assert (await _two_level_reply()).endswith("Sunny in Paris.")
            assert (await _two_level_reply()).endswith("Sunny in Paris.")
    finally:
        uninstrument()
    warnings = [
        r for r in caplog.records if r.name == "miniagents" and "OpenTelemetry" in r.message
    ]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "broken" in warnings[0].getMessage()


def test_without_opentelemetry_instrument_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "miniagents.ext.otel._tracing", None)  # cannot import
    with pytest.raises(MissingExtraError, match=r'pip install "miniagents\[otel\]"'):
        instrument()
    uninstrument()  # nothing was instrumented: nothing to undo, no error


async def test_tools_called_in_parallel_each_parent_their_own_agent(
    traces: Traces,  # noqa: F811
) -> None:
    both = [CallTool("WEATHER", {"city": "Paris"}), CallTool("WEATHER", {"city": "Rome"})]
    agent = offline_agent.fork(tools=[weather], reply=one_per_call(both, "Done."), token_delay=0)
    async with MiniAgents():
        assert str(await agent.inquire("Weather?")).endswith("Done.")
    (top,) = [span for span in traces.named("invoke_agent OFFLINE_AGENT") if span.parent is None]
    tools = traces.named("execute_tool WEATHER")
    assert sorted(str((tool.attributes or {})["gen_ai.tool.call.id"]) for tool in tools) == [
        "offline_call_1",
        "offline_call_2",
    ]
    agents = traces.named("invoke_agent WEATHER")
    assert len(agents) == 2
    for tool in tools:
        assert parent_of(tool, top)
        (child,) = [agent for agent in agents if parent_of(agent, tool)]
        assert child.end_time is not None
        assert tool.end_time is not None
        assert child.end_time <= tool.end_time


async def test_a_stalled_call_ends_its_span_with_the_timeout(
    traces: Traces,  # noqa: F811
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMTimeoutError):
            await offline_agent.inquire("Hi there", token_delay=5, stall_timeout=1)
    chat = traces.one("chat offline")
    assert (chat.attributes or {})["error.type"] == "LLMTimeoutError"
    assert chat.status.description is None  # error.type says it
    (duration,) = traces.points("gen_ai.client.operation.duration")
    assert (duration.attributes or {})["error.type"] == "LLMTimeoutError"


async def test_an_interaction_under_an_adopted_carrier_continues_that_trace(
    traces: Traces,  # noqa: F811
) -> None:
    """What a Ray worker does (``tests/ext/ray/test_tracing.py`` runs it on a real cluster)."""
    with traces.tracer_provider.get_tracer("test").start_as_current_span("caller") as caller:
        carrier = outgoing_carrier()  # what ray_agent sends with the call
    assert set(carrier) == {"traceparent"}

    @miniagent
    async def remote_side(ctx: InteractionContext) -> None:
        ctx.reply("done")

    async def worker() -> None:  # the worker runs each interaction in a task of its own
        adopt_carrier(carrier)
        async with MiniAgents():
            await remote_side.inquire()

    await asyncio.create_task(worker())
    span = traces.one("invoke_agent REMOTE_SIDE")
    assert span.parent is not None
    assert span.parent.span_id == caller.get_span_context().span_id
    assert span.parent.trace_id == caller.get_span_context().trace_id
    assert span.parent.is_remote


# -- a cancelled tree ends from its leaves up ----------------------------------------------


class Boom(Exception):
    """An agent's own error."""


def _assert_children_end_first(traces: Traces) -> None:  # noqa: F811
    """Every span ended, and none after its parent (a span of the tree)."""
    spans = {span.context.span_id: span for span in traces.spans() if span.context is not None}
    for span in spans.values():
        parent = spans.get(span.parent.span_id) if span.parent is not None else None
        if parent is not None:
            assert span.end_time is not None
            assert parent.end_time is not None
            assert span.end_time <= parent.end_time, (span.name, parent.name)


def _hanging_tools(
    started: asyncio.Event,
) -> tuple[Callable[[str], Awaitable[str]], MiniAgent[..., Message]]:
    """A function and an agent that, called, set ``started`` and wait for ever."""

    async def hang(city: str) -> str:
        """Wait for ever."""
        started.set()
        await asyncio.Event().wait()
        return "never"

    @miniagent(alias="HANGING")
    async def hanging(ctx: InteractionContext, city: str) -> None:
        """Reply, then wait for ever."""
        ctx.reply(f"Looking up {city}")
        started.set()
        await asyncio.Event().wait()

    return hang, hanging


async def _read(reply: MessageSequencePromise) -> None:
    async for message in reply:
        async for _token in message:
            pass


@pytest.mark.parametrize("kind", ["function", "agent"])
async def test_cancelling_an_agent_ends_its_tool_calls_spans_before_its_own(
    traces: Traces,  # noqa: F811
    kind: str,
) -> None:
    started = asyncio.Event()
    hang, hanging = _hanging_tools(started)
    tool: ToolLike = hang if kind == "function" else hanging
    name = "hang" if kind == "function" else "HANGING"
    agent = offline_agent.fork(
        tools=[tool], reply=one_per_call(CallTool(name, {"city": "Paris"}), "Done."), token_delay=0
    )
    async with MiniAgents():
        reply = agent.inquire("Weather in Paris?")
        reading = asyncio.ensure_future(_read(reply))
        await started.wait()  # the tool runs
        reply.cancel()
        with pytest.raises(StreamCancelledError):
            await reading
    expected = ["invoke_agent OFFLINE_AGENT", "  chat offline", f"  execute_tool {name}"]
    if kind == "agent":
        expected.append("    invoke_agent HANGING")
    assert traces.tree() == expected
    tool_span = traces.one(f"execute_tool {name}")
    assert (tool_span.attributes or {})["error.type"] == "CancelledError"
    assert tool_span.status.description == "cancelled"
    interaction = traces.one("invoke_agent OFFLINE_AGENT")
    assert (interaction.attributes or {})["error.type"] == "StreamCancelledError"
    assert interaction.status.description == "cancelled"
    _assert_children_end_first(traces)


async def test_cancelling_an_agent_ends_its_model_calls_and_the_agents_it_waits_for_first(
    traces: Traces,  # noqa: F811
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    started = asyncio.Event()
    _hang, hanging = _hanging_tools(started)

    @miniagent
    async def waiting(ctx: InteractionContext) -> None:
        """Wait for an agent's whole reply, then reply."""
        await hanging.inquire(city="Paris")
        ctx.reply("never")

    async with MiniAgents():
        streaming = offline_agent.inquire("Hi", reply="one two three four", token_delay=1)
        message = await anext(aiter(streaming))
        assert await anext(aiter(message)) == "one "  # the call streams, its model paced
        waiting_reply = waiting.inquire()
        reading = asyncio.ensure_future(_read(waiting_reply))
        await started.wait()  # the agent it waits for runs
        streaming.cancel()
        waiting_reply.cancel()
        for cancelled in (streaming, reading):
            with pytest.raises(StreamCancelledError):
                await cancelled
    assert sorted(traces.tree()) == sorted(
        [
            "invoke_agent OFFLINE_AGENT",
            "  chat offline",
            "invoke_agent WAITING",
            "  invoke_agent HANGING",
        ]
    )
    assert (traces.one("chat offline").attributes or {})["error.type"] == "CancelledError"
    _assert_children_end_first(traces)


async def test_an_agent_that_ends_well_ends_its_span_before_an_agent_it_left_running(
    traces: Traces,  # noqa: F811
) -> None:
    """A span that ends well is not held: the work it started and left goes on after it."""
    go_on = asyncio.Event()

    @miniagent
    async def background(ctx: InteractionContext) -> None:
        await go_on.wait()
        ctx.reply("later")

    @miniagent
    async def starter(ctx: InteractionContext) -> None:
        later.append(background.inquire())  # started, left running
        ctx.reply("done")

    later: list[object] = []
    async with MiniAgents():
        assert str(await starter.inquire()) == "done"
        await core_of(starter.inquire()).await_done()  # (its span's end: the reply's)
        assert [span.name for span in traces.spans()].count("invoke_agent STARTER") == 2
        assert "invoke_agent BACKGROUND" not in [span.name for span in traces.spans()]
        go_on.set()
    assert len(traces.named("invoke_agent BACKGROUND")) == 2
    for span in traces.named("invoke_agent BACKGROUND"):
        assert span.parent is not None  # a child of its starter's, which ended first


@pytest.mark.parametrize("ending", ["fails", "is cancelled"])
async def test_a_failed_span_waits_a_bounded_time_for_a_child_that_never_ends(
    traces: Traces,  # noqa: F811
    virtual_clock: VirtualClock,  # noqa: F811
    ending: str,
) -> None:
    # issue 58, item 4: a background agent that never ends kept its parent unexported
    started = asyncio.Event()

    @miniagent
    async def background(ctx: InteractionContext) -> None:
        started.set()
        await asyncio.Event().wait()  # never ends (nothing cancels it)

    @miniagent
    async def starter(ctx: InteractionContext) -> None:
        left.append(background.inquire())  # started, left running
        await started.wait()
        if ending == "fails":
            raise Boom("the starter failed")
        await asyncio.Event().wait()

    left: list[MessageSequencePromise] = []
    async with MiniAgents():
        reply = starter.inquire()
        await started.wait()
        if ending == "is cancelled":
            reply.cancel()
        with pytest.raises(Boom if ending == "fails" else StreamCancelledError):
            await reply
        began = asyncio.get_running_loop().time()
        await asyncio.sleep(HOLD_LIMIT - 0.5)
        assert "invoke_agent STARTER" not in [span.name for span in traces.spans()]  # held
        await asyncio.sleep(1)  # past the limit: exported, the child still running
        ended = traces.one("invoke_agent STARTER")
        assert ended.end_time is not None
        assert [span.name for span in traces.spans()] == ["invoke_agent STARTER"]
        attributes = ended.attributes or {}
        assert attributes[UNFINISHED_CHILDREN] == 1
        assert attributes["error.type"] == ("Boom" if ending == "fails" else "StreamCancelledError")
        assert asyncio.get_running_loop().time() - began <= HOLD_LIMIT + 1
        left[0].cancel()  # the child ends at last
        with pytest.raises(StreamCancelledError):
            await left[0]
    child = traces.one("invoke_agent BACKGROUND")
    assert parent_of(child, ended)
    assert (child.attributes or {})[ENDED_AFTER_PARENT] is True


async def test_a_failed_span_whose_children_end_in_time_is_not_marked(
    traces: Traces,  # noqa: F811
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    started = asyncio.Event()
    _hang, hanging = _hanging_tools(started)

    @miniagent
    async def waiting(ctx: InteractionContext) -> None:
        await hanging.inquire(city="Paris")

    async with MiniAgents():
        reply = waiting.inquire()
        reading = asyncio.ensure_future(_read(reply))
        await started.wait()
        reply.cancel()
        with pytest.raises(StreamCancelledError):
            await reading
        await asyncio.sleep(HOLD_LIMIT * 2)  # (a timer left would end nothing twice)
    for name in ("invoke_agent WAITING", "invoke_agent HANGING"):
        attributes = traces.one(name).attributes or {}
        assert UNFINISHED_CHILDREN not in attributes
        assert ENDED_AFTER_PARENT not in attributes
    _assert_children_end_first(traces)


# -- the span kind of a model call ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _LocalOptions(LLMOptions):
    model: str | None = "local-model"


class _LocalProvider:
    """A model of this process when ``in_process``; else (for the test) a remote one."""

    message_class = OfflineMessage

    def __init__(self, in_process: bool) -> None:
        if in_process:
            self.in_process = True

    async def reply(self, call: LLMCall, options: _LocalOptions) -> AsyncIterator[LLMEvent]:
        yield "Hi."
        yield Finish("stop", 1, 1)

    def translate(self, error: BaseException) -> BaseException:
        return error


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "remote"])
async def test_a_model_of_this_process_has_internal_chat_spans_a_remote_one_client(
    traces: Traces,  # noqa: F811
    in_process: bool,
) -> None:
    """The conventions: CLIENT for a request to another process, INTERNAL for a model here."""
    local = make_llm_agent(
        _LocalOptions, _LocalProvider(in_process), alias="LOCAL", summary="A local model."
    )
    async with MiniAgents():
        assert str(await local.inquire("Hi")) == "Hi."
        assert str(await offline_agent.inquire("Hi", reply="Hi.", token_delay=0)) == "Hi."
        assert str(await scripted_agent("Scripted.").inquire("Hi")) == "Scripted."
    kind = SpanKind.INTERNAL if in_process else SpanKind.CLIENT
    assert traces.one("chat local-model").kind is kind
    assert traces.one("chat offline").kind is SpanKind.INTERNAL  # the offline model's
    assert traces.one("chat scripted").kind is SpanKind.INTERNAL  # (the testing kit's too)


async def test_a_persons_decision_is_recorded_on_the_tool_calls_span(
    traces: Traces,  # noqa: F811
) -> None:
    """Who decided an approval, when, and what: on the ``execute_tool`` span (issue 51)."""

    def delete_file(path: str) -> str:
        """Delete a file."""
        return f"Deleted {path}"

    llm = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(CallTool("delete_file", {"path": "a.txt"}), "Finished."),
        token_delay=0,
    )
    async with MiniAgents():
        reply = llm.inquire("Delete a.txt")
        async for promise in reply:
            message = await promise
            if isinstance(message, LLMToolApprovalRequest):
                message.approve(by="alice")
                break
        await reply
    (span,) = [s for s in traces.spans() if s.name.startswith("execute_tool")]
    attributes = dict(span.attributes or {})
    assert attributes["miniagents.approval.approved"] is True
    assert attributes["miniagents.approval.decided_by"] == "alice"
    assert str(attributes["miniagents.approval.decided_at"]).endswith("+00:00")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"tracer_provider": "x"},
            r"^instrument\(\) needs tracer_provider to be an OpenTelemetry TracerProvider "
            r"\(e\.g\. opentelemetry\.sdk\.trace\.TracerProvider\(\)\), or None for the global "
            r"one; got 'x'\.$",
        ),
        ({"meter_provider": TracerProvider()}, r"meter_provider to be an OpenTelemetry MeterProv"),
        ({"capture_content": "no"}, r"capture_content to be True or False; got 'no'\.$"),
    ],
    ids=["a-string-as-tracer-provider", "a-tracer-provider-as-meter-provider", "a-str-flag"],
)
def test_instrument_refuses_what_is_not_a_provider_or_a_flag(
    arguments: dict[str, object], message: str
) -> None:
    # (was: a bare AttributeError for a str provider, and "no" taken as a true flag)
    with pytest.raises(ArgumentError, match=message):
        instrument(**arguments)  # type: ignore[arg-type]
