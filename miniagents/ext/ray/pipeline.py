"""``ray_pipeline``: an agent (or a chain of agents) over many items, on a Ray cluster.

Each item is one interaction: the chain's first agent gets the item as its input, each
next agent the replies of the one before, in a ``MiniAgents`` context of its own on a
worker; the item's result is the last agent's replies, complete. Items go to Ray in
batches (``batch_size``, run concurrently on their worker); at most ``max_in_flight``
items are on their way at any time (sent and not yet handed to you), so the driver's
memory does not grow with the number of items::

    items:     i0 i1 i2 i3 i4 ...            (read lazily, as room frees up)
    in flight: [i0 i1 i2 i3]                 (max_in_flight = 4)
    results:   r0 r1 r2 ...                  (ordered=True: the input's order)

A batch whose worker died is sent again, up to ``max_retries`` times; an item whose agent
failed gives a result holding the error, and the other items go on.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from typing_extensions import Unpack

from miniagents.ext.ray._failures import ray_failure, worker_died, worker_died_error
from miniagents.ext.ray._import import require_ray
from miniagents.ext.ray._progress import ProgressBar, progress_bar
from miniagents.ext.ray._wire import decode_error, dumps, loads
from miniagents.ext.ray._worker import run_items
from miniagents.ext.ray.agent import RayOptions
from miniagents.ext.ray.errors import MessageSerializationError, RayAgentError
from miniagents.messages import MessageTuple
from miniagents.messages.sequence import MessageType
from miniagents.miniagents import MiniAgent

if TYPE_CHECKING:
    from ray.data import Dataset

__all__ = ["ItemResult", "RayPipeline", "ray_pipeline"]

T = TypeVar("T", bound=MessageType)


@dataclass(frozen=True)
class ItemResult(Generic[T]):
    """What the agents made of one item: its replies, or the error that stopped them.

    Attributes:
        index: The item's position in the input (from 0).
        item: The item itself (the object you gave, not a copy).
        replies: The last agent's replies, complete (empty if the item failed).
        error: The error the item failed with (the agent's own, with its type), or ``None``.
        attempts: How many times the item was sent to a worker (more than 1 after a
            worker died).
    """

    index: int
    item: T
    replies: MessageTuple
    error: BaseException | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None

    def get(self) -> MessageTuple:
        """The replies, or raise the item's error."""
        if self.error is not None:
            raise self.error
        return self.replies


class RayPipeline(Generic[T]):
    """The results of :func:`ray_pipeline`: iterate it with ``for`` or ``async for``, once.

    Nothing runs before the iteration starts; leaving the loop early cancels the items
    still running (an ``async for`` loop left early stops when the async generator is
    closed, e.g. with ``contextlib.aclosing``).
    """

    def __init__(
        self,
        agents: Sequence[MiniAgent[...]],
        items: Iterable[T],
        settings: _Settings,
        options: dict[str, Any],
    ) -> None:
        """Prepare the run (:func:`ray_pipeline` makes pipelines)."""
        import ray

        chain = tuple(agents)
        self._items = items
        self._settings = settings
        self._used = False

        def pipeline_items(batch: list[bytes]) -> list[tuple[bool, bytes]]:
            return run_items(chain, batch)

        pipeline_items.__name__ = pipeline_items.__qualname__ = "pipeline_items"
        options.setdefault("name", f"miniagents:{chain[-1].alias}")
        remote: Any = ray.remote  # Ray's overloads type no option given as **options
        self._remote: Any = remote(max_retries=0, **options)(pipeline_items)

    def _run(self) -> _Run[T]:
        if self._used:
            raise RuntimeError("A RayPipeline runs once; call ray_pipeline(...) again to rerun.")
        self._used = True
        return _Run(self._remote, self._items, self._settings)

    def __iter__(self) -> Iterator[ItemResult[T]]:
        """Run the pipeline, giving each item's result (blocking between results)."""
        import ray

        run = self._run()
        try:
            while True:
                result = run.next_result()
                if result is not None:
                    yield result
                elif not run.pending:
                    return
                else:
                    [ref], _ = ray.wait(list(run.pending), num_returns=1)
                    try:
                        outcome: Any = ray.get(ref)
                    except ray.exceptions.RayError as error:
                        outcome = error
                    run.finish(ref, outcome)
        finally:
            run.close()

    async def __aiter__(self) -> AsyncIterator[ItemResult[T]]:
        """Run the pipeline, giving each item's result (awaiting between results)."""
        run = self._run()
        futures: dict[asyncio.Future[Any], Any] = {}
        try:
            while True:
                result = run.next_result()
                if result is not None:
                    yield result
                    continue
                if not run.pending:
                    return
                for ref in run.pending:
                    if ref not in futures.values():
                        futures[asyncio.wrap_future(ref.future())] = ref
                done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    ref = futures.pop(future)
                    error = future.exception()
                    run.finish(ref, error if error is not None else future.result())
        finally:
            for future in futures:
                future.cancel()
            run.close()


@dataclass(frozen=True)
class _Settings:
    max_in_flight: int
    batch_size: int
    ordered: bool
    retries: int
    show_progress: bool | None
    description: str
    total: int | None


@dataclass
class _Batch(Generic[T]):
    indexes: list[int]
    items: list[T]
    data: list[bytes]
    attempts: int = 0


class _Run(Generic[T]):
    """The state of one run: items read, batches on their way, results not yet handed out."""

    def __init__(self, remote: Any, items: Iterable[T], settings: _Settings) -> None:
        self.remote = remote
        self.settings = settings
        rows = _rows(items)
        self.items: Iterator[tuple[int, T]] = enumerate(rows)
        self.exhausted = False
        self.in_flight = 0
        self.pending: dict[Any, _Batch[T]] = {}
        self.by_index: dict[int, ItemResult[T]] = {}
        self.in_order_of_completion: deque[ItemResult[T]] = deque()
        self.next_index = 0
        total = settings.total
        if total is None and rows is items and isinstance(items, Sized):  # not a Dataset
            total = len(items)
        self.bar: ProgressBar = progress_bar(settings.show_progress, total, settings.description)

    def next_result(self) -> ItemResult[T] | None:
        """Send what there is room for, then the next result if it is ready."""
        self._fill()
        if self.settings.ordered:
            result = self.by_index.pop(self.next_index, None)
            if result is not None:
                self.next_index += 1
        else:
            result = self.in_order_of_completion.popleft() if self.in_order_of_completion else None
        if result is not None:
            self.in_flight -= 1
            self.bar.update(1)
        return result

    def _fill(self) -> None:
        settings = self.settings
        while not self.exhausted and self.in_flight + settings.batch_size <= settings.max_in_flight:
            batch: _Batch[T] = _Batch([], [], [])
            taken = 0
            for index, item in itertools.islice(self.items, settings.batch_size):
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
        self.pending[self.remote.remote(batch.data)] = batch

    def finish(self, ref: Any, outcome: list[tuple[bool, bytes]] | BaseException) -> None:
        """Take the outcome of a batch: its results, or Ray's error (then maybe send it again)."""
        batch = self.pending.pop(ref)
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
            outcomes: list[tuple[MessageTuple, BaseException | None]] = [
                (MessageTuple(), error) for _ in batch.items
            ]
        else:
            outcomes = [_item_outcome(ok, data) for ok, data in outcome]
        for index, item, (replies, item_error) in zip(
            batch.indexes, batch.items, outcomes, strict=True
        ):
            self._done(ItemResult(index, item, replies, item_error, batch.attempts))

    def _done(self, result: ItemResult[T]) -> None:
        if self.settings.ordered:
            self.by_index[result.index] = result
        else:
            self.in_order_of_completion.append(result)

    def close(self) -> None:
        """Cancel the batches still running, and close the progress bar."""
        import ray

        for ref in self.pending:
            ray.cancel(ref)
        self.pending.clear()
        self.bar.close()


def _rows(items: Iterable[T]) -> Iterable[T]:
    """The items, or the rows of a ``ray.data.Dataset`` (which is not iterable itself)."""
    if type(items).__module__.startswith("ray.data") and hasattr(items, "iter_rows"):
        rows: Iterable[T] = items.iter_rows()
        return rows
    return items


def _item_outcome(ok: bool, data: bytes) -> tuple[MessageTuple, BaseException | None]:
    if not ok:
        return MessageTuple(), decode_error(data)
    try:
        return loads(data), None
    except Exception as error:  # e.g. a reply class that cannot be imported here
        return MessageTuple(), RayAgentError(f"A pipeline result could not be unpickled: {error!r}")


@overload
def ray_pipeline(
    agents: MiniAgent[...] | Sequence[MiniAgent[...]],
    items: Dataset,
    /,
    *,
    max_in_flight: int = ...,
    batch_size: int = ...,
    ordered: bool = ...,
    progress: bool | None = ...,
    description: str | None = ...,
    total: int | None = ...,
    **options: Unpack[RayOptions],
) -> RayPipeline[dict[str, Any]]: ...


@overload
def ray_pipeline(
    agents: MiniAgent[...] | Sequence[MiniAgent[...]],
    items: Iterable[T],
    /,
    *,
    max_in_flight: int = ...,
    batch_size: int = ...,
    ordered: bool = ...,
    progress: bool | None = ...,
    description: str | None = ...,
    total: int | None = ...,
    **options: Unpack[RayOptions],
) -> RayPipeline[T]: ...


def ray_pipeline(
    agents: MiniAgent[...] | Sequence[MiniAgent[...]],
    items: Iterable[Any] | Dataset,
    /,
    *,
    max_in_flight: int = 64,
    batch_size: int = 1,
    ordered: bool = True,
    progress: bool | None = None,
    description: str | None = None,
    total: int | None = None,
    **options: Unpack[RayOptions],
) -> RayPipeline[Any]:
    """Run an agent, or a chain of agents, over every item, on Ray.

    Example:
        >>> for result in ray_pipeline(summarizer, documents, max_in_flight=32):
        ...     print(result.index, result.get())

    Args:
        agents: The agent, or the agents of a chain (each gets the replies of the one
            before; the first gets the item).
        items: The items: any iterable of ``MessageType`` values (read lazily), or a
            ``ray.data.Dataset`` (each row, a dict, is one item: a message with the row's
            columns as its fields).
        max_in_flight: At most this many items are on their way at once (sent, and
            their results not yet handed out); at least ``batch_size``.
        batch_size: How many items go to a worker together (they run there concurrently).
        ordered: Give the results in the input's order (``True``) or as they complete.
        progress: Show a progress bar (tqdm, on stderr): ``None`` shows it on a terminal.
        description: The text before the progress bar (default: the last agent's alias).
        total: The number of items, for the progress bar (default: ``len(items)`` if it
            has one).
        **options: Ray's task options (:class:`RayOptions`); ``max_retries`` (default 3) is
            how often a batch whose worker died is sent again.

    Raises:
        ImportError: if Ray is not installed (with the install hint).
        ValueError: for no agents, a ``batch_size`` below 1 or a ``max_in_flight`` below it.
    """
    require_ray()
    chain = [agents] if isinstance(agents, MiniAgent) else list(agents)
    if not chain:
        raise ValueError("ray_pipeline() needs at least one agent to run over the items.")
    if batch_size < 1 or max_in_flight < batch_size:
        raise ValueError(
            f"ray_pipeline() needs 1 <= batch_size <= max_in_flight; got batch_size="
            f"{batch_size} and max_in_flight={max_in_flight}."
        )
    ray_options: dict[str, Any] = dict(options)
    settings = _Settings(
        max_in_flight=max_in_flight,
        batch_size=batch_size,
        ordered=ordered,
        retries=ray_options.pop("max_retries", 3),
        show_progress=progress,
        description=description if description is not None else chain[-1].alias,
        total=total,
    )
    return RayPipeline(chain, items, settings, ray_options)
