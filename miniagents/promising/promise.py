"""``Promise[T]``: a value produced once and awaitable by any number of consumers."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Literal, TypeVar, overload

from reactivex import Observable

from miniagents.arguments import a_class
from miniagents.promising._replay import ReplayCore
from miniagents.promising._shared import Produced
from miniagents.promising._sources import from_awaitable_factory
from miniagents.promising.errors import StreamArgumentError
from miniagents.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["Promise"]

T = TypeVar("T")


class Promise(Produced[ReplayCore[T]]):
    """A value produced once, awaitable by any number of consumers.

    The resolver runs in its own task the first time the promise is awaited,
    subscribed to or started; every consumer then gets the same value (or the same
    error, re-raised with its own type).

    Example:
        >>> async def compute() -> int:
        ...     return 42
        >>> answer = Promise(compute)
        >>> # `await answer` gives 42 to every consumer; compute() runs once.
    """

    __slots__ = ()

    @overload
    def __init__(self, resolver: Callable[[], Awaitable[T]]) -> None: ...

    @overload
    def __init__(self, *, prefill: T) -> None: ...

    def __init__(
        self,
        resolver: Callable[[], Awaitable[T]] | None = None,
        *,
        prefill: T | Literal[Sentinel.NO_VALUE] = NO_VALUE,
    ) -> None:
        """Create a promise resolved by ``resolver()``, or one already holding ``prefill``.

        Args:
            resolver: An async callable producing the value; it is called at most once.
            prefill: The value, when it is known already.

        Raises:
            StreamArgumentError: if neither or both of ``resolver`` and ``prefill`` are given,
                or ``resolver`` is not callable (e.g. a coroutine, ``fetch()`` for ``fetch``).
        """
        given: object = resolver  # (typed callable, but code not checked by mypy may err)
        if given is not None and not callable(given):
            if inspect.iscoroutine(given):
                given.close()  # never to be awaited (and no warning that it was not)
            raise StreamArgumentError(
                f"Promise() takes an async callable that it calls once, not "
                f"{a_class(type(given))}: pass the function itself, e.g. Promise(fetch) "
                "rather than Promise(fetch()), or Promise(prefill=value) for a ready value."
            )
        if resolver is not None and prefill is NO_VALUE:
            self._core = ReplayCore(from_awaitable_factory(resolver, "promise"))
        elif resolver is None and prefill is not NO_VALUE:
            self._core = ReplayCore(prefill=[prefill])
        else:
            raise StreamArgumentError(
                "Promise() takes exactly one of: an async resolver callable, "
                "e.g. Promise(fetch), or a ready value, e.g. Promise(prefill=42)."
            )

    def cancel(self) -> None:
        """Stop the resolver; consumers then get ``StreamCancelledError``."""
        self._core.cancel()

    async def aresolve(self) -> T:
        """Wait for the value and return it (or raise the resolver's error).

        Raises:
            StreamArgumentError: if the resolver returned no awaitable (a plain function).
        """
        pieces = await self._core.acollect()
        return pieces[0]

    def __await__(self) -> Generator[Any, None, T]:
        """``await promise`` is ``await promise.aresolve()``."""
        return self.aresolve().__await__()

    def as_observable(self) -> Observable[T]:
        """The value as a one-item observable, replayed to every subscriber.

        Marble::

            resolver:  ....(x)
            result:    ----x|
        """
        return self._core.observable()

    def __repr__(self) -> str:
        """Show whether the value is there."""
        core = self._core
        state = "pending" if not core.done else ("failed" if core.error else "resolved")
        return f"<Promise {state}>"
