"""``StreamedPromise[PieceT, WholeT]``: a replayable stream of pieces that resolves to a whole."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Generator, Iterable
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from reactivex import Observable

from miniagents.arguments import a_class
from miniagents.promising._cursor import PieceIterator
from miniagents.promising._giving_up import move_readers
from miniagents.promising._replay import DirectSource, ReplayCore, ReplayObservable
from miniagents.promising._shared import Produced
from miniagents.promising._sources import from_async_iterable
from miniagents.promising.errors import StreamArgumentError, StreamSourceError
from miniagents.promising.limits import Overflow
from miniagents.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["StreamIterator", "StreamedPromise", "source_observable", "stream_on"]

PieceT = TypeVar("PieceT")
WholeT = TypeVar("WholeT")
PieceT_co = TypeVar("PieceT_co", covariant=True)
StreamT = TypeVar("StreamT", bound="StreamedPromise[Any, Any]")


class StreamIterator(Protocol[PieceT_co]):
    """What ``aiter(stream)`` gives: an async iterator of the pieces that can be closed.

    It is an ``AsyncIterator``; ``await iterator.aclose()`` stops consuming (the stream
    keeps no pieces for the iterator and no longer waits for it), so
    ``async with contextlib.aclosing(aiter(stream)) as pieces:`` works too.
    """

    def __aiter__(self) -> StreamIterator[PieceT_co]:
        """The iterator itself."""
        ...

    async def __anext__(self) -> PieceT_co:
        """The next piece (``StopAsyncIteration`` at the end of the stream)."""
        ...

    async def aclose(self) -> None:
        """Stop consuming the stream."""
        ...


def source_observable(
    source: AsyncIterable[PieceT] | Observable[PieceT] | None, what: str
) -> Observable[PieceT] | None:
    """Turn a stream's source into the observable its core subscribes to.

    Raises:
        StreamSourceError: if ``source`` is neither an async iterable nor an ``Observable``.
    """
    if source is None or isinstance(source, Observable):
        return source
    if isinstance(source, StreamedPromise):  # already replayable: no task needed
        return source.as_observable()
    if not isinstance(source, AsyncIterable):
        raise StreamSourceError(
            f"{what} needs an async iterable or an Observable as its source, but got "
            f"{a_class(type(source))} ({source!r:.60}). Pass an async generator, e.g. "
            "`async def pieces(): yield 1; yield 2`, or reactivex.from_iterable(my_list)."
        )
    return from_async_iterable(source, what)


class StreamedPromise(Produced[ReplayCore[PieceT]], Generic[PieceT, WholeT]):
    """A stream of pieces that resolves to a whole; replayable, with one producer.

    Iterate it (``async for piece in promise``) or subscribe to
    :meth:`as_observable` to get the pieces; ``await`` it to get the whole, which
    ``resolver`` computes once from all the pieces. Every consumer, early or late,
    sees every piece from the first (within the replay window: see
    :mod:`miniagents.promising.limits`); the producer runs once, starting at the first
    consumer (or at :meth:`start`), and no further than the high-water mark ahead of its
    slowest consumer. An error from the producer ends the stream: each consumer gets it,
    with its own type, after the pieces that came before it.

    Example:
        >>> async def words():
        ...     yield "Hello, "
        ...     yield "world"
        >>> async def join(pieces: tuple[str, ...]) -> str:
        ...     return "".join(pieces)
        >>> greeting = StreamedPromise(words(), resolver=join)
        >>> # `async for w in greeting` gives the words; `await greeting` gives the text.
    """

    __slots__ = ("__weakref__", "_resolver", "_view", "_whole")

    _counts_itself: ClassVar[bool] = False
    """Whether it uncounts itself as a handle of its core in a ``__del__`` of its own (no weak
    reference per stream: thousands of sequences); any other is counted weakly."""

    def __init__(
        self,
        source: AsyncIterable[PieceT] | Observable[PieceT] | None = None,
        *,
        resolver: Callable[[tuple[PieceT, ...]], Awaitable[WholeT]],
        prefill_pieces: Iterable[PieceT] = (),
        overflow: Overflow = "buffer",
    ) -> None:
        """Create a stream of ``prefill_pieces`` followed by what ``source`` produces.

        A stream made from another stream (or its observable, unchanged) and no prefill is
        a *view* of it: it shares its record instead of copying it.

        Args:
            source: Where the pieces come from: an async iterable (pulled in a task, no
                further than the high-water mark ahead of the slowest consumer) or an
                observable (subscribed to). Once every consumer has given up, as an agent's
                replies are given up, either is let go of (the iterable closed with
                ``aclose()``, the observable unsubscribed from): the stream then ends with
                ``StreamCancelledError``. ``None`` for a stream that holds only
                ``prefill_pieces``.
            resolver: Turns the tuple of all pieces into the whole; called at most once
                per successful ``await``, after the stream ended.
            prefill_pieces: Pieces known from the start.
            overflow: What to do with pieces of a hot observable that outruns the
                consumers (see :data:`~miniagents.promising.limits.Overflow`).

        Raises:
            StreamSourceError: if ``source`` is neither an async iterable nor an ``Observable``.
        """
        what = type(self).__name__
        observable = source_observable(source, what)
        prefill = list(prefill_pieces)
        if isinstance(observable, ReplayObservable) and not prefill:
            self._setup(observable.core, resolver, view=True)
            return
        core = ReplayCore(observable, prefill, paced=f"this {what}", overflow=overflow)
        if observable is not None and (
            not isinstance(observable, DirectSource) or observable is not source
        ):
            # an observable subscribed to (a hot source, or another stream followed), or an
            # async iterable pulled: once every consumer has given up, it is unsubscribed
            # from (an async generator closed), not fed for nobody
            core.on_abandoned = core.cancel
        self._setup(core, resolver)

    def _setup(
        self,
        core: ReplayCore[PieceT],
        resolver: Callable[[tuple[PieceT, ...]], Awaitable[WholeT]] | None = None,
        whole: WholeT | Literal[Sentinel.NO_VALUE] = NO_VALUE,
        *,
        view: bool | ReplayCore[Any] = False,
    ) -> None:
        """Attach the core, the resolver and the whole if known (subclasses build their own).

        Subclasses that compute the whole themselves pass no resolver and override
        :meth:`_resolve_whole` instead (a stored bound method would make a reference
        cycle that only the cyclic garbage collector can free). ``view`` is true for a
        stream sharing another one's core, or the core (an agent's replies) that must have
        room before each piece its iterators take.
        """
        self._core = core
        self._resolver = resolver
        self._whole = whole
        self._view = view
        flow = core.flow
        if flow is not None:  # a handle of the stream until it goes
            if self._counts_itself:
                flow.count_handle()
            else:
                flow.count_weakly(core, self)

    async def _resolve_whole(self, pieces: tuple[PieceT, ...]) -> WholeT:
        """Compute the whole from all the pieces."""
        assert self._resolver is not None  # every subclass without a resolver overrides this
        whole = self._resolver(pieces)
        if not inspect.isawaitable(whole):  # (typed Awaitable: code mypy does not check)
            raise StreamArgumentError(
                f"The resolver of {a_class(type(self))} must return an awaitable (the stream "
                f"awaits it), but it returned {type(whole).__name__}: make it an `async def` "
                "function of the tuple of pieces."
            )
        return await whole

    def cancel(self) -> None:
        """Stop the producer; consumers get ``StreamCancelledError`` after the pieces so far.

        A view (a stream made from another one unchanged) stops only for its own
        consumers: the stream it shows goes on for the others.
        """
        if self._view is False:
            self._core.cancel()
        elif not self._core.done:
            shown = self._core
            self._core = copy = shown.detached_copy()
            move_readers(shown, self, copy)  # its iterators read on from the copy
            if self._counts_itself and shown.flow is not None:  # (one counted weakly is
                shown.flow.handle_gone(shown)  # uncounted when it goes)

    def __aiter__(self) -> StreamIterator[PieceT]:
        """Iterate the pieces from the first one, whenever the iteration starts."""
        gate = self._view  # a bool, or the core whose room gates each piece
        return PieceIterator(self, self._core, None if gate is False or gate is True else gate)

    def as_observable(self) -> Observable[PieceT]:
        """The pieces as an observable that replays them to every subscriber.

        Marble::

            producer:      --a--b--c--|
            subscribed at start:  --a--b--c--|
            subscribed after b:        (ab)c--|
        """
        return self._core.observable()

    async def aresolve(self) -> WholeT:
        """Wait for the stream to end and return the whole (or raise the stream's error).

        Raises:
            ReplayWindowError: if the stream released pieces before this ``await`` began.
        """
        whole = self._whole
        if whole is NO_VALUE:
            gate = self._view  # a bool, or the core whose room gates each piece (see acollect)
            pieces = await self._core.acollect(None if gate is False or gate is True else gate)
            whole = self._whole
            if whole is NO_VALUE:
                whole = await self._resolve_whole(tuple(pieces))
                self._whole = whole
        return whole

    def __await__(self) -> Generator[Any, None, WholeT]:
        """``await promise`` is ``await promise.aresolve()``."""
        whole = self._whole
        if whole is not NO_VALUE:
            return whole  # known already (e.g. a ready message): no coroutine needed
        return (yield from self.aresolve().__await__())

    def __repr__(self) -> str:
        """Show the class, the number of pieces so far and the state."""
        core = self._core
        state = "streaming" if not core.done else ("failed" if core.error else "complete")
        return f"<{type(self).__name__} {state}, {core.count} pieces>"


def stream_on(
    cls: type[StreamT], core: ReplayCore[Any], *, gate: ReplayCore[Any] | None = None
) -> StreamT:
    """A new ``cls`` showing ``core``, for a subclass that computes its whole itself.

    Without ``gate``, the stream owns ``core``: cancelling it cancels the core. With
    ``gate`` it is a *view*: cancelling it stops only its own consumers, and each piece an
    iterator of it takes waits first until ``gate`` has room (this is how an agent whose
    replies are ahead of their consumers waits at its next input pull).
    """
    stream = cls.__new__(cls)
    stream._setup(core, view=gate if gate is not None else False)
    return stream
