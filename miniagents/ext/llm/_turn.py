"""One call of the model, streamed into the agent's reply: its text, then its tool calls.

::

    provider:  "Let me" " check." | Start(c1, weather) | Delta(c1, '{"ci') | Delta(c1, ...) | Finish
    reply:     AssistantMessage "Let me check."  (streamed; finish_reason, usage at the end)
               LLMToolCallMessage c1 weather '{"ci' ...  (streamed; arguments parsed at the end)

Each message enters the reply when its first event comes (the text message at once when
the agent has no tools, so that its metadata is known before the first token), and streams
from then on. A call that ends with no text and no tool call still gives a (empty) text
message: the model's answer. A call whose id the conversation (or the turn) has already is
renamed (``c1_2``: see ``provider.unused_id``), and its arguments are the ones that come with its
id after it started (the provider gives each call's arguments after its start, before the
next call with the same id: one content block after another, or keyed by the wire's index)::

    provider:  Start(c1, add) | Delta(c1, '{"a": 1}') | Start(c1, add) | Delta(c1, '{"a": 2}')
    reply:     LLMToolCallMessage c1 add {"a": 1} | LLMToolCallMessage c1_2 add {"a": 2}

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
tools with an ``LLMResponseError`` (no tool can run it, and no answer came with it), and a
turn the API paused (Anthropic's ``"pause_turn"``: its server tools ran long, and the
model has not answered yet), not taken for the answer.

A turn keeps at most ``MiniAgents(llm_max_turn_chars=...)`` characters of text, refusal,
tool calls' arguments, thinking and reasoning together, in one count that the turn shares
with its provider (the turn counts what it takes, the provider the thinking or reasoning it
reads: see :mod:`miniagents.ext.llm._turn_chars`): past them the call is stopped, and its
messages fail with an ``LLMResponseError`` (a stream that never ends, from a broken
provider or proxy, would otherwise fill the memory: its pieces keep coming, so the stall
timeout never fires).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextvars import Token
from functools import partial
from typing import Any, TypeVar

from miniagents.ext.llm._gate import InTurn
from miniagents.ext.llm._metered import Metered, added_usage
from miniagents.ext.llm._stall import StallWatch, stall_watched
from miniagents.ext.llm._turn_chars import TURN_COUNT, TurnCount, is_too_long
from miniagents.ext.llm.charging import CallCharge, budget_link
from miniagents.ext.llm.errors import LLMRefusalError, LLMResponseError, LLMTimeoutError
from miniagents.ext.llm.messages import AssistantMessage, LLMToolCallMessage, TokenUsage
from miniagents.ext.llm.observing import (
    LLMCallWatch,
    end_llm_call,
    watch_llm_call,
    watched_events,
)
from miniagents.ext.llm.provider import (
    CallIds,
    Finish,
    LLMCall,
    LLMEvent,
    LLMOptions,
    LLMProvider,
    Refusal,
    ToolCallDelta,
    ToolCallStart,
    aclose_events,
)
from miniagents.ext.llm.recording import recorder_events
from miniagents.ext.llm.routing import routed_reply
from miniagents.ext.llm.sdk_errors import let_go_of_frames
from miniagents.messages.appender import MessageTokenAppender
from miniagents.miniagents import InteractionContext
from miniagents.promising.errors import MiniAgentsError
from miniagents.promising.lowlevel import ReplayCore, RunFirst, core_of, handoffs, run_first

__all__ = ["Turn", "shown_tool_names"]

OptionsT = TypeVar("OptionsT", bound=LLMOptions)

_SHOWN_NAMES = 10
"""The most tool names of a model's calls that an error names (the rest are counted)."""

_SHOWN_NAME_CHARS = 100
"""The most characters of one tool name (the model's words) that an error quotes."""


def shown_tool_names(names: list[str]) -> str:
    """``names``, the tools a model called, quoted for an error, bounded whatever it wrote.

    At most ``_SHOWN_NAMES`` of them, each cut to ``_SHOWN_NAME_CHARS`` characters, the
    rest counted: a model (or a prompt injection) writes names of any length and number.
    """
    shown = [
        repr(name if len(name) <= _SHOWN_NAME_CHARS else name[: _SHOWN_NAME_CHARS - 1] + "…")
        for name in names[:_SHOWN_NAMES]
    ]
    more = len(names) - _SHOWN_NAMES
    if more > 0:
        shown.append(f"{more:,} more")
    return ", ".join(shown)


_HANDOFF_EVERY = 64
"""Events the agent's task takes from the SDK, at most, before it lets a woken reader run.

The first piece a reader waits for is handed over at once (its first token: the latency
users feel); after that, within a burst of events (a network read holding many tokens, which
the SDK parses without suspending), the task lets the readers run every this many events.
Yielding after every token would give every later token at once too, but costs a task switch
per token: under load (1,000 concurrent calls) that was 1.3 to 1.7 times the raw SDK's CPU
time (see docs/benchmarks-history.md, W5). A stream whose events come one per network read
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
        return events if self.watch is None else watched_events(self.watch, events)


_NO_FINISH = Finish()
"""A turn's ``finish`` until its provider sends one (``Finish`` is frozen: one serves all)."""

_SAID = (ToolCallDelta, Refusal)
"""The events other than text whose ``text`` the turn keeps (counted in its bound)."""

_PAUSED = "pause_turn"
"""The finish reason of a turn the API paused before the model answered (Anthropic's: its
server tools, such as web search, ran long; the API continues the turn when the reply's
content is sent back)."""


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
        calls: The tool call messages in the reply, by their call ids (each one unique: an
            id the conversation or the turn has already is renamed, see ``provider.unused_id``).
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
        "_ids",
        "_record",
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
        "used_ids",
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
        self.used_ids: set[str] | None = None
        self._answering: bool | None = None
        self._record: ReplayCore[str] | None = None  # the text message's, once taken into
        self._ids: CallIds | None = None  # the ids of its calls, once one starts

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

    def text_record(self) -> ReplayCore[str] | None:
        """Where the call's text tokens go: the text message's record, or ``None``: the sink.

        A call without a text sink: each token (a non-empty one) goes to the text message's
        record (which keeps it: see :meth:`said`) as it is, with the record's own ``accept``
        (no method of the turn around it per token); the message opens at the first token,
        if it is not open yet. Once the message was given up (its readers gone, the task
        that streams it being cancelled), a token that still comes is dropped, not an error.
        With a sink (a structured answer), each token goes to :meth:`_sink_text`.
        """
        if self.text_sink is not None:
            return None
        record = self._record
        if record is None:  # the text message opens at its first token (if it is not open)
            text = self.text if self.text is not None else self.open_text()
            record = self._record = core_of(text.promise)
        return record

    def _sink_text(self, token: str) -> None:
        """Take a text token of a call with a text sink (a structured answer)."""
        if not isinstance(self.texts, list):
            self.texts = []
        self.texts.append(token)
        sink = self.text_sink
        if sink is not None:  # (it is: text_record chose this for a call with one)
            sink(token)
        if self.answer_opens is not None:
            self._show(token)

    def take(self, event: str | ToolCallStart | ToolCallDelta | Refusal | Finish) -> None:
        """Stream one event of the provider into the reply (a text token: see :meth:`text_record`).

        Raises:
            LLMResponseError: for arguments of a call not started.
        """
        if type(event) is str or isinstance(event, str):
            if event:
                record = self.text_record()
                if record is not None:
                    record.accept(event)
                else:
                    self._sink_text(event)
        elif isinstance(event, ToolCallDelta):
            ids = self._ids
            call = None if ids is None else self.calls.get(ids.of(event.call_id))
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
            ids = self._ids
            if ids is None:  # (the conversation's ids; None: the turn's own only)
                ids = self._ids = CallIds(set() if self.used_ids is None else self.used_ids)
            call_id = ids.start(event.call_id)
            signed = event.thought_signature
            appender = MessageTokenAppender(
                message_class=LLMToolCallMessage,
                **self.metadata,
                tool_name=event.tool_name,
                call_id=call_id,
                **({} if signed is None else {"thought_signature": signed}),
            )
            self.calls[call_id] = self._reply(appender)
        elif isinstance(event, Refusal):
            if not isinstance(self.refusals, list):
                self.refusals = []
            self.refusals.append(event.text)
        else:
            self.finish = event

    async def stream(
        self,
        usage: TokenUsage | None,
        metered: Metered[OptionsT],
        call: LLMCall,
        options: OptionsT,
        stall_timeout: float | None,
        stalled: Callable[[], LLMTimeoutError],
        max_chars: int,
        in_turn: bool = False,
    ) -> TokenUsage:
        """Stream the provider's reply to ``call`` into the turn's messages, and end them.

        Returns:
            ``usage`` (of the interaction's calls before this one; ``None``: none) with
            this call's added: the usage that the text message of a turn without calls
            gets as it completes (see :meth:`complete`).

        Raises:
            BaseException: what ended the call (translated: see ``LLMProvider.translate``),
                its set-up or its end (making the call, metering it, completing the
                messages); the turn's messages still open fail with it first, so that none
                is left open in a failed reply (its readers would wait for it for ever).

        ``max_chars`` (``MiniAgents(llm_max_turn_chars=...)``): the characters the call may
        send, its thinking and reasoning included; one more stops it (see
        :meth:`_too_long`). Their count is shared with the provider while the call streams
        (``_turn_chars.TURN_COUNT``): the turn adds what it takes, the provider its
        thinking or reasoning.

        ``metered`` is the provider, each call charged to the budgets around it. A call
        that a recorder takes (a durable run) or that budgets of another process charge
        streams through the meter (``Metered.reply``) and the stall watch
        (``stall_watched``), in the task that reads it. Any other call (the common case) is
        charged and watched here, as its events are taken (``Metered.charge`` and
        ``count``, ``StallWatch.alive``): no layer between the provider and the reply.
        ``in_turn`` (``MiniAgents(llm_parse_in_turn=True)``): a burst is parsed one call at
        a time, on asyncio's own loop by the order of its ready queue (see
        ``_HANDOFF_EVERY``), elsewhere (uvloop) through
        :class:`~miniagents.ext.llm._gate.InTurn`.
        """
        alias = self.ctx.this_agent.alias
        shared: Token[TurnCount | None] | None = None
        try:
            count = TurnCount(max_chars)  # the turn's characters, its provider's too
            shared = TURN_COUNT.set(count)  # (before the recorder: a task it starts sees it)
            sent: _Sent | None = _Sent(alias, metered, call)  # watched once the meter admits
            through = partial(_through_meter, metered, call, options, stall_timeout, stalled, sent)
            events = recorder_events(self.ctx, metered, call, through)  # None: made here
            here = events is None and budget_link() is None  # charged and watched here
            watch: StallWatch | None = None
            if here:
                sent = None  # watched here, once charged
                events = routed_reply(metered.wrapped, call, options)
                if stall_timeout is not None:
                    watch = StallWatch(stall_timeout, stalled)
            elif events is None:  # declined, and charged to budgets of another process
                events = through()
        except BaseException as unmade:
            if shared is not None:
                TURN_COUNT.reset(shared)
            self.fail(unmade)
            raise
        observed: LLMCallWatch | None = None
        charge: CallCharge | None = None
        turns: InTurn[LLMEvent] | None = None
        first: RunFirst | None = None
        try:
            first = run_first()  # None: not asyncio's own loop (uvloop): then the gate
            if here:  # made before the request (refused when a budget has no room: then
                charge = metered.charge(call)  # no request is sent, and nothing traced)
                observed = watch_llm_call(alias, metered, call)
                if observed is not None:
                    events = watched_events(observed, events)
            taking: AsyncIterator[LLMEvent] = events
            if in_turn and first is None:
                taking = turns = InTurn(events)
            await self._take_all(taking, metered, call, charge, watch, count, in_turn, first)
            self._check_answer(call)
        except BaseException as caught:
            let_go_of_frames(caught)  # (the SDK's generators, closed now: see there)
            over = caught  # (a provider's count past the bound, with its thinking: ours)
            if is_too_long(caught):
                over = self._too_long(call.model, max_chars)
            # a stall: its own error, for the watch's cancellation
            error = over if watch is None else watch.end(over)
            translated = error if isinstance(error, MiniAgentsError) else metered.translate(error)
            self._ended(translated, observed if sent is None else sent.watch)
            if translated is caught:
                raise
            if translated is error:  # the stall's error (error is never None here), with
                raise translated from translated.__cause__  # its own cause, if it has one
            raise translated from error
        else:
            if watch is not None:
                watch.end(None)
            self._ended(None, observed if sent is None else sent.watch)
        finally:
            TURN_COUNT.reset(shared)
            if first is not None:
                first.release()
            if turns is not None:
                turns.leave()
            if charge is not None:  # a call that ended without a count
                charge.end()
            await aclose_events(events)
        return self.complete(usage, metered, call.model)

    def _check_answer(self, call: LLMCall) -> None:
        """Refuse a turn that ended with no answer to take: refused, paused, or calls that
        no tool can run.

        Raises:
            LLMRefusalError: for a refusal (see :meth:`_refused`).
            LLMResponseError: for a paused turn, or tool calls of an agent without tools.
        """
        if self.refusals or self.finish.reason == "refusal":
            raise self._refused(call.model)
        if self.finish.reason == _PAUSED:
            raise self._paused(call.model)
        if self.calls and not call.tools:
            raise self._called_without_tools(call.model)

    async def _take_all(
        self,
        events: AsyncIterator[LLMEvent],
        metered: Metered[OptionsT],
        call: LLMCall,
        charge: CallCharge | None,
        watch: StallWatch | None,
        count: TurnCount,
        in_turn: bool,
        first: RunFirst | None,
    ) -> None:
        """Take every event of the call into the reply, letting woken readers run.

        ``charge`` and ``watch``: the call's, when it is charged and watched here (else
        the events come through the meter and the watch already). ``count``: the
        characters the call may still send, shared with its provider (which adds its
        thinking or reasoning); each text, refusal and argument is taken off it here.

        Raises:
            LLMResponseError: once the call sent more than ``count.most`` characters.
        """
        handed = handoffs()  # readers woken so far (the reply's first message too)
        taken = _HANDOFF_EVERY  # events taken since this task last let readers run
        if first is not None:  # what its tokens wake runs next (no check per token)
            first.lead()
        if watch is not None:  # in the task that reads: the one it cancels (no with: its
            watch.start()  # bound __exit__ would be one more object per call)
        # inline, per event: StallWatch.alive on asyncio's own clock (the deadline moved
        # with the clock read directly), and CallCharge.piece of a quiet charge (its count):
        # a call of 200 tokens of the offline model makes 19 % fewer calls and 9 % fewer
        # instructions without the calls of these two per token (tests/benchmarks/README.md,
        # 'Inlined copies'); a loop with a clock of its own, or a charge with limits, is asked
        ticking: StallWatch | None = None  # the watch whose deadline is moved here
        clock, timeout = time.monotonic, 0.0
        if watch is not None and watch.clock is not None and watch.timeout is not None:
            ticking, clock, timeout = watch, watch.clock, watch.timeout
        # Most events are text tokens: each goes straight to the charge's piece (what
        # Metered.count does with a token of a streamed call) and to where text_record
        # says, with no dispatch of take() and count() around them; any other event goes
        # through both.
        counted = charge if charge is not None and call.stream else None  # a token's charge
        quiet = None if counted is None or not counted.quiet else counted  # (see CallCharge)
        record: ReplayCore[str] | None = None  # the text's record, once the first token came
        plain = True  # whether the text goes to its record (else to the text sink)
        async for event in events:
            if ticking is not None:
                ticking.deadline = clock() + timeout
            elif watch is not None:
                watch.alive()
            if type(event) is str:
                if not event:  # a sign of life only (the deadline moved): no reader to
                    continue  # wake, so no handover either (it waits for a token)
                count.left -= len(event)  # (inline: no call per token)
                if count.left < 0:
                    raise self._too_long(call.model, count.most)
                if quiet is not None:
                    quiet.pieces += 1
                elif counted is not None:
                    counted.piece()
                # (the record, chosen at the first token: see text_record)
                if record is not None or (plain and (record := self.text_record()) is not None):
                    record.accept(event)
                else:  # a call with a text sink
                    plain = False
                    self._sink_text(event)
            else:
                if isinstance(event, _SAID):
                    count.left -= len(event.text)
                    if count.left < 0:
                        raise self._too_long(call.model, count.most)
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

    def _ended(self, error: BaseException | None, watch: LLMCallWatch | None) -> None:
        """The call has ended (with ``error``, translated): its messages fail, its watch is told."""
        if error is not None:
            self.fail(error)
        if watch is not None:
            end_llm_call(watch, error)

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

    def _said_before(self, what: str) -> str:
        """A sentence for an error: what the model said before ``what``, if it said anything."""
        text = self.said()
        return f" Before {what} it said: {text[:200]!r}." if text.strip() else ""

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

    def _paused(self, model: str) -> LLMResponseError:
        """The error of a turn the API paused: the model has not answered yet.

        Anthropic pauses a long turn of its server tools (``web_search``, code execution,
        given in ``extra_options``) and expects the caller to send the reply's content back
        as it is to continue it; the agent keeps only its text and calls, so it cannot, and
        the text so far is not the answer.
        """
        alias = self.ctx.this_agent.alias
        said = self._said_before("the pause")
        return LLMResponseError(
            f"The agent {alias} got no answer: the API paused the turn of the model "
            f"{model!r} (finish reason {_PAUSED!r}) while its server tools ran, before the "
            f"model answered.{said} The agent does not continue a paused turn: give the "
            "server tools less to do in one turn (e.g. a lower max_uses, fewer tools), or "
            "ask for less at a time."
        )

    def _too_long(self, model: str, max_chars: int) -> LLMResponseError:
        """The error of a call that sent more than ``max_chars`` characters in one turn.

        No model writes that much in one turn (``max_chars`` is far above their output
        limits, unless it was set lower): a provider, or a proxy, that streams without end.
        """
        alias = self.ctx.this_agent.alias
        return LLMResponseError(
            f"The agent {alias} stopped its call: the model {model!r} sent more than "
            f"{max_chars:,} characters in one turn (its text, thinking and tool calls' "
            "arguments together), the bound MiniAgents(llm_max_turn_chars=...) sets on what a "
            "reply keeps in memory. A stream that long usually means a broken provider or proxy "
            "that does not end its stream: check the provider's endpoint; if the model "
            "really writes that much, raise the bound with MiniAgents(llm_max_turn_chars=...)."
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
        names = list(dict.fromkeys(called))  # in order, each once
        tools = f"the tool{'s' if len(names) > 1 else ''} {shown_tool_names(names)}"
        said = self._said_before("its calls")
        return LLMResponseError(
            f"The agent {alias} got no answer: the model {model!r} called {tools}, but the "
            f"agent has no tools, so none was run.{said} Give the agent the tools the model "
            f"may call, with {alias.lower()}.fork(tools=[...]) or inquire(..., "
            "tools=[...]), or tell the model (e.g. in the system prompt) to answer without "
            "calling tools."
        )

    def complete(
        self, usage: TokenUsage | None, metered: Metered[OptionsT], model: str
    ) -> TokenUsage:
        """End the turn's messages; a turn without calls is the answer, with the usage.

        The text message gets the finish reason (and, for the answer, ``usage`` with this
        call's added: returned); the calls parse their arguments. An error on the way fails
        the messages still open (see :meth:`fail`).
        """
        try:
            usage = added_usage(usage, metered.usage(self.finish, model))
            if not self.calls and self.text_sink is None:
                self.open_text()
            if self.text is not None:
                extra = {} if self.calls else {"usage": usage}
                self.text.update_metadata(finish_reason=self.finish.reason, **extra)
            for appender in self._appenders():
                appender.complete()
        except BaseException as unended:
            self.fail(unended)
            raise
        return usage

    def fail(self, error: BaseException) -> None:
        """End the turn's messages still open (its text, its tool calls) with ``error``.

        (Ended messages stay as they are.)
        """
        for appender in self._appenders():
            appender.fail(error)

    def _appenders(self) -> list[MessageTokenAppender]:
        return [*([self.text] if self.text is not None else []), *self.calls.values()]

    async def call_messages(self) -> list[LLMToolCallMessage]:
        """The tool calls of the turn, complete, in order."""
        messages = [await appender.promise for appender in self.calls.values()]
        return [message for message in messages if isinstance(message, LLMToolCallMessage)]
