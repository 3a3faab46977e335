"""A plain ``with`` block whose ``async with`` is refused with a sentence that says the fix."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Generic, NoReturn, TypeVar

__all__ = ["PlainWithBlock"]

T = TypeVar("T")


class PlainWithBlock(Generic[T]):
    """A block that is entered with a plain ``with`` only (in async code too).

    Its ``with`` is ``block``'s: it gives what ``block`` gives, and exits as it does. An
    ``async with`` is refused with ``error(sentence)``, where Python's own error would be
    a bare ``TypeError``; type checkers see no ``async with`` either. For blocks that have
    nothing to await (they change a setting of the process or of the loop at once).

    Args:
        block: What the block does as it is entered and exited.
        error: The error class an ``async with`` raises: the owner's (a ``MiniAgentsError``
            of its layer, or the testing kit's own), so that it is caught with the owner's
            other errors.
        sentence: What the error says: that the block is a plain ``with``, and how to
            write it.

    Example:
        >>> from contextlib import nullcontext
        >>> with PlainWithBlock(nullcontext(5), RuntimeError, "Write `with`.") as value:
        ...     value
        5
    """

    __slots__ = ("_block", "_error", "_sentence")

    def __init__(
        self, block: AbstractContextManager[T], error: type[Exception], sentence: str
    ) -> None:
        self._block = block
        self._error = error
        self._sentence = sentence

    def __enter__(self) -> T:
        return self._block.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool | None:
        return self._block.__exit__(kind, error, trace)

    if not TYPE_CHECKING:  # (for the message only: typed, `async with` stays an error)

        async def __aenter__(self) -> NoReturn:
            """Refuse ``async with``.

            Raises:
                Exception: always: the error class given, saying the sentence given.
            """
            raise self._error(self._sentence)

        async def __aexit__(self, *exited: object) -> None:
            """Never called: :meth:`__aenter__` refuses ``async with`` (both make the protocol)."""
