"""``Frozen``: deeply immutable, hashable pydantic models.

A ``Frozen`` model accepts extra fields and freezes every value it holds, however
deeply nested: dicts become :class:`FrozenDict`, lists become tuples, sets become
frozensets and mutable pydantic models become ``Frozen`` models. Assigning a field
raises :class:`FrozenInstanceError` (naming ``model_copy(update=...)``), and so does
mutating a nested container. Two models are equal when they are of the same class
and hold the same public content (private attributes never count); ``hash_key`` is a
stable SHA-256 of a canonical encoding of it (:mod:`miniagents.frozen._hash_key`).

Building a model costs little more than building a plain frozen pydantic model: nothing
private is set up per instance (the hash and the key are cached in slots, on first use),
and only values that may be mutable are walked and frozen (declared fields whose type
admits only immutable values are skipped; see :mod:`miniagents.frozen._field_types`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, MutableSequence, MutableSet
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Self, get_origin

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, model_validator
from pydantic._internal._model_construction import ModelMetaclass
from typing_extensions import dataclass_transform

from miniagents.frozen._field_types import mutable_part, one_shot, unsure_fields
from miniagents.frozen._hash_key import TOO_DEEP_FIX, hash_key_of
from miniagents.frozen.errors import FrozenFieldError, FrozenInstanceError, HashKeyError
from miniagents.reexports import resolve_own_annotations

__all__ = ["Frozen", "FrozenDict", "freeze", "plain"]


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


_ATOMIC: frozenset[type] = frozenset({str, int, float, bool, bytes, complex, type(None)})
"""Exact types whose values are immutable and hold nothing: never copied, never walked."""


def freeze(value: object) -> object:
    """Return an immutable equivalent of ``value`` (the value itself when already immutable)."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is FrozenDict:
        return _freeze_values_of(value)  # type: ignore[arg-type]
    atomic = _ATOMIC  # below, atomic items are kept without a call
    if kind is dict:  # the common containers first, by exact type
        items: Any = value
        return FrozenDict({k: v if type(v) in atomic else freeze(v) for k, v in items.items()})
    if kind is list:
        items = value
        return tuple([v if type(v) in atomic else freeze(v) for v in items])
    if kind is tuple:
        return _freeze_tuple(value)  # type: ignore[arg-type]
    if kind is set:
        items = value
        return frozenset([v if type(v) in atomic else freeze(v) for v in items])
    if isinstance(value, Frozen):
        return value
    if isinstance(value, BaseModel):
        return Frozen(**dict(value))
    if isinstance(value, FrozenDict):
        return _freeze_values_of(value)
    if isinstance(value, Mapping):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, tuple):
        return _freeze_tuple(value)
    if isinstance(value, frozenset):
        if all(type(item) in atomic for item in value):
            return value
        return frozenset(freeze(item) for item in value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (set, MutableSet)):
        return frozenset(freeze(item) for item in value)
    if isinstance(value, MutableSequence):  # a list subclass, a deque, ...
        return tuple(freeze(item) for item in value)
    return value


def plain(value: object) -> object:
    """A frozen value as plain JSON-able containers (dicts and lists): ``freeze`` undone."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _freeze_values_of(value: FrozenDict) -> FrozenDict:
    """``value`` itself when its values are frozen, else a ``FrozenDict`` of them frozen.

    A ``FrozenDict`` refuses to change, but one made by hand may hold a list: kept as it is,
    it would leave the model that holds it mutable, and unhashable.
    """
    changed: dict[Any, object] | None = None
    for key, item in value.items():
        if type(item) in _ATOMIC:
            continue
        frozen = freeze(item)
        if frozen is not item:
            if changed is None:
                changed = dict(value)
            changed[key] = frozen
    return value if changed is None else FrozenDict(changed)


def _freeze_tuple(value: tuple[object, ...]) -> tuple[object, ...]:
    if all(type(item) in _ATOMIC for item in value):
        return value
    items = tuple([item if type(item) in _ATOMIC else freeze(item) for item in value])
    if all(new is old for new, old in zip(items, value, strict=True)):
        return value
    if type(value) is tuple:
        return items
    kind: Any = type(value)
    if hasattr(kind, "_fields"):  # a named tuple takes its items positionally
        return kind(*items)  # type: ignore[no-any-return]
    return kind(items)  # type: ignore[no-any-return]


@dataclass_transform(
    kw_only_default=True, frozen_default=True, field_specifiers=(Field, PrivateAttr)
)
class _FrozenMeta(ModelMetaclass):
    """Tells type checkers that every subclass of ``Frozen`` is frozen too."""


class Frozen(BaseModel, metaclass=_FrozenMeta, frozen=True, extra="allow"):
    """An immutable pydantic model with deeply frozen, content-hashable values.

    Its identity is its class and its public content: equality, ``hash()`` and
    ``hash_key`` read the declared and extra fields only, never private attributes.

    Example:
        >>> point = Frozen(x=1, tags=["a", "b"])
        >>> point.tags
        ('a', 'b')
    """

    # Lazily computed caches, kept out of the content (and out of pickles and copies):
    # no per-instance set-up. ``__weakref__`` keeps models weakly referenceable.
    __slots__ = ("__weakref__", "_frozen_hash", "_frozen_key")

    __frozen_fields__: ClassVar[tuple[str, ...]] = ()
    """The names of the declared fields."""
    __frozen_unsure__: ClassVar[tuple[str, ...]] = ()
    """The declared fields whose validated values may still need freezing."""

    if TYPE_CHECKING:

        def __init__(self, **data: object) -> None:
            """Validate ``data`` (declared fields and any extra ones) and freeze it."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Reject field annotations that name a mutable container; note which fields to check."""
        super().__pydantic_init_subclass__(**kwargs)
        for name, field in cls.model_fields.items():
            mutable = mutable_part(field.annotation, Frozen)
            if mutable is not None:
                raise FrozenFieldError(
                    f"Field {name!r} of the Frozen model {cls.__qualname__} is declared as "
                    f"{mutable!r}, {_why_mutable(mutable)}. Declare it immutable instead, "
                    "e.g. tuple[X, ...] for a list or an iterable, frozenset[X] for a set, or "
                    "a Frozen subclass for a pydantic model (from miniagents import Frozen)."
                )
        cls.__frozen_fields__ = tuple(cls.model_fields)
        cls.__frozen_unsure__ = unsure_fields(cls, Frozen)

    @model_validator(mode="after")
    def _freeze_values(self) -> Self:
        """Replace every mutable value, declared or extra, by a frozen equivalent.

        Raises:
            HashKeyError: if a value is nested too deeply to be frozen (or keyed).
        """
        values = self.__dict__
        name = ""
        try:
            for name in self.__frozen_unsure__:
                value = values[name]
                if type(value) not in _ATOMIC:
                    frozen = freeze(value)
                    if frozen is not value:
                        values[name] = frozen
            extra = self.__pydantic_extra__
            if extra:
                for name, value in extra.items():
                    if type(value) not in _ATOMIC:
                        frozen = freeze(value)
                        if frozen is not value:
                            extra[name] = frozen
        except RecursionError:
            raise HashKeyError(
                f"Cannot build this {type(self).__qualname__}: its field {name!r} holds values "
                f"nested too deeply. {TOO_DEEP_FIX}"
            ) from None
        return self

    if not TYPE_CHECKING:  # (declared, they would let type checkers set any attribute)

        def __setattr__(self, name: str, value: object) -> None:
            """Refuse to set a field: the model is immutable (private attributes may be set).

            Raises:
                FrozenInstanceError: naming the fix, a changed copy or a new model.
            """
            try:
                super().__setattr__(name, value)
            except ValidationError:  # pydantic's frozen_instance, which names no fix
                raise _immutable(self, name, "set") from None

        def __delattr__(self, name: str) -> None:
            """Refuse to delete a field: the model is immutable.

            Raises:
                FrozenInstanceError: naming the fix, a changed copy or a new model.
            """
            try:
                super().__delattr__(name)
            except ValidationError:
                raise _immutable(self, name, "delete") from None

    def _public(self) -> dict[str, object]:
        """The declared fields' values, without private attributes set on the instance."""
        values = self.__dict__
        names = self.__frozen_fields__
        if len(values) == len(names):
            return values
        return {name: values[name] for name in names if name in values}

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class and holding the same public content."""
        if self is other:
            return True
        if type(other) is not type(self):
            return False if isinstance(other, Frozen) else NotImplemented
        mine, theirs = self.__dict__, other.__dict__
        count = len(self.__frozen_fields__)
        if len(mine) != count or len(theirs) != count:  # private attributes set on one
            mine, theirs = self._public(), other._public()
        return mine == theirs and (self.__pydantic_extra__ or {}) == (
            other.__pydantic_extra__ or {}
        )

    def __hash__(self) -> int:
        """Hash by class and public content (computed once)."""
        cached: int | None = getattr(self, "_frozen_hash", None)
        if cached is not None:
            return cached
        extra = self.__pydantic_extra__
        content = (
            type(self),
            tuple(self._public().items()),
            frozenset(extra.items()) if extra else None,
        )
        result = hash(content)
        object.__setattr__(self, "_frozen_hash", result)
        return result

    @property
    def hash_key(self) -> str:
        """A stable SHA-256 hex digest of the class and the public content (computed once).

        It agrees with ``==``: equal models have equal keys, and unequal ones different
        keys (``1``, ``1.0`` and ``True`` are equal; ``"1"``, ``b"1"`` and ``(1,)`` are not).
        Two exceptions: every NaN gets one key (though ``nan != nan``), and classes are told
        apart by ``__module__`` and ``__qualname__`` (so one redefined under the same name
        counts as the same). It is the same in every process and on every machine; the
        format is described in ``miniagents.frozen._hash_key``.

        Raises:
            HashKeyError: if a value has no canonical encoding (the error names the field
                path and the type), e.g. an arbitrary object given as an extra field.
        """
        cached: str | None = getattr(self, "_frozen_key", None)
        if cached is not None:
            return cached
        key = hash_key_of(self)
        object.__setattr__(self, "_frozen_key", key)
        return key

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Return a model with ``update`` applied, validated and frozen like a new one.

        As pydantic's own ``model_copy``, ``update`` names fields by their names (not their
        aliases; a name that is no field's is an extra field), and the copy keeps the
        private attributes. Without ``update`` the model itself is returned: an immutable
        value is its own copy.
        """
        if not update:
            return self
        data = {**self._public(), **(self.__pydantic_extra__ or {}), **update}
        if _VALIDATES_BY_NAME:
            copied = self.model_validate(data, by_alias=False, by_name=True)
        else:  # pydantic < 2.11: each field under the key validation reads (alias or name)
            copied = self.model_validate({_input_key(self, name): v for name, v in data.items()})
        object.__setattr__(copied, "__pydantic_fields_set__", self.model_fields_set | set(update))
        if self.__pydantic_private__:
            object.__setattr__(copied, "__pydantic_private__", dict(self.__pydantic_private__))
        return copied


_VALIDATES_BY_NAME = "by_name" in inspect.signature(BaseModel.model_validate).parameters
"""Whether pydantic validates a model from its fields' names when asked (pydantic 2.11+)."""


def _immutable(model: Frozen, field: str, change: str) -> FrozenInstanceError:
    """The error for setting or deleting (``change``) the field ``field`` of ``model``."""
    name = type(model).__name__
    copy = f"{name.lower()}.model_copy(update={{{field!r}: ...}})"
    return FrozenInstanceError(
        f"A {name} is immutable: it cannot {change} {field!r}. Make a changed copy instead, "
        f"{copy} (a new {name} with that field changed), or build a new {name}(...)."
    )


def _why_mutable(annotation: object) -> str:
    """Why a field declared as ``annotation`` (a mutable part) cannot be frozen, for a message."""
    if one_shot(annotation):
        return "which pydantic keeps as an iterator, used up by its first reader"
    origin = get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, BaseModel):
        return "a pydantic model that is not Frozen (its values could be changed)"
    return "which is mutable"


def _input_key(model: Frozen, name: str) -> str:
    """The key of ``name`` in data to validate: its field's alias, if that is a ``str``."""
    field = type(model).model_fields.get(name)
    if field is None:
        return name
    alias = field.validation_alias if field.validation_alias is not None else field.alias
    return alias if isinstance(alias, str) else name


# The classes' former home, kept as their module: a hash_key encodes a model's class by its
# __module__ and __qualname__, so a bare Frozen keeps the key it had before the move (keys
# are stable across versions), and pickles made before it still load (that module
# re-exports them).
resolve_own_annotations(Frozen)  # (first: that module does not import what they name)
Frozen.__module__ = FrozenDict.__module__ = "miniagents.promising.frozen"
