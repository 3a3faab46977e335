"""One call of the model, streamed into the agent's reply: its text, then its tool calls.

::

    provider:  "Let me" " check." | Start(c1, weather) | Delta(c1, '{"ci') | Delta(c1, ...) | Finish
    reply:     AssistantMessage "Let me check."  (streamed; finish_reason, usage at the end)
               LLMToolCallMessage c1 weather '{"ci' ...  (streamed; arguments parsed at the end)

Each message enters the reply when its first event comes (the text message at once when
the agent has no tools, so that its metadata is known before the first token), and streams
from then on. A call that ends with no text and no tool call still gives a (empty) text
message: the model's answer.

In a structured call (an ``output_type``) the text is the answer's, held until it
validates; with tools, text that does not start like the answer (a JSON object), or that a
tool call follows, is what the model says before its calls: it is shown in a text message
as well, before the calls (the model's prompt has it too)::

    provider:  "Let me " "check." | Start(c1, weather) | Delta(c1, ...) | Finish
    reply:     AssistantMessage "Let me check." | LLMToolCallMessage c1 ...
    provider:  '{"city": ' '"Paris", ...}' | Finish   (next call: the answer)
    reply:     ... | Weather (in the reply from its first token, complete once it validates)

A refusal (``Refusal`` events, or the finish reason ``"refusal"``) fails the turn's
messages with an ``LLMRefusalError``; so does a tool call of a model whose agent has no
tools with an ``LLMResponseError`` (no tool can run it, and no answer came with it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, TypeVar

from miniagents.ext.llm import observing, recording
from miniagents.ext.llm._gate import InTurn
from miniagents.ext.llm._metered import Metered
from miniagents.ext.llm._stall import StallWatch, stall_watched
from miniagents.ext.llm.errors import LLMRefusalError, LLMResponseError, LLMTimeoutError
from miniagents.ext.llm.messages import AssistantMessage, LLMToolCallMessage
from miniagents.ext.llm.observing import LLMCallWatch, end_llm_call, watch_llm_call
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    LLMOptions,
    LLMProvider,
    Refusal,
    ToolCallDelta,
    ToolCallStart,
)
from miniagents.ext.llm.routing import routed_reply
from miniagents.ext.llm.usage import _AWAY, _CallCharge
from miniagents.messages.appender import MessageTokenAppender
from miniagents.miniagents.interaction import InteractionContext
from miniagents.promising.errors import MiniAgentsError
from miniagents.promising.lowlevel import core_of, handoffs, run_first

__all__ = ["Turn"]

OptionsT = TypeVar("OptionsT", bound=LLMOptions)

_HANDOFF_EVERY = 64
"""Events the agent's task takes from the SDK, at most, before it lets a woken reader run.

The first piece a reader waits for is handed over at once (its first token: the latency
users feel); after that, within a burst of events (a network read holding many tokens, which
the SDK parses without suspending), the task lets the readers run every this many events.
Yielding after every token would give every later token at once too, but costs a task switch
per token: under load (1,000 concurrent calls) that was 1.3 to 1.7 times the raw SDK's CPU
time (see tests/benchmarks/README.md, W5). A stream whose events come one per network read
(a model streaming at its own pace) suspends between them anyway, and each token reaches its
reader at once.

On asyncio's own loop a woken reader runs next, ahead of the tasks woken before it
(:func:`~miniagents.promising.lowlevel.run_first`): a paced token reaches its reader as
soon as the agent's task waits for the network. With ``llm_parse_in_turn``, the task
resumes right after its readers too: a call goes on with its read before any other task
runs, so a burst of replies is parsed one call at a time, as the raw SDK's loops parse it,
and no call parks half-way through its read. Otherwise the task yields with
``asyncio.sleep(0)`` and waits behind every task woken before it (on uvloop, with
``llm_parse_in_turn``, the gate of ``_gate`` keeps the calls in turn)."""


def _through_meter(
    metered: Metered[OptionsT],
    call: LLMCall,
    options: OptionsT,
    stall_timeout: float | None,
    stalled: Callable[[], LLMTimeoutError],
    sent: _Sent | None = None,
) -> AsyncIterator[LLMEvent]:
    """A live call's events through the meter's stream, a stall watched where they are read.

    The path of a call that a recorder takes (a durable run records the stall too) or that
    waits for budgets of another process; every other call is charged in the turn's loop.
    ``sent``: the call is watched (traced) once the budgets have admitted it.
    """
    watched = None if sent is None else sent.watched
    return stall_watched(metered.reply(call, options, watched), stall_timeout, stalled)


class _Sent:
    """A call watched (traced) only once its request is sent: once the meter admits it.

    A call that the budgets refuse sends no request, so it has no span (its error is the
    interaction's); nor has a call that a recorder replays instead of making it (a durable
    run after a recovery), which also adds nothing to the metrics, as it is charged to no
    budget and counted by no ``usage_totals``. A call that is sent is watched from then
    on, in the task that reads its events.
    """

    __slots__ = ("_agent_alias", "_call", "_provider", "watch")

    def __init__(self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall) -> None:
        self._agent_alias = agent_alias
        self._provider = provider
        self._call = call
        self.watch: LLMCallWatch | None = None

    def watched(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        """The provider's events of the call, about to be requested, watched."""
        self.watch = watch_llm_call(self._agent_alias, self._provider, self._call)
        return events if self.watch is None else self.watch.events(events)


_NO_FINISH = Finish()
"""A turn's ``finish`` until its provider sends one (``Finish`` is frozen: one serves all)."""


class Turn:
    """The messages of one call of the model, as they stream into the agent's reply.

    (A plain class, not a dataclass: one is made before each request, and a dataclass's
    ``__init__`` with its default factories cost about twice as much.)

    Args:
        ctx: The interaction whose reply gets the messages.
        message_class: The class of the text message (the provider's).
        metadata: The text message's metadata known at once (role, model, agent alias).

    Attributes:
        text: The text message, once it is in the reply.
        calls: The tool call messages in the reply, by call id.
        finish: The provider's ``Finish`` (until it comes, one with nothing known).
        texts: The text tokens so far, of a call with ``text_sink`` (an empty tuple until
            the first; a plain call's are in its text message: see :meth:`said`).
        refusals: The refusal pieces so far (an empty tuple until the first: a call that
            is not refused holds no list for them).
        text_sink: Where the text goes instead of a text message (a structured answer).
        answer_opens: With ``text_sink``, when the model may also call tools: puts the
            answer's message in the reply. The text is then the answer only if it starts
            like one (a JSON object, ``{``) and no call follows it; else it is what the
            model says before its calls, and streams as a text message too, so that a
            reader sees it (the answer still gets it, to validate a turn without calls).
    """

    __slots__ = (
        "_answering",
        "answer_opens",
        "calls",
        "ctx",
        "finish",
        "message_class",
        "metadata",
        "refusals",
        "text",
        "text_sink",
        "texts",
    )

    def __init__(
        self,
        ctx: InteractionContext,
        message_class: type[AssistantMessage],
        metadata: dict[str, object],
    ) -> None:
        self.ctx = ctx
        self.message_class = message_class
        self.metadata = metadata
        self.text: MessageTokenAppender | None = None
        self.calls: dict[str, MessageTokenAppender] = {}
        self.finish = _NO_FINISH
        self.texts: list[str] | tuple[()] = ()
        self.refusals: list[str] | tuple[()] = ()
        self.text_sink: Callable[[str], None] | None = None
        self.answer_opens: Callable[[], None] | None = None
        self._answering: bool | None = None

    def _reply(self, appender: MessageTokenAppender) -> MessageTokenAppender:
        task = asyncio.current_task()
        if task is not None:  # every consumer of it giving up stops the call
            appender.cancel_when_abandoned(task)
        self.ctx.reply(appender.promise)
        return appender

    def open_text(self) -> MessageTokenAppender:
        """The text message, in the reply from now on."""
        if self.text is None:
            appender = MessageTokenAppender(message_class=self.message_class, **self.metadata)
            self.text = self._reply(appender)
        return self.text

    def take(self, event: str | ToolCallStart | ToolCallDelta | Refusal | Finish) -> None:
        """Stream one event of the provider into the reply.

        Raises:
            LLMResponseError: for a call started twice, or arguments of a call not started.
        """
        if isinstance(event, str):
            if event:
                if self.text_sink is None:  # the text message keeps it (see said())
                    self.open_text().append(event)
                    return
                if not isinstance(self.texts, list):
                    self.texts = []
                self.texts.append(event)
                self.text_sink(event)
                if self.answer_opens is not None:
                    self._show(event)
        elif isinstance(event, ToolCallDelta):
            call = self.calls.get(event.call_id)
            if call is None:
                raise LLMResponseError(
                    f"The model sent arguments for a tool call it had not started "
                    f"({event.call_id!r}): the provider's stream is malformed."
                )
            if event.text:
                call.append(event.text)
        elif isinstance(event, ToolCallStart):
            if self.answer_opens is not None and self._answering is not False:
                said = self.said()
                if said.strip():
                    self._answering = False  # it was not the answer: what it said, shown
                    self.open_text().append(said)
            if event.call_id in self.calls:
                raise LLMResponseError(
                    f"The model started the tool call {event.call_id!r} twice: the "
                    "provider's stream is malformed."
                )
            appender = MessageTokenAppender(
                message_class=LLMToolCallMessage,
                **self.metadata,
                tool_name=event.tool_name,
                call_id=event.call_id,
            )
            self.calls[event.call_id] = self._reply(appender)
        elif isinstance(event, Refusal):
            if not isinstance(self.refusals, list):
                self.refusals = []
            self.refusals.append(event.text)
        else:
            self.finish = event

    async def stream(
        self,
        metered: Metered[OptionsT],
        call: LLMCall,
        options: OptionsT,
        stall_timeout: float | None,
        stalled: Callable[[], LLMTimeoutError],
        in_turn: bool = False,
    ) -> None:
        """Stream the provider's reply to ``call`` (errors translated, messages failed).

        ``metered`` is the provider, each call charged to the budgets around it. A live
        call (no recorder set, or the recorder declined it) charged to budgets of this
        process only (no link to another one) is charged here, as its events are taken:
        ``Metered.reply``'s work without its async generator (a layer less before the
        request and for each token); its stall is watched here too (``stall_watched``'s
        work without its layer around the events). ``in_turn``
        (``MiniAgents(llm_parse_in_turn=True)``): a burst is parsed one call at a time, on
        asyncio's own loop by the order of its ready queue (see ``_HANDOFF_EVERY``),
        elsewhere (uvloop) through :class:`~miniagents.ext.llm._gate.InTurn`.
        """
        events: AsyncIterator[LLMEvent] | None = None
        sent: _Sent | None = None  # a call watched (traced) once it is sent (see _Sent)
        traced = observing._observer is not None  # (watch_llm_call's no-observer case, inline)
        recorder = recording._recorder
        if recorder is not None:  # recorded_llm_call's recorder case, inline: None declines
            # a durable run may replay a recorded call instead
            if traced:
                sent = _Sent(self.ctx.this_agent.alias, metered, call)
            start: Callable[[], AsyncIterator[LLMEvent]] = partial(
                _through_meter, metered, call, options, stall_timeout, stalled, sent
            )
            events = recorder.llm_call(self.ctx, metered, call, start)
            if events is None:
                sent = None  # declined: made here, and watched as any call
        here = events is None and _AWAY.get() is None  # charged in this loop
        watch: StallWatch | None = None  # the stall watch (stall_watched's), kept by this loop
        timeout = 0.0  # its timeout
        if here:  # no recorder, or it declined (recorded_llm_call's start()), and
            # Metered.reply's events, inline
            events = routed_reply(metered.wrapped, call, options)
            if stall_timeout is not None:  # no layer around the events per event: this
                watch = StallWatch(stall_timeout, stalled)  # loop moves the deadline
                timeout = stall_timeout
        elif events is None:  # the waits for budgets of another process: watched once
            if traced:  # they admit the call
                sent = _Sent(self.ctx.this_agent.alias, metered, call)
            events = _through_meter(metered, call, options, stall_timeout, stalled, sent)
        observed = None
        charge: _CallCharge | None = None
        taking: AsyncIterator[LLMEvent] = events
        turns: InTurn[LLMEvent] | None = None
        first = run_first()  # None: not asyncio's own loop (uvloop): then the gate
        try:
            if here:  # made before the request (refused when a budget has no room: then
                charge = metered.charge(call)  # no request is sent, and nothing traced)
                if traced:
                    observed = watch_llm_call(self.ctx.this_agent.alias, metered, call)
                    if observed is not None:
                        events = taking = observed.events(events)
            if in_turn and first is None:
                taking = turns = InTurn(events)
            counted = charge if charge is not None and call.stream else None  # its tokens
            piece = None if counted is None or counted.quiet else counted.piece  # limits too
            handed = handoffs()  # readers woken so far (the reply's first message too)
            taken = _HANDOFF_EVERY  # events taken since this task last let readers run
            plain = self.text_sink is None  # the text goes to a text message
            # its record, fed directly (append()'s checks: a str, an open message; a token
            # after the message was given up, its task being cancelled, is dropped)
            text = None if self.text is None else core_of(self.text.promise)
            if first is not None:  # what its tokens wake runs next (no check per token)
                first.lead()
            if watch is not None:  # in the task that reads: the one it cancels (no with: its
                watch.start()  # bound __exit__ would be one more object per call)
            loop = asyncio.get_running_loop()
            async for event in taking:
                if watch is not None:  # alive(), inline: the next event's deadline
                    watch.deadline = loop.time() + timeout
                if plain and type(event) is str:  # most events: take()'s first case, inline
                    if not event:  # a sign of life only (the deadline moved): no reader to
                        continue  # wake, so no handover either (it waits for the first token)
                    if piece is not None:  # Metered.reply's count of a token, inline
                        piece()
                    elif counted is not None:  # a quiet call's (_CallCharge.piece's)
                        counted.pieces += 1
                    if text is None:  # the text message opens at its first token
                        text = core_of(self.open_text().promise)
                    text.accept(event)
                elif type(event) is str and not event:  # (the same, with a text sink)
                    continue
                else:
                    if charge is not None:
                        metered.count(charge, event, call)
                    self.take(event)
                taken += 1
                if taken >= _HANDOFF_EVERY and handoffs() != handed:
                    # A reader was woken: let it run now. The SDK parses every event of a
                    # network read without suspending, so without this the reader would
                    # see the first token only after the whole read.
                    if in_turn and first is not None:  # and go on with the read right after
                        await first.await_handover()
                    else:  # at the back of the queue (the reader is at its front)
                        await asyncio.sleep(0)
                    handed = handoffs()
                    taken = 0
            if self.refusals or self.finish.reason == "refusal":
                raise self._refused(call.model)
            if self.calls and not call.tools:
                raise self._called_without_tools(call.model)
        except BaseException as caught:
            # a stall: its own error, for the watch's cancellation
            error = caught if watch is None else watch.end(caught)
            translated = error if isinstance(error, MiniAgentsError) else metered.translate(error)
            for appender in self._appenders():
                appender.fail(translated)
            if sent is not None:
                observed = sent.watch
            if observed is not None:
                end_llm_call(observed, translated)
            if translated is caught:
                raise
            if translated is error:  # the stall's error (error is never None here), with
                raise translated from translated.__cause__  # its own cause, if it has one
            raise translated from error
        else:
            if watch is not None:
                watch.end(None)
            if sent is not None:
                observed = sent.watch
            if observed is not None:
                end_llm_call(observed, None)
        finally:
            if first is not None:
                first.release()
            if turns is not None:
                turns.leave()
            if charge is not None:  # Metered.reply's end: a call without a count
                charge.end()
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    def _show(self, token: str) -> None:
        """Show a token of a structured call with tools: in the answer, or in a text message.

        Until the text is more than white space, nothing is decided; then text that starts
        like a JSON object opens the answer, any other is shown in a text message.
        """
        if self._answering is None:
            said = self.said()
            start = said.lstrip()
            if not start:
                return
            self._answering = start.startswith("{")
            if not self._answering:
                self.open_text().append(said)
            elif self.answer_opens is not None:
                self.answer_opens()
        elif not self._answering:
            self.open_text().append(token)

    def said(self) -> str:
        """The text the model has said so far (with a text sink, all it sent to the sink).

        A plain call's text is read back from its text message, which records every
        token: the turn keeps no copy of them.
        """
        if self.text_sink is not None:
            return "".join(self.texts)
        return "" if self.text is None else self.text.appended

    def _refused(self, model: str) -> LLMRefusalError:
        """The error of a reply the model refused (its refusal, else its text, carried)."""
        text = "".join(self.refusals) if self.refusals else self.said()
        alias = self.ctx.this_agent.alias
        said = f": {text[:200]!r}" if text else ""
        return LLMRefusalError(
            f"The agent {alias} got no answer: the model {model!r} refused to answer{said}. "
            "Asking again the same way would most likely be refused too, so it was not "
            "retried: change the request (the prompt, the system prompt, the output type), "
            "or catch LLMRefusalError to handle the refusal.",
            text,
        )

    def _called_without_tools(self, model: str) -> LLMResponseError:
        """The error of a turn that calls tools when the agent has none: none of them is run.

        The API was sent no tools, so the model should not call any (a model behind an
        OpenAI-compatible server may still call tools its chat template knows). Nothing
        could run the calls: going on would answer each with an error and ask the model
        again (a request that Anthropic's API refuses: tool blocks need tools).
        """
        alias = self.ctx.this_agent.alias
        called = (str(call.promise.metadata.get("tool_name")) for call in self.calls.values())
        names = [repr(name) for name in dict.fromkeys(called)]  # in order, each once
        tools = f"the tool{'s' if len(names) > 1 else ''} {', '.join(names)}"
        text = self.said()
        said = f" Before its calls it said: {text[:200]!r}." if text.strip() else ""
        return LLMResponseError(
            f"The agent {alias} got no answer: the model {model!r} called {tools}, but the "
            f"agent has no tools, so none was run.{said} Give the agent the tools the model "
            f"may call, with {alias.lower()}.fork(tools=[...]) or inquire(..., "
            "tools=[...]), or tell the model (e.g. in the system prompt) to answer without "
            "calling tools."
        )

    def complete(self, **answer: object) -> None:
        """End the turn's messages; a turn without calls is the answer, with ``answer`` set.

        The text message gets the finish reason (and, for the answer, ``answer``: e.g. the
        usage); the calls parse their arguments.
        """
        if not self.calls and self.text_sink is None:
            self.open_text()
        if self.text is not None:
            extra = {} if self.calls else answer
            self.text.update_metadata(finish_reason=self.finish.reason, **extra)
        for appender in self._appenders():
            appender.complete()

    def _appenders(self) -> list[MessageTokenAppender]:
        return [*([self.text] if self.text is not None else []), *self.calls.values()]

    async def call_messages(self) -> list[LLMToolCallMessage]:
        """The tool calls of the turn, complete, in order."""
        messages = [await appender.promise for appender in self.calls.values()]
        return [message for message in messages if isinstance(message, LLMToolCallMessage)]
