"""The promise of a ready message: light until used, and then a promise like any other.

``MessagePromise.of_message`` and ``of_text`` (what replying or appending a ``Message`` or a
``str`` makes) set only the message, and make the finished core of its text, its class and
its metadata when one of them is first needed. Every test below compares such a promise
with one made eagerly (``MessagePromise(prefill_message=...)``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reactivex import operators

from miniagents import InteractionContext, Message, MessagePromise, MiniAgents, miniagent
from miniagents.messages import MessageSequenceAppender, MessageTokenAppender
from miniagents.messages.message_promise import is_ready, message_listener
from miniagents.promising.lowlevel import core_of, joined_text, pieces_are


class Weather(Message):
    """A message with a typed field."""

    city: str


def _light_and_eager(message: Message) -> list[MessagePromise[Any]]:
    return [MessagePromise.of_message(message), MessagePromise(prefill_message=message)]


async def test_awaiting_gives_the_message_itself_and_keeps_the_promise_light() -> None:
    message = Message(text="hello", role="user")
    promise = MessagePromise.of_message(message)
    assert isinstance(promise, MessagePromise)
    assert await promise is message
    assert await promise.aresolve() is message
    assert promise.message_now() is message
    assert is_ready(promise)
    assert type(promise) is not MessagePromise  # (none of these made its token stream)
    assert [token async for token in promise] == ["hello"]  # (its tokens: it is made whole)
    assert type(promise) is MessagePromise
    assert promise.message_now() is message
    assert is_ready(promise)


async def test_is_ready_tells_a_complete_message_from_a_streaming_or_failed_one() -> None:
    gate = asyncio.Event()

    async def tokens() -> AsyncIterator[str]:
        yield "a"
        await gate.wait()
        yield "b"

    async def failing() -> AsyncIterator[str]:
        yield "a"
        raise ValueError("boom")

    async with MiniAgents():
        streaming = MessagePromise.from_async_iterable(tokens())
        assert not is_ready(streaming)
        gate.set()
        assert (await streaming).text == "ab"
        assert is_ready(streaming)
        failed = MessagePromise.from_async_iterable(failing())
        with pytest.raises(ValueError, match="boom"):
            await failed
        assert not is_ready(failed)  # (asked without raising its error again)


@pytest.mark.parametrize("text", ["hello", ""])
async def test_the_tokens_replay_to_every_consumer_as_for_an_eager_promise(text: str) -> None:
    for promise in _light_and_eager(Message(text=text)):
        expected = [text] if text else []
        assert [token async for token in promise] == expected
        assert [token async for token in promise] == expected  # replayed
        observed: list[str] = []
        promise.as_observable().subscribe(observed.append)
        assert observed == expected
        core = core_of(promise)
        assert core.done
        assert core.error is None
        assert pieces_are(core, str)
        assert joined_text(core) == text
        assert promise.done
        assert str(promise) == text


async def test_class_metadata_and_repr_are_those_of_an_eager_promise() -> None:
    extra: dict[str, Any] = {"source": "radio"}  # an extra field (a metadata field)
    light, eager = _light_and_eager(Weather(text="sunny", city="Oslo", **extra))
    assert light.message_class is eager.message_class is Weather
    assert dict(light.metadata) == dict(eager.metadata) == {"city": "Oslo", "source": "radio"}
    assert (
        repr(light)
        == repr(eager)
        == ("<MessagePromise complete, 1 pieces, {'city': 'Oslo', 'source': 'radio'}>")
    )
    text = MessagePromise.of_text("plain")
    assert dict(text.metadata) == {}
    assert text.message_class is Message
    assert await text == Message(text="plain")


async def test_each_field_read_first_makes_the_same_promise() -> None:
    message = Message(text="hi", turn=3)
    for field in ("done", "metadata", "message_class", "as_observable", "cancel", "start"):
        promise = MessagePromise.of_message(message)
        attribute = getattr(promise, field)
        if callable(attribute):
            attribute()
        assert [token async for token in promise] == ["hi"]
        assert await promise is message
        assert dict(promise.metadata) == {"turn": 3}


async def test_cancelling_a_ready_message_changes_nothing() -> None:
    promise = MessagePromise.of_text("kept")
    promise.cancel()
    assert [token async for token in promise] == ["kept"]
    assert (await promise).text == "kept"


async def test_the_listener_of_the_context_is_told_of_every_ready_message() -> None:
    told: list[tuple[MessagePromise[Any], Message]] = []
    token = message_listener.set(lambda promise, message: told.append((promise, message)))
    try:
        message = Message(text="a")
        light = MessagePromise.of_message(message)
        text = MessagePromise.of_text("b")
    finally:
        message_listener.reset(token)
    assert told == [(light, message), (text, Message(text="b"))]
    assert told[0][0] is light
    assert told[1][0] is text


async def test_a_subclass_of_message_promise_gets_a_promise_of_its_own_class() -> None:
    class Tagged(MessagePromise[Message]):
        """A user's subclass."""

    promise = Tagged.of_message(Message(text="x"))
    assert type(promise) is Tagged
    assert [token async for token in promise] == ["x"]
    assert type(Tagged.of_text("y")) is Tagged


async def test_ready_messages_in_a_sequence_are_replayed_whole() -> None:
    with MessageSequenceAppender() as appender:
        appender.append(Message(text="one"))
        appender.append("two")
    sequence = appender.sequence
    for _ in range(2):  # a second consumer sees the same promises, tokens and messages
        texts = []
        async for promise in sequence:
            texts.append(([token async for token in promise], (await promise).text))
        assert texts == [(["one"], "one"), (["two"], "two")]


async def test_an_observable_of_a_ready_message_is_replayed_to_late_subscribers() -> None:
    promise = MessagePromise.of_message(Message(text="late"))
    joined = promise.as_observable().pipe(operators.to_list())
    results: list[list[str]] = []
    joined.subscribe(results.append)
    assert [token async for token in promise] == ["late"]
    joined.subscribe(results.append)  # after a reader: replayed all the same
    assert results == [["late"], ["late"]]


@pytest.mark.parametrize("ready_too", [True, False])
async def test_the_hook_of_an_appender_is_told_of_single_ready_messages_as_asked(
    ready_too: bool,
) -> None:
    seen: list[str] = []
    appender = MessageSequenceAppender(
        lambda promise: seen.append(str(promise)), ready_too=ready_too
    )
    appender.append(Message(text="before adoption"))  # told: nothing is adopted yet
    producer = asyncio.ensure_future(asyncio.sleep(0))
    appender.cancel_when_abandoned(producer)
    appender.append(Message(text="adopted"))  # told only if the hook wants ready ones
    appender.append("text")
    appender.complete()
    await producer
    expected = ["before adoption", "adopted", "text"] if ready_too else ["before adoption"]
    assert seen == expected
    assert [str(message) for message in await appender.sequence] == [
        "before adoption",
        "adopted",
        "text",
    ]


async def test_ready_messages_appended_after_a_streaming_one_keep_their_order() -> None:
    seen: list[bool] = []
    appender = MessageSequenceAppender(lambda promise: seen.append(promise.done), ready_too=False)
    producer = asyncio.ensure_future(asyncio.sleep(0))
    appender.cancel_when_abandoned(producer)
    streaming = MessageTokenAppender()
    appender.append(streaming.promise)  # still streaming: adopted, the hook is told
    appender.append("a str")
    appender.append(Message(text="a message"))
    streaming.append("streamed")
    streaming.complete()
    appender.complete()
    assert [str(message) for message in await appender.sequence] == [
        "streamed",
        "a str",
        "a message",
    ]
    await producer
    assert seen == [False]  # only the streaming message (ready_too=False)


async def test_appending_a_str_makes_the_message_of_text_makes() -> None:
    with MessageSequenceAppender() as appender:
        appender.append("plain")
    (promise,) = [promise async for promise in appender.sequence]
    assert await promise == await MessagePromise.of_text("plain")
    assert type(await promise) is Message
    assert dict(promise.metadata) == {}
    assert [token async for token in promise] == ["plain"]


async def test_a_ready_messages_promise_is_named_message_promise_where_users_see_it() -> None:
    # (was: the private class's name, "_ReadyMessagePromise", in type(promise).__name__ and
    # in Python's own errors, e.g. "object of type '_ReadyMessagePromise' has no len()")
    @miniagent
    async def replier(ctx: InteractionContext) -> None:
        ctx.reply(["one", ["two", Message(text="three")]])

    async with MiniAgents():
        replied = [promise async for promise in replier.inquire()]
    for promise in [MessagePromise.of_text("plain"), *replied]:
        assert type(promise) is not MessagePromise  # (still the light one)
        assert type(promise).__name__ == "MessagePromise"
        assert type(promise).__qualname__ == "MessagePromise"
        with pytest.raises(TypeError, match=r"^object of type 'MessagePromise' has no len\(\)$"):
            len(promise)  # type: ignore[arg-type]
        with pytest.raises(
            AttributeError, match=r"^'MessagePromise' object has no attribute '_x'$"
        ):
            promise._x  # type: ignore[attr-defined]  # noqa: B018
        assert repr(promise) == "<MessagePromise complete, 1 pieces, {}>"
