"""``RealtimeLinkContract``: the checks every ``RealtimeLink`` must pass, for your own to run.

A realtime provider's link (:class:`~miniagents.ext.realtime.provider.RealtimeLink`) speaks
its API's wire in the session's neutral terms; the session does the rest, and counts on
what the checks hold a link to: its close works while nobody reads its events (a session
cancelled stops reading first), and ends them; a reply's events come between its
``ReplyStarted`` and its ``ReplyEnded``; a tool call comes inside its reply, its arguments
a JSON object; a call the API withdraws (the user cut its reply short) is told with
``ToolCancelled`` of its id; the input's end with no audio sent finds no turn; a cut of a
reply's audio (``atruncate``) is confirmed with ``AudioCut``; the API's fatal error is told
(a fatal ``ServerFailed``, or the events' error, with its message). The link opens within
:attr:`RealtimeLinkContract.open_wait` seconds.

Make a test class that extends :class:`RealtimeLinkContract` and opens your link to your
API (a fake server, say), scripted in four hooks::

    class TestMyLink(RealtimeLinkContract):
        async def aconnect(self, setup: SessionSetup) -> RealtimeLink:
            return await MyRealtimeProvider().aconnect(setup, MyOptions(...))

        def script_reply(self, text: str) -> None:
            ...  # the next reply says text

        def script_call(self, name: str, arguments: Mapping[str, object], held: bool) -> None:
            ...  # the next reply calls the tool (held: then waits until cut short)

        async def acut_short(self, link: RealtimeLink) -> None:
            ...  # the user speaks over the reply under way (audio sent on link)

        def script_failure(self, message: str) -> None:
            ...  # instead of its next reply, the API fails with message

Each check runs in a new event loop (:meth:`RealtimeLinkContract.run`); a failed check
raises a :class:`~miniagents.testing.errors.ContractViolationError` that says what went
wrong.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, ClassVar

from miniagents.ext.realtime.provider import (
    AudioCut,
    AudioOut,
    RealtimeEvent,
    RealtimeLink,
    ReplyEnded,
    ReplyStarted,
    ServerFailed,
    SessionSetup,
    TextOut,
    ToolCalled,
    ToolCancelled,
)
from miniagents.ext.tools.tool_set import ToolSet
from miniagents.testing._checks import expect, within
from miniagents.testing.errors import ContractViolationError

__all__ = ["CONTRACT_CALL", "CONTRACT_FAILURE", "CONTRACT_WORDS", "RealtimeLinkContract"]

CONTRACT_WORDS = "Streams are replayable."
"""What the checks script a reply to say."""

CONTRACT_CALL = ("lookup", {"city": "Oslo"})
"""The tool call the checks script (the tool's name, its arguments)."""

CONTRACT_FAILURE = "The contract's scripted failure."
"""The message of the API's fatal error the checks script."""


def lookup(city: str) -> str:
    """Looks the weather up in a city."""
    return f"Sunny in {city}."


class RealtimeLinkContract(ABC):
    """The checks of a realtime link: extend it in a test class (see the module).

    Implement its hooks: ``aconnect``, ``script_reply``, ``script_call``, ``acut_short``,
    ``script_failure`` and, if you need it, ``run``.

    Attributes:
        model: The model of the session the checks open.
        wait: The most seconds (real time) a check waits for what should come: longer,
            and it fails instead of hanging.
        open_wait: The most seconds (real time) a check waits for the link to open (longer
            than ``wait``: a first opening imports the SDK).
    """

    model: ClassVar[str] = "contract-model"
    wait: ClassVar[float] = 10.0
    open_wait: ClassVar[float] = 60.0

    # -- the hooks -------------------------------------------------------------------------

    @abstractmethod
    async def aconnect(self, setup: SessionSetup) -> RealtimeLink:
        """Open your link for ``setup`` (its model :attr:`model`, the tool ``lookup``)."""

    @abstractmethod
    def script_reply(self, text: str) -> None:
        """Script your API: its next reply says ``text`` (in one piece or several)."""

    @abstractmethod
    def script_call(self, name: str, arguments: Mapping[str, object], held: bool) -> None:
        """Script your API: its next reply calls ``name`` with ``arguments``.

        ``held``: the reply, its call made, then waits until :meth:`acut_short` cuts it
        short (so the API withdraws the call); else it ends.
        """

    @abstractmethod
    async def acut_short(self, link: RealtimeLink) -> None:
        """Make your API cut the reply under way short (the user speaks over it, say)."""

    @abstractmethod
    def script_failure(self, message: str) -> None:
        """Script your API: instead of its next reply, it fails with the fatal error ``message``."""

    def run(self, check: Coroutine[Any, Any, None]) -> None:
        """Run one check (by default in a new event loop, ``asyncio.run``)."""
        asyncio.run(check)

    # -- the checks ------------------------------------------------------------------------

    def test_the_close_works_with_nobody_reading_the_events(self) -> None:
        """A reply under way and its events unread, the close returns (twice) and ends them."""

        async def check() -> None:
            link = await self._connect()
            self.script_reply(CONTRACT_WORDS * 40)  # (many of the API's messages left unread)
            await self._ask(link)
            await within(link.aclose(), self.wait, "the close, with nobody reading the events")
            await within(link.aclose(), self.wait, "a second close (which does nothing)")
            await within(self._to_end(link.events()), self.wait, "the events' end once closed")

        self.run(check())

    def test_a_replys_events_come_between_its_start_and_end(self) -> None:
        """``ReplyStarted`` first, its words, then ``ReplyEnded`` ``completed``."""

        async def check(link: RealtimeLink) -> None:
            self.script_reply(CONTRACT_WORDS)
            await self._ask(link)
            reply = await self._reply(link.events())
            expect(
                isinstance(reply[-1], ReplyEnded) and reply[-1].status == "completed",
                f"the reply ended {reply[-1]!r}, not completed",
            )
            said = "".join(each.text for each in reply if isinstance(each, TextOut))
            expect(
                said.strip() == CONTRACT_WORDS,
                f"the reply's words (its TextOut) are {said!r}, not {CONTRACT_WORDS!r}",
            )

        self._run_opened(check)

    def test_a_tool_call_comes_inside_its_reply(self) -> None:
        """A ``ToolCalled`` comes after its reply's ``ReplyStarted``, its arguments JSON."""

        async def check(link: RealtimeLink) -> None:
            name, arguments = CONTRACT_CALL
            self.script_call(name, arguments, held=False)
            await self._ask(link)
            call = (await self._reply(link.events(), until=ToolCalled))[-1]
            assert isinstance(call, ToolCalled)
            expect(
                call.name == name and _json(call.arguments) == arguments,
                f"the call is {call!r}, not of {name!r} with the arguments {arguments}",
            )

        self._run_opened(check)

    def test_a_withdrawn_call_is_told(self) -> None:
        """A call of a reply cut short is withdrawn: ``ToolCancelled`` of its id follows."""

        async def check(link: RealtimeLink) -> None:
            name, arguments = CONTRACT_CALL
            self.script_call(name, arguments, held=True)
            await self._ask(link)
            events = link.events()
            call = (await self._reply(events, until=ToolCalled))[-1]
            assert isinstance(call, ToolCalled)
            await self.acut_short(link)
            told = await within(
                self._next(events, ToolCancelled), self.wait, "the call's withdrawal"
            )
            expect(
                told.call_id == call.call_id,
                f"the API withdrew {told.call_id!r}, not the call made, {call.call_id!r}",
            )

        self._run_opened(check)

    def test_the_input_ends_with_no_turn_when_no_audio_was_sent(self) -> None:
        """``aend_input`` with no audio sent returns ``"no_turn"``, in time.

        The events are read meanwhile, as the session reads them: the API's answer to the
        input's end may be among them.
        """

        async def check(link: RealtimeLink) -> None:
            reading = asyncio.ensure_future(self._to_end(link.events()))
            try:
                ended = await within(link.aend_input(), self.wait, "the input's end (aend_input)")
            finally:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
            expect(
                ended == "no_turn",
                f"aend_input returned {ended!r} with no audio sent, not 'no_turn'",
            )

        self._run_opened(check)

    def test_a_cut_of_a_replys_audio_is_confirmed(self) -> None:
        """``atruncate`` of a reply's item is confirmed by ``AudioCut`` of that item and place."""

        async def check(link: RealtimeLink) -> None:
            self.script_reply(CONTRACT_WORDS)
            await self._ask(link)
            events = link.events()
            reply = await self._reply(events)
            said = [each.item_id for each in reply if isinstance(each, AudioOut) and each.item_id]
            expect(
                bool(said), "the reply said no audio (AudioOut of an item), for a session of audio"
            )
            await within(link.atruncate(said[0], 0), self.wait, "the cut (atruncate)")
            cut = await within(self._next(events, AudioCut), self.wait, "the cut's AudioCut")
            expect(
                (cut.item_id, cut.played_ms) == (said[0], 0),
                f"the cut was confirmed as {cut!r}, not of {said[0]!r} at 0 ms",
            )

        self._run_opened(check)

    def test_the_apis_error_ends_the_events_with_it(self) -> None:
        """The API's fatal error is told: a fatal ``ServerFailed``, or the events' error."""

        async def check(link: RealtimeLink) -> None:
            self.script_failure(CONTRACT_FAILURE)
            await self._ask(link)
            try:
                told = await within(
                    self._next(link.events(), ServerFailed, fatal=True),
                    self.wait,
                    "the API's error (a fatal ServerFailed, or the events' error)",
                )
            except ContractViolationError:
                raise
            except Exception as error:  # (the events ended with an error: the API's?)
                told = error
            said = told.message if isinstance(told, ServerFailed) else str(told)
            expect(
                CONTRACT_FAILURE in said,
                f"the API's error was told as {told!r:.300}, without its message "
                f"{CONTRACT_FAILURE!r}",
            )

        self._run_opened(check)

    def test_the_close_ends_the_events_being_read(self) -> None:
        """A reader of the events sees them end (no error) once the link is closed."""

        async def check() -> None:
            link = await self._connect()
            reading = asyncio.ensure_future(self._to_end(link.events()))
            await asyncio.sleep(0)  # (the reader waits on the events)
            await within(link.aclose(), self.wait, "the close, with a reader of the events")
            await within(reading, self.wait, "the events' end, for their reader, once closed")

        self.run(check())

    # -- what the checks share -----------------------------------------------------------

    async def _connect(self) -> RealtimeLink:
        setup = SessionSetup(model=self.model, tools=tuple(ToolSet([lookup])))
        return await within(self.aconnect(setup), self.open_wait, "the link's opening")

    def _run_opened(self, check: Callable[[RealtimeLink], Awaitable[None]]) -> None:
        """Run ``check`` of a link opened for it, closed after it."""

        async def opened() -> None:
            link = await self._connect()
            try:
                await check(link)
            finally:
                await link.aclose()

        self.run(opened())

    async def _ask(self, link: RealtimeLink) -> None:
        """A user's turn of text, and the ask for a reply, as the session sends them."""
        await within(link.asend_text("Hello."), self.wait, "the sending of a text turn")
        await within(link.arespond(), self.wait, "the ask for a reply")

    async def _reply(
        self, events: AsyncIterator[RealtimeEvent], until: type[RealtimeEvent] = ReplyEnded
    ) -> list[RealtimeEvent]:
        """A reply's events from its ``ReplyStarted`` to the first ``until``, checked in order.

        Raises:
            ContractViolationError: for a piece of a reply, or a call, before it started,
                or a second ``ReplyStarted`` before its end.
        """
        reply: list[RealtimeEvent] = []
        while True:
            event = await within(anext(events), self.wait, f"the reply's {until.__name__}")
            if isinstance(event, ReplyStarted):
                expect(not reply, f"a second ReplyStarted came before the end of {reply[:1]}")
            elif isinstance(event, (AudioOut, TextOut, ToolCalled, ReplyEnded)):
                expect(
                    bool(reply),
                    f"{event!r:.200} came before its reply's ReplyStarted: a reply's events "
                    "come between its ReplyStarted and its ReplyEnded (the session refuses a "
                    "call outside any reply)",
                )
            else:
                continue  # (the user's words, speech, warnings: not the reply's)
            reply.append(event)
            if isinstance(event, until):
                return reply
            expect(
                not isinstance(event, ReplyEnded), f"the reply ended before its {until.__name__}"
            )

    @staticmethod
    async def _next(events: AsyncIterator[RealtimeEvent], kind: type[Any], **fields: Any) -> Any:
        """The next event of ``kind`` (with ``fields``: of those values).

        Raises:
            ContractViolationError: the events ended before one.
        """
        async for event in events:
            if isinstance(event, kind) and all(
                getattr(event, name) == value for name, value in fields.items()
            ):
                return event
        raise ContractViolationError(f"the events ended before a {kind.__name__}")

    @staticmethod
    async def _to_end(events: AsyncIterator[RealtimeEvent]) -> None:
        async for _event in events:
            pass


def _json(arguments: str) -> object:
    """The call's arguments as JSON (``None``: not JSON)."""
    try:
        return json.loads(arguments)
    except ValueError:
        return None
