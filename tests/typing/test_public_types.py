"""Static typing tests for the public API of MiniAgents.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` checks ``tests``). ``assert_type`` pins the exact inferred types, and each
line that must be rejected carries a precise ``# type: ignore[code]``; since
``warn_unused_ignores`` is on, such a line that stopped failing fails mypy too.
:func:`test_public_types_pass_mypy` runs mypy on this file so that a regression in the
public types also fails the test suite.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Mapping
from typing import Literal, assert_type

import reactivex
from pydantic import BaseModel
from reactivex import Observable

from miniagents import (
    Frozen,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MessageTuple,
    MessageType,
    Promise,
    StreamedPromise,
)
from miniagents.messages.sequence import MessageObservable
from miniagents.promising import AWAIT, CLEAR, DEFAULT, NO_VALUE, Sentinel
from miniagents.promising.limits import (
    DEFAULT_HIGH_WATER_MARK,
    DEFAULT_REPLAY_WINDOW,
    Overflow,
    StreamLimits,
    stream_limits,
)
from miniagents.promising.streamed_promise import StreamIterator
from tests.fakes.typecheck import assert_passes_mypy


class CustomMessage(Message):
    custom_field: str


class UserModel(BaseModel):
    name: str


async def _tokens() -> AsyncIterator[str]:
    yield "Hel"
    yield "lo"


async def _ints() -> AsyncIterator[int]:
    yield 1


async def _join(pieces: tuple[int, ...]) -> str:
    return ",".join(str(piece) for piece in pieces)


async def _compute() -> int:
    return 42


# --- MessagePromise -------------------------------------------------------------------


async def check_message_promise() -> None:
    promise = MessagePromise.from_async_iterable(_tokens(), role="assistant")
    assert_type(promise, MessagePromise)
    async for token in promise:
        assert_type(token, str)
    assert_type(await promise, Message)
    assert_type(await promise.aresolve(), Message)
    assert_type(promise.as_observable(), Observable[str])
    assert_type(promise.metadata, Mapping[str, object])
    assert_type(promise.message_class, type[Message])
    assert_type(promise.done, bool)

    from_obs = MessagePromise.from_observable(reactivex.of("a", "b"))
    assert_type(from_obs, MessagePromise)
    assert_type(MessagePromise(_tokens()), MessagePromise)
    assert_type(MessagePromise(reactivex.of("a")), MessagePromise)
    assert_type(MessagePromise(prefill_message=Message(text="Hi")), MessagePromise)
    assert_type(
        MessagePromise.from_async_iterable(_tokens(), message_class=CustomMessage, x=1),
        MessagePromise[CustomMessage],
    )
    # A MessagePromise is a StreamedPromise of str tokens resolving to a Message.
    streamed: StreamedPromise[str, Message] = promise
    assert_type(await streamed, Message)


class MyMessagePromise(MessagePromise):
    pass


def check_message_promise_subclass_constructors() -> None:
    assert_type(MyMessagePromise.from_async_iterable(_tokens()), MyMessagePromise)
    assert_type(MyMessagePromise.from_observable(reactivex.of("a")), MyMessagePromise)


async def check_message_promise_errors() -> None:
    promise = MessagePromise.from_async_iterable(_tokens())
    async for token in promise:
        as_int: int = token  # type: ignore[assignment]
        assert_type(as_int, int)
    message: int = await promise  # type: ignore[assignment]
    assert_type(message, int)
    MessagePromise.from_async_iterable(_ints())  # type: ignore[arg-type]
    int_observable: Observable[int] = reactivex.of(1, 2)
    MessagePromise.from_observable(int_observable)  # type: ignore[arg-type]
    MessagePromise.from_observable(reactivex.of(1, 2))  # type: ignore[arg-type]
    MessagePromise(_ints())  # type: ignore[arg-type]


# --- MessageSequencePromise -----------------------------------------------------------


async def check_message_sequence_promise() -> None:
    seq = MessageSequencePromise(prefill_pieces=[Message(text="Hello"), Message(text="World")])
    assert_type(seq, MessageSequencePromise)
    async for message_promise in seq:
        assert_type(message_promise, MessagePromise)
        assert_type(await message_promise, Message)
    messages = await seq
    assert_type(messages, MessageTuple)
    assert_type(await messages, MessageTuple)
    assert_type(await (await seq), MessageTuple)
    assert_type(await seq.aresolve(), MessageTuple)
    assert_type(await seq.aresolve_messages(), MessageTuple)
    assert_type(await messages.aresolve_messages(), MessageTuple)
    assert_type(seq.as_observable(), Observable[MessagePromise])
    assert_type(messages[0], Message)
    assert_type(str(messages), str)
    for message in messages:
        assert_type(message, Message)
    as_tuple: tuple[Message, ...] = messages
    assert_type(as_tuple, tuple[Message, ...])

    obs: Observable[MessageType] = reactivex.of("a", Message(text="b"))
    assert_type(MessageSequencePromise.from_observable(obs), MessageSequencePromise)
    obs_str: Observable[str] = reactivex.of("a", "b")
    assert_type(MessageSequencePromise.from_observable(obs_str), MessageSequencePromise)
    obs_msg: Observable[Message] = reactivex.of(Message(text="a"))
    assert_type(MessageSequencePromise.from_observable(obs_msg), MessageSequencePromise)

    assert_type(MessageSequencePromise(), MessageSequencePromise)
    assert_type(MessageSequencePromise("Hello"), MessageSequencePromise)
    assert_type(MessageSequencePromise(["Hello", "World"]), MessageSequencePromise)
    assert_type(MessageSequencePromise(prefill_pieces="Hello"), MessageSequencePromise)
    # A MessageSequencePromise is a StreamedPromise of message promises.
    streamed: StreamedPromise[MessagePromise, MessageTuple] = seq
    assert_type(await streamed, MessageTuple)


def check_message_sequence_promise_errors() -> None:
    MessageSequencePromise(42)  # type: ignore[arg-type]
    ints: list[int] = [1, 2]
    MessageSequencePromise(ints)  # type: ignore[arg-type]
    # A list literal is checked item by item against MessageType, hence list-item.
    MessageSequencePromise([1, 2])  # type: ignore[list-item]
    MessageSequencePromise(object())  # type: ignore[arg-type]
    MessageSequencePromise(prefill_pieces=42)  # type: ignore[arg-type]
    int_observable: Observable[int] = reactivex.of(1, 2)
    MessageSequencePromise.from_observable(int_observable)  # type: ignore[arg-type]
    MessageSequencePromise.from_observable(reactivex.of(1, 2))  # type: ignore[arg-type]


async def check_message_sequence_await_errors() -> None:
    seq = MessageSequencePromise("Hello")
    wrong: Message = await seq  # type: ignore[assignment]
    assert_type(wrong, Message)


# --- StreamedPromise and Promise ------------------------------------------------------


async def check_streamed_promise() -> None:
    streamed = StreamedPromise(_ints(), resolver=_join)
    assert_type(streamed, StreamedPromise[int, str])
    async for piece in streamed:
        assert_type(piece, int)
    assert_type(await streamed, str)
    assert_type(await streamed.aresolve(), str)
    assert_type(streamed.as_observable(), Observable[int])

    from_obs = StreamedPromise(reactivex.of(1, 2), resolver=_join)
    assert_type(from_obs, StreamedPromise[int, str])
    prefilled = StreamedPromise(resolver=_join, prefill_pieces=[1, 2])
    assert_type(prefilled, StreamedPromise[int, str])


async def check_promise() -> None:
    promise = Promise(_compute)
    assert_type(promise, Promise[int])
    assert_type(await promise, int)
    assert_type(await promise.aresolve(), int)
    assert_type(promise.as_observable(), Observable[int])

    prefilled = Promise(prefill="x")
    assert_type(prefilled, Promise[str])
    assert_type(await prefilled, str)


async def check_promise_errors() -> None:
    promise: Promise[int] = Promise(_compute)
    text: str = await promise  # type: ignore[assignment]
    assert_type(text, str)
    Promise()  # type: ignore[call-overload]


# --- Stream limits, overflow, views ---------------------------------------------------


async def check_stream_limits() -> None:
    limits = stream_limits.get()
    assert_type(limits, StreamLimits)
    assert_type(limits.replay_window, int | None)
    assert_type(limits.high_water_mark, int | None)
    assert_type(limits.replaced(replay_window=None), StreamLimits)
    assert_type(StreamLimits(10, None), StreamLimits)
    assert_type(DEFAULT_REPLAY_WINDOW, int)
    assert_type(DEFAULT_HIGH_WATER_MARK, int)
    policy: Overflow = "drop_oldest"
    hot: Observable[str] = reactivex.of("a")
    assert_type(
        MessageSequencePromise.from_observable(hot, overflow=policy), MessageSequencePromise
    )
    assert_type(
        StreamedPromise(reactivex.of(1), resolver=_sum, overflow="error"), StreamedPromise[int, int]
    )
    messages = MessageSequencePromise(["a"]).as_message_observable()
    assert_type(messages, MessageObservable)
    assert_type(messages.open(), MessageSequencePromise)
    iterator = aiter(MessageSequencePromise(["a"]))
    assert_type(iterator, StreamIterator[MessagePromise])


# --- Iterators that can be closed -----------------------------------------------------


async def check_stream_iterators_close(
    replies: MessageSequencePromise[CustomMessage], message: MessagePromise
) -> None:
    """``aiter`` of a stream has ``aclose`` (docs/streams.md: ``await iterator.aclose()``)."""
    iterator = aiter(replies)
    assert_type(iterator, StreamIterator[MessagePromise[CustomMessage]])
    assert_type(await anext(iterator), MessagePromise[CustomMessage])
    assert_type(await iterator.aclose(), None)
    tokens = aiter(message)
    assert_type(tokens, StreamIterator[str])
    assert_type(await tokens.aclose(), None)
    assert_type(aiter(StreamedPromise(_ints(), resolver=_join)), StreamIterator[int])
    async with contextlib.aclosing(aiter(replies)) as closing:
        async for reply in closing:
            assert_type(reply, MessagePromise[CustomMessage])
    async with contextlib.aclosing(aiter(message)) as closing_tokens:
        async for token in closing_tokens:
            assert_type(token, str)
    # Still an AsyncIterator, of a covariant piece type.
    plain: AsyncIterator[MessagePromise[Message]] = aiter(replies)
    assert_type(plain, AsyncIterator[MessagePromise[Message]])
    wider: StreamIterator[MessagePromise] = iterator
    assert_type(wider, StreamIterator[MessagePromise])
    narrower: StreamIterator[str] = iterator  # type: ignore[assignment]
    assert_type(narrower, StreamIterator[str])


def check_stream_limits_errors() -> None:
    StreamLimits(replay_window="10")  # type: ignore[arg-type]
    MessageSequencePromise.from_observable(reactivex.of("a"), overflow="drop")  # type: ignore[arg-type]
    StreamedPromise(reactivex.of(1), resolver=_sum, overflow=None)  # type: ignore[arg-type]


async def _sum(pieces: tuple[int, ...]) -> int:
    return sum(pieces)


# --- MessageType ----------------------------------------------------------------------


def _sync_messages() -> Generator[str, None, None]:
    yield "a"


async def _async_messages() -> AsyncGenerator[Message, None]:
    yield Message(text="a")


def check_message_type() -> None:
    seq = MessageSequencePromise("x")
    message_promise = MessagePromise.from_async_iterable(_tokens())
    values: list[MessageType] = [
        "text",
        {"text": "hello", "role": "user"},
        Message(text="hello"),
        CustomMessage(text="hello", custom_field="x"),
        UserModel(name="x"),
        message_promise,
        seq,
        ValueError("boom"),
        ["a", "b"],
        ("a", Message(text="b")),
        _sync_messages(),
        _async_messages(),
        reactivex.of("a", "b"),
        reactivex.of(Message(text="a")),
        ["a", ["b", ("c", [Message(text="d"), message_promise])], seq],
        [[[["deep"]]]],
        {"a": "dict", "with": "str values"},
        (message for message in [Message(text="a"), Message(text="b")]),
    ]
    for value in values:
        assert_type(MessageSequencePromise(value), MessageSequencePromise)
        assert_type(MessageSequencePromise(prefill_pieces=value), MessageSequencePromise)
    single: MessageType = "x"
    assert_type(single, MessageType)


def check_message_type_errors() -> None:
    bad_int: MessageType = 42  # type: ignore[assignment]
    bad_obj: MessageType = object()  # type: ignore[assignment]
    bad_list: MessageType = [1, 2]  # type: ignore[list-item]
    bad_nested: MessageType = ["a", [3]]  # type: ignore[list-item]
    assert_type(bad_int, MessageType)
    assert_type(bad_obj, MessageType)
    assert_type(bad_list, MessageType)
    assert_type(bad_nested, MessageType)


# --- Sentinels ------------------------------------------------------------------------


def _narrow_await(value: int | Literal[Sentinel.AWAIT]) -> int:
    if value is AWAIT:
        assert_type(value, Literal[Sentinel.AWAIT])
        return 0
    assert_type(value, int)
    return value


def _narrow_no_value(value: str | Literal[Sentinel.NO_VALUE] = NO_VALUE) -> str:
    if value is NO_VALUE:
        return "default"
    assert_type(value, str)
    return value


def _narrow_any_sentinel(value: int | Sentinel) -> int:
    if value is AWAIT or value is CLEAR or value is DEFAULT or value is NO_VALUE:
        return 0
    assert_type(value, int)
    return value


def check_sentinels() -> None:
    assert_type(AWAIT, Literal[Sentinel.AWAIT])
    assert_type(CLEAR, Literal[Sentinel.CLEAR])
    assert_type(DEFAULT, Literal[Sentinel.DEFAULT])
    assert_type(NO_VALUE, Literal[Sentinel.NO_VALUE])
    assert_type(_narrow_await(AWAIT), int)
    assert_type(_narrow_await(1), int)
    assert_type(_narrow_no_value(), str)
    assert_type(_narrow_any_sentinel(CLEAR), int)


def check_sentinel_errors() -> None:
    _narrow_await(CLEAR)  # type: ignore[arg-type]


# --- Frozen and Message ---------------------------------------------------------------


def check_frozen_and_message() -> None:
    custom = CustomMessage(text="Hello", custom_field="x")
    assert_type(custom.custom_field, str)
    assert_type(custom.text, str | None)
    assert_type(custom.hash_key, str)
    assert_type(str(custom), str)
    assert_type(custom.model_copy(update={"text": "Bye"}), CustomMessage)
    assert_type(CustomMessage(custom_field="x"), CustomMessage)

    message = Message(text="Hello", role="user", tags=["a"])
    assert_type(message.text, str | None)
    assert_type(message.hash_key, str)
    assert_type(message.model_copy(), Message)
    assert_type(Message(), Message)

    frozen = Frozen(x=1, tags=["a", "b"])
    assert_type(frozen.hash_key, str)
    assert_type(hash(frozen), int)
    assert_type(frozen == message, bool)

    as_message: Message = custom
    as_frozen: Frozen = as_message
    as_model: BaseModel = as_frozen
    assert_type(as_model, BaseModel)


def check_frozen_errors() -> None:
    unchanged = Message(text="Hello")
    text: str = unchanged.text  # type: ignore[assignment]
    assert_type(text, str)
    as_int: int = unchanged.hash_key  # type: ignore[assignment]
    assert_type(as_int, int)

    message = Message(text="Hello")
    message.text = "x"  # type: ignore[misc]
    custom = CustomMessage(text="Hello", custom_field="x")
    custom.custom_field = "y"  # type: ignore[misc]
    custom.text = "x"  # type: ignore[misc]
    CustomMessage(text="x")  # type: ignore[call-arg]
    CustomMessage(text="x", custom_field=1)  # type: ignore[arg-type]
    Message(text=1)  # type: ignore[arg-type]
    Message("positional")  # type: ignore[call-arg]


# --- The test that pytest runs --------------------------------------------------------


def test_public_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
