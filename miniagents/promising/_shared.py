"""What copying and pickling a promise or a stream does: it is one live stream, shared.

A promise stands for one producer and its record, which every consumer shares: a copy
(``copy.copy``, ``copy.deepcopy``, as of a structure holding replies) is the promise itself,
and pickling one is refused with the fix (pickle the value it resolves to)::

    copy.deepcopy({"reply": reply})   ->  {"reply": reply}    (the same promise)
    pickle.dumps(reply)               ->  StreamPicklingError  (pickle `await reply`)
"""

from __future__ import annotations

from typing import NoReturn, Self, SupportsIndex

from miniagents.promising.errors import StreamPicklingError

__all__ = ["Shared"]


class Shared:
    """A live stream or promise: its copies are itself, and it does not pickle."""

    __slots__ = ()

    def __copy__(self) -> Self:
        """The promise itself: it is one stream, shared by all who hold it."""
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        """The promise itself, as for :meth:`__copy__`."""
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
