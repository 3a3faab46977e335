"""Blocks refused with a sentence that says the fix; a plain ``with`` block, no ``async with``."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NoReturn, TypeVar

__all__ = ["PlainWithBlock", "RefusedBlocks"]

T = TypeVar("T")


class RefusedBlocks:
    """A base of a class whose instances are no ``with`` block, or no ``async with`` one.

    ``with`` and ``async with`` on an instance are refused with ``error(sentence)``, both
    given as the class is made, where Python's own error would be a bare ``TypeError``;
    type checkers see neither block. A class whose instances are a plain ``with`` block
    defines its own ``__enter__`` and ``__exit__``: only ``async with`` is refused then.

    Args:
        error: The error class a refused block raises: the owner's (a ``MiniAgentsError``
            of its layer, or the testing kit's own), so that it is caught with the owner's
            other errors.
        sentence: What the error says: how to write the block the class has instead.

    Example:
        >>> class Settings(RefusedBlocks, error=RuntimeError, sentence="Write `with s.active():`."):
        ...     pass
        >>> with Settings():
        ...     pass
        Traceback (most recent call last):
        RuntimeError: Write `with s.active():`.
    """

    __slots__ = ()
    _refusal: ClassVar[tuple[type[Exception], str]] = (TypeError, "")

    def __init_subclass__(
        cls, *, error: type[Exception] | None = None, sentence: str = "", **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if error is not None:
            cls._refusal = (error, sentence)

    def _block_refused(self) -> Exception:
        """The error a refused block raises."""
        error, sentence = self._refusal
        return error(sentence)

    if not TYPE_CHECKING:  # (at run time only: a type checker still refuses these blocks)

        def __enter__(self) -> NoReturn:
            """Refuse ``with``.

            Raises:
                Exception: always: the error class given, saying the sentence given.
            """
            raise self._block_refused()

        def __exit__(self, *exited: object) -> None:
            """Never called: :meth:`__enter__` refuses ``with`` (both make the protocol)."""

        async def __aenter__(self) -> NoReturn:
            """Refuse ``async with``.

            Raises:
                Exception: always: the error class given, saying the sentence given.
            """
            raise self._block_refused()

        async def __aexit__(self, *exited: object) -> None:
            """Never called: :meth:`__aenter__` refuses ``async with`` (both make the protocol)."""


class PlainWithBlock(RefusedBlocks, Generic[T]):
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

    def _block_refused(self) -> Exception:
        return self._error(self._sentence)
