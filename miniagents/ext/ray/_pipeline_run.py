"""The state of one ``ray_pipeline`` run: items read, batches on their way, results held.

:class:`PipelineRun` does no waiting of its own: it watches each batch once, as it is sent, and
hands its end (its ref and Ray's future of it) to the ``ended`` callable of the loop of
:class:`~miniagents.ext.ray.RayPipeline` (a queue's put, blocking or asyncio), which waits
on that queue and tells it what finished: no wait looks at every batch on its way. It keeps
at most ``max_in_flight`` items between reading them and handing out their results::

    read:      i0 i1 i2 i3 | i4 (waits for room)
    sent:      [i0 i1] [i2 i3]        (batch_size = 2, max_in_flight = 4)
    finished:        r2 r3            (held until r0 and r1, with ordered=True)
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic

from typing_extensions import TypeVar

from miniagents.ext.ray._cancel import InThread, cancel_running
from miniagents.ext.ray._failures import ray_failure, worker_died, worker_died_error
from miniagents.ext.ray._wire import decode_error, dumps, loads
from miniagents.ext.ray._worker_loop import CANCEL_TIMEOUT
from miniagents.ext.ray.errors import (
    MessageSerializationError,
    RayAgentError,
    RayCancelTimeoutError,
)
from miniagents.messages import Message, MessageTuple
from miniagents.messages.sequence import MessageType
from miniagents.pipeline import ItemResult as ItemResult
from miniagents.pipeline.local import item_input_error
from miniagents.pipeline.progress import ProgressBar, known_total, progress_bar

__all__ = ["ItemResult", "PipelineRun", "Settings", "is_dataset"]

T = TypeVar("T", bound=MessageType)
ReplyT = TypeVar("ReplyT", bound=Message, default=Message)


@dataclass(frozen=True)
class Settings:
    """How a pipeline runs (the arguments of ``ray_pipeline``)."""

    max_in_flight: int
    batch_size: int
    ordered: bool
    retries: int
    show_progress: bool | None
    description: str
    total: int | None
    cancel_timeout: float = CANCEL_TIMEOUT
    timeout: float | None = None


@dataclass
class _Batch(Generic[T]):
    indexes: list[int]
    items: list[T]
    data: list[bytes]
    attempts: int = 0


class PipelineRun(Generic[T, ReplyT]):
    """The state of one run: items read, batches on their way, results not yet handed out."""

    def __init__(
        self,
        remote: Any,
        items: Iterable[T],
        settings: Settings,
        ended: Callable[[Any, concurrent.futures.Future[Any]], None],
        carrier: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.remote = remote
        self.ended = ended
        """Called with each batch's ref and Ray's future of it once it ends (in Ray's thread,
        or here if it had ended already): the loop's queue, which :meth:`finish` is fed from."""
        self.settings = settings
        self.carrier = carrier
        """The trace of the code that runs the pipeline, for the workers to continue it."""
        rows = _rows(items)
        self.source: Iterator[T] = iter(rows)
        """The items' iterator: closed with the run (a generator's clean-up runs then)."""
        self.items: Iterator[tuple[int, T]] = enumerate(self.source)
        self.exhausted = False
        self.read_error: BaseException | None = None
        """The error the items raised, or the ``MessageTypeError`` of an item that cannot be
        an agent's input: the consumer gets it after the results of the items before it."""
        self.in_flight = 0
        self.pending: dict[Any, _Batch[T]] = {}
        self.by_index: dict[int, ItemResult[T, ReplyT]] = {}
        self.in_order_of_completion: deque[ItemResult[T, ReplyT]] = deque()
        self.next_index = 0
        total = settings.total
        if total is None and rows is items:  # not a Dataset
            total = known_total(items)
        try:
            self.bar: ProgressBar = progress_bar(
                settings.show_progress, total, settings.description
            )
        except BaseException:  # (no tqdm, or tqdm's own error): the items are the run's
            self._close_source()
            raise

    def next_result(self) -> ItemResult[T, ReplyT] | None:
        """Send what there is room for, then the next result if it is ready.

        An item that cannot be an agent's input at all ends the reading, as the items' own
        error does: its ``MessageTypeError`` is :meth:`raise_read_error`'s, once the results
        of the items before it are out (as ``pipeline()`` does).
        """
        self._fill()
        if self.settings.ordered:
            result = self.by_index.pop(self.next_index, None)
            if result is not None:
                self.next_index += 1
        else:
            result = self.in_order_of_completion.popleft() if self.in_order_of_completion else None
        if result is not None:
            self.in_flight -= 1
            self.bar.advance(failed=not result.ok)
        return result

    def _fill(self) -> None:
        settings = self.settings
        while not self.exhausted and self.in_flight + settings.batch_size <= settings.max_in_flight:
            batch: _Batch[T] = _Batch([], [], [])
            taken = 0
            for index, item in _guarded(itertools.islice(self.items, settings.batch_size), self):
                if type(item) is not str and (
                    refused := item_input_error(item, index, "ray_pipeline")
                ):  # the caller's mistake, not an agent's failure: it takes the item's
                    # place, after the results of the items before it (none after it is read)
                    self.read_error = refused
                    self.exhausted = True
                    break
                taken += 1
                self.in_flight += 1
                try:
                    data = dumps(item, f"the item {index} of the pipeline")
                except MessageSerializationError as error:
                    self._done(ItemResult(index, item, MessageTuple(), error, 0))
                    continue
                batch.indexes.append(index)
                batch.items.append(item)
                batch.data.append(data)
            if taken < settings.batch_size:
                self.exhausted = True
            if batch.data:
                self._send(batch)

    def _send(self, batch: _Batch[T]) -> None:
        batch.attempts += 1
        ref = self.remote.remote(batch.data, self.carrier)
        self.pending[ref] = batch
        ref.future().add_done_callback(functools.partial(self.ended, ref))

    def finish(self, ref: Any, ended: concurrent.futures.Future[Any]) -> None:
        """Take the end of a batch: its results, or Ray's error (then maybe send it again)."""
        batch = self.pending.pop(ref)
        outcome: list[tuple[bool, bytes]] | BaseException | None = ended.exception()
        if outcome is None:
            outcome = ended.result()
        if isinstance(outcome, BaseException):
            died = worker_died(outcome)
            if died and batch.attempts <= self.settings.retries:
                self._send(batch)
                return
            error = (
                worker_died_error(
                    "this item", outcome, f"it was tried {batch.attempts} time(s)", "ray_pipeline"
                )
                if died
                else ray_failure(outcome, "this item")
            )
            outcomes: list[tuple[MessageTuple[Any], BaseException | None]] = [
                (MessageTuple(), error) for _ in batch.items
            ]
        else:
            outcomes = [_item_outcome(ok, data) for ok, data in outcome]
        for index, item, (replies, item_error) in zip(
            batch.indexes, batch.items, outcomes, strict=True
        ):
            self._done(ItemResult(index, item, replies, item_error, batch.attempts))

    def _done(self, result: ItemResult[T, ReplyT]) -> None:
        if self.settings.ordered:
            self.by_index[result.index] = result
        else:
            self.in_order_of_completion.append(result)

    def raise_read_error(self) -> None:
        """Raise the error that ended the reading, if any (once every result before it is out).

        Raises:
            MessageTypeError: for an item that cannot be an agent's input at all (its index
                and type named).
            Exception: the items iterable's own error, with its type.
        """
        if self.read_error is not None:
            raise self.read_error

    def close(self) -> None:
        """Close the items, cancel the batches still running, and close the progress bar.

        The items' iterator is closed if it can be (a generator's clean-up runs: e.g. the
        file it reads is closed, left early). Ray's cancel runs in a daemon thread, waited
        for ``cancel_timeout`` seconds at most.

        Raises:
            RayCancelTimeoutError: if Ray's cancel has not returned by then.
            RayAgentError: if Ray's cancel failed.
            Exception: the error of the items' clean-up, after the cancel was waited for
                (where both failed: the items' error, with the cancel's as its context).
        """
        with self._closing() as cancel:
            if cancel is not None:
                self._check(*cancel, cancel[0].join(self.settings.cancel_timeout))

    async def aclose(self) -> None:
        """Close the run as :meth:`close` does, waiting for Ray's cancel off the event loop.

        The items and the progress bar are closed here, on the loop; the wait for Ray's
        cancel (``cancel_timeout`` seconds at most) is a thread's, so that the loop's other
        tasks run meanwhile. It raises what :meth:`close` raises.
        """
        with self._closing() as cancel:
            if cancel is not None:
                self._check(*cancel, await cancel[0].ajoin(self.settings.cancel_timeout))

    @contextmanager
    def _closing(self) -> Iterator[tuple[InThread, int] | None]:
        """Close the items, then start Ray's cancel; the block waits for it.

        The block is given the cancel and the number of batches it cancels (``None``: no
        batch was running). The items' clean-up error, if any, is raised after it (the
        wait's own failure, if it failed too, as its context).
        """
        failure: BaseException | None = None
        try:
            self._close_source()
        except BaseException as error:  # (raised once the cancel was waited for)
            failure = error
        try:
            yield self._cancel()
        finally:
            if failure is not None:
                raise failure  # (Python keeps the wait's failure, if any, as its context)

    def _close_source(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()

    def _cancel(self) -> tuple[InThread, int] | None:
        """Close the bar and start Ray's cancel of the batches still running, if any.

        A batch that ends within :data:`~miniagents.ext.ray._cancel.ENDING_GRACE` seconds is
        let end (see :mod:`miniagents.ext.ray._cancel`: Ray's own race).
        """
        refs = list(self.pending)
        self.pending.clear()
        self.bar.close()
        if not refs:
            return None
        batches = [(ref, ref) for ref in refs]
        return InThread("the running batches of a Ray pipeline", cancel_running, batches), len(refs)

    def _check(self, cancel: InThread, batches: int, ended: bool) -> None:
        """Raise what became of Ray's cancel of ``batches`` batches, if it did not end well.

        Raises:
            RayCancelTimeoutError: if it had not ``ended`` in time.
            RayAgentError: if it failed.
        """
        timeout = self.settings.cancel_timeout
        if not ended:
            raise RayCancelTimeoutError(
                f"Ray's cancel of the {batches} batch(es) of the pipeline still running took "
                f"longer than {timeout} s; they may go on running. Check the Ray cluster "
                "(`ray status`, the workers' logs), or give ray_pipeline(...) a larger "
                "cancel_timeout."
            )
        if cancel.error is not None:  # Ray's own error
            raise ray_failure(cancel.error, "the cancel of the pipeline's running batches")


def _guarded(items: Iterator[tuple[int, T]], run: PipelineRun[T, Any]) -> Iterator[tuple[int, T]]:
    """The items, until they raise: their error is kept in ``run.read_error`` for later."""
    try:
        yield from items
    except Exception as error:
        run.read_error = error
        run.exhausted = True


def is_dataset(items: object) -> bool:
    """Whether ``items`` is a ``ray.data.Dataset`` (not iterable itself: its rows are)."""
    return type(items).__module__.startswith("ray.data") and hasattr(items, "iter_rows")


def _rows(items: Iterable[T]) -> Iterable[T]:
    """The items, or the rows of a ``ray.data.Dataset``."""
    if is_dataset(items):
        rows: Iterable[T] = items.iter_rows()  # type: ignore[attr-defined]
        return rows
    return items


def _item_outcome(ok: bool, data: bytes) -> tuple[MessageTuple[Any], BaseException | None]:
    if not ok:
        return MessageTuple(), decode_error(data)
    try:
        return loads(data), None
    except Exception as error:  # e.g. a reply class that cannot be imported here
        return MessageTuple(), RayAgentError(f"A pipeline result could not be unpickled: {error!r}")
