"""The chat history contract: our histories pass it, and broken histories fail its checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from miniagents import Message, MessageTuple
from miniagents.ext.history import ChatHistory, InMemoryChatHistory
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm import AssistantMessage, UserMessage
from miniagents.testing import ChatHistoryContract, ContractViolationError

# -- ours pass it ---------------------------------------------------------------------------


class TestInMemoryChatHistory(ChatHistoryContract):
    def new_history(self) -> ChatHistory:
        return InMemoryChatHistory()


class TestChatHistoryMD(ChatHistoryContract):
    @pytest.fixture(autouse=True)
    def _file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "chat.md"

    def new_history(self) -> ChatHistory:
        return ChatHistoryMD(self.path, message_classes=self.message_classes)

    def reopen(self, history: ChatHistory) -> ChatHistory:
        return ChatHistoryMD(self.path, message_classes=self.message_classes)


# -- broken ones fail it --------------------------------------------------------------------


class ListHistory(ChatHistory):
    """A history over a list, whose ways of keeping messages the broken ones below change."""

    def __init__(self) -> None:
        self.kept: list[Message] = []

    async def load(self) -> MessageTuple:
        return MessageTuple(self.kept)

    async def append(self, message: Message) -> None:
        self.kept.append(self.check_message(message))


class Lossy(ListHistory):
    """Keeps the text and the role only, as a plain ``Message``."""

    async def append(self, message: Message) -> None:
        role = getattr(message, "role", None)
        self.kept.append(Message(text=self.check_message(message).text, role=role))


class Blind(ListHistory):
    """Keeps every message but its images (a user message with images loses them)."""

    async def append(self, message: Message) -> None:
        if isinstance(message, UserMessage) and message.images:
            message = UserMessage(text=message.text)
        self.kept.append(self.check_message(message))


class Backwards(ListHistory):
    """Loads the newest message first."""

    async def load(self) -> MessageTuple:
        return MessageTuple(reversed(self.kept))


class Trusting(ListHistory):
    """Keeps whatever it is given."""

    async def append(self, message: Message) -> None:
        self.kept.append(message)


class Racy(ListHistory):
    """Copies its list, waits (a database round trip), and writes the copy back."""

    async def append(self, message: Message) -> None:
        copy = [*self.kept, self.check_message(message)]
        await asyncio.sleep(0)
        self.kept = copy


class Haunted(ListHistory):
    """Starts with a message nobody appended."""

    def __init__(self) -> None:
        super().__init__()
        self.kept.append(Message(text="boo"))


class AppendOnlyLog(list[Message]):
    """A list of messages of a store's own: not the ``MessageTuple`` a history loads."""


class Listing(ListHistory):
    """Loads its messages as an ``AppendOnlyLog``."""

    async def load(self) -> MessageTuple:
        return AppendOnlyLog(self.kept)  # type: ignore[return-value]


class Generalizing(ListHistory):
    """Keeps a provider's message (an ``OpenAIMessage``, ...) as an ``AssistantMessage``."""

    async def append(self, message: Message) -> None:
        if isinstance(self.check_message(message), AssistantMessage):
            message = AssistantMessage(
                **message.model_dump(include=set(AssistantMessage.model_fields))
            )
        self.kept.append(message)


class Forgetful(ListHistory):
    """Keeps messages only in the object: reopened, it is empty."""


class Deadlocked(ListHistory):
    """Its appends wait for a lock that nothing releases (a bug of its own)."""

    async def append(self, message: Message) -> None:
        await asyncio.Event().wait()


class StuckLoading(ListHistory):
    """Its loads wait for a reply that never comes (a database that never answers)."""

    async def load(self) -> MessageTuple:
        await asyncio.Event().wait()
        raise AssertionError("never woken")


def contract_for(
    history: Callable[[], ChatHistory], *, forgets: bool = False, wait: float = 10.0
) -> ChatHistoryContract:
    """The contract's checks, on histories made by ``history``, each call waited ``wait``."""

    class Checks(ChatHistoryContract):
        def new_history(self) -> ChatHistory:
            return history()

        def reopen(self, kept: ChatHistory) -> ChatHistory:
            return history() if forgets else kept

    Checks.wait = wait
    return Checks()


EMPTY = "test_an_empty_history_loads_no_message"
KINDS = "test_every_kind_of_message_comes_back_equal_and_of_its_class"
INTERLEAVED = "test_appends_and_loads_interleave"
CONCURRENT = "test_concurrent_appends_each_keep_one_whole_message"
STORE = "test_store_appends_the_messages_then_loads_the_history"
REFUSE = "test_append_refuses_what_is_not_a_message"
CHANGED = r"message \d+ (changed|was a)"


@pytest.mark.parametrize(
    ("history", "forgets", "check", "says"),
    [
        (Lossy, False, KINDS, r"load\(\): message 1 changed"),
        (Blind, False, KINDS, r"load\(\): message 7 changed"),
        (Backwards, False, KINDS, CHANGED),
        (Backwards, False, INTERLEAVED, CHANGED),
        (Backwards, False, STORE, CHANGED),
        (Trusting, False, REFUSE, r"append\(\) took a str"),
        (Listing, False, EMPTY, r"load\(\) gave an AppendOnlyLog"),
        (Generalizing, False, KINDS, "10 was an OpenAIMessage, came back as an AssistantMessage"),
        (Racy, False, CONCURRENT, "20 messages appended at once, 1 loaded"),
        (Haunted, False, EMPTY, "a new history loaded"),
        (Forgetful, True, KINDS, r"load\(\) after reopen: 18 messages appended, 0 loaded"),
        (Forgetful, True, INTERLEAVED, "reopened"),
        (Forgetful, True, EMPTY, None),
    ],
)
def test_a_broken_history_fails_the_check_of_what_it_breaks(
    history: Callable[[], ChatHistory], forgets: bool, check: str, says: str | None
) -> None:
    checks = contract_for(history, forgets=forgets)
    if says is None:  # forgetting is no fault of an empty history
        getattr(checks, check)()
        return
    with pytest.raises(AssertionError, match=says):
        getattr(checks, check)()


@pytest.mark.parametrize(
    "check", [name for name in dir(ChatHistoryContract) if name.startswith("test_")]
)
def test_a_sound_history_passes_every_check(check: str) -> None:
    getattr(contract_for(ListHistory), check)()


def test_the_contract_has_the_checks_the_docs_name() -> None:
    checks = sorted(name for name in dir(ChatHistoryContract) if name.startswith("test_"))
    assert checks == [
        "test_an_empty_history_loads_no_message",
        "test_append_refuses_what_is_not_a_message",
        "test_appends_and_loads_interleave",
        "test_concurrent_appends_each_keep_one_whole_message",
        "test_every_kind_of_message_comes_back_equal_and_of_its_class",
        "test_store_appends_the_messages_then_loads_the_history",
    ]


@pytest.mark.parametrize(
    ("history", "check", "says"),
    [
        (Deadlocked, KINDS, r"append\(\) did not happen within 0\.05 seconds"),
        (Deadlocked, CONCURRENT, "the concurrent appends and loads did not happen within"),
        (Deadlocked, STORE, r"append\(\) did not happen within"),
        (StuckLoading, EMPTY, r"load\(\) did not happen within 0\.05 seconds"),
        (StuckLoading, INTERLEAVED, r"load\(\) did not happen within"),
    ],
)
def test_a_history_that_hangs_fails_the_check_naming_the_call_instead_of_hanging(
    history: Callable[[], ChatHistory], check: str, says: str
) -> None:
    """Each call of the history is waited for ``wait`` seconds at most (was: for ever, the
    test run hung on a history that deadlocked)."""
    checks = contract_for(history, wait=0.05)
    with pytest.raises(ContractViolationError, match=says):
        getattr(checks, check)()
