"""The worker side: run an interaction (or a batch of pipeline items) in a Ray worker.

The task's body runs the agent on the worker's event loop
(:mod:`miniagents.ext.ray._worker_loop`) and, for an interaction, yields batches of reply
events as the agent produces them, through a bounded outbox::

    main thread (the Ray task):  call ---- batch ---- batch ---- (end)
    loop thread:                 agent runs, replies stream into the bounded outbox
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from miniagents.ext.ray._failures import mailbox_died_error, ray_failure
from miniagents.ext.ray._mailbox import mailbox_died
from miniagents.ext.ray._wire import (
    COMPLETE,
    END,
    FAILED,
    INPUT_END,
    INPUT_FAILED,
    INPUT_MESSAGE,
    LINK,
    LINKS_BOX,
    MESSAGE_FAILED,
    START,
    TOKENS,
    WHOLE,
    Call,
    InputEvent,
    ReplyEvent,
    decode_error,
    dumps,
    encode_error,
    loads,
)
from miniagents.ext.ray._worker_loop import CANCEL_TIMEOUT, LoopTask, run_on_loop
from miniagents.ext.ray.errors import RayAgentError
from miniagents.messages import Message, MessagePromise, MessageSequencePromise
from miniagents.messages.appender import MessageSequenceAppender, MessageTokenAppender
from miniagents.miniagents import MiniAgent, MiniAgents
from miniagents.miniagents.lowlevel import LinkEnd, adopt_carrier, start_task, with_settings
from miniagents.pipeline.errors import PipelineTimeoutError
from miniagents.promising.lowlevel import report_lost_error

__all__ = ["OUTBOX_EVENTS", "run_items", "serve_interaction"]

T = TypeVar("T")

OUTBOX_EVENTS = 256
"""How many reply events a worker holds for the driver before it reads no further into the
agent's replies."""

_SETTLE = 3
"""Turns of the worker loop a batch waits after its first event, for those ready with it."""

# -- one interaction: inputs in, reply events out ------------------------------------------

_CLOSED: Any = object()
_WAKE: Any = object()


class _Outbox:
    """The reply events waiting for the main thread, bounded: a full outbox makes senders wait.

    The messages of the call's live links (:attr:`links`) are not queued: each batch
    carries, first, what the links have for the driver then, and a link with something to
    send wakes the outbox (:meth:`wake`) for a batch to go. Once the interaction ends
    (:meth:`ending`), only the last batch takes them: what they have when it goes, their
    close's last counts included, then the agent's failure, if it failed (the driver reads
    no batch after it). A batch, these included, holds at most ``OUTBOX_EVENTS`` events.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[ReplyEvent] = asyncio.Queue(OUTBOX_EVENTS)
        self._closed = False
        self._ending = False
        self._last: ReplyEvent | None = None
        self._woken = False
        self._failures: list[tuple[BaseException, int]] = []
        self.links: list[LinkEnd] = []

    async def put(self, event: ReplyEvent) -> None:
        await self._queue.put(event)

    def error(self, error: BaseException, message: int | None = None) -> bytes | int:
        """``error`` encoded, or the index of the reply message that failed with it already.

        Given ``message`` (the index of a reply message that fails with ``error``), it is
        remembered. The driver then decodes one error where the agent had one: a consumer
        that received it from the message has received it from the replies too.
        """
        for sent, index in self._failures:
            if sent is error:
                return index
        if message is not None:
            self._failures.append((error, message))
        return encode_error(error)

    def ending(self) -> None:
        """The interaction has ended: the links, about to close, report in the last batch only."""
        self._ending = True

    async def close(self, last: ReplyEvent | None = None) -> None:
        """No event comes any more; ``last`` (the agent's failure) ends the last batch."""
        self._last = last
        await self._queue.put(_CLOSED)

    def wake(self) -> None:
        """A link has something to send: the next batch takes it (soon, if the outbox is full)."""
        if not self._woken and not self._queue.full():
            self._woken = True
            self._queue.put_nowait(_WAKE)

    async def batch(self) -> list[ReplyEvent] | None:
        """The events ready now (at least one), consecutive tokens of a message merged."""
        while not self._closed:
            event = await self._queue.get()
            for _ in range(_SETTLE):  # events ready at once (a reply and the end) go together
                await asyncio.sleep(0)
            batch = self._take(event)
            if self.links and (self._closed or not self._ending):
                # what was charged until now goes before the replies' ends
                batch[:0] = [
                    (LINK, index, dumps(message, "a message of a live link"))
                    for index, link in enumerate(self.links)
                    if (message := link.drain()) is not None
                ]
            if batch or self._closed:
                return batch or None
        return None

    def _take(self, event: ReplyEvent) -> list[ReplyEvent]:
        batch: list[ReplyEvent] = []
        while True:
            if event is _CLOSED:
                self._closed = True
                if self._last is not None:  # (after the links' messages, put first)
                    batch.append(self._last)
                return batch
            if event is _WAKE:
                self._woken = False
            elif event[0] == TOKENS:
                index, payload = event[1], event[2]
                last = batch[-1] if batch else None
                if last is not None and last[0] == TOKENS and last[1] == index:
                    last[2].append(payload)
                else:
                    batch.append((TOKENS, index, [payload]))
            else:
                batch.append(event)
            # (room for a message of each link, put first; a batch not full has room for
            # the failure that ends the last one)
            if self._queue.empty() or len(batch) >= OUTBOX_EVENTS - len(self.links):
                return batch
            event = self._queue.get_nowait()


def serve_interaction(agent: MiniAgent[...], call: Call) -> Iterator[list[ReplyEvent]]:
    """The body of a ``ray_agent`` task: run the interaction, yield batches of reply events."""
    outbox = _Outbox()
    interaction = LoopTask(_interaction(agent, call, outbox), start=False)
    try:  # ray.cancel's interrupt may land on any line from here on, even in start()
        interaction.start()
        if call.announce:
            yield []  # the caller learns that the task was scheduled
        while True:
            batch = run_on_loop(outbox.batch())
            if batch is None:
                return
            yield batch
    finally:  # if it is still running: waits for the agent's clean-up, bounded
        interaction.cancel(call.cancel_timeout, f"the agent {agent.alias}")


async def _interaction(agent: MiniAgent[...], call: Call, outbox: _Outbox) -> None:
    readers: list[asyncio.Task[None]] = []  # of the live links, of the input messages
    failure: ReplyEvent | None = None
    try:
        try:
            args, kwargs = loads(call.arguments)
            if call.carrier:
                adopt_carrier(dict(call.carrier))  # tracing continues the caller's trace
            if call.links is not None:  # e.g. the caller's budgets: they charge the calls here
                outbox.links = loads(call.links)
                for link in outbox.links:
                    link.open(outbox.wake)
                reading = _read_links(call, outbox.links, agent.alias)
                readers.append(asyncio.get_running_loop().create_task(reading))
            async with with_settings(MiniAgents(), loads(call.settings)):
                inputs = MessageSequenceAppender()
                if not _apply_inputs(inputs, call.inputs):
                    reading = _read_mailbox(call, inputs, agent.alias)
                    readers.append(asyncio.get_running_loop().create_task(reading))
                replies = agent.inquire(inputs.sequence, *args, **kwargs)
                await _send_replies(replies, outbox, agent.alias)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # the agent's error, even KeyboardInterrupt, travels
            failure = (FAILED, 0, outbox.error(error))
        # the links closed and settled before the end is said, which carries their last counts
        outbox.ending()
        await _stop_readers(readers, agent.alias)
        await outbox.close(failure)
    finally:
        await _stop_readers(readers, agent.alias)


async def _stop_readers(readers: Sequence[asyncio.Task[None]], alias: str) -> None:
    """Cancel the readers and wait for their ends (the links' close and settling).

    A reader's error (a link end's ``close`` or ``asettled`` raised) is logged, once: the
    interaction has ended, and nobody else would see it.
    """
    for task in readers:
        task.cancel()
    if readers:
        await asyncio.wait(readers)
    for task in readers:
        if not task.cancelled() and (error := task.exception()) is not None:
            report_lost_error(error, f"Closing the live links of the agent {alias}")


async def _read_links(call: Call, links: Sequence[LinkEnd], alias: str) -> None:
    """Hand the driver's link messages to the links here; close them when the box closes.

    Cancelled, it closes them too (their calls waiting to start fail). If the box fails (the
    mailbox actor died, or a message cannot be read), it closes them with a
    :class:`RayAgentError` saying so: the calls waiting on them, and those that ask them
    later, fail with it. Either way it waits
    until what their close stopped has ended (``asettled``).
    """
    import ray

    broken: BaseException | None = None
    try:
        while True:
            events: list[InputEvent] = await call.mailbox.take.remote(call.key + LINKS_BOX)
            for index, payload in events:
                if payload is None:  # the box closed: the driver is done with the links
                    return
                links[index].receive(loads(payload))
    except ray.exceptions.RayError as error:
        note = "its live links to the caller (e.g. its budgets) broke with it"
        broken = _mailbox_failure(error, alias, note, "its live links")
    except Exception as error:  # (not cancelled: the interaction runs on without the links)
        broken = RayAgentError(
            f"The live links of the agent {alias} to its caller (e.g. its budgets) broke: a "
            f"message of the caller's could not be taken ({type(error).__name__}: {error}), so "
            "the LLM calls charged through them stop. Run the same version of miniagents on "
            "the driver and on the workers."
        )
        broken.__cause__ = error
    finally:
        await close_links(links, broken)


async def close_links(links: Sequence[LinkEnd], error: BaseException | None = None) -> None:
    """Close every end of ``links`` (with ``error``: why they broke), then wait until each settled.

    An end whose ``close`` or ``asettled`` raises does not keep the others open: each is
    closed and settled all the same, and the first error is raised after.
    """
    failure: Exception | None = None
    for link in links:
        try:
            link.close(error)
        except Exception as raised:
            failure = failure or raised
    for link in links:
        try:
            await link.asettled()
        except Exception as raised:
            failure = failure or raised
    if failure is not None:
        raise failure


def _mailbox_failure(error: BaseException, alias: str, note: str, part: str) -> RayAgentError:
    """The error of a call to the mailbox that failed: it died (``note``: what then), or else."""
    what = f"the agent {alias}"
    if mailbox_died(error):
        return mailbox_died_error(what, error, note, "ray_agent")
    return ray_failure(error, f"{what} ({part})")


def _apply_inputs(inputs: MessageSequenceAppender, events: Sequence[InputEvent]) -> bool:
    """Append input events to the agent's input; whether the input has ended."""
    for tag, payload in events:
        assert payload is not None or tag == INPUT_END
        if tag == INPUT_MESSAGE:
            inputs.append(loads(payload))  # type: ignore[arg-type]
        elif tag == INPUT_END:
            inputs.complete()
            return True
        elif tag == INPUT_FAILED:
            inputs.fail(decode_error(payload))  # type: ignore[arg-type]
            return True
        else:  # one input message failed: the agent gets a message promise that fails
            failed = MessageTokenAppender()
            failed.fail(decode_error(payload))  # type: ignore[arg-type]
            inputs.append(failed.promise)
    return False


async def _read_mailbox(call: Call, inputs: MessageSequenceAppender, alias: str) -> None:
    """Take the input events the driver sends, until the input ends."""
    import ray

    try:
        while True:
            events: list[InputEvent] = await call.mailbox.take.remote(call.key)
            if _apply_inputs(inputs, events):
                return
    except ray.exceptions.RayError as error:  # e.g. the mailbox actor died
        note = "the input messages it had not received yet were lost with it"
        inputs.fail(_mailbox_failure(error, alias, note, "taking its input messages"))
    except BaseException as error:  # cancelled: the interaction ended
        inputs.fail(error)
        if isinstance(error, asyncio.CancelledError):
            raise


async def _send_replies(replies: MessageSequencePromise, outbox: _Outbox, alias: str) -> None:
    """Send every reply message: whole if complete already, else its start, tokens and end.

    Cancelled, it cancels the sending of the messages it started and waits for their end
    (no task of the worker outlives the interaction).
    """
    what = f"a reply message of the agent {alias}"
    streams: list[asyncio.Task[None]] = []
    failure: Exception | None = None
    index = 0
    try:
        try:
            async for promise in replies:
                whole = await _prefilled_message(promise)
                if whole is not None:
                    await outbox.put((WHOLE, index, dumps(whole, what)))
                else:
                    header = (promise.message_class, dict(promise.metadata))
                    await outbox.put((START, index, dumps(header, what)))
                    streams.append(start_task(_send_tokens(index, promise, outbox, what), alias))
                index += 1
        except Exception as error:
            failure = error
        if streams:
            await asyncio.wait(streams)  # every message started ends before the sequence does
    except BaseException:  # cancelled (every consumer gave up): its messages stop with it
        for stream in streams:
            stream.cancel()
        if streams:
            await asyncio.wait(streams)
        raise
    if failure is not None:
        raise failure
    await outbox.put((COMPLETE, 0, None))


async def _prefilled_message(promise: MessagePromise) -> Message | None:
    """The message, if it is complete and its one token is its text (a ready message).

    Such a message travels whole; the driver's copy has the same single token.
    """
    if not promise.done:
        return None
    try:
        message = promise.message_now()
    except Exception:  # it failed: its error travels as the message's end
        return None
    tokens = [token async for token in promise]  # complete: this does not wait
    return message if tokens == ([message.text] if message.text else []) else None


async def _send_tokens(index: int, promise: MessagePromise, outbox: _Outbox, what: str) -> None:
    try:
        async for token in promise:
            await outbox.put((TOKENS, index, token))
        metadata = dumps(dict(promise.metadata), what)
    except Exception as error:
        await outbox.put((MESSAGE_FAILED, index, outbox.error(error, index)))
    else:
        await outbox.put((END, index, metadata))


# -- pipeline items: a batch in, one result per item out -------------------------------------


def run_items(
    agents: Sequence[MiniAgent[...]],
    items: list[bytes],
    carrier: tuple[tuple[str, str], ...] = (),
    cancel_timeout: float = CANCEL_TIMEOUT,
    timeout: float | None = None,
) -> list[tuple[bool, bytes]]:
    """The body of a pipeline task: each item through the chain of agents, concurrently.

    ``carrier`` is the trace of the code that runs the pipeline: the items' interactions
    continue it (when tracing is on here). An item that takes longer than ``timeout``
    seconds is cancelled and fails with ``PipelineTimeoutError``. Cancelled
    (``ray.cancel``), the task waits at most ``cancel_timeout`` seconds for the items'
    agents to end. Returns, per item, ``(True, pickled MessageTuple)`` or
    ``(False, encoded error)``.
    """
    what = f"the items of the agent {agents[-1].alias}"
    return run_on_loop(_run_items(agents, items, carrier, timeout), cancel_timeout, what)


async def _run_items(
    agents: Sequence[MiniAgent[...]],
    items: list[bytes],
    carrier: tuple[tuple[str, str], ...],
    timeout: float | None,
) -> list[tuple[bool, bytes]]:
    if carrier:
        adopt_carrier(dict(carrier))  # in this task's own context: the items' tasks copy it
    return list(await asyncio.gather(*(_run_item(agents, item, timeout) for item in items)))


async def _run_item(
    agents: Sequence[MiniAgent[...]], data: bytes, timeout: float | None
) -> tuple[bool, bytes]:
    try:
        stage = loads(data)
        async with MiniAgents():
            for agent in agents:
                stage = agent.inquire(stage)
            deadline = asyncio.timeout(timeout)
            try:
                async with deadline:  # (None: no limit)
                    replies = await stage
            except TimeoutError:
                if not deadline.expired():  # the agents' own TimeoutError
                    raise
                raise PipelineTimeoutError(
                    f"The item took longer than the pipeline's timeout of {timeout} s, so it "
                    "was cancelled; raise timeout= if it needs more time."
                ) from None
        return True, dumps(replies, f"a reply of the agent {agents[-1].alias}")
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        return False, encode_error(error)
