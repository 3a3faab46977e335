"""``StreamedPromise[PieceT, WholeT]``: a replayable stream of pieces that resolves to a whole."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Iterable
from typing import Any, Generic, Literal, TypeVar

from reactivex import Observable

from miniagents.promising._replay import ReplayCore
from miniagents.promising._sources import from_async_iterable
from miniagents.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["StreamedPromise", "source_observable"]

PieceT = TypeVar("PieceT")
WholeT = TypeVar("WholeT")


def source_observable(
    source: AsyncIterable[PieceT] | Observable[PieceT] | None, what: str
) -> Observable[PieceT] | None:
    """Turn a stream's source into the observable its core subscribes to."""
    if source is None or isinstance(source, Observable):
        return source
    if isinstance(source, StreamedPromise):  # already replayable: no task needed
        return source.as_observable()
    return from_async_iterable(source, what)


class StreamedPromise(Generic[PieceT, WholeT]):
    """A stream of pieces that resolves to a whole; replayable, with one producer.

    Iterate it (``async for piece in promise``) or subscribe to
    :meth:`as_observable` to get the pieces; ``await`` it to get the whole, which
    ``resolver`` computes once from all the pieces. Every consumer, early or late,
    sees every piece from the first; the producer runs once, starting at the first
    consumer (or at :meth:`start`). An error from the producer ends the stream: each
    consumer gets it, with its own type, after the pieces that came before it.

    Example:
        >>> async def words():
        ...     yield "Hello, "
        ...     yield "world"
        >>> async def join(pieces: tuple[str, ...]) -> str:
        ...     return "".join(pieces)
        >>> greeting = StreamedPromise(words(), resolver=join)
        >>> # `async for w in greeting` gives the words; `await greeting` gives the text.
    """

    __slots__ = ("_core", "_resolver", "_whole")

    def __init__(
        self,
        source: AsyncIterable[PieceT] | Observable[PieceT] | None = None,
        *,
        resolver: Callable[[tuple[PieceT, ...]], Awaitable[WholeT]],
        prefill_pieces: Iterable[PieceT] = (),
    ) -> None:
        """Create a stream of ``prefill_pieces`` followed by what ``source`` produces.

        Args:
            source: Where the pieces come from: an async iterable (pulled in a task)
                or an observable (subscribed to). ``None`` for a stream that holds
                only ``prefill_pieces``.
            resolver: Turns the tuple of all pieces into the whole; called at most once
                per successful ``await``, after the stream ended.
            prefill_pieces: Pieces known from the start.
        """
        observable = source_observable(source, type(self).__name__)
        self._setup(ReplayCore(observable, list(prefill_pieces)), resolver)

    def _setup(
        self,
        core: ReplayCore[PieceT],
        resolver: Callable[[tuple[PieceT, ...]], Awaitable[WholeT]] | None = None,
        whole: WholeT | Literal[Sentinel.NO_VALUE] = NO_VALUE,
    ) -> None:
        """Attach the core, the resolver and the whole if known (subclasses build their own).

        Subclasses that compute the whole themselves pass no resolver and override
        :meth:`_resolve_whole` instead (a stored bound method would make a reference
        cycle that only the cyclic garbage collector can free).
        """
        self._core = core
        self._resolver = resolver
        self._whole = whole

    async def _resolve_whole(self, pieces: tuple[PieceT, ...]) -> WholeT:
        """Compute the whole from all the pieces."""
        assert self._resolver is not None  # every subclass without a resolver overrides this
        return await self._resolver(pieces)

    @property
    def done(self) -> bool:
        """Whether the stream has ended (normally or with an error)."""
        return self._core.done

    def start(self) -> None:
        """Start the producer now, in the background, instead of at the first consumer."""
        self._core.start()

    def cancel(self) -> None:
        """Stop the producer; consumers get ``StreamCancelledError`` after the pieces so far."""
        self._core.cancel()

    def __aiter__(self) -> AsyncIterator[PieceT]:
        """Iterate the pieces from the first one, whenever the iteration starts."""
        return _PieceIterator(self._core)

    def as_observable(self) -> Observable[PieceT]:
        """The pieces as an observable that replays them to every subscriber.

        Marble::

            producer:      --a--b--c--|
            subscribed at start:  --a--b--c--|
            subscribed after b:        (ab)c--|
        """
        return self._core.observable()

    async def aresolve(self) -> WholeT:
        """Wait for the stream to end and return the whole (or raise the stream's error)."""
        whole = self._whole
        if whole is NO_VALUE:
            pieces = await self._core.acollect()
            whole = self._whole
            if whole is NO_VALUE:
                whole = await self._resolve_whole(tuple(pieces))
                self._whole = whole
        return whole

    def __await__(self) -> Generator[Any, None, WholeT]:
        """``await promise`` is ``await promise.aresolve()``."""
        return self.aresolve().__await__()

    def __repr__(self) -> str:
        """Show the class, the number of pieces so far and the state."""
        core = self._core
        state = "streaming" if not core.done else ("failed" if core.error else "complete")
        return f"<{type(self).__name__} {state}, {len(core.pieces)} pieces>"


class _PieceIterator(AsyncIterator[PieceT]):
    """One consumer's position in a stream."""

    __slots__ = ("_core", "_index")

    def __init__(self, core: ReplayCore[PieceT]) -> None:
        self._core = core
        self._index = 0

    def __aiter__(self) -> _PieceIterator[PieceT]:
        return self

    async def __anext__(self) -> PieceT:
        core = self._core
        pieces = core.pieces
        while True:
            index = self._index
            if index < len(pieces):
                self._index = index + 1
                return pieces[index]
            if core.done:
                core.raise_if_failed()
                raise StopAsyncIteration
            if core.started:
                await core.wait()
            else:
                core.start()  # a synchronous source may deliver pieces right here
