"""``Frozen``: deeply immutable, hashable pydantic models.

A ``Frozen`` model accepts extra fields and freezes every value it holds, however
deeply nested: dicts become :class:`FrozenDict`, lists become tuples, sets become
frozensets and mutable pydantic models become ``Frozen`` models. Assigning a field
raises (pydantic's ``ValidationError``), and so does mutating a nested container
(:class:`FrozenInstanceError`). Two models are equal when they are of the same class
and hold the same content; ``hash_key`` is a stable SHA-256 of that content.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections import deque
from collections.abc import Mapping, MutableSequence, MutableSet
from typing import Any, NoReturn

from pydantic import BaseModel, Field, PrivateAttr, model_validator
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import to_jsonable_python
from typing_extensions import Self, dataclass_transform

from miniagents.promising.errors import FrozenInstanceError

__all__ = ["Frozen", "FrozenDict", "freeze"]

_MUTABLE_ORIGINS: tuple[type, ...] = (list, set, bytearray, deque, MutableSequence, MutableSet)


class FrozenDict(dict[Any, Any]):
    """An immutable, hashable ``dict``; it stays a ``dict`` so pydantic serializes it."""

    __slots__ = ()

    def _refuse(self, *_args: object, **_kwargs: object) -> NoReturn:
        raise FrozenInstanceError(
            "This mapping belongs to a Frozen model and cannot be changed. "
            "Build a new model instead, e.g. `model.model_copy(update={...})`."
        )

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        """Hash by content; every value inside is frozen, hence hashable."""
        return hash(frozenset(self.items()))

    def __or__(self, other: object) -> FrozenDict:
        """Merge into a new frozen mapping (``|`` never mutates)."""
        if not isinstance(other, Mapping):
            return NotImplemented
        return FrozenDict({**self, **{key: freeze(value) for key, value in other.items()}})

    def __ror__(self, other: object) -> FrozenDict:
        """Merge into a new frozen mapping (``|`` never mutates)."""
        if not isinstance(other, Mapping):
            return NotImplemented
        return FrozenDict({**{key: freeze(value) for key, value in other.items()}, **self})

    def __copy__(self) -> FrozenDict:
        """An immutable mapping is its own copy."""
        return self

    def __deepcopy__(self, _memo: object) -> FrozenDict:
        """An immutable mapping with frozen values is its own deep copy."""
        return self

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[Any, Any]]]:
        """Pickle as the class and a plain dict of the content."""
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        """Show the mapping like a plain dict."""
        return dict.__repr__(self)


def freeze(value: object) -> object:
    """Return an immutable equivalent of ``value`` (the value itself when already immutable)."""
    if isinstance(value, Frozen):
        return value
    if isinstance(value, BaseModel):
        return Frozen(**dict(value))
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if type(value) is list:
        return tuple(freeze(item) for item in value)
    if isinstance(value, tuple):
        return _freeze_tuple(value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(item) for item in value)
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _freeze_tuple(value: tuple[object, ...]) -> tuple[object, ...]:
    items = tuple(freeze(item) for item in value)
    if all(new is old for new, old in zip(items, value, strict=True)):
        return value
    if type(value) is tuple:
        return items
    kind: Any = type(value)
    if hasattr(kind, "_fields"):  # a named tuple takes its items positionally
        return kind(*items)  # type: ignore[no-any-return]
    return kind(items)  # type: ignore[no-any-return]


def _canonical(value: object) -> object:
    """A JSON-ready form of a frozen value that is the same in every process."""
    if isinstance(value, Frozen):
        extra = value.__pydantic_extra__ or {}
        fields = {**value.__dict__, **extra}
        return {"class_": type(value).__qualname__, **{k: _canonical(v) for k, v in fields.items()}}
    if isinstance(value, Mapping):
        items = [[_canonical(key), _canonical(item)] for key, item in value.items()]
        if all(isinstance(key, str) for key in value):
            return {pair[0]: pair[1] for pair in items}
        return sorted(items, key=_json)
    if isinstance(value, tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, frozenset):
        return sorted((_canonical(item) for item in value), key=_json)
    return to_jsonable_python(value)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _mutable_part(annotation: object) -> object | None:
    """Find a mutable container type (or a mutable model) inside a field annotation."""
    origin = typing.get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, _MUTABLE_ORIGINS):
        return annotation
    if (
        isinstance(origin, type)
        and issubclass(origin, BaseModel)
        and not issubclass(origin, Frozen)
    ):
        return annotation
    for argument in typing.get_args(annotation):
        found = _mutable_part(argument)
        if found is not None:
            return found
    return None


@dataclass_transform(
    kw_only_default=True, frozen_default=True, field_specifiers=(Field, PrivateAttr)
)
class _FrozenMeta(ModelMetaclass):
    """Tells type checkers that every subclass of ``Frozen`` is frozen too."""


class Frozen(BaseModel, metaclass=_FrozenMeta, frozen=True, extra="allow"):
    """An immutable pydantic model with deeply frozen, content-hashable values.

    Example:
        >>> point = Frozen(x=1, tags=["a", "b"])
        >>> point.tags
        ('a', 'b')
    """

    _hash_key: str | None = PrivateAttr(default=None)

    def __init__(self, **data: object) -> None:
        """Validate ``data`` (declared fields and any extra ones) and freeze it."""
        super().__init__(**data)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Reject field annotations that name a mutable container."""
        super().__pydantic_init_subclass__(**kwargs)
        for name, field in cls.model_fields.items():
            mutable = _mutable_part(field.annotation)
            if mutable is not None:
                raise TypeError(
                    f"Field {name!r} of the Frozen model {cls.__qualname__} is declared as "
                    f"{mutable!r}, which is mutable. Declare it immutable instead, e.g. "
                    "tuple[X, ...] for a list, frozenset[X] for a set, or a Frozen subclass "
                    "for a pydantic model."
                )

    @model_validator(mode="after")
    def _freeze_values(self) -> Self:
        """Replace every mutable value, declared or extra, by a frozen equivalent."""
        values = self.__dict__
        for name, value in values.items():
            frozen = freeze(value)
            if frozen is not value:
                values[name] = frozen
        extra = self.__pydantic_extra__
        if extra:
            for name, value in extra.items():
                frozen = freeze(value)
                if frozen is not value:
                    extra[name] = frozen
        return self

    def _content(self) -> tuple[object, ...]:
        extra = self.__pydantic_extra__ or {}
        return (type(self), tuple(self.__dict__.items()), tuple(sorted(extra.items())))

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class and holding the same content."""
        if not isinstance(other, Frozen):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.__dict__ == other.__dict__
            and (self.__pydantic_extra__ or {}) == (other.__pydantic_extra__ or {})
        )

    def __hash__(self) -> int:
        """Hash by class and content."""
        return hash(self._content())

    @property
    def hash_key(self) -> str:
        """A stable SHA-256 hex digest of the class name and the content.

        The same content gives the same key in every process and on every machine: the
        digest is taken over canonical JSON (sorted keys, sets sorted, nested models
        with their class names).

        Raises:
            pydantic_core.PydanticSerializationError: if a value cannot be turned into JSON.
        """
        if self._hash_key is None:
            canonical = _json(_canonical(self))
            self._hash_key = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return self._hash_key

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Return a model with ``update`` applied, validated and frozen like a new one.

        Without ``update`` the model itself is returned: an immutable value is its own copy.
        """
        if not update:
            return self
        return self.model_validate({**dict(self), **update})
