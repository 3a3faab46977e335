"""The instrumentation itself: one observer of the interactions, the model calls and the tools.

``Telemetry`` plugs into the three hooks (:mod:`miniagents.miniagents.lowlevel`,
:mod:`miniagents.ext.llm.observing`, :mod:`miniagents.ext.tools.observing`) and turns what
they tell into spans and metrics (see :mod:`miniagents.ext.otel.instrumentation` for what
is recorded). Every call into OpenTelemetry is guarded: a failure is logged once and the
agents go on.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextvars import Token
from typing import Any, ClassVar

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from miniagents.ext.llm.observing import (
    innermost_provider,
    llm_call_observers,
)
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import (
    CallIds,
    Finish,
    LLMCall,
    LLMEvent,
    LLMProvider,
    Refusal,
    ToolCallDelta,
    ToolCallStart,
)
from miniagents.ext.tools.approval import ToolDecision
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.observing import tool_call_observers
from miniagents.ext.tools.tool import Tool
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents.logged_once import LoggedOnce
from miniagents.miniagents.lowlevel import (
    ObservedAgent,
    incoming_carrier,
    interaction_observers,
)
from miniagents.promising.errors import StreamCancelledError

__all__ = ["Telemetry"]

_SCOPE = "miniagents"

_TOKEN_BUCKETS = [4.0**power for power in range(14)]  # 1 ... 67,108,864 (the conventions')
_DURATION_BUCKETS = [0.01 * 2.0**power for power in range(14)]  # 0.01 ... 81.92 seconds

_REQUEST_OPTIONS = {  # the call options recorded, by their names in the APIs
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
    "stop_sequences": "gen_ai.request.stop_sequences",
}

_STOP_SEQUENCES = "gen_ai.request.stop_sequences"  # a string[], even for one ``stop`` text

_PROVIDERS = {"OpenAIProvider": "openai", "AnthropicProvider": "anthropic"}

Attributes = dict[str, AttributeValue]

_durable_span: contextvars.ContextVar[tuple[str, Span] | None] = contextvars.ContextVar(
    "miniagents_otel_durable_span", default=None
)
"""The span of the durable agent's interaction that runs in this task (its alias, its span).

``durable(agent)`` is an agent of ``agent``'s alias that runs ``agent`` (as a DBOS
workflow): the interaction of ``agent`` it starts right under its own is the same
interaction to a reader of the trace, so it gets no span of its own (its calls are
children of the durable one's)."""


_interaction: contextvars.ContextVar[_SpanEnd | None] = contextvars.ContextVar(
    "miniagents_otel_interaction", default=None
)
"""The watch of the interaction that runs in this task (set in the interaction's own task).

A model call made right under its span (an LLM agent's own calls) names the provider and
the model on it, and adds its tokens to the interaction's."""


_watching: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar(
    "miniagents_otel_watching", default=None
)
"""The watch whose span this task made current: an interaction's, or a tool call's (set in
the interaction's or the call's own task). A span of ours started right under it is one of
its children (see :class:`_Watch`)."""


class Telemetry:
    """Spans and metrics for one ``instrument()`` call (see the module docstring)."""

    installed: ClassVar[Telemetry | None] = None

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        *,
        capture_content: bool,
    ) -> None:
        tracers = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        meters = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self.tracer = tracers.get_tracer(_SCOPE)
        meter = meters.get_meter(_SCOPE)
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streaming response.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.capture_content = bool(capture_content)
        self._failures = LoggedOnce(
            "Tracing with OpenTelemetry failed (%s: %s): the agents go on, and some spans or "
            "metrics may be missing. This is logged once."
        )

    # -- installing ------------------------------------------------------------------

    def install(self) -> None:
        """Observe everything from now on (replacing the instrumentation before, if any).

        It plugs in beside the other observers (the evals' recorder, while a run goes on),
        which stay as they are.
        """
        Telemetry.uninstall()
        Telemetry.installed = self
        interaction_observers.add(self)
        llm_call_observers.add(self)
        tool_call_observers.add(self)

    @classmethod
    def uninstall(cls) -> None:
        """Stop observing: unplug ours, leaving the other observers plugged in.

        An observer that chains to the one it replaced (``set``, not ``add``) may still
        hold ours: ours is no longer ``installed`` then, so it makes no span nor metric.
        """
        telemetry, cls.installed = cls.installed, None
        if telemetry is not None:
            interaction_observers.remove(telemetry)
            llm_call_observers.remove(telemetry)
            tool_call_observers.remove(telemetry)

    def _on(self) -> bool:
        """Whether this is the instrumentation in use (not one uninstalled or replaced since)."""
        return Telemetry.installed is self

    def failed(self, error: Exception) -> None:
        """Log, once, that OpenTelemetry failed; the agents go on."""
        self._failures.failed(error)

    # -- spans -----------------------------------------------------------------------

    def _start(self, name: str, kind: SpanKind, attributes: Attributes) -> tuple[Span, Context]:
        parent = otel_context.get_current()
        if not trace.get_current_span(parent).get_span_context().is_valid:
            carried = incoming_carrier()  # e.g. in a Ray worker: the caller's trace
            if carried:
                parent = propagate.extract(carried, context=parent)
        span = self.tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
        return span, trace.set_span_in_context(span, parent)

    def end(
        self, span: Span, error: BaseException | None, attributes: Attributes | None = None
    ) -> None:
        """End ``span``, with ``attributes`` and, if it failed, the error's class."""
        try:
            if attributes:
                span.set_attributes(attributes)
            if error is not None:
                span.set_attribute("error.type", type(error).__qualname__)
                # the error's message is never recorded (it may quote an API key), and its
                # class is error.type already: a description only says a cancellation
                cancelled = isinstance(error, (StreamCancelledError, asyncio.CancelledError))
                span.set_status(Status(StatusCode.ERROR, "cancelled" if cancelled else None))
            span.end()
        except Exception as failure:
            self.failed(failure)

    # -- interactions (miniagents.miniagents.lowlevel.InteractionObserver) ----------------

    def interaction_started(self, agent: ObservedAgent) -> _SpanEnd | None:
        """Start the interaction's span and make it current in the interaction's task.

        The interaction a durable agent runs right under its own gets none (see
        ``_durable_span``): a durable agent's interaction has one span.
        """
        if not self._on():
            return None
        try:
            outer = _durable_span.get()
            if outer is not None:
                _durable_span.set(None)  # (in this interaction's own task: for it only)
                alias, span = outer
                if alias == agent.alias and trace.get_current_span() is span:
                    return None
            attributes: Attributes = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": agent.alias,
            }
            summary = (agent.description or "").strip().split("\n\n", 1)[0]
            if summary:  # its first paragraph (an LLM agent's docstring lists its options)
                attributes["gen_ai.agent.description"] = summary
            parent = _parent_watch()
            span, context = self._start(
                f"invoke_agent {agent.alias}", SpanKind.INTERNAL, attributes
            )
            otel_context.attach(context)  # in the interaction's own task: never leaks out
            if _is_durable(agent):
                _durable_span.set((agent.alias, span))
            watch = _SpanEnd(self, span, parent)
            _interaction.set(watch)  # (in this interaction's own task too)
            _watching.set(watch)
        except Exception as error:
            self.failed(error)
            return None
        return watch

    def carrier(self) -> Mapping[str, str]:
        """The current trace, for another process (W3C ``traceparent``, by default)."""
        carrier: dict[str, str] = {}
        if self._on():
            propagate.inject(carrier)
        return carrier

    # -- model calls (miniagents.ext.llm.observing.LLMCallObserver) -----------------------

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> _ChatWatch | None:
        """Start the call's span (current where the provider's code runs: see ``events``)."""
        if not self._on():
            return None
        try:
            provider_name = _provider_name(provider)
            attributes: Attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider_name,
                "gen_ai.request.model": call.model,
            }
            for option, value in call.options.items():
                key = _REQUEST_OPTIONS.get(option)
                if key is not None and value is not None:
                    if key == _STOP_SEQUENCES and isinstance(value, str):
                        value = [value]
                    attributes[key] = _attribute(value)
            if call.stream:  # set if and only if the request streams
                attributes["gen_ai.request.stream"] = True
            if call.output_format is not None:
                attributes["gen_ai.output.type"] = "json"
            if self.capture_content:
                if call.system:
                    parts = [{"type": "text", "content": call.system}]
                    attributes["gen_ai.system_instructions"] = _json(parts)
                attributes["gen_ai.input.messages"] = _json(_input_messages(call))
            interaction = _interaction.get()
            if interaction is not None and interaction.span is not trace.get_current_span():
                interaction = None  # a call made under another span (not the agent's own)
            if interaction is not None and interaction.provider_name is None:
                interaction.provider_name = provider_name
                interaction.span.set_attributes(
                    {"gen_ai.provider.name": provider_name, "gen_ai.request.model": call.model}
                )
            # CLIENT: a request to a remote service; a model of this process: INTERNAL
            kind = SpanKind.INTERNAL if _in_process(provider) else SpanKind.CLIENT
            parent = _parent_watch()
            span, context = self._start(f"chat {call.model}", kind, attributes)
        except Exception as error:
            self.failed(error)
            return None
        return _ChatWatch(self, span, context, provider_name, call, interaction, parent)

    # -- tool calls (miniagents.ext.tools.observing.ToolCallObserver) ---------------------

    def tool_call_started(
        self, tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
    ) -> _ToolWatch | None:
        """Start the call's span and make it current in the call's task."""
        if not self._on():
            return None
        try:
            attributes: Attributes = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool.name,
                "gen_ai.tool.call.id": call.call_id,
                "gen_ai.tool.type": "function",
            }
            if tool.description:
                attributes["gen_ai.tool.description"] = tool.description
            if self.capture_content:
                attributes["gen_ai.tool.call.arguments"] = call.text
            parent = _parent_watch()
            span, context = self._start(f"execute_tool {tool.name}", SpanKind.INTERNAL, attributes)
            otel_context.attach(context)  # in the call's own task: never leaks out
            watch = _ToolWatch(self, span, parent, result if self.capture_content else None)
            _watching.set(watch)  # (in the call's own task too)
        except Exception as error:
            self.failed(error)
            return None
        return watch


HOLD_LIMIT = 5.0
"""Seconds at most that a failed span waits for its open children before it ends anyway."""

UNFINISHED_CHILDREN = "miniagents.span.unfinished_children"
"""The attribute of a failed span that ended before some of its children: how many."""

ENDED_AFTER_PARENT = "miniagents.span.ended_after_parent"
"""The attribute (``true``) of a span that was still open when its failed parent ended."""


class _Watch:
    """A span of ours, and how many spans of ours started right under it are still open.

    A span that ends with an error (most often a cancellation) while some of its children
    are still open (a model call, a tool call, an agent it asked, whose cancellation is
    still on its way to their tasks) is held: it ends when the last of them has, so that
    a cancelled tree ends from its leaves up and no child ends after its parent. It is
    held :data:`HOLD_LIMIT` seconds at most: a child that does not end by then (an agent it
    started and left running, which nothing cancels) would keep it unexported for good, so
    it ends then, with :data:`UNFINISHED_CHILDREN`, and each of those children gets
    :data:`ENDED_AFTER_PARENT` when it ends. A span that ends well ends at once: an agent
    it started and left running (e.g. a logger) may end after it, as its work goes on
    after its caller's.

    Args:
        telemetry: The instrumentation that made the span.
        span: The span.
        parent: The watch of its parent span, if that is one of ours (see
            :func:`_parent_watch`).
    """

    __slots__ = ("_held", "_left", "_open", "_parent", "_timer", "span", "telemetry")

    def __init__(self, telemetry: Telemetry, span: Span, parent: _Watch | None) -> None:
        self.telemetry = telemetry
        self.span = span
        self._open = 0  # its children still open
        self._held: tuple[BaseException, Attributes | None] | None = None  # its end, held
        self._timer: asyncio.TimerHandle | None = None  # ends it, held too long
        self._left = False  # it ended, held too long, before some of its children
        self._parent = parent
        if parent is not None:
            parent._open += 1

    def _end(self, error: BaseException | None, attributes: Attributes | None) -> None:
        """End the span now, or, failed with children still open, when the last has ended."""
        if error is not None and self._open:
            self._held = (error, attributes)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # (no loop to wait on: ends now)
                self._give_up()
                return
            self._timer = loop.call_later(HOLD_LIMIT, self._give_up)
            return
        self._ended(error, attributes)

    def _give_up(self) -> None:
        """End a held span before its open children (held too long): they are counted."""
        self._timer = None
        held, self._held = self._held, None
        if held is None:  # (ended meanwhile)
            return
        error, attributes = held
        self._left = True
        self._ended(error, {**(attributes or {}), UNFINISHED_CHILDREN: self._open})

    def _ended(self, error: BaseException | None, attributes: Attributes | None) -> None:
        parent, self._parent = self._parent, None
        if parent is not None and parent._left:  # it ended first, held too long
            attributes = {**(attributes or {}), ENDED_AFTER_PARENT: True}
        self.telemetry.end(self.span, error, self._final(attributes))
        if parent is not None:
            parent._open -= 1
            held = parent._held
            if held is not None and not parent._open:  # its last child: the parent ends now
                parent._held = None
                timer, parent._timer = parent._timer, None
                if timer is not None:
                    timer.cancel()
                parent._ended(*held)

    def _final(self, attributes: Attributes | None) -> Attributes | None:
        """The attributes set as the span ends (``attributes``: those known at its end)."""
        return attributes


def _parent_watch() -> _Watch | None:
    """The watch of ours whose span is current here, if any: a span started now is its child."""
    watch = _watching.get()
    if watch is not None and watch.span is trace.get_current_span():
        return watch
    return None  # none, or a span of someone else's is current (theirs is the parent)


class _SpanEnd(_Watch):
    """The watch of an interaction: its span ends with the replies.

    An LLM agent's interaction also has the provider and the model of its calls (its
    first call names them) and the sum of their tokens (each call adds its own).
    """

    __slots__ = ("input_tokens", "output_tokens", "provider_name")

    def __init__(self, telemetry: Telemetry, span: Span, parent: _Watch | None) -> None:
        self.provider_name: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        super().__init__(telemetry, span, parent)

    def interaction_ended(self, error: BaseException | None) -> None:
        self._end(error, None)

    def _final(self, attributes: Attributes | None) -> Attributes:
        # the sums when it ends (held, it has its last calls' too), and what its end adds
        final: Attributes = dict(attributes or {})
        if self.input_tokens is not None:
            final["gen_ai.usage.input_tokens"] = self.input_tokens
        if self.output_tokens is not None:
            final["gen_ai.usage.output_tokens"] = self.output_tokens
        return final

    def add(self, finish: Finish) -> None:
        """Add the tokens of one of the interaction's calls."""
        if finish.input_tokens is not None:
            self.input_tokens = (self.input_tokens or 0) + finish.input_tokens
        if finish.output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + finish.output_tokens


class _ToolWatch(_Watch):
    """The watch of a tool call: its span ends with the result (its text, if captured)."""

    __slots__ = ("result",)

    def __init__(
        self,
        telemetry: Telemetry,
        span: Span,
        parent: _Watch | None,
        result: MessagePromise[ToolResultMessage] | None,
    ) -> None:
        self.result = result
        super().__init__(telemetry, span, parent)

    def tool_call_decided(self, decision: ToolDecision) -> None:
        """Record a person's decision on the call (before the tool runs): who, when, which."""
        attributes: Attributes = {"miniagents.approval.approved": decision.approved}
        if decision.decided_by is not None:
            attributes["miniagents.approval.decided_by"] = decision.decided_by
        if decision.decided_at is not None:
            attributes["miniagents.approval.decided_at"] = decision.decided_at.isoformat()
        self.span.set_attributes(attributes)

    def tool_call_ended(self, error: BaseException | None) -> None:
        result = self.result
        if result is not None and result.done and not isinstance(error, asyncio.CancelledError):
            try:
                text: str | None = result.message_now().text
            except Exception:  # it failed: its error is the span's
                text = None
            if text is not None:
                self._end(error, {"gen_ai.tool.call.result": text})
                return
        self._end(error, None)


class _ChatWatch(_Watch):
    """The watch of a call of the model: its first chunk, its ``Finish``, its metrics."""

    __slots__ = (
        "answer",
        "call",
        "calls",
        "context",
        "finish",
        "first",
        "ids",
        "interaction",
        "model",
        "provider_name",
        "started",
        "stream",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        span: Span,
        context: Context,
        provider_name: str,
        call: LLMCall,
        interaction: _SpanEnd | None,
        parent: _Watch | None,
    ) -> None:
        self.context = context  # the span's: current while the provider's code runs
        self.provider_name = provider_name
        self.model = call.model
        self.stream = call.stream  # only a streaming reply has a first chunk
        self.interaction = interaction
        self.started = time.monotonic()
        self.first: float | None = None
        self.finish: Finish | None = None
        self.answer: list[str] | None = [] if telemetry.capture_content else None
        # (captured) each call, in order: its id, [name, argument pieces...]; two calls of
        # one id (a model that writes its own ids) are two, a delta the later one's
        self.calls: list[tuple[str, list[str]]] = []
        self.call = call
        self.ids: CallIds | None = None  # (captured) the calls' ids, once one starts
        super().__init__(telemetry, span, parent)

    async def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        """Pass the events through, noting the first chunk, the ``Finish`` (and the content).

        The call's span is current while the provider's code runs (each step of ``events``,
        in whichever task reads them: the SDK's request and its reads), so that the spans
        made there (an instrumented HTTP client's) are its children; never in between, so
        that what the reader does with an event is not.
        """
        context = self.context
        attach, detach = otel_context.attach, otel_context.detach
        step = events.__anext__
        try:
            while True:
                try:
                    token: Token[Context] | None = attach(context)
                except Exception as error:  # (a context variable set: never seen to fail)
                    self.telemetry.failed(error)  # the step runs without the span current
                    token = None
                try:
                    event = await step()
                except StopAsyncIteration:
                    break
                finally:
                    if token is not None:
                        detach(token)
                if isinstance(event, Finish):
                    self.finish = event
                else:
                    if self.first is None and self.stream and (event or type(event) is not str):
                        self._first_chunk()
                    if self.answer is not None:
                        self._keep(event)
                yield event
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                token = self._attach(context)  # (closing the SDK's stream, under the span too)
                try:
                    await close()
                finally:
                    if token is not None:
                        otel_context.detach(token)

    def _attach(self, context: Context) -> Token[Context] | None:
        """Make ``context`` current (its token, to detach it); ``None`` if OpenTelemetry failed."""
        try:
            return otel_context.attach(context)
        except Exception as error:
            self.telemetry.failed(error)
            return None

    def _first_chunk(self) -> None:
        self.first = time.monotonic()
        try:
            self.span.set_attribute(
                "gen_ai.response.time_to_first_chunk", self.first - self.started
            )
            self.span.add_event("gen_ai.first_chunk")
        except Exception as error:
            self.telemetry.failed(error)

    def _keep(self, event: str | ToolCallStart | ToolCallDelta | Refusal) -> None:
        assert self.answer is not None
        if isinstance(event, str):
            self.answer.append(event)
        elif isinstance(event, ToolCallStart):
            ids = self.ids
            if ids is None:  # the ids the agent's turn gives the calls (its next turn sees)
                call = self.call  # (an agent without tools: the reply's own ids only)
                used = [item.call_id for item in call.messages if isinstance(item, ToolCallMessage)]
                ids = self.ids = CallIds(set(used) if call.tools else set())
            self.calls.append((ids.start(event.call_id), [event.tool_name]))
        elif isinstance(event, Refusal):
            return  # the call ends with an LLMRefusalError, which the span records
        else:
            call_id = event.call_id if self.ids is None else self.ids.of(event.call_id)
            pieces = next((kept for id_, kept in reversed(self.calls) if id_ == call_id), None)
            if pieces is not None:
                pieces.append(event.text)

    def call_ended(self, error: BaseException | None) -> None:
        telemetry = self.telemetry
        finish = self.finish if error is None else None
        attributes: Attributes = {}
        if finish is not None:
            if finish.reason is not None:
                attributes["gen_ai.response.finish_reasons"] = [finish.reason]
            if finish.model is not None:
                attributes["gen_ai.response.model"] = finish.model
            if finish.response_id is not None:
                attributes["gen_ai.response.id"] = finish.response_id
            if finish.replayed:  # a call cache replayed it: no request was made
                attributes["miniagents.llm.cached"] = True
            if finish.batch_id is not None:  # it came in a provider's batch
                attributes["miniagents.llm.batch_id"] = finish.batch_id
            if finish.input_tokens is not None:
                attributes["gen_ai.usage.input_tokens"] = finish.input_tokens
            if finish.output_tokens is not None:
                attributes["gen_ai.usage.output_tokens"] = finish.output_tokens
            for key, tokens in (
                ("gen_ai.usage.cache_read.input_tokens", finish.cached_input_tokens),
                ("gen_ai.usage.cache_creation.input_tokens", finish.cache_write_tokens),
                ("gen_ai.usage.reasoning.output_tokens", finish.reasoning_tokens),
            ):
                if tokens is not None:
                    attributes[key] = tokens
            if self.interaction is not None:
                self.interaction.add(finish)
            if self.answer is not None:
                attributes["gen_ai.output.messages"] = _json([self._output(finish)])
        self._end(error, attributes)
        try:
            self._record(finish, error)
        except Exception as failure:
            telemetry.failed(failure)

    def _output(self, finish: Finish) -> dict[str, object]:
        parts: list[dict[str, object]] = []
        text = "".join(self.answer or ())
        if text:  # (a whole reply of tool calls has an empty text: no part)
            parts.append({"type": "text", "content": text})
        for call_id, (name, *pieces) in self.calls:
            arguments = _parsed("".join(pieces))  # an object, as in gen_ai.input.messages
            parts.append({"type": "tool_call", "id": call_id, "name": name, "arguments": arguments})
        # The conventions require a finish reason: the API's own words, else (a reply that
        # ended well without one: a compatible server's null) the conventions' words for it
        reason = finish.reason or ("tool_call" if self.calls else "stop")
        return {"role": "assistant", "parts": parts, "finish_reason": reason}

    def _record(self, finish: Finish | None, error: BaseException | None) -> None:
        attributes: Attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.provider_name,
            "gen_ai.request.model": self.model,
        }
        if finish is not None and finish.model is not None:
            attributes["gen_ai.response.model"] = finish.model
        if error is not None:
            attributes["error.type"] = type(error).__qualname__
        telemetry = self.telemetry
        telemetry.duration.record(time.monotonic() - self.started, attributes)
        if self.first is not None:  # a streaming reply's first chunk came
            chunk = {key: value for key, value in attributes.items() if key != "error.type"}
            telemetry.first_chunk.record(self.first - self.started, chunk)
        if finish is None:
            return
        for kind, tokens in (("input", finish.input_tokens), ("output", finish.output_tokens)):
            if tokens is not None:
                telemetry.token_usage.record(tokens, {**attributes, "gen_ai.token.type": kind})


def _is_durable(agent: ObservedAgent) -> bool:
    """Whether ``agent`` was made by ``durable(...)`` (of ``miniagents.ext.dbos``)."""
    if "miniagents.ext.dbos.runs" not in sys.modules:  # only it makes durable agents
        return False
    from miniagents.ext.dbos.runs import is_durable
    from miniagents.miniagents.agent import MiniAgent

    return isinstance(agent, MiniAgent) and is_durable(agent)


def _in_process(provider: object) -> bool:
    """Whether the provider's model runs in this process (its ``in_process`` attribute)."""
    return getattr(innermost_provider(provider), "in_process", False) is True


def _provider_name(provider: object) -> str:
    named = getattr(provider, "provider_name", None)  # the meter's: for the agent's options
    if isinstance(named, str):
        return named
    provider = innermost_provider(provider)
    named = getattr(provider, "provider_name", None)
    if isinstance(named, str):
        return named
    kind = type(provider).__name__
    return _PROVIDERS.get(kind) or kind.removesuffix("Provider").lower() or kind.lower()


def _attribute(value: object) -> AttributeValue:
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return [str(item) for item in value]
    return str(value)


def _parsed(text: str) -> object:
    """The JSON value of ``text`` (a tool call's arguments), else ``text`` as it came."""
    try:
        return json.loads(text)
    except ValueError:  # cut short, or not JSON: the text itself
        return text


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _input_messages(call: LLMCall) -> list[dict[str, object]]:
    """The conversation, as the conventions' ``gen_ai.input.messages`` has it."""
    messages: list[dict[str, object]] = []
    for item in call.messages:
        part: dict[str, object]
        if isinstance(item, PromptText):
            role, text = item
            part = {"type": "text", "content": text}
        elif isinstance(item, ToolResultMessage):
            role = "tool"
            part = {"type": "tool_call_response", "id": item.call_id, "response": item.text}
        else:
            role = "assistant"
            part = {
                "type": "tool_call",
                "id": item.call_id,
                "name": item.tool_name,
                "arguments": dict(item.arguments),
            }
        messages.append({"role": role, "parts": [part]})
    return messages
