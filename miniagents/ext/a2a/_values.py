"""Counting the JSON values of a remote's event as its bytes arrive, without parsing it.

A value is what ``json.loads`` would build: each object, array, string (not an object's
keys), number, ``true``, ``false`` and ``null``, at every depth (as
:func:`~miniagents.frozen.nesting.holds_over` counts a parsed one). :class:`ValueCounter`
reads the text in pieces, as they come, and says as soon as it holds over its bound, so
that an event of a million tiny values is refused after its first ``most`` values, before
anything parses it whole. Nothing is built: only a stack of the open containers' kinds,
which the bound also bounds.

A text whose first byte (after spaces) cannot start a JSON value (an HTML page's ``<``,
a word) is no JSON at all: ``not_json`` says so at that byte, and it is not counted, so
that its reader tells it for what it is rather than as too many values. Two texts count
otherwise than their parse would: an object's key given twice counts each of its values
(the parse keeps the last one), and a text that is no JSON further on counts as far as it
can (the parse fails; the SDK says so). A text of more than ``5 * most + 5``
tokens (brackets, commas, colons, keys and values) is no JSON within the bound, since a
value takes at most five of them: the count stops there, and the SDK's parse fails within
those tokens.
"""

from __future__ import annotations

import re

__all__ = ["ValueCounter"]

_SPACE = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
"""A string's text up to its closing quote (or a lone backslash, or the piece's end)."""
_BARE = re.compile(rb'[^ \t\n\r\[\]{},:"]*')
"""The rest of a number, ``true``, ``false`` or ``null``."""
_FIRST = frozenset(b'{["-0123456789tfn\xef')
"""The bytes a JSON text's first value starts with (``\xef``: a UTF-8 byte order mark's)."""

_OBJECT, _ARRAY = 1, 0


def _end(pattern: re.Pattern[bytes], piece: bytes, at: int) -> int:
    """Where ``pattern`` (which matches the empty text too) ends, matched at ``at``."""
    found = pattern.match(piece, at)
    return at if found is None else found.end()


class ValueCounter:
    """The count of the JSON values of one text read in pieces, up to a bound.

    ``feed`` each piece as it comes; ``over`` says once the text has held over ``most``
    values, ``not_json`` once its first byte has said it is no JSON (see the module).
    ``reset`` starts on the next text.
    """

    __slots__ = (
        "_bare",
        "_escaped",
        "_key",
        "_kinds",
        "_string",
        "_tokens",
        "count",
        "most",
        "not_json",
        "over",
    )

    def __init__(self, most: int) -> None:
        self.most = most
        self.reset()

    def reset(self) -> None:
        """Start counting a new text."""
        self.count = 0
        self.over = False
        self.not_json = False
        self._tokens = 0
        self._kinds = bytearray()  # the open containers, innermost last
        self._key = False  # whether the next string is an object's key
        self._string = False  # in a string (a piece ended inside it)
        self._escaped = False  # ... right after its backslash
        self._bare = False  # in a number or literal (a piece ended inside it)

    def feed(self, piece: bytes) -> bool:
        """Count the values that start in ``piece``; whether the text is over the bound now."""
        if self.over or self.not_json or self._tokens > 5 * self.most + 5:
            return self.over
        at, end = 0, len(piece)
        if self._string:
            at = self._in_string(piece, at)
        elif self._bare:
            at = _end(_BARE, piece, at)
            self._bare = at == end
        while at < end:
            at = _end(_SPACE, piece, at)
            if at == end:
                break
            self._tokens += 1
            if self._tokens > 5 * self.most + 5:
                break  # (no JSON within the bound: its parse fails, see the module)
            byte = piece[at]
            if self._tokens == 1 and byte not in _FIRST:
                self.not_json = True  # (an HTML page, a word: its reader says what came)
                break
            at += 1
            if byte == 0x22:  # "
                if not self._key:
                    self.count += 1
                self._key = False
                self._string = True
                at = self._in_string(piece, at)
            elif byte in b"{[":
                self.count += 1
                self._kinds.append(_OBJECT if byte == 0x7B else _ARRAY)
                self._key = byte == 0x7B
            elif byte in b"]}":
                if self._kinds:
                    self._kinds.pop()
                self._key = False
            elif byte == 0x2C:  # ,
                self._key = bool(self._kinds) and self._kinds[-1] == _OBJECT
            elif byte == 0x3A:  # :
                self._key = False
            else:
                self.count += 1
                at = _end(_BARE, piece, at)
                self._bare = at == end
            if self.count > self.most:
                self.over = True
                break
        return self.over

    def _in_string(self, piece: bytes, at: int) -> int:
        """Read on in a string from ``at``; where it ended (``len(piece)``: it goes on)."""
        if self._escaped:
            if at == len(piece):
                return at
            at += 1  # (the escaped byte)
            self._escaped = False
        at = _end(_STRING, piece, at)
        if at == len(piece):
            return at
        if piece[at] == 0x5C:  # a backslash, the piece's last byte: its byte comes next
            self._escaped = True
            return len(piece)
        self._string = False  # the closing quote
        return at + 1
