"""``ChatHistoryContract``: the checks every ``ChatHistory`` must pass, for your own to run.

A chat history (:class:`~miniagents.ext.history.ChatHistory`) keeps a conversation to
replay it to a model: what it loads must be what was appended, message for message. Make
a test class of your own that extends :class:`ChatHistoryContract` and says how to make a
new, empty history of your class; pytest runs the checks on it::

    class TestMyHistory(ChatHistoryContract):
        @pytest.fixture(autouse=True)
        def _folder(self, tmp_path: Path) -> None:
            self.path = tmp_path / "chat.jsonl"

        def new_history(self) -> ChatHistory:
            return MyHistory(self.path)

        def reopen(self, history: ChatHistory) -> ChatHistory:
            return MyHistory(self.path)  # what a program started later would see

The checks (the ``test_*`` methods): an empty history loads no message; every kind of
message the library ships comes back equal and of its own class (texts with line
breaks and markdown, metadata of every JSON type, images by URL and as bytes, replies
of every provider with their usage, tool calls and results, a class of your own:
:attr:`message_classes`), in order, after the history is reopened too; appends and
loads interleave; concurrent appends each keep one whole message; ``store`` appends
then loads; ``append`` refuses what is not a message with a ``TypeError``. A check that
fails raises a :class:`~miniagents.testing.errors.ContractViolationError` (an
``AssertionError``) that says what went wrong; so does a call of the history that does not
end within :attr:`ChatHistoryContract.wait` seconds (10), rather than hang the test run.
Each check runs in a new event loop
(:meth:`ChatHistoryContract.run`), so it needs no pytest plugin.
"""

from __future__ import annotations

import asyncio
import base64
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any, ClassVar, TypeVar

from miniagents.arguments import a_class
from miniagents.ext.history.base import ChatHistory
from miniagents.ext.llm.anthropic import AnthropicMessage
from miniagents.ext.llm.messages import AssistantMessage, SystemMessage, TokenUsage, UserMessage
from miniagents.ext.llm.offline import OfflineMessage
from miniagents.ext.llm.openai import OpenAIMessage
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.messages.image import ImagePart
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple
from miniagents.testing._checks import expect, within

__all__ = ["ChatHistoryContract", "ContractNote", "every_kind_of_message"]

_CONCURRENT_APPENDS = 20

T = TypeVar("T")


class ContractNote(Message):
    """A message class of the user's own, with typed fields (for :class:`ChatHistoryContract`).

    Attributes:
        topic: What the note is about.
        priority: How much it matters.
    """

    topic: str
    priority: int = 0


_DOT = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
"""A 1x1 GIF: the bytes of an image in :func:`every_kind_of_message`."""


def every_kind_of_message() -> list[Message]:
    """One message of every kind the library ships, and of :class:`ContractNote`, in order."""
    return [
        Message(text="A plain message.", role="user"),
        Message(
            text="With metadata of every JSON type.",
            role="user",
            topic="contracts",
            count=5,
            ratio=0.5,
            flag=True,
            nothing=None,
            tags=("a", "b"),
            nested={"numbers": (1, 2), "deeper": {"key": "value"}},
        ),
        Message(role="note", kind="a message without text"),
        Message(text="", role="assistant"),
        Message(text="A message without a role."),
        Message(
            text="Line one\n\n### USER\n<!-- miniagents: {} -->\n    indented\nünïcødé ✓ 🚀\n",
            role="user",
        ),
        UserMessage(text="A user message."),
        UserMessage(
            text="With an image by URL and one as bytes.",
            images=(ImagePart(url="https://example.com/a.png", detail="low"), ImagePart(data=_DOT)),
        ),
        SystemMessage(text="Be brief."),
        AssistantMessage(
            text="An answer.",
            model="model-1",
            agent_alias="AGENT",
            finish_reason="stop",
            usage=TokenUsage(input_tokens=3, output_tokens=2),
        ),
        OpenAIMessage(text="From OpenAI.", model="gpt-4o-mini", finish_reason="length"),
        AnthropicMessage(text="From Anthropic.", model="claude", finish_reason="end_turn"),
        OfflineMessage(text="From the offline model.", model="offline"),
        ToolCallMessage(tool_name="add", arguments={"a": 2, "b": 3}, call_id="call_1"),
        ToolCallMessage(text='{"a": ', tool_name="add", call_id="call_2"),
        ToolResultMessage(text="5", tool_name="add", call_id="call_1"),
        ToolResultMessage(
            text="Invalid arguments.", tool_name="add", call_id="call_2", is_error=True
        ),
        ContractNote(text="A note of your own class.", topic="tests", priority=2),
    ]


class ChatHistoryContract(ABC):
    """The checks of a ``ChatHistory`` class: extend it in a test class (see the module).

    Attributes:
        message_classes: The message classes of the checks that are not the library's
            (:class:`ContractNote`): a history that records classes by name must know
            them, e.g. ``ChatHistoryMD(path, message_classes=self.message_classes)``.
        wait: The most seconds (real time) a check waits for one call of the history
            (an ``append``, a ``load``, a ``store``, or the concurrent appends together):
            longer, and it fails, naming the call, instead of hanging.
    """

    message_classes: ClassVar[tuple[type[Message], ...]] = (ContractNote,)
    wait: ClassVar[float] = 10.0

    @abstractmethod
    def new_history(self) -> ChatHistory:
        """A new, empty history of the class under test (made in the check's event loop)."""

    def reopen(self, history: ChatHistory) -> ChatHistory:
        """``history`` as a program started later would open it (the same object by default).

        A history kept outside the program (a file, a database) returns a new object on
        the same storage, so that the checks see what was stored, not what was remembered.
        """
        return history

    def messages(self) -> Sequence[Message]:
        """The messages the round trips use: :func:`every_kind_of_message` by default."""
        return every_kind_of_message()

    def run(self, check: Coroutine[Any, Any, None]) -> None:
        """Run one check to its end: in a new event loop by default (``asyncio.run``)."""
        asyncio.run(check)

    # -- the checks ------------------------------------------------------------------------

    def test_an_empty_history_loads_no_message(self) -> None:
        """A new history loads an empty ``MessageTuple``, before and after reopening."""

        async def check() -> None:
            history = self.new_history()
            for loaded in (await self._load(history), await self._load(self.reopen(history))):
                expect(isinstance(loaded, MessageTuple), f"load() gave {a_class(type(loaded))}")
                expect(len(loaded) == 0, f"a new history loaded {list(loaded)!r}")

        self.run(check())

    def test_every_kind_of_message_comes_back_equal_and_of_its_class(self) -> None:
        """Each message comes back equal to the one appended, of its class, in order."""

        async def check() -> None:
            history = self.new_history()
            sent = list(self.messages())
            for message in sent:
                await self._within(history.append(message), "append()")
            _expect_same(sent, await self._load(history), "load()")
            _expect_same(sent, await self._load(self.reopen(history)), "load() after reopen")

        self.run(check())

    def test_appends_and_loads_interleave(self) -> None:
        """Each load gives every message appended before it; a reopened history goes on."""

        async def check() -> None:
            history = self.new_history()
            sent: list[Message] = []
            for number in range(3):
                message = UserMessage(text=f"Message {number}.")
                await self._within(history.append(message), "append()")
                sent.append(message)
                _expect_same(sent, await self._load(history), f"load() after {number + 1} appends")
            reopened = self.reopen(history)
            last = AssistantMessage(text="Appended after reopening.", model="m")
            await self._within(reopened.append(last), "append() of the reopened history")
            loaded = await self._load(reopened)
            _expect_same([*sent, last], loaded, "load() of the reopened history")
            _expect_same([*sent, last], await self._load(self.reopen(reopened)), "reopened")

        self.run(check())

    def test_concurrent_appends_each_keep_one_whole_message(self) -> None:
        """Appends at once (and loads among them) lose, tear and repeat no message."""

        async def check() -> None:
            history = self.new_history()
            sent = [
                Message(text=f"Concurrent message {n}.\nIts second line.", role="user", n=n)
                for n in range(_CONCURRENT_APPENDS)
            ]
            calls = [history.append(message) for message in sent]
            loads = [history.load() for _ in range(3)]
            together = asyncio.gather(*calls[:10], *loads, *calls[10:])
            results = await self._within(together, "the concurrent appends and loads")
            snapshots = [found for found in results[10:13] if isinstance(found, MessageTuple)]
            expect(len(snapshots) == 3, f"load() gave {results[10:13]!r}")
            for snapshot in snapshots:
                _expect_some_of(sent, snapshot)
            for loaded in (await self._load(history), await self._load(self.reopen(history))):
                _expect_some_of(sent, loaded)
                expect(
                    len(loaded) == len(sent),
                    f"{len(sent)} messages appended at once, {len(loaded)} loaded: "
                    f"{[message.text for message in loaded]!r}",
                )

        self.run(check())

    def test_store_appends_the_messages_then_loads_the_history(self) -> None:
        """``store(messages)`` appends them in order and returns the whole history."""

        async def check() -> None:
            history = self.new_history()
            first = SystemMessage(text="Be brief.")
            await self._within(history.append(first), "append()")
            more = [UserMessage(text="Hi."), AssistantMessage(text="Hello.", model="m")]
            stored = await self._within(history.store(more), "store()")
            _expect_same([first, *more], stored, "store()")
            _expect_same([first, *more], await self._load(self.reopen(history)), "reopened")

        self.run(check())

    def test_append_refuses_what_is_not_a_message(self) -> None:
        """``append`` of a ``str`` raises a ``TypeError`` and keeps nothing."""

        async def check() -> None:
            history = self.new_history()
            refused: object = "just a string"
            try:
                await self._within(history.append(refused), "append() of a str")  # type: ignore[arg-type]
            except TypeError:
                took = False
            else:
                took = True
            expect(
                not took,
                "append() took a str: it must raise a TypeError for what is not a Message "
                "(ChatHistory.check_message(message) does it)",
            )
            expect(len(await self._load(history)) == 0, "the refused value was kept")

        self.run(check())

    # -- helpers ---------------------------------------------------------------------------

    async def _within(self, awaitable: Awaitable[T], what: str) -> T:
        return await within(awaitable, self.wait, what)

    async def _load(self, history: ChatHistory) -> MessageTuple:
        return await self._within(history.load(), "load()")


def _expect_same(sent: Sequence[Message], loaded: Sequence[Message], where: str) -> None:
    """``loaded`` holds the messages ``sent``, each equal and of its class, in order."""
    expect(
        len(loaded) == len(sent),
        f"{where}: {len(sent)} messages appended, {len(loaded)} loaded: {list(loaded)!r}",
    )
    for number, (original, back) in enumerate(zip(sent, loaded, strict=True)):
        expect(
            type(back) is type(original),
            f"{where}: message {number} was {a_class(type(original))}, came back as "
            f"{a_class(type(back))}: {back!r}",
        )
        expect(
            back == original,
            f"{where}: message {number} changed:\n  appended {original!r}\n  loaded   {back!r}",
        )


def _expect_some_of(sent: Sequence[Message], loaded: Sequence[Message]) -> None:
    """Each loaded message is one of ``sent``, whole, once."""
    keys = [message.hash_key for message in loaded]
    expect(len(set(keys)) == len(keys), f"a message was kept twice: {list(loaded)!r}")
    known = {message.hash_key for message in sent}
    for message in loaded:
        expect(message.hash_key in known, f"a message came back changed: {message!r}")
