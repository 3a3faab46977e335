"""The mailbox: how input messages that resolve later reach a running Ray worker.

A Ray task gets its arguments when it starts; input messages still streaming then must
follow it. They go through one small asyncio actor per driver (made at the first need,
owned by the driver, so it ends with it; made again if it dies), holding one bounded box
per interaction: the driver's ``put`` waits while the box is full, the worker's ``take``
while it is empty::

    driver:   put(m1) put(m2) ...... put(END)
    box:      [m1 m2]   (at most BOX_EVENTS)
    worker:        take -> [m1 m2]     take -> [END]

The driver's side is here too: :func:`known_inputs` (what the call itself can carry) and
:func:`send_inputs` (the rest, as it resolves).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from miniagents.ext.ray._wire import (
    INPUT_END,
    INPUT_FAILED,
    INPUT_MESSAGE,
    INPUT_MESSAGE_FAILED,
    InputEvent,
    dumps,
    encode_error,
)
from miniagents.ext.ray.errors import MessageSerializationError
from miniagents.messages import MessagePromise, MessageSequencePromise

__all__ = [
    "BOX_EVENTS",
    "Mailbox",
    "forget_mailbox",
    "known_inputs",
    "mailbox_actor",
    "mailbox_died",
    "send_inputs",
]

BOX_EVENTS = 16
"""How many input events a box holds before the driver's ``put`` waits."""

_FORGOTTEN = 10_000
"""How many closed boxes are remembered (a late ``take`` on one gets the end at once)."""


class _Box:
    __slots__ = ("closed", "queue")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[InputEvent] = asyncio.Queue(BOX_EVENTS)
        self.closed = False


class Mailbox:
    """The boxes of the interactions of one driver (a Ray actor: see :func:`mailbox_actor`)."""

    def __init__(self) -> None:
        self._boxes: dict[str, _Box] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()

    def _box(self, key: str) -> _Box:
        box = self._boxes.get(key)
        if box is None:
            box = _Box()
            if key in self._closed:  # a late call: it gets a closed box, which is not kept
                box.closed = True
            else:
                self._boxes[key] = box
        return box

    async def put(self, key: str, events: list[InputEvent]) -> bool:
        """Add events to a box, waiting for room; ``False`` if the box was closed."""
        box = self._box(key)
        for event in events:
            if box.closed:
                return False
            await box.queue.put(event)
        return not box.closed

    async def take(self, key: str) -> list[InputEvent]:
        """Take every event in a box, waiting for one if it is empty."""
        box = self._box(key)
        if box.closed:
            return [(INPUT_END, None)]  # nobody sends any more
        events = [await box.queue.get()]
        while not box.queue.empty():
            events.append(box.queue.get_nowait())
        return events

    def close(self, key: str) -> None:
        """Forget a box (its interaction ended): waiting senders return, later takes end."""
        box = self._boxes.pop(key, None)
        self._closed[key] = None
        if len(self._closed) > _FORGOTTEN:
            self._closed.popitem(last=False)
        if box is not None:
            box.closed = True
            while not box.queue.empty():  # wakes the senders waiting for room
                box.queue.get_nowait()
            box.queue.put_nowait((INPUT_END, None))  # and a taker waiting for an event

    def boxes(self) -> int:
        """How many boxes are open (for tests and diagnostics)."""
        return len(self._boxes)


_actors: dict[tuple[str, str], Any] = {}


def mailbox_actor() -> Any:
    """This driver's mailbox actor in the current Ray cluster (made at the first call).

    One that has died (see :func:`forget_mailbox`) is replaced by a new one.
    """
    import ray

    context = ray.get_runtime_context()
    session = (context.get_session_name(), context.get_job_id())
    actor = _actors.get(session)
    if actor is None:
        remote: Any = ray.remote  # Ray's overloads type these options loosely
        remote_class = remote(num_cpus=0, max_concurrency=100_000)(Mailbox)
        actor = _actors[session] = remote_class.remote()
    return actor


def mailbox_died(error: BaseException) -> bool:
    """Whether ``error`` (from a call to a mailbox actor) says the actor died.

    (A question only: the driver that made the actor forgets it with :func:`forget_mailbox`.)
    """
    import ray.exceptions as ray_errors

    unavailable = isinstance(error, ray_errors.ActorUnavailableError)  # for a moment: not dead
    return isinstance(error, ray_errors.RayActorError) and not unavailable


def forget_mailbox(actor: Any) -> None:
    """Forget a mailbox actor that died: the next :func:`mailbox_actor` makes a new one.

    Its process may have been killed (the OOM killer, a lost node), and every interaction
    would fail on it.
    """
    for session, cached in list(_actors.items()):
        if cached is actor:
            del _actors[session]


# -- the driver's side -----------------------------------------------------------------------


async def known_inputs(inputs: MessageSequencePromise, alias: str) -> tuple[list[InputEvent], bool]:
    """The input events known now, and whether they are all (the input has ended)."""
    events: list[InputEvent] = []
    if not inputs.done:
        return events, False
    what = f"an input message of the agent {alias}"
    try:
        async for promise in inputs:  # the sequence has ended: this does not wait
            if not promise.done:
                return events, False
            events.append(await _input_event(promise, what))
    except MessageSerializationError:
        raise
    except Exception as error:
        events.append((INPUT_FAILED, encode_error(error)))
    else:
        events.append((INPUT_END, None))
    return events, True


async def _input_event(promise: MessagePromise, what: str) -> InputEvent:
    try:
        message = await promise
    except Exception as error:
        return (INPUT_MESSAGE_FAILED, encode_error(error))
    return (INPUT_MESSAGE, dumps(message, what))


async def send_inputs(
    mailbox: Any, key: str, inputs: MessageSequencePromise, skip: int, alias: str
) -> None:
    """Send the input messages after the first ``skip`` as they resolve, then the end.

    Raises:
        MessageSerializationError: for an input message that cannot be pickled.
        ray.exceptions.RayError: if the mailbox actor cannot be reached.
    """
    what = f"an input message of the agent {alias}"
    final: InputEvent = (INPUT_END, None)
    index = 0
    try:
        async for promise in inputs:
            if index >= skip:
                event = await _input_event(promise, what)
                if not await mailbox.put.remote(key, [event]):
                    return  # the interaction has ended
            index += 1
    except MessageSerializationError:
        raise
    except Exception as error:  # the input sequence failed: the agent's input fails there
        final = (INPUT_FAILED, encode_error(error))
    await mailbox.put.remote(key, [final])
