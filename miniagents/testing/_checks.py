"""What the contracts' checks share: a failed expectation, waits limited in real time."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable
from typing import TypeVar

from miniagents.messages.sequence import MessageSequencePromise
from miniagents.testing.errors import ContractViolationError

__all__ = ["expect", "give_up", "raised_by", "within"]

T = TypeVar("T")


def expect(condition: bool, failure: str) -> None:
    """Fail the check with ``failure`` unless ``condition`` holds (also under ``python -O``).

    Raises:
        ContractViolationError: if ``condition`` is false.
    """
    if not condition:
        raise ContractViolationError(failure)


async def within(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    """Await ``awaitable``; fail if it takes more than ``seconds`` of real time.

    The limit is kept by a thread, so it holds on a stopped virtual clock too.

    Raises:
        ContractViolationError: naming ``what``, which did not happen in time.
    """
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(task.cancel)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        return await task
    except asyncio.CancelledError:
        if expired.is_set():
            raise ContractViolationError(
                f"{what} did not happen within {seconds:g} seconds"
            ) from None
        raise
    finally:
        timer.cancel()


async def raised_by(awaitable: Awaitable[object], seconds: float, what: str) -> Exception | None:
    """What ``awaitable`` raised (``None`` if it returned), within ``seconds`` of real time.

    Raises:
        ContractViolationError: if it took longer.
    """
    try:
        await within(awaitable, seconds, what)
    except ContractViolationError:
        raise
    except Exception as error:
        return error
    return None


async def give_up(reply: MessageSequencePromise, sent: Awaitable[None]) -> None:
    """A consumer waits for ``reply``; once ``sent`` is done, it gives up (it is cancelled)."""
    waiting = asyncio.Event()

    async def consume() -> None:
        waiting.set()  # the rest of this step of the task starts the wait
        await reply.aresolve()

    consumer = asyncio.ensure_future(consume())
    try:
        await sent
        await waiting.wait()
    finally:  # (also where ``sent`` failed, or the check was cancelled: no consumer left)
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
