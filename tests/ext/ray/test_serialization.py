"""Messages cross the process boundary as data: custom classes faithfully, clear errors."""

from __future__ import annotations

import asyncio
import threading

import pytest

from miniagents import Frozen, Message, MiniAgents
from miniagents.errors import MessageSerializationError, RemoteError
from miniagents.ext.ray import ray_agent
from miniagents.ext.ray._wire import decode_error, dumps, encode_error, loads
from tests.ext.ray.remote import PickyError, PlotMessage, Point, echo_agent, unpicklable_reply_agent

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]


class Tag(Frozen):
    name: str


async def test_custom_message_classes_make_the_round_trip_to_a_worker_as_themselves() -> None:
    sent = [
        PlotMessage(text="a plot", title="t", points=(Point(x=1, y=2), Point(x=3, y=4))),
        Message(text="extra fields", tags={"b": [1, 2]}, tag=Tag(name="local class")),
        Message(text=None, nested=Message(text="inside")),
    ]
    remote = ray_agent(echo_agent, num_cpus=0.5)
    async with MiniAgents():
        received = await remote.inquire(sent)
    assert received == tuple(sent)
    for before, after in zip(sent, received, strict=True):
        assert type(after) is type(before)
        assert after.hash_key == before.hash_key
    assert isinstance(received[1].tag, Tag)  # type: ignore[attr-defined]


async def test_an_input_that_cannot_be_pickled_fails_with_an_error_naming_its_field() -> None:
    remote = ray_agent(echo_agent, num_cpus=0.5)
    locked = Message(text="x", meta={"lock": threading.Lock()})
    async with MiniAgents():
        with pytest.raises(MessageSerializationError) as raised:
            await remote.inquire(["fine", locked])
    text = str(raised.value)
    assert text.startswith(
        "The field \"meta['lock']\" of an input message of the agent ECHO_AGENT (Message) "
        "cannot be sent to or from a Ray worker: it holds a lock"
    )
    assert "send an identifier instead" in text
    assert isinstance(raised.value, TypeError)


async def test_an_input_that_resolves_later_and_cannot_be_pickled_fails_the_same_way() -> None:
    remote = ray_agent(echo_agent, num_cpus=0.5)

    async def later() -> Message:
        await asyncio.sleep(0)
        return Message(text="x", meta={"lock": threading.Lock()})

    async with MiniAgents():
        call = remote.initiate_inquiry()
        call.send_message("fine").send_message(await later())
        with pytest.raises(MessageSerializationError, match=r"^The field \"meta\['lock'\]\""):
            await call.reply_sequence()


async def test_a_reply_that_cannot_be_pickled_fails_with_an_error_naming_its_field() -> None:
    remote = ray_agent(unpicklable_reply_agent, num_cpus=0.5)
    async with MiniAgents():
        with pytest.raises(MessageSerializationError, match=r"^The field 'handle' of a reply mess"):
            await remote.inquire()


async def test_an_argument_that_cannot_be_pickled_fails_with_an_error_naming_it() -> None:
    remote = ray_agent(echo_agent, num_cpus=0.5)
    async with MiniAgents():
        with pytest.raises(MessageSerializationError, match=r"^The argument 'prefix' of the agent"):
            await remote.inquire("x", prefix=threading.Lock())  # type: ignore[arg-type]


def test_an_error_travels_with_its_type_message_and_remote_traceback() -> None:
    try:
        raise PickyError("a step", "of a reason")
    except PickyError as error:
        picky = error
    arrived = decode_error(encode_error(picky))
    assert isinstance(arrived, RemoteError)  # its constructor takes two arguments
    assert str(arrived).startswith("PickyError: a step failed because of a reason (raised in")
    try:
        raise KeyError("missing")
    except KeyError as error:
        key_error = error
    arrived = decode_error(encode_error(key_error))
    assert type(arrived) is KeyError
    assert arrived.args == ("missing",)
    assert 'raise KeyError("missing")' in str(arrived.__cause__)


def test_frozen_values_pickle_as_themselves() -> None:
    message = PlotMessage.model_validate(
        {"text": "t", "title": "x", "points": (Point(x=1, y=1),), "extra": {"a": (1, 2)}}
    )
    assert loads(dumps(message, "a message")) == message
