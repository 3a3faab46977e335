"""What the declared field types of a ``Frozen`` model say about mutability.

Two questions, both answered once per class: does a field annotation name a mutable
container (then the class is refused), and can a field hold a mutable value after pydantic
has validated it (then every new model checks that field's value and freezes it)?
"""

from __future__ import annotations

import datetime
import types
import typing
from collections import deque
from collections.abc import Generator, Iterable, MutableSequence, MutableSet
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import Any
from uuid import UUID

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

__all__ = ["mutable_part", "one_shot", "unsure_fields"]

_MUTABLE_ORIGINS: tuple[type, ...] = (list, set, bytearray, deque, MutableSequence, MutableSet)

_ONE_SHOT_ORIGINS: frozenset[object] = frozenset({Iterable, Generator})
"""Annotations pydantic validates into an iterator, consumed by its first reader (a field
declared so would read empty the second time, and a promise given to it would be taken,
to fail only when read): exactly these, not their subclasses (a tuple is iterable too)."""

_IMMUTABLE_LEAVES: frozenset[object] = frozenset(
    {
        str,
        int,
        float,
        bool,
        bytes,
        complex,
        type(None),
        None,
        Decimal,
        Fraction,
        UUID,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
    }
)
_UNIONS: tuple[object, ...] = (typing.Union, types.UnionType)


def one_shot(annotation: object) -> bool:
    """Whether pydantic validates ``annotation`` into an iterator (used up by its first reader)."""
    return (typing.get_origin(annotation) or annotation) in _ONE_SHOT_ORIGINS


def mutable_part(annotation: object, frozen_base: type[BaseModel]) -> object | None:
    """A mutable container type (or a mutable model, or an iterator) inside an annotation."""
    if one_shot(annotation):
        return annotation
    origin = typing.get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, _MUTABLE_ORIGINS):
        return annotation
    if (
        isinstance(origin, type)
        and issubclass(origin, BaseModel)
        and not issubclass(origin, frozen_base)
    ):
        return annotation
    for argument in typing.get_args(annotation):
        found = mutable_part(argument, frozen_base)
        if found is not None:
            return found
    return None


def _only_constraints(metadata: Iterable[object]) -> bool:
    """Whether ``metadata`` only constrains values (a validator may return anything)."""
    return all(isinstance(item, annotated_types.BaseMetadata) for item in metadata)


def _surely_immutable(annotation: Any, frozen_base: type[BaseModel]) -> bool:
    """Whether every value pydantic validates against ``annotation`` is immutable."""
    if annotation in _IMMUTABLE_LEAVES:
        return True
    origin = typing.get_origin(annotation)
    if origin is None:
        return isinstance(annotation, type) and issubclass(annotation, (frozen_base, Enum))
    arguments = typing.get_args(annotation)
    if origin is typing.Literal:
        return True  # literals are str, bytes, int, bool, None or enum members
    if origin is typing.Annotated:
        return _only_constraints(arguments[1:]) and _surely_immutable(arguments[0], frozen_base)
    if origin in _UNIONS or origin is tuple or origin is frozenset:
        return all(
            argument is Ellipsis or _surely_immutable(argument, frozen_base)
            for argument in arguments
        ) and bool(arguments)
    return False


def _immutable_value(value: object, frozen_base: type[BaseModel]) -> bool:
    """Whether ``value`` (a default, which pydantic does not validate) is immutable."""
    if value is PydanticUndefined or type(value) in _IMMUTABLE_LEAVES:
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_immutable_value(item, frozen_base) for item in value)
    return isinstance(value, (frozen_base, Enum))


def unsure_fields(model: type[BaseModel], frozen_base: type[BaseModel]) -> tuple[str, ...]:
    """The declared fields of ``model`` whose validated values may still need freezing.

    A field is sure when its annotation admits only immutable values (``str``, numbers,
    ``None``, enums, ``Frozen`` models, tuples and frozensets of those, ...), its default
    is immutable too (defaults are not validated; a default factory may return anything),
    and no validator of the field or the model may replace its value.
    """
    fields: dict[str, FieldInfo] = model.__pydantic_fields__
    decorators = model.__pydantic_decorators__
    own_validators = [name for name in decorators.model_validators if name != "_freeze_values"]
    if decorators.field_validators or own_validators:
        return tuple(fields)
    return tuple(
        name
        for name, field in fields.items()
        if not (
            _only_constraints(field.metadata)
            and _surely_immutable(field.annotation, frozen_base)
            and field.default_factory is None
            and _immutable_value(field.default, frozen_base)
        )
    )
