"""A face of one replay core: a promise, a stream or an observable, one live record, shared.

Each shows one replay core (its producer, record, consumers: :func:`core_of`). A face of a
live stream is no value: a copy (``copy.copy``, ``copy.deepcopy``) is the face itself, and
pickling one is refused with the fix (pickle the value it resolves to)::

    copy.deepcopy({"reply": reply})   ->  {"reply": reply}    (the same promise)
    pickle.dumps(reply)               ->  StreamPicklingError  (pickle `await reply`)
"""

from __future__ import annotations

from typing import Any, Generic, NoReturn, Protocol, Self, SupportsIndex, TypeVar

from miniagents.promising.errors import StreamPicklingError

__all__ = ["Produced", "Shared", "core_of", "one_more", "paced_core_of"]

CoreT = TypeVar("CoreT")
ItemT = TypeVar("ItemT")


class _Startable(Protocol):
    """A core as :class:`Produced` sees it (a ``ReplayCore``: its module imports this one)."""

    done: bool

    def start(self) -> None: ...


StartableT = TypeVar("StartableT", bound=_Startable)


class Shared(Generic[CoreT]):
    """A face of one live replay core: its copies are itself, and it does not pickle."""

    __slots__ = ("_core",)

    _core: CoreT
    """The core it shows (a view's may change when the view is cancelled)."""

    def __copy__(self) -> Self:
        """The face itself: it is one stream, shared by all who hold it."""
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        """The face itself, as for :meth:`__copy__`."""
        return self

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        """Refuse: a live stream (its producer, its record, its consumers) cannot travel.

        Raises:
            StreamPicklingError: always, naming the fix.
        """
        name = next(c.__name__ for c in type(self).__mro__ if not c.__name__.startswith("_"))
        raise StreamPicklingError(
            f"A {name} cannot be pickled: it is a live stream, not a value. Pickle what it "
            "resolves to instead, e.g. pickle.dumps(await promise) (a Message, or a "
            "MessageTuple of a sequence)."
        )


class Produced(Shared[StartableT]):
    """A face whose consumers await what its producer makes: a promise, a stream."""

    __slots__ = ()

    @property
    def done(self) -> bool:
        """Whether it has ended: the value or every piece is there (or an error is)."""
        return self._core.done

    def start(self) -> None:
        """Start the producer now, in the background, instead of at the first consumer."""
        self._core.start()


def core_of(shown: Shared[CoreT]) -> CoreT:
    """The replay core that ``shown`` shows (a view's may change when it is cancelled)."""
    return shown._core


def paced_core_of(shown: object) -> Any:
    """The core that ``shown`` shows, if it is a face of a core with a flow, else ``None``.

    (``Any``: :mod:`miniagents.promising.lowlevel` gives it its exact type.)
    """
    core: Any = shown._core if isinstance(shown, Shared) else None
    return core if core is not None and core.flow is not None else None


def one_more(some: ItemT | list[ItemT] | None, item: ItemT) -> ItemT | list[ItemT]:
    """``some`` with ``item`` added: none, one, or a list of them (most fields of a stream hold
    none or one: no list made then); a list grows in place."""
    if some is None:
        return item
    if isinstance(some, list):
        some.append(item)
        return some
    return [some, item]
