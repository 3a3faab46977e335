"""Recording a case's reply tree from the library's three observer hooks.

While an eval runs, one :class:`_Recorder` is the observer of the interactions
(:func:`~miniagents.miniagents.lowlevel.observe_interactions`), of the model calls
(:func:`~miniagents.ext.llm.observing.observe_llm_calls`) and of the tool calls
(:func:`~miniagents.ext.tools.observing.observe_tool_calls`), plugged in beside the
observers there (tracing's, ``miniagents.ext.otel``, installed before a run or during
one), which stay as they are, and it records only what runs inside a case.

What runs inside a case is told by a context variable, the step whose work runs in the
current task: the runner sets the case's root before it inquires the agent, and each
interaction and tool call the recorder sees sets its own step in its own task (the hooks
call it there, before the agent or the tool runs), so that what they start nests under
them, across tasks, as the library's tasks inherit the context of where they were started::

    runner task:      current = CaseRecording  -> agent.inquire(case.input)
    agent's task:     interaction_started  -> AgentNode (child of the case), current = it
                      llm_call_started     -> ModelNode (child of the agent)
    tool call's task: tool_call_started    -> ToolNode (child of the agent), current = it
    sub-agent's task: interaction_started  -> AgentNode (child of the tool call)

Outside a case the recorder records nothing (one call more per interaction, model call
and tool call). It is plugged in while at least one run is going on (:func:`recording`),
and unplugged, leaving the others, when the last one ends.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from miniagents.evals.tree import AgentStep, ModelCall, ReplyTree, ToolStep
from miniagents.ext.llm.observing import (
    LLMCallWatch,
    innermost_provider,
    llm_call_observers,
)
from miniagents.ext.llm.pricing import finish_usage, price_provider_of, reported_count
from miniagents.ext.llm.provider import (
    AudioTokens,
    Finish,
    LLMCall,
    LLMEvent,
    LLMProvider,
    aclose_events,
)
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.observing import (
    ToolCallWatch,
    tool_call_observers,
)
from miniagents.ext.tools.tool import Tool
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents.lowlevel import (
    InteractionWatch,
    ObservedAgent,
    interaction_observers,
)

__all__ = ["CaseRecording", "current_step", "recording"]

ERROR_RESULT = "error result"
"""The ``error`` of a tool step whose result says the call failed without an exception."""


class CaseRecording:
    """The steps of one try of a case, recorded as they start and end.

    Args:
        clock: The clock of the case (the event loop's ``time``).
    """

    __slots__ = ("children", "clock", "count", "first_token", "recording", "started")

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.started = clock()
        self.count = 0
        self.children: list[_Node] = []
        self.first_token: float | None = None
        """When the first token of the case's replies came (the runner notes it)."""
        self.recording = self
        """Itself (as a step's ``recording``: the steps under the case's root find it so)."""

    def now(self) -> float:
        """Seconds since the case started."""
        return self.clock() - self.started

    def next_order(self) -> int:
        """The order of a step that starts now."""
        order = self.count
        self.count += 1
        return order

    def tree(self) -> ReplyTree:
        """The tree as recorded when it is first read, frozen (its root: the case's agent's)."""
        return ReplyTree._deferred(self._root)

    def _root(self) -> AgentStep | None:
        for child in self.children:
            if isinstance(child, _AgentNode):
                return child.step()
        return None


current_step: contextvars.ContextVar[CaseRecording | _AgentNode | _ToolNode | None] = (
    contextvars.ContextVar("miniagents_evals_current_step", default=None)
)
"""The step whose work runs in this task, inside a case (``None``: outside every case)."""


class _StepNode:
    """What every step being recorded keeps: its order, its times, its error."""

    __slots__ = ("ended", "error", "order", "recording", "started")

    def __init__(self, recording: CaseRecording) -> None:
        self.recording = recording
        self.order = recording.next_order()
        self.started = recording.now()
        self.ended: float | None = None
        self.error: str | None = None

    def _end(self, error: BaseException | None) -> None:
        """Note the end (and ``error``, over any other)."""
        self.ended = self.recording.now()
        if error is not None:
            self.error = type(error).__qualname__


class _AgentNode(_StepNode):
    """An interaction being recorded (its watch: told when its replies have ended)."""

    __slots__ = ("alias", "children")

    def __init__(self, recording: CaseRecording, alias: str) -> None:
        super().__init__(recording)
        self.alias = alias
        self.children: list[_Node] = []

    def interaction_ended(self, error: BaseException | None) -> None:
        self._end(error)

    def step(self) -> AgentStep:
        children = tuple(child.step() for child in self.children)
        return AgentStep(self.order, self.alias, self.started, self.ended, self.error, children)


class _ToolNode(_StepNode):
    """A tool call being recorded (its watch too)."""

    __slots__ = ("arguments", "call_id", "children", "result", "result_promise", "tool")

    def __init__(
        self,
        recording: CaseRecording,
        tool: str,
        call: ToolCallMessage,
        result: MessagePromise[ToolResultMessage],
    ) -> None:
        super().__init__(recording)
        self.tool = tool
        self.call_id = call.call_id
        self.arguments: Mapping[str, object] = call.arguments
        self.result: str | None = None
        self.result_promise: MessagePromise[ToolResultMessage] | None = result
        self.children: list[_Node] = []

    def tool_call_ended(self, error: BaseException | None) -> None:
        promise, self.result_promise = self.result_promise, None
        if promise is not None and promise.done:
            try:
                message = promise.message_now()
            except Exception as failed:  # its error is the call's (the one raised comes first)
                self.error = type(failed).__qualname__
            else:
                self.result = message.text
                if message.is_error:
                    self.error = ERROR_RESULT
        self._end(error)

    def step(self) -> ToolStep:
        return ToolStep(
            order=self.order,
            tool=self.tool,
            call_id=self.call_id,
            arguments=self.arguments,
            started=self.started,
            ended=self.ended,
            result=self.result,
            error=self.error,
            children=tuple(child.step() for child in self.children),
        )


class _ModelNode(_StepNode):
    """A call of a model being recorded (its watch too: it sees the events pass)."""

    __slots__ = ("finish", "first_token", "model", "price_provider", "provider")

    def __init__(
        self,
        recording: CaseRecording,
        names: tuple[str, str | None],
        call: LLMCall,
    ) -> None:
        super().__init__(recording)
        self.model = call.model
        self.provider, self.price_provider = names
        self.first_token: float | None = None
        self.finish: Finish | None = None

    async def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        # Each event costs a step of this generator: so, until the first token, a test of
        # its kind; after it, only one for the Finish (a text token is a str: no call).
        try:
            iterator = aiter(events)
            async for event in iterator:
                if type(event) is not str or event:  # ("": a sign of life, no token)
                    if isinstance(event, Finish):
                        self.finish = event
                    else:
                        self.first_token = self.recording.now()
                        yield event
                        break
                yield event
            async for event in iterator:
                if type(event) is not str and isinstance(event, Finish):
                    self.finish = event
                yield event
        finally:
            await aclose_events(events)

    def call_ended(self, error: BaseException | None) -> None:
        self._end(error)

    def step(self) -> ModelCall:
        finish = self.finish if self.finish is not None else _UNREPORTED
        # (as the budgets price it: a replayed reply costs 0.0, a batch one the batch price,
        # a dated model answered as priced_model says; a count that is no count, as -5, is
        # unknown)
        tokens = finish_usage(finish, self.model, self.price_provider)
        audio = finish.audio or _NO_AUDIO  # (a reply that did not split its audio: None)
        return ModelCall(
            order=self.order,
            model=self.model,
            provider=self.provider,
            started=self.started,
            first_token=self.first_token,
            ended=self.ended,
            input_tokens=tokens.input_tokens,
            output_tokens=tokens.output_tokens,
            cached_input_tokens=tokens.cached_input_tokens,
            cache_write_tokens=tokens.cache_write_tokens,
            reasoning_tokens=tokens.reasoning_tokens,
            cost_usd=tokens.cost_usd,
            error=self.error,
            input_audio_tokens=reported_count(audio.input_tokens),
            output_audio_tokens=reported_count(audio.output_tokens),
            cached_audio_tokens=reported_count(audio.cached_input_tokens),
        )


_UNREPORTED = Finish()
"""The end of a call that reported none (no tokens: no cost)."""

_NO_AUDIO = AudioTokens()
"""The audio of a reply that did not split it (no counts)."""

_Node = _AgentNode | _ToolNode | _ModelNode


class _Recorder:
    """The observer of the three hooks while runs go on (see the module docstring)."""

    __slots__ = ("names", "users")

    def __init__(self) -> None:
        self.users = 0
        self.names: dict[int, tuple[object, tuple[str, str | None]]] = {}
        """The names of each provider seen (by its id; it is held, so the id stays its own)
        while runs go on: a provider's name and price list, looked up once, not per call."""

    def provider_names(self, provider: LLMProvider[Any, Any]) -> tuple[str, str | None]:
        """The provider's name in the tree, and the name of its price list."""
        known = self.names.get(id(provider))
        if known is not None:
            return known[1]
        inner = innermost_provider(provider)
        named = getattr(provider, "provider_name", None)  # the meter's, for the options
        names = (
            named if isinstance(named, str) else _provider_name(inner),
            price_provider_of(inner),
        )
        if len(self.names) < _MAX_PROVIDERS:  # (bounded: agents made per case, say)
            self.names[id(provider)] = (provider, names)
        return names

    # -- interactions ----------------------------------------------------------------

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        return _nested(lambda parent: _AgentNode(parent.recording, agent.alias))

    def carrier(self) -> Mapping[str, str]:
        return {}  # (the recorder follows no trace across processes)

    # -- model calls -----------------------------------------------------------------

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        parent = current_step.get()
        if parent is None:
            return None
        node = _ModelNode(parent.recording, self.provider_names(provider), call)
        parent.children.append(node)
        return node

    # -- tool calls ------------------------------------------------------------------

    def tool_call_started(
        self, tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
    ) -> ToolCallWatch | None:
        return _nested(lambda parent: _ToolNode(parent.recording, tool.name, call, result))


NestingT = TypeVar("NestingT", _AgentNode, _ToolNode)


def _nested(
    node_of: Callable[[CaseRecording | _AgentNode | _ToolNode], NestingT],
) -> NestingT | None:
    """``None`` outside every case; inside one, the node ``node_of`` makes, a child of the
    current step, made the current step: the hooks call the recorder in the interaction's (or
    the tool call's) own task, so what its work starts nests under it."""
    parent = current_step.get()
    if parent is None:
        return None
    node = node_of(parent)
    parent.children.append(node)
    current_step.set(node)
    return node


_MAX_PROVIDERS = 1024
"""The most providers whose names the recorder keeps while runs go on (then: looked up)."""

_RECORDER = _Recorder()


@contextmanager
def recording() -> Iterator[None]:
    """Record the cases' trees while the block runs (blocks of concurrent runs may overlap).

    The first block plugs the recorder in beside the observers plugged in (e.g.
    ``instrument()`` of ``miniagents.ext.otel``, before the run or during it); the last one
    to end unplugs it, leaving the others as they are.
    """
    recorder = _RECORDER
    if recorder.users == 0:
        interaction_observers.add(recorder)
        llm_call_observers.add(recorder)
        tool_call_observers.add(recorder)
    recorder.users += 1
    try:
        yield
    finally:
        recorder.users -= 1
        if recorder.users == 0:
            interaction_observers.remove(recorder)
            llm_call_observers.remove(recorder)
            tool_call_observers.remove(recorder)
            recorder.names.clear()


def _provider_name(provider: object) -> str:
    named = getattr(provider, "provider_name", None)
    if isinstance(named, str):
        return named
    priced = price_provider_of(provider)
    if priced is not None:
        return priced
    kind = type(provider).__name__
    return kind.removesuffix("Provider").lower() or kind.lower()
