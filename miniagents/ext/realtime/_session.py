"""One realtime session: the input streamed to the API, the API's events made into the reply.

::

    input:   AudioChunk AudioChunk ... "a typed question" ... PlaybackPosition ... (end)
    link:    asend_audio ...           asend_text, arespond                     aend_input
    events:  SpeechStarted SpeechStopped UserTranscribed ReplyStarted AudioOut TextOut ...
             ToolCalled ReplyEnded ... AudioCut ...
    reply:   Transcript(user) AudioChunk Transcript(assistant: streams) ... LLMToolCallMessage
             LLMToolResultMessage(streams while the tool runs) TurnEnd ... Interruption ...
             SessionEnd

**Input.** The input is read as it comes, and sent in order, by one task. As every agent
reads its input, it takes the next piece only while its reply is less than the streams'
high-water mark ahead of the reply's readers (see :mod:`miniagents.promising.limits`): a
reader takes the pieces as they come (a player queues the audio and plays it from its own
buffer, as the browser page does), or the microphone is held back.

**Tools.** A call starts at once, in the background; its call and its result go into the
reply (the result streaming as the tool produces it). Once complete, the output is sent
to the API, and a reply asked for as soon as the model is idle and the user not speaking
(a reply that starts meanwhile has the output in its context), or, from an API that
answers outputs by itself (Gemini), awaited once each call of the model's reply has its
output: an output is never lost to a reply in progress, an interruption, or the user
talking, and the session closes once the answers owed have come. A call the API withdraws
(:class:`~miniagents.ext.realtime.provider.ToolCancelled`: the user cut its reply short) is
stopped, its output never sent, and its result in the reply says so.

**Interruptions.** When the user starts speaking over the model's audio (the API's VAD,
or Gemini's ``interrupted``), the item still playing is cut where the player got to (its
:class:`~miniagents.ext.realtime.pieces.PlaybackPosition` reports, else real time since its
first chunk reached the reply); the API is told (``atruncate``), and its confirmation
(:class:`~miniagents.ext.realtime.provider.AudioCut`) makes the reply's ``Interruption``
and trims the session's record of the conversation to what was heard.

**The end.** When the input ends, the user's last words are a turn (``aend_input``), and
the session closes once nothing is pending (no turn unanswered, no reply, no tool running),
or ``drain_timeout`` seconds after; then its ``SessionEnd``. An error (the API's, the
connection's, a budget's) ends the reply after the pieces before it. A send that finds the
connection closed (:class:`~miniagents.ext.realtime.errors.RealtimeConnectionError`) may
have come before the API's error was read, which the API sends just before it closes: the
session reads the events left (at most :data:`READ_ON_EVENTS`, for at most
:data:`READ_ON_SECONDS` of the loop's clock) and ends with the API's error if it is among
them, else with the connection's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from miniagents.arguments import check_count, check_flag, check_seconds, refused_argument
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.messages import (
    AssistantMessage,
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    UserMessage,
)
from miniagents.ext.realtime._metering import ReplyMeter
from miniagents.ext.realtime._recording import discard_recording
from miniagents.ext.realtime.errors import (
    RealtimeConnectionError,
    RealtimeError,
    RealtimeInputError,
    RealtimeServerError,
)
from miniagents.ext.realtime.handoff import Handoff
from miniagents.ext.realtime.pieces import (
    AudioChunk,
    HandoffResult,
    Interruption,
    PlaybackPosition,
    RealtimeUsage,
    SessionEnd,
    Transcript,
    TurnEnd,
)
from miniagents.ext.realtime.provider import (
    AudioCut,
    AudioOut,
    Interrupted,
    RealtimeEvent,
    RealtimeLink,
    RealtimeOptions,
    RealtimeProvider,
    ReplyEnded,
    ReplyStarted,
    ServerFailed,
    SessionSetup,
    SpeechStarted,
    SpeechStopped,
    TextOut,
    ToolCalled,
    ToolCancelled,
    UserTranscribed,
    _ToolTurns,
    session_options,
)
from miniagents.ext.roles import role_of
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.running import ERROR_SEPARATOR, error_part
from miniagents.ext.tools.tool_set import ToolSet
from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents.agent import InteractionContext, MiniAgent
from miniagents.promising.lowlevel import logger, report_lost_error, spawn

__all__ = ["CONVERSATION_KEPT", "READ_ON_EVENTS", "READ_ON_SECONDS", "Session", "check_options"]

CONVERSATION_KEPT: Final = 1000
"""The messages of a session's conversation its record keeps (the latest; a handoff's input)."""

READ_ON_EVENTS: Final = 32
"""The most events read, after a send found the connection closed, for the API's error."""

READ_ON_SECONDS: Final = 1.0
"""The most seconds (of the event loop's clock) the events left are read for after a send
found the connection closed; then the session ends with the connection's error."""


@dataclass
class _Said:
    """What the model said in one item: its audio's length, its words, where each came.

    (A user's spoken turn is one too, in the conversation: its place, kept until its words
    come, transcribed.)
    """

    item_id: str | None
    first_at: float | None = None  # the loop's time its first chunk went into the reply
    generated_ms: float = 0.0
    played_ms: float | None = None  # as the player reported it
    pieces: list[tuple[float, str]] = field(default_factory=list)  # (audio ms at arrival, text)
    transcript: MessageTokenAppender[Transcript] | None = None
    heard: str | None = None  # what the user heard, once cut
    cut: bool = False

    @property
    def text(self) -> str:
        """The words it said: all of them, or those heard, once cut."""
        return self.heard if self.heard is not None else "".join(text for _, text in self.pieces)


@dataclass
class _ShownResult:
    """A tool call's result as the reply shows it, while its tool runs."""

    appender: MessageTokenAppender[ToolResultMessage]
    withdrawn: bool = False  # the API withdrew the call (the reply that made it was cut short)

    def end_unfinished(self) -> None:
        """End the result of a call that did not finish, saying why (else leave it as it is).

        Withdrawn, whenever the cancellation reached the tool (the session may be closing by
        then), it says so; else the session ended under it.
        """
        appender = self.appender
        if appender.closed:
            return
        why = (
            "The realtime API withdrew the call (the reply that made it was cut short), so "
            "the tool was stopped before it finished."
            if self.withdrawn
            else "The session ended before the tool finished."
        )
        appender.update_metadata(is_error=True)
        appender.append((ERROR_SEPARATOR if appender.appended else "") + why)
        appender.complete()


class Session:
    """One realtime session of an agent's interaction (see the module).

    Args:
        ctx: The interaction: its input is the session's, its reply the pieces.
        provider: The API.
        options: The agent's arguments.
        alias: The agent's alias.

    The options are checked before (``check_options``, by the agent).

    Raises:
        LLMConfigurationError: for no model.
        ToolDefinitionError: for a tool that cannot be one.
        ToolNameConflictError: for two tools of one name.
    """

    def __init__(
        self,
        ctx: InteractionContext,
        provider: RealtimeProvider[Any],
        options: RealtimeOptions,
        alias: str,
    ) -> None:
        model = options.model or provider.default_model
        if not model:
            raise LLMConfigurationError(
                f"The realtime agent {alias} has no model: give it one, e.g. "
                f"{alias.lower()}.fork(model=...)."
            )
        handoffs = [Handoff(agent, self.conversation) for agent in options.handoffs or ()]
        self._tools = ToolSet([*(options.tools or ()), *handoffs])
        self.setup = SessionSetup(
            model=model,
            instructions=options.instructions,
            tools=tuple(self._tools),
            voice=options.voice,
            modality=options.modality,
            transcribe_input=options.transcribe_input,
            vad=options.vad,
            silence_ms=options.silence_ms,
            interrupt=options.interrupt,
            options=dict(options.extra_session or {}),
            provider_options=session_options(options),
        )
        self._setup = self.setup
        self._ctx = ctx
        self._provider = provider
        self._options = options
        self._alias = alias
        self._model = model
        self._loop = asyncio.get_running_loop()
        self._link: RealtimeLink | None = None
        self._changed = asyncio.Event()  # (for the drain: something pending ended)
        self._failure: BaseException | None = None
        self._reading_on: int | None = None  # events left to read for the API's error
        self._closing = False
        # the conversation's state
        self._speaking = False  # the user (server VAD)
        self._replying = False
        self._awaiting_reply = 0  # replies owed (a turn, an ask, tools' outputs) not started yet
        self._want_reply = False  # a reply to ask for once the model is idle (for what was
        # sent since the last ask: a reply the API starts by itself may not have had it)
        self._reply_id: str | None = None
        self._replies_started = 0
        self._meter = ReplyMeter(alias, model, provider, self.setup)
        self._said: dict[str | None, _Said] = {}  # the model's items, the latest last
        self._reply_items: list[_Said] = []
        self._tool_runs: dict[str, MessagePromise[ToolResultMessage]] = {}
        self._sending = 0  # tools' outputs being sent (a withdrawn call's too: not cut by the end)
        self._shown: dict[str, _ShownResult] = {}  # the calls' results in the reply, unended
        self._tool_turns = _ToolTurns()  # the calls whose output is to come, and their replies
        self._conversation: deque[tuple[str, str, _Said | None]] = deque(maxlen=CONVERSATION_KEPT)
        self._untranscribed: dict[str, _Said] = {}  # the user's turns whose words are to come
        self._turns = 0
        self._usage: RealtimeUsage | None = None
        self._any_audio = False  # audio sent in the session
        self._tasks: set[asyncio.Task[None]] = set()  # its own: cancelled, awaited at its end
        self._pending_cut: tuple[str, int] | None = None

    # -- the whole session -----------------------------------------------------------------

    async def arun(self, connect: Callable[[SessionSetup], Awaitable[RealtimeLink]]) -> None:
        """Connect (``connect(setup)``), stream both ways until the end, then close.

        Raises:
            BaseException: what ended the session: the API's or connection's error, the
                input's, a budget's.
        """
        self._link = link = await connect(self.setup)
        events: AsyncIterator[RealtimeEvent] | None = None
        ended: BaseException | None = None  # (the session's own error, kept over the close's)
        try:
            events = link.events()  # (a link's that fails: closed, no input sent to it)
            self._spawn(self._forward(link), "input")
            async for event in events:
                if self._failure is not None:
                    if self._read_on(event):
                        continue  # (a send found the connection closed: the API's error?)
                    break  # (a task of the session failed: it ends with that error)
                self._on(event)
                if not self._closing:
                    try:
                        await self._act(link)
                    except RealtimeConnectionError as error:
                        self._fail(error, link)
                # (closing: the events are read on to their end, which the close makes, so
                # that one the API sent meanwhile is taken and a recording keeps them all)
            if self._failure is not None:
                raise self._failure
            self._ended_well()
        except BaseException as error:
            ended = error
            raise
        finally:
            self._closing = True
            for task in self._tasks:
                task.cancel()
            closing = await _close_link(link, events)  # (a cancellation there: returned)
            self._end_pieces()
            for result in list(self._tool_runs.values()):
                result.cancel()
            while self._tasks or self._meter.traces:  # (one failing as it stops may start
                try:  # the close: its too; the replies' traces, ended, end)
                    await asyncio.gather(*self._tasks, *self._meter.traces, return_exceptions=True)
                    await asyncio.sleep(0)  # (those ended leave the sets in a turn of the loop:
                    # from Python 3.12 on, a gather of ended tasks returns without one)
                except asyncio.CancelledError as cancelled:  # (cancelled again: after them)
                    closing = closing if isinstance(closing, asyncio.CancelledError) else cancelled
            if isinstance(closing, asyncio.CancelledError):
                raise closing
            late = self._failure if self._failure is not ended else None  # (a task's, as the
            failed = ended or late  # session ended: a delivery's refusal to go on, DBOS's)
            if closing is not None:
                if failed is None:
                    raise closing
                logger.warning(
                    "The realtime link of %s failed to close after the session's own error "
                    "(%r), which the session ends with.",
                    self._alias,
                    failed,
                    exc_info=closing,
                )
            if late is not None and ended is None:
                raise late
            if late is not None and not isinstance(late, Exception):  # (an Exception: one
                report_lost_error(late, f"A task of the realtime session of {self._alias}")
                # the session's own error stands for, e.g. the connection's for the API's)

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        task = spawn(work, f"realtime {what} of {self._alias}", self._tasks)
        task.add_done_callback(_exit_taken)

    def _ended_well(self) -> None:
        self._ctx.reply(
            SessionEnd(
                turns=self._turns, usage=self._usage, model=self._model, agent_alias=self._alias
            )
        )

    def _end_pieces(self) -> None:
        """Complete what is still streaming (a transcript, a tool's result), end the metering."""
        for said in self._said.values():
            if said.transcript is not None and not said.transcript.closed:
                said.transcript.complete()
        self._meter.end()
        for call_id, shown in list(self._shown.items()):  # (their tasks may never have run)
            self._shown_ended(call_id, shown)

    def _fail(self, error: BaseException, link: RealtimeLink) -> None:
        """End the session with ``error`` (a task of its own failed); no recording is kept.

        An ``Exception`` once the session is closing is the close's doing (a send the drain's
        close cut short, or one after the session's own error): logged, not the session's.

        A send that found the connection closed (a ``RealtimeConnectionError``) ends it
        once the events left are read for the API's error (see the module): the link is
        closed after :data:`READ_ON_SECONDS`, unless they end before.
        """
        if self._closing and isinstance(error, Exception):  # (the drain closed the link
            logger.debug(  # under a send, or the session fails already: the close's doing)
                "A task of the session of %s failed as it closed: %r", self._alias, error
            )
            return
        if self._failure is None:
            self._failure = error
            if isinstance(error, RealtimeConnectionError):
                self._reading_on = READ_ON_EVENTS
        discard_recording(link)
        self._closing = True
        if self._reading_on is None:
            self._spawn(link.aclose(), "close")
        else:
            self._spawn(self._close_after(link, READ_ON_SECONDS), "close")

    async def _close_after(self, link: RealtimeLink, seconds: float) -> None:
        await asyncio.sleep(seconds)  # (the loop's clock)
        await link.aclose()

    def _read_on(self, event: RealtimeEvent) -> bool:
        """Whether to read on for the API's error, after a send found the connection closed.

        Raises:
            RealtimeServerError: ``event`` is the API's error: the session ends with it.
        """
        if not self._reading_on:  # (another failure, or the events left all read)
            return False
        self._reading_on -= 1
        if isinstance(event, ServerFailed) and event.fatal:
            raise self._server_error(event)
        return self._reading_on > 0

    def conversation(self) -> list[Message]:
        """The conversation so far as messages (what a handoff's text agent is given).

        What the user said (transcribed) or typed, what the model said (as far as the user
        heard it), and what was carried in; the latest :data:`CONVERSATION_KEPT` entries.
        """
        return conversation_of(self._conversation)

    # -- the input -------------------------------------------------------------------------

    async def _forward(self, link: RealtimeLink) -> None:
        """Send the input as it comes, in order; at its end, end the user's turn."""
        try:
            async for item in self._ctx.message_promises:
                message = item.message_now() if item.done else await item
                await self._send_input(link, message)
            if self._any_audio:  # (the link ends a turn under way, once the API took it all)
                started = self._replies_started
                ended = await link.aend_input()
                self._speaking = False
                if ended == "ask":
                    self._ask_reply()
                elif ended == "replies" and self._replies_started == started:
                    self._awaiting_reply += 1  # (not if its reply started meanwhile: owed no more)
            await self._act(link)
            self._spawn(self._drain(link), "end")
        except BaseException as error:
            if _raised_on(error):
                raise  # (an input's sys.exit(): the loop raises it on, the program ends so)
            self._fail(error, link)

    async def _send_input(self, link: RealtimeLink, message: Message) -> None:
        if isinstance(message, AudioChunk):
            if message.format != self._provider.input_format:
                raise RealtimeInputError(
                    f"The agent {self._alias} takes audio as {self._provider.input_format!r}, "
                    f"but got a chunk of {message.format!r}: resample it to "
                    f"{self._provider.input_format.rate} Hz, 16-bit mono, before sending it."
                )
            self._any_audio = True
            await link.asend_audio(message.audio)
        elif isinstance(message, PlaybackPosition):
            said = self._said.get(message.item_id)
            if said is not None:
                said.played_ms = float(message.played_ms)
        elif isinstance(message, ToolResultMessage):
            await link.asend_tool_output(message.call_id, message.tool_name, message.text or "")
            self._tool_output_sent(link, message.call_id)
        elif isinstance(message, ToolCallMessage):
            pass  # (the call of a result the caller sends: nothing for the API)
        else:
            role = role_of(message)
            text = message.text or ""
            if role in ("assistant", "system"):
                await link.asend_item(role, text)
                self._conversation.append((role, text, None))
            elif text:
                await link.asend_text(text, message.images)
                self._conversation.append(("user", text, None))
                self._ask_reply()
            elif message.images:
                await link.asend_images(message.images)
            else:
                raise RealtimeInputError(
                    f"The agent {self._alias} got an input message with nothing to send "
                    f"({type(message).__name__}, no text, audio nor images): send AudioChunks, "
                    "text, images or a tool's result."
                )
        await self._act(link)

    # -- the API's events --------------------------------------------------------------------

    def _on(self, event: RealtimeEvent) -> None:
        """Make the API's event into pieces of the reply, and into the session's state."""
        if isinstance(event, AudioOut):
            self._audio(event)
        elif isinstance(event, TextOut):
            self._text(event)
        elif isinstance(event, SpeechStarted):
            self._speaking = True
            self._interrupt()
        elif isinstance(event, SpeechStopped):
            self._speaking = False
            self._awaiting_reply += 1
            self._place_turn(event.item_id)
        elif isinstance(event, UserTranscribed):
            self._ctx.reply(
                Transcript(
                    text=event.text,
                    role="user",
                    item_id=event.item_id,
                    model=self._model,
                    agent_alias=self._alias,
                )
            )
            self._transcribed(event.item_id, event.text)
        elif isinstance(event, ReplyStarted):
            self._started(event.response_id)
        elif isinstance(event, ToolCalled):
            self._call(event)
        elif isinstance(event, ToolCancelled):
            self._withdraw(event.call_id)
        elif isinstance(event, ReplyEnded):
            self._ended(event)
        elif isinstance(event, Interrupted):
            self._interrupt()
        elif isinstance(event, AudioCut):
            self._cut(event)
        elif event.fatal:
            raise self._server_error(event)
        elif event.expected:  # (a race the session expects: noise)
            logger.debug("The realtime API said %s: %s", event.code, event.message)
        else:  # (a warning, or an error the session goes on after: a user should see it)
            logger.warning(
                "The realtime API warned the session of %s: %s%s",
                self._alias,
                event.message,
                f" ({event.code})" if event.code else "",
            )
        self._changed.set()

    def _server_error(self, event: ServerFailed) -> RealtimeServerError:
        """The session's error for the API's fatal ``event``."""
        return RealtimeServerError(
            f"The realtime API ended the session of {self._alias}: {event.message}"
            + (f" ({event.code})" if event.code else ""),
            event.code,
        )

    def _place_turn(self, item_id: str | None) -> None:
        """Give the user's spoken turn its place in the conversation, before the reply to it.

        Its words come when the API has transcribed them, which may be after the reply's
        first events (OpenAI transcribes apart from the reply).
        """
        if item_id is None or not self._setup.transcribe_input:
            return
        place = self._untranscribed[item_id] = _Said(item_id)
        self._conversation.append(("user", "", place))
        if len(self._untranscribed) > CONVERSATION_KEPT:  # (turns never transcribed)
            del self._untranscribed[next(iter(self._untranscribed))]

    def _transcribed(self, item_id: str | None, text: str) -> None:
        """The user's words, in their turn's place in the conversation (else at its end)."""
        place = None if item_id is None else self._untranscribed.pop(item_id, None)
        if place is None:
            self._conversation.append(("user", text, None))
        else:
            place.pieces.append((0.0, text))

    def _said_of(self, item_id: str | None) -> _Said:
        said = self._said.get(item_id)
        if said is None:
            if not self._replying:  # (a provider that names no reply: one starts here)
                self._started(None)
            said = self._said[item_id] = _Said(item_id)
            self._reply_items.append(said)
            self._conversation.append(("assistant", "", said))
            if len(self._said) > CONVERSATION_KEPT:
                del self._said[next(iter(self._said))]
        return said

    def _audio(self, event: AudioOut) -> None:
        said = self._said_of(event.item_id)
        if said.first_at is None:
            said.first_at = self._loop.time()
        chunk = AudioChunk(
            audio=event.audio,
            format=self._provider.output_format,
            role="assistant",
            item_id=event.item_id,
        )
        said.generated_ms += chunk.duration_ms
        self._ctx.reply(chunk)

    def _text(self, event: TextOut) -> None:
        said = self._said_of(event.item_id)
        transcript = said.transcript
        if transcript is None:
            transcript = said.transcript = MessageTokenAppender(
                message_class=Transcript,
                role="assistant",
                item_id=event.item_id,
                model=self._model,
                agent_alias=self._alias,
            )
            self._ctx.reply(transcript.promise)
        said.pieces.append((said.generated_ms, event.text))
        if not transcript.closed:
            transcript.append(event.text)
        self._meter.piece(event.text)  # (a budget's limit crossed: BudgetExceededError)

    def _started(self, response_id: str | None) -> None:
        self._replying = True
        self._replies_started += 1
        self._awaiting_reply = max(0, self._awaiting_reply - 1)
        self._reply_id = response_id
        self._reply_items = []
        self._meter.start()

    def _call(self, event: ToolCalled) -> None:
        """Run the model's call (in the background), shown in the reply.

        A call under the id of a call whose output is still to be sent (its tool running,
        or its output being sent) is refused (the API's or the link's defect): its result in
        the reply says so, and only the first call's output is sent, answering that id once.

        Raises:
            RealtimeError: for a call outside any reply (the link's defect: a call always
                comes between its reply's ``ReplyStarted`` and ``ReplyEnded``).
        """
        if not self._replying:
            raise RealtimeError(
                f"The realtime link of {self._alias} ({type(self._link).__name__}) said the "
                f"call {event.call_id!r} of {event.name!r} outside any reply: a link says "
                "ReplyStarted before the calls of a reply (and ReplyEnded after them). Fix "
                "the link, e.g. check it with miniagents.testing.realtime_link_contract."
            )
        try:
            arguments = json.loads(event.arguments) if event.arguments.strip() else {}
        except ValueError:
            arguments = None
        model, alias = self._model, self._alias
        given: dict[str, object] = (  # (not a JSON object: the tool's error result says so)
            {"arguments": arguments} if isinstance(arguments, dict) else {"text": event.arguments}
        )
        call = LLMToolCallMessage.model_validate(
            {
                "tool_name": event.name,
                "call_id": event.call_id,
                "model": model,
                "agent_alias": alias,
                **given,
            }
        )
        handed_to = _handoff_target(self._tools, event.name)
        handoff: dict[str, object] = {} if handed_to is None else {"handed_to": handed_to}
        result_class = LLMToolResultMessage if handed_to is None else HandoffResult
        if not self._tool_turns.called(event.call_id, self._replies_started):
            refused = (
                f"The realtime API called {event.name!r} under the id {event.call_id!r} of a "
                "call whose output is still to be sent (its tool still running, or its output "
                "being sent), so this call was not run (the first call's output answers that "
                "id)."
            )
            logger.warning("The session of %s: %s", alias, refused)
            refusal = result_class.model_validate(
                {
                    "text": refused,
                    "is_error": True,
                    "tool_name": event.name,
                    "call_id": event.call_id,
                    "model": model,
                    "agent_alias": alias,
                    **handoff,
                }
            )
            self._ctx.reply([call, refusal])
            return
        request = self._tools.approval_request(
            call, request_class=LLMToolApprovalRequest, model=model, agent_alias=alias
        )
        result: MessagePromise[ToolResultMessage] = self._tools.run(
            call,
            result_class=result_class,
            approval=request,
            model=model,
            agent_alias=alias,
            **handoff,
        )
        appender = MessageTokenAppender(  # (the result as the reply shows it: see _deliver)
            message_class=result_class,
            model=model,
            agent_alias=alias,
            tool_name=event.name,
            call_id=event.call_id,
            **handoff,
        )
        self._ctx.reply(
            [call, appender.promise] if request is None else [call, request, appender.promise]
        )
        shown = self._shown[event.call_id] = _ShownResult(appender)
        self._tool_runs[event.call_id] = result
        self._spawn(self._deliver(event.call_id, event.name, result, shown), f"tool {event.name}")

    def _withdraw(self, call_id: str) -> None:
        """The API withdrew the call ``call_id``: cancel its run; its output is never sent."""
        self._tool_turns.withdrawn(call_id)
        result = self._tool_runs.pop(call_id, None)
        if result is not None:
            if (shown := self._shown.get(call_id)) is not None:
                shown.withdrawn = True
            result.cancel()

    async def _deliver(
        self,
        call_id: str,
        name: str,
        result: MessagePromise[ToolResultMessage],
        shown: _ShownResult,
    ) -> None:
        """Pass a tool's result on into the reply as it streams, and send its output to the
        API once it is complete (see "Tools"); a call the API withdrew, or the session's end,
        ends the reply's result with a sentence saying so (its readers never fail for it)."""
        told_apart = False  # (a tool's exception: said where its text begins, as in result)
        try:
            async for token in result:
                if not told_apart and (part := error_part(result.metadata)) is not None:
                    shown.appender.update_metadata(**part.metadata())  # (before its token)
                    told_apart = True
                shown.appender.append(token)
            message = await result
        except BaseException as error:  # (a result fails only when cancelled, or exited)
            self._run_ended(call_id, result)
            self._shown_ended(call_id, shown)
            if _raised_on(error):
                raise  # (a tool's sys.exit(): the loop raises it on, the program ends so)
            if isinstance(error, Exception):
                logger.debug("The result of the tool call %s failed: %r", call_id, error)
            elif self._link is not None:  # (any other BaseException, e.g. DBOS's refusal
                self._fail(error, self._link)  # to go on: the session's reader gets it)
            return
        if message.is_error:
            shown.appender.update_metadata(is_error=True)
        shown.appender.complete()
        self._shown_ended(call_id, shown)
        link = self._link
        if link is None or self._closing or self._tool_runs.get(call_id) is not result:
            self._run_ended(call_id, result)  # (the session ended, or the API withdrew the
            return  # call as it completed)
        try:
            self._sending += 1
            try:
                await link.asend_tool_output(call_id, name, message.text or "")
            finally:
                self._sending -= 1
            if isinstance(message, HandoffResult):  # (the text agent's answer: said, for good)
                self._conversation.append(("assistant", message.text or "", None))
            self._tool_output_sent(link, call_id)
            self._run_ended(call_id, result)
            await self._act(link)
        except BaseException as error:
            if _raised_on(error):
                raise  # (as above: an exit there ends the program, not only the session)
            self._fail(error, link)
        finally:
            self._run_ended(call_id, result)

    def _run_ended(self, call_id: str, result: MessagePromise[ToolResultMessage]) -> None:
        """The run ``result`` of ``call_id`` is over: untracked (not a later call's of that id).

        Its output not sent by then, it never is: no reply of the API answers it.
        """
        if self._tool_runs.get(call_id) is result:
            del self._tool_runs[call_id]
            self._tool_turns.withdrawn(call_id)  # (after the output sent: recorded no more)
        self._changed.set()

    def _shown_ended(self, call_id: str, shown: _ShownResult) -> None:
        """The reply's result of ``call_id`` ends here (saying why, if its tool did not finish)."""
        shown.end_unfinished()
        if self._shown.get(call_id) is shown:
            del self._shown[call_id]

    def _tool_output_sent(self, link: RealtimeLink, call_id: str) -> None:
        """The output of ``call_id`` was sent: the API answers it by itself, or is asked to.

        An API that answers by itself (Gemini: ``replies_to_tool_outputs``) answers the
        calls of one of its replies in one reply, once each has its output (``_ToolTurns``
        of the provider module): the last of them owes it. Else the session asks for a
        reply once the model is idle (one ``arespond`` for all sent meanwhile).
        """
        answers = self._tool_turns.answered(call_id)  # (the id free for a later call)
        if link.replies_to_tool_outputs:
            self._awaiting_reply += answers
        else:
            self._ask_reply()

    def _ended(self, event: ReplyEnded) -> None:
        self._replying = False
        for said in self._reply_items:
            if said.transcript is not None and not said.transcript.closed:
                said.transcript.complete()
        usage = self._meter.finish(event, self._link is not None and self._link.replayed)
        self._turns += 1
        if usage is not None:
            total = self._usage
            self._usage = usage if total is None else RealtimeUsage.summed((total, usage))
        self._ctx.reply(
            TurnEnd(
                status=event.status,
                response_id=event.response_id or self._reply_id,
                usage=usage,
                model=self._model,
                agent_alias=self._alias,
            )
        )
        self._meter.check_budgets()

    # -- interruptions -------------------------------------------------------------------------

    def _interrupt(self) -> None:
        """The user spoke over the model: cut the item still playing where it got to."""
        if not self._options.interrupt or not self._said:
            return
        said = self._said[next(reversed(self._said))]
        if said.cut or said.first_at is None or said.item_id is None:
            return
        played = said.played_ms
        if played is None:
            played = (self._loop.time() - said.first_at) * 1000
        played = min(played, said.generated_ms)
        if played >= said.generated_ms and not self._replying:
            return  # heard to its end
        said.cut = True
        said.heard = _heard(said, played)  # (at once: a handoff may read it before the API's word)
        self._pending_cut = (said.item_id, int(played))

    def _cut(self, event: AudioCut) -> None:
        said = self._said.get(event.item_id)
        if said is None:
            return
        said.cut = True
        full = "".join(text for _, text in said.pieces)
        heard = said.heard = _heard(said, event.played_ms)
        if said.transcript is not None and not said.transcript.closed:
            said.transcript.complete()
        self._ctx.reply(
            Interruption(
                item_id=event.item_id,
                played_ms=event.played_ms,
                generated_ms=int(said.generated_ms),
                heard=heard,
                unheard=full[len(heard) :],
            )
        )

    # -- what the session does next --------------------------------------------------------------

    def _ask_reply(self) -> None:
        self._want_reply = True

    async def _act(self, link: RealtimeLink) -> None:
        """Do what the state asks: tell a cut, ask for a reply when the model is idle."""
        cut, self._pending_cut = self._pending_cut, None
        if cut is not None:
            await link.atruncate(*cut)
        if (
            self._want_reply
            and not self._replying
            and not self._speaking
            and not self._awaiting_reply
            and not self._closing
        ):
            self._want_reply = False
            self._awaiting_reply += 1
            await link.arespond()

    def _pending(self) -> bool:
        return bool(
            self._replying
            or self._awaiting_reply
            or self._want_reply
            or self._tool_runs
            or self._sending
        )

    async def _drain(self, link: RealtimeLink) -> None:
        """Once the input has ended: close when nothing is pending, or at ``drain_timeout``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._options.drain_timeout):
                while self._pending():
                    self._changed.clear()
                    await self._changed.wait()
        self._closing = True
        if self._reading_on is None:  # (else the events left are read: closed after them)
            await link.aclose()


async def _close_link(
    link: RealtimeLink, events: AsyncIterator[RealtimeEvent] | None
) -> Exception | asyncio.CancelledError | None:
    """Close ``link`` and its events (a generator left mid-way: its finally runs now).

    ``events`` is ``None`` when the link failed to give them.

    Returns:
        The first error either close raised, or the cancellation of the session's task
        (cancelled again as it closes: both closes are done whatever the first does, and
        the session's end after them, before the cancellation is raised on).
    """
    failed: Exception | asyncio.CancelledError | None = None
    closes: list[Callable[[], Awaitable[None]]] = [link.aclose]
    if isinstance(events, AsyncGenerator):
        closes.append(events.aclose)
    for close in closes:
        try:
            await close()
        except (Exception, asyncio.CancelledError) as error:
            failed = error if isinstance(error, asyncio.CancelledError) else failed or error
    return failed


def _raised_on(error: BaseException) -> bool:
    """Whether a task of the session lets ``error`` out rather than end the session with it.

    A cancellation, and a ``SystemExit`` (a tool's or an input's ``sys.exit()``) or
    ``KeyboardInterrupt``: the loop raises those on, and the program ends with them (see
    :func:`_exit_taken`); any other ends the session.
    """
    return isinstance(error, (asyncio.CancelledError, SystemExit, KeyboardInterrupt))


def _exit_taken(task: asyncio.Task[None]) -> None:
    """Take the error a task of the session ended with: none is left for asyncio to log.

    A ``SystemExit`` (a tool's ``sys.exit()``) or ``KeyboardInterrupt`` was raised on by the
    loop as the task let it out (the program ends with it), so asyncio's "Task exception
    was never retrieved" would only repeat it as the program stops; any other is lost (the
    session's tasks end the session with theirs): it is reported as such, at once.
    """
    if task.cancelled():
        return
    error = task.exception()  # (retrieved: asyncio logs it no more)
    if error is not None and not isinstance(error, (SystemExit, KeyboardInterrupt)):
        report_lost_error(error, f"The task {task.get_name()!r}")


def _heard(said: _Said, played_ms: float) -> str:
    """The words of ``said`` heard in its first ``played_ms``: those that came with its audio
    up to there (each piece of the transcript placed where the audio was when it came)."""
    return "".join(text for at, text in said.pieces if at <= played_ms)


def _handoff_target(tools: ToolSet, name: str) -> str | None:
    tool = tools[name] if name in tools else None  # noqa: SIM401 (a ToolSet has no get)
    target = getattr(tool, "handed_to", None)
    return target if isinstance(target, str) else None


def conversation_of(entries: deque[tuple[str, str, _Said | None]]) -> list[Message]:
    """The conversation as messages: what the user said or typed, what the model said."""
    messages: list[Message] = []
    for role, text, said in entries:
        shown = said.text if said is not None else text
        if not shown:
            continue
        if role == "user":
            messages.append(UserMessage(text=shown))
        else:
            messages.append(AssistantMessage(text=shown, role=role))
    return messages


def check_options(options: RealtimeOptions, alias: str) -> None:
    """Refuse options of the wrong kind before connecting.

    Raises:
        LLMConfigurationError: naming the option and the fix.
    """
    owner = f"The agent {alias}"
    if options.modality not in ("audio", "text"):
        raise refused_argument(
            options.modality,
            "modality",
            "'audio' or 'text'",
            owner=owner,
            fix='Pass e.g. modality="text" for a text reply.',
            error=LLMConfigurationError,
        )
    check_seconds(
        options.drain_timeout,
        "drain_timeout",
        zero=True,
        forever=True,
        owner=owner,
        error=LLMConfigurationError,
    )
    for name in ("model", "instructions", "voice"):
        value = getattr(options, name)
        if value is not None and not isinstance(value, str):
            raise refused_argument(
                value,
                name,
                "a str (or None: the API's default)",
                owner=owner,
                error=LLMConfigurationError,
            )
    if options.silence_ms is not None:
        check_count(options.silence_ms, "silence_ms", owner=owner, error=LLMConfigurationError)
    for name in ("transcribe_input", "vad", "interrupt"):
        check_flag(getattr(options, name), name, owner=owner, error=LLMConfigurationError)
    if options.silence_ms is not None and not options.vad:
        raise _ignored(
            "silence_ms",
            f"{owner} got silence_ms={options.silence_ms} with vad=False: silence_ms is how "
            "long a pause ends the user's turn in the API's voice detection, which vad=False "
            "turns off (each turn ends where the input ends), so it would be ignored. Drop "
            "silence_ms, or keep vad=True.",
        )
    if options.voice is not None and options.modality == "text":
        raise _ignored(
            "voice",
            f"{owner} got voice={options.voice!r} with modality='text': the model writes its "
            "replies and speaks none, so the voice would be ignored. Drop voice, or pass "
            "modality='audio'.",
        )
    if options.extra_session is not None and not isinstance(options.extra_session, Mapping):
        raise refused_argument(
            options.extra_session,
            "extra_session",
            "a mapping of the API's session settings, by their names",
            owner=owner,
            error=LLMConfigurationError,
        )
    for agent in options.handoffs or ():
        if not isinstance(agent, MiniAgent):
            raise refused_argument(
                options.handoffs,
                "handoffs",
                "MiniAgents (text agents) to hand the conversation to",
                owner=owner,
                fix=f"{agent!r} is not one: pass e.g. handoffs=[planner].",
                error=LLMConfigurationError,
            )


def _ignored(parameter: str, said: str) -> LLMConfigurationError:
    """The error of an argument that the others given would make the session ignore."""
    error = LLMConfigurationError(said)
    error.parameter = parameter
    return error
