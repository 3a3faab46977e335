"""Messages in order (``as_message_observable``): waiting for an end costs nothing per token."""

from __future__ import annotations

import sys
from types import FrameType

from miniagents import Message
from miniagents.messages import MessageSequencePromise
from miniagents.messages.appender import MessageTokenAppender
from miniagents.promising.lowlevel import core_of


def _python_calls(append: MessageTokenAppender[Message], tokens: list[str]) -> int:
    """Python function calls made while ``tokens`` are appended (``sys.setprofile``)."""
    calls = 0

    def profile(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(profile)
    try:
        for token in tokens:
            append.append(token)
    finally:
        sys.setprofile(None)
    return calls


async def test_the_resolver_waits_for_the_end_without_seeing_each_token() -> None:
    tokens = [f"t{i} " for i in range(500)]
    alone = MessageTokenAppender()  # no consumer at all: what appending costs by itself
    alone_before = _python_calls(alone, tokens)
    alone_after = _python_calls(alone, tokens)

    appender = MessageTokenAppender()
    got: list[Message] = []
    ended: list[bool] = []
    before = _python_calls(appender, tokens)  # recorded before anyone waits: not replayed
    subscription = (
        MessageSequencePromise(appender.promise)
        .as_message_observable()
        .subscribe(on_next=got.append, on_completed=lambda: ended.append(True))
    )
    core = core_of(appender.promise)
    assert core.observers == ()  # nothing is called per token...
    assert core.consumed()  # ...yet the waiting resolver counts as a consumer
    after = _python_calls(appender, tokens)  # live tokens: the same calls as with nobody
    assert (before, after) == (alone_before, alone_after)
    assert (got, ended) == ([], [])

    appender.complete()
    assert got == [Message(text="".join(tokens * 2))]
    assert ended == [True]
    assert not core.consumed()
    subscription.dispose()


async def test_the_resolver_gets_the_error_that_ends_a_message() -> None:
    appender = MessageTokenAppender()
    appender.append("partial")
    errors: list[Exception] = []
    MessageSequencePromise(appender.promise).as_message_observable().subscribe(
        on_error=errors.append
    )
    failure = ValueError("the tokens broke")
    appender.fail(failure)
    assert errors == [failure]
    assert not core_of(appender.promise).error_lost  # received: it is not logged as lost


async def test_disposing_while_waiting_stops_consuming_the_message() -> None:
    appender = MessageTokenAppender()
    appender.append("partial")
    got: list[Message] = []
    subscription = (
        MessageSequencePromise(appender.promise).as_message_observable().subscribe(got.append)
    )
    core = core_of(appender.promise)
    assert core.consumed()
    subscription.dispose()
    assert not core.consumed()
    appender.complete()
    assert got == []


async def test_a_message_complete_already_is_emitted_at_once() -> None:
    ready = MessageTokenAppender()
    ready.append("done")
    ready.complete()
    streaming = MessageTokenAppender()
    got: list[str] = []
    MessageSequencePromise([ready.promise, streaming.promise]).as_message_observable().subscribe(
        lambda message: got.append(str(message))
    )
    assert got == ["done"]
    streaming.append("later")
    assert got == ["done"]
    streaming.complete()
    assert got == ["done", "later"]
