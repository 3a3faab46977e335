"""Packed tokens: the front of a long record of ``str`` pieces, kept compactly.

A message keeps every token it has streamed, so that a late ``async for`` or an ``await``
gets the whole text. Kept one by one, a short token costs far more than its characters: a
``str`` object has about 49 bytes of header, and the record a pointer of 8 more (a
100,000-token message of 7-character tokens holds 6.4 MB, of which 0.7 MB are characters).
A core whose pieces are known to be ``str`` and that keeps every piece (no flow) therefore
packs its front: once it holds two blocks of :data:`BLOCK` tokens, the first block goes
into one string (the tokens joined) and an array of where each token ends in it, about
4 bytes per token beside the characters::

    record:  t0 t1 ... t1023 | t1024 ... t2047   (two blocks: the first one is packed)
    packed:  "t0 t1 ...t1023 " + ends [3, 6, ...]
    kept:                      t1024 ... t2047 t2048 ...

Nothing is lost: reading piece ``i`` of the packed front slices it out of its block (an
equal string, a new object), so replay gives the same tokens in the same order, and the
whole text is the blocks joined with the rest.

The functions below read a core's record so (a :class:`PackedRecord`): the core keeps
:func:`record` and :func:`piece` as its methods, for the layers above.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from itertools import accumulate
from typing import Any, Protocol, TypeVar, cast

__all__ = ["BLOCK", "PackedRecord", "PackedTokens", "joined_text", "pack_front", "piece", "record"]

T = TypeVar("T")

BLOCK = 1024
"""Tokens per packed block (a core packs its first block once it holds two)."""


class PackedTokens:
    """The packed front of a record of ``str`` pieces: whole blocks of :data:`BLOCK` tokens."""

    __slots__ = ("_ends", "_texts", "count")

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._ends: list[array[int]] = []
        self.count = 0
        """How many tokens are packed (a multiple of :data:`BLOCK`)."""

    def pack(self, tokens: list[str]) -> None:
        """Pack the next :data:`BLOCK` tokens (the record's front, in order)."""
        text = "".join(tokens)
        self._texts.append(text)
        # "I" (4 bytes) holds any end in a block shorter than 4 GiB characters
        code = "I" if len(text) < 1 << 32 else "Q"
        self._ends.append(array(code, accumulate(map(len, tokens))))
        self.count += len(tokens)

    def __getitem__(self, index: int) -> str:
        """The token number ``index`` (``0 <= index < count``), sliced out of its block."""
        block, at = divmod(index, BLOCK)
        ends = self._ends[block]
        return self._texts[block][ends[at - 1] if at else 0 : ends[at]]

    def __iter__(self) -> Iterator[str]:
        """Every packed token, in order (blocks packed meanwhile included)."""
        for text, ends in zip(self._texts, self._ends, strict=True):
            start = 0
            for end in ends:
                yield text[start:end]
                start = end

    def text(self) -> str:
        """The packed tokens joined."""
        return "".join(self._texts)

    def copy(self) -> PackedTokens:
        """A copy that later packing of this one does not change."""
        copy = PackedTokens()
        copy._texts = list(self._texts)
        copy._ends = list(self._ends)
        copy.count = self.count
        return copy


class PackedRecord(Protocol[T]):
    """What packing reads of a core (a :class:`~miniagents.promising._replay.ReplayCore`).

    A protocol, so that the core (which keeps these functions as its methods) and this
    module do not import each other.
    """

    pieces: list[T]  # the pieces kept, from piece number base
    base: int  # the pieces below it are packed (or released, with a flow)
    packed: PackedTokens | None  # the packed front, if any
    _pack_at: int  # how many pieces sent make it pack its next block


def record(core: PackedRecord[T]) -> list[T]:
    """Every piece kept, from piece number ``released()`` (the packed ones unpacked).

    ``pieces`` holds the kept pieces from piece number ``base``; a record of ``str`` that
    keeps everything has packed the ones before (``packed``), and this list has them too
    (new, equal strings).
    """
    packed = core.packed
    if packed is None:
        return core.pieces
    return [*cast("list[T]", list(packed)), *core.pieces]


def piece(core: PackedRecord[T], index: int) -> T:
    """Piece number ``index`` of the record, packed or not (it must be kept)."""
    offset = index - core.base
    if offset >= 0:
        return core.pieces[offset]
    assert core.packed is not None  # only a packed front lies below base and is kept
    return cast(T, core.packed[index])


def pack_front(core: PackedRecord[Any]) -> None:
    """Pack the first block of a long record of ``str`` (every piece of it was sent)."""
    packed = core.packed
    if packed is None:
        packed = core.packed = PackedTokens()
    pieces: list[str] = core.pieces
    packed.pack(pieces[:BLOCK])
    del pieces[:BLOCK]
    core.base += BLOCK
    core._pack_at += BLOCK


def joined_text(core: PackedRecord[str]) -> str:
    """The pieces kept by a core of ``str`` joined (a message's text, packed front included)."""
    packed = core.packed
    rest = "".join(core.pieces)
    return rest if packed is None else packed.text() + rest
