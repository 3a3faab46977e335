"""Live links (``miniagents.miniagents.lowlevel``): openers, and what a call notes while pickled."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Sequence

import pytest

from miniagents.miniagents import _links
from miniagents.miniagents.lowlevel import (
    CallerEnd,
    LinkEnd,
    add_link_opener,
    note_sent,
    outgoing_links,
    sending,
)


class Account:
    """State that must stay live: it notes itself when pickled for another process."""

    def __reduce__(self) -> tuple[type[Account], tuple[()]]:
        note_sent(self)
        return (Account, ())


class Home:
    """A caller end that records what it was told (a ``CallerEnd``)."""

    def __init__(self, sent: Sequence[object]) -> None:
        self.sent = list(sent)
        self.received: list[object] = []

    def away(self) -> LinkEnd:
        return self

    def open(self, wake: Callable[[], None]) -> None:
        wake()

    def drain(self) -> object | None:
        return None

    def receive(self, message: object) -> None:
        self.received.append(message)

    def close(self, error: BaseException | None = None) -> None:
        pass

    async def asettled(self) -> None:
        pass


@pytest.fixture
def openers() -> Iterator[list[object]]:
    """The registered openers, restored after the test."""
    saved = list(_links._OPENERS)
    yield []
    _links._OPENERS[:] = saved


def test_no_opener_with_anything_to_keep_gives_no_link(openers: list[object]) -> None:
    add_link_opener(lambda sent: None)
    assert outgoing_links() == []


def test_an_opener_added_twice_opens_once_and_sees_what_the_call_noted(
    openers: list[object],
) -> None:
    def opener(sent: Sequence[object]) -> CallerEnd | None:
        return Home(sent) if any(isinstance(value, Account) for value in sent) else None

    add_link_opener(opener)
    add_link_opener(opener)
    account = Account()
    with sending() as sent:
        data = pickle.dumps({"budget": account, "text": "x"})
    assert sent == [account]
    [link] = outgoing_links(sent)
    assert isinstance(link, Home)
    assert link.sent == [account]
    assert outgoing_links() == []  # nothing noted: nothing to keep
    pickle.loads(data)


def test_outside_a_sending_block_nothing_is_noted() -> None:
    pickle.dumps(Account())  # no error, no record
    with sending() as sent:
        pass
    assert sent == []
