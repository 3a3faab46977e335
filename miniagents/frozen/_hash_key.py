"""The canonical encoding behind ``Frozen.hash_key``: type-tagged, unambiguous, as ``==`` is.

``hash_key`` is the SHA-256 hex digest of :func:`canonical_bytes`. Every value is encoded as
a tag byte followed by a self-delimiting body, so a concatenation of encodings reads back in
one way only (unequal values never share an encoding), and values that compare equal get
one encoding:

* numbers by their exact value, in hexadecimal: ``1``, ``1.0``, ``True``, ``Decimal("1.0")``,
  ``Fraction(1)`` and ``1 + 0j`` are ``i1;``; ``0.0`` and ``-0.0`` are ``i0;``; other finite
  values are a reduced fraction ``q<p>/<q>;`` (``0.5`` is ``q1/2;``); ``c`` and two numbers
  for a complex number with an imaginary part; ``I+`` / ``I-`` the infinities, ``Q`` NaN;
* ``s<len>:<utf-8>`` for text (lone surrogates kept), ``b<len>:<raw>`` for bytes;
* ``t`` tuples (named tuples included, as they equal plain ones), ``l`` lists, ``e`` sets and
  frozensets, ``m`` mappings: a count, then the items; set items and mapping entries sorted by
  their encodings, so the order of insertion and of ``PYTHONHASHSEED`` never shows;
* ``o`` pydantic models: the class's ``__module__`` and ``__qualname__``, then the public fields
  (declared and extra, sorted by name); private attributes are left out;
* ``E`` enum members (those that are not ``int`` / ``str`` / ``float`` subclasses, which encode as
  those): the class, then the member's value;
* ``d`` naive datetimes, ``D`` aware ones (as their UTC instant), ``y`` dates, ``h`` / ``H``
  naive / aware times, ``r`` timedeltas, all in whole microseconds; ``u`` UUIDs; ``N`` None.

Where the key and ``==`` part ways, by design: every NaN gets one key (though
``nan != nan``); a class redefined under the same module and name counts as the same class;
two aware datetimes of one ``tzinfo`` that differ only by ``fold`` compare equal but are keyed
by their two UTC instants. Anything else, and a ``Decimal`` whose exponent is beyond ±5000
(its exact value would be a huge integer), raises
:class:`~miniagents.frozen.errors.HashKeyError`, which names the field path and the type.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from functools import partial
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from miniagents.arguments import a_class
from miniagents.frozen.errors import HashKeyError

__all__ = ["TOO_DEEP_FIX", "canonical_bytes", "hash_key_of"]

TOO_DEEP_FIX = "Flatten them (e.g. keep a deep structure as a JSON string)."
"""The fix for values nested too deeply to freeze or to encode, for the errors that say so."""

_MICROSECOND = datetime.timedelta(microseconds=1)
_EPOCH = datetime.datetime.min
_DECIMAL_EXPONENTS = range(-5000, 5001)
"""Decimals beyond these exponents are refused: their exact value would be a huge integer."""


class _Unencodable(Exception):
    """Raised inside the encoder; collects the path to the value on its way out."""

    def __init__(self, value: object, reason: str = "which has no canonical encoding") -> None:
        super().__init__(value)
        self.value = value
        self.reason = reason
        self.path: list[str] = []  # innermost segment first


def _ratio(numerator: int, denominator: int) -> bytes:
    if denominator == 1:
        return b"i%x;" % numerator
    return b"q%x/%x;" % (numerator, denominator)


def _int(value: Any) -> bytes:
    return b"i%x;" % int(value)  # hexadecimal: no digit limit, unlike str(int)


def _float(value: Any) -> bytes:
    if value.is_integer():
        return b"i%x;" % int(value)
    if value != value:
        return b"Q"
    if value in (float("inf"), float("-inf")):
        return b"I+" if value > 0 else b"I-"
    return _ratio(*value.as_integer_ratio())


def _decimal(value: Any) -> bytes:
    if value.is_nan():
        return b"Q"
    if value.is_infinite():
        return b"I+" if value > 0 else b"I-"
    if value.as_tuple().exponent not in _DECIMAL_EXPONENTS:
        raise _Unencodable(value, f"whose exponent is beyond ±{_DECIMAL_EXPONENTS.stop - 1}")
    return _ratio(*value.as_integer_ratio())


def _fraction(value: Any) -> bytes:
    return _ratio(value.numerator, value.denominator)


def _complex(value: Any) -> bytes:
    if value.imag == 0:
        return _float(value.real)
    return b"c" + _float(value.real) + _float(value.imag)


def _str(value: Any) -> bytes:
    data = value.encode("utf-8", "surrogatepass")
    return b"s%d:%b" % (len(data), data)


def _bytes(value: Any) -> bytes:
    return b"b%d:%b" % (len(value), value)


def _items(tag: bytes, value: Any) -> bytes:
    parts = []
    for index, item in enumerate(value):
        try:
            parts.append(encode(item))
        except _Unencodable as error:
            error.path.append(f"[{index}]")
            raise
    return b"%b%d:%b" % (tag, len(parts), b"".join(parts))


def _set(value: Any) -> bytes:
    try:
        parts = sorted([encode(item) for item in value])
    except _Unencodable as error:
        error.path.append("[<a set element>]")
        raise
    return b"e%d:%b" % (len(parts), b"".join(parts))


def _mapping(value: Any) -> bytes:
    parts = []
    for key, item in value.items():
        try:
            encoded_key = encode(key)
        except _Unencodable as error:
            error.path.append("[<a key>]")
            raise
        try:
            parts.append(encoded_key + encode(item))
        except _Unencodable as error:
            error.path.append(f"[{key!r}]")
            raise
    parts.sort()  # keys are distinct, and their encodings prefix-free: this sorts by key
    return b"m%d:%b" % (len(parts), b"".join(parts))


def _class(kind: type) -> bytes:
    return _str(kind.__module__) + _str(kind.__qualname__)


_LAYOUTS: dict[type, tuple[bytes, tuple[tuple[str, bytes], ...]]] = {}
"""Per model class: its encoded class, and its declared fields with their encoded names."""


def _layout(kind: Any) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    layout = _LAYOUTS[kind] = (
        b"o" + _class(kind),
        tuple((name, _str(name)) for name in kind.model_fields),
    )
    return layout


def _model(value: Any) -> bytes:
    kind = type(value)
    prefix, names = _LAYOUTS.get(kind) or _layout(kind)
    values = value.__dict__
    parts = []
    for name, encoded_name in names:
        if name in values:  # always, unless the model was built by model_construct()
            try:
                parts.append(encoded_name + encode(values[name]))
            except _Unencodable as error:
                error.path.append(f".{name}")
                raise
    extra = value.__pydantic_extra__
    if extra:
        for name, item in extra.items():
            try:
                parts.append(_str(name) + encode(item))
            except _Unencodable as error:
                error.path.append(f".{name}")
                raise
    parts.sort()
    return b"%b%d:%b" % (prefix, len(parts), b"".join(parts))


def _enum(value: Any) -> bytes:
    try:
        return b"E" + _class(type(value)) + encode(value.value)
    except _Unencodable as error:
        error.path.append(".value")
        raise


def _datetime(value: Any) -> bytes:
    offset = value.utcoffset()
    micros = (value.replace(tzinfo=None) - _EPOCH) // _MICROSECOND
    if offset is None:
        return b"d%x;" % micros
    return b"D%x;" % (micros - offset // _MICROSECOND)


def _date(value: Any) -> bytes:
    return b"y%x;" % value.toordinal()


def _time(value: Any) -> bytes:
    micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
    offset = value.utcoffset()
    if offset is None:
        return b"h%x;" % micros
    return b"H%x;" % (micros - offset // _MICROSECOND)


def _timedelta(value: Any) -> bytes:
    return b"r%x;" % (value // _MICROSECOND)


def _uuid(value: Any) -> bytes:
    return b"u%x;" % value.int


_Encoder = Callable[[Any], bytes]

# Checked in this order for subclasses (e.g. bool and IntEnum are ints, datetime is a date);
# exact types are then looked up directly.
_BY_BASE: tuple[tuple[type, _Encoder], ...] = (
    (type(None), lambda _value: b"N"),
    (int, _int),
    (float, _float),
    (str, _str),
    (bytes, _bytes),
    (BaseModel, _model),
    (tuple, partial(_items, b"t")),
    (Mapping, _mapping),
    (frozenset, _set),
    (set, _set),
    (list, partial(_items, b"l")),
    (Decimal, _decimal),
    (Fraction, _fraction),
    (complex, _complex),
    (Enum, _enum),
    (datetime.datetime, _datetime),
    (datetime.date, _date),
    (datetime.time, _time),
    (datetime.timedelta, _timedelta),
    (UUID, _uuid),
)
_BY_TYPE: dict[type, _Encoder] = dict(_BY_BASE)
"""The encoder of each type met so far (a subclass gets its base's, found once)."""


def encode(value: object) -> bytes:
    """The canonical encoding of one value (see the module docstring)."""
    kind = type(value)
    encoder = _BY_TYPE.get(kind)
    if encoder is None:
        for base, candidate in _BY_BASE:
            if issubclass(kind, base):
                encoder = _BY_TYPE[kind] = candidate
                break
        else:
            raise _Unencodable(value)
    return encoder(value)


def canonical_bytes(model: BaseModel) -> bytes:
    """The canonical encoding of a model: its class and its public fields.

    Raises:
        HashKeyError: if a value (or the nesting depth) has no canonical encoding.
    """
    try:
        return _model(model)
    except _Unencodable as error:
        kind = type(error.value)
        path = "".join(reversed(error.path)).removeprefix(".")
        raise HashKeyError(
            f"Cannot compute the hash_key of this {type(model).__qualname__}: the field "
            f"{path} holds {a_class(kind)} ({kind.__module__}.{kind.__qualname__}), "
            f"{error.reason}. Keep to "
            "str, bytes, numbers, None, tuples, lists, sets, dicts, enums, dates and times, "
            "UUIDs and pydantic models in a Frozen model, or convert the value to one of them "
            "before building the model."
        ) from None
    except RecursionError:
        raise HashKeyError(
            f"Cannot compute the hash_key of this {type(model).__qualname__}: its values are "
            f"nested too deeply. {TOO_DEEP_FIX}"
        ) from None


def hash_key_of(model: BaseModel) -> str:
    """The SHA-256 hex digest of :func:`canonical_bytes`."""
    return hashlib.sha256(canonical_bytes(model)).hexdigest()
