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

The record is the core's (``ReplayCore.record()``, ``piece(index)``, its own packing of its
front, ``joined_text``); this module is the store of the packed blocks, :class:`PackedTokens`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from itertools import accumulate

__all__ = ["BLOCK", "PackedTokens"]

BLOCK = 1024
"""Tokens per packed block (a core packs its first block once it holds two)."""


class PackedTokens:
    """The packed front of a record of ``str`` pieces: whole blocks of :data:`BLOCK` tokens."""

    __slots__ = ("_ends", "_texts", "count")

    def __init__(self) -> None:
        self._texts: list[str] = []  # each block's tokens joined
        self._ends: list[array[int]] = []  # where each token of a block ends in its text
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
