"""Tests for ``Frozen``: deeply immutable, content-hashable pydantic models."""

from __future__ import annotations

import collections
import collections.abc
import copy
import json
import pickle
import re
import sys
import weakref
from collections.abc import Callable
from typing import Annotated, Any

import pydantic
import pytest

import miniagents
from miniagents.errors import FrozenInstanceError as PublicFrozenInstanceError
from miniagents.promising import Frozen, FrozenDict, MiniAgentsError
from miniagents.promising.errors import FrozenInstanceError, HashKeyError


class Point(Frozen):
    x: int
    y: int = 0


class OtherPoint(Frozen):
    x: int
    y: int = 0


class Tagged(Frozen):
    name: str
    tags: tuple[str, ...] = ()
    labels: frozenset[str] = frozenset()
    scores: dict[str, int] = pydantic.Field(default_factory=dict)


class Plain(pydantic.BaseModel):
    """A regular, mutable pydantic model."""

    values: list[int]
    note: str = "plain"


def extra(model: pydantic.BaseModel, name: str) -> Any:
    """Read an extra field of a model in a way that type checks."""
    assert model.model_extra is not None
    return model.model_extra[name]


# --- exports -----------------------------------------------------------------------------


def test_frozen_is_reexported_from_the_package_root() -> None:
    assert miniagents.Frozen is Frozen
    assert "Frozen" in vars(miniagents)["__all__"]


def test_frozen_instance_error_is_a_minia_agents_error_and_a_type_error() -> None:
    assert PublicFrozenInstanceError is FrozenInstanceError
    assert issubclass(FrozenInstanceError, MiniAgentsError)
    assert issubclass(FrozenInstanceError, TypeError)


# --- extra fields --------------------------------------------------------------------------


def test_accepts_arbitrary_extra_fields() -> None:
    model = Frozen(name="Ada", age=36, ratio=0.5, flag=True, nothing=None)

    assert model.model_extra == {
        "name": "Ada",
        "age": 36,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
    }
    assert getattr(model, "name") == "Ada"  # noqa: B009 - extra fields are not typed
    assert getattr(model, "age") == 36  # noqa: B009
    assert model.model_dump() == {
        "name": "Ada",
        "age": 36,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
    }


def test_empty_model_has_no_fields() -> None:
    model = Frozen()

    assert model.model_dump() == {}
    assert model.model_extra == {}
    assert model == Frozen()


def test_accessing_a_missing_field_raises_attribute_error() -> None:
    model = Frozen(name="Ada")

    with pytest.raises(AttributeError, match="missing"):
        getattr(model, "missing")  # noqa: B009


def test_subclass_with_typed_fields_validates_and_keeps_extras() -> None:
    # mypy synthesizes __init__ of a subclass from its declared fields only, so extras
    # go in through a dict in typed code.
    extras: dict[str, Any] = {"color": "red"}
    point = Point(x=1, y=2, **extras)

    assert point.x == 1
    assert point.y == 2
    assert extra(point, "color") == "red"
    assert point.model_dump() == {"x": 1, "y": 2, "color": "red"}
    assert Point(x=5).y == 0


def test_subclass_with_typed_fields_rejects_invalid_values() -> None:
    with pytest.raises(pydantic.ValidationError, match="x"):
        Point(x="not a number")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match="x"):
        Point(y=3)  # type: ignore[call-arg]  # x is required


def test_subclass_typed_container_fields_are_coerced_and_frozen() -> None:
    model = Tagged(name="n", tags=["a", "b"], labels={"x", "y"}, scores={"a": 1})  # type: ignore[arg-type]

    assert model.tags == ("a", "b")
    assert type(model.tags) is tuple
    assert model.labels == frozenset({"x", "y"})
    assert type(model.labels) is frozenset
    assert type(model.scores) is FrozenDict
    assert model.scores == {"a": 1}
    with pytest.raises(FrozenInstanceError):
        model.scores["b"] = 2


# --- deep freezing ------------------------------------------------------------------------


def test_dict_becomes_frozen_dict() -> None:
    model = Frozen(mapping={"a": 1, "b": 2})
    mapping = extra(model, "mapping")

    assert type(mapping) is FrozenDict
    assert isinstance(mapping, dict)  # stays a dict, so pydantic serializes it
    assert mapping == {"a": 1, "b": 2}
    assert repr(mapping) == "{'a': 1, 'b': 2}"
    assert hash(mapping) == hash(FrozenDict({"b": 2, "a": 1}))


def test_frozen_dict_is_usable_as_a_dict_key() -> None:
    mapping = extra(Frozen(mapping={"a": 1}), "mapping")
    table = {mapping: "found"}

    assert table[FrozenDict({"a": 1})] == "found"
    assert FrozenDict({"a": 2}) not in table


def test_list_becomes_tuple() -> None:
    model = Frozen(items=[1, 2, 3])

    assert extra(model, "items") == (1, 2, 3)
    assert type(extra(model, "items")) is tuple


def test_set_becomes_frozenset() -> None:
    model = Frozen(members={1, 2, 3})

    assert extra(model, "members") == frozenset({1, 2, 3})
    assert type(extra(model, "members")) is frozenset


def test_bytearray_becomes_bytes() -> None:
    model = Frozen(data=bytearray(b"abc"))

    assert extra(model, "data") == b"abc"
    assert type(extra(model, "data")) is bytes


class Items(list[int]):
    """A list subclass."""


def test_other_mutable_sequences_and_sets_are_frozen_too() -> None:
    model = Frozen(
        queue=collections.deque([1, [2]]),
        listed=Items([3]),
        view=memoryview(b"ab"),
        nested={"q": collections.deque([{"k": [4]}])},
    )

    assert extra(model, "queue") == (1, (2,))
    assert extra(model, "listed") == (3,)
    assert type(extra(model, "listed")) is tuple
    assert extra(model, "view") == b"ab"
    assert type(extra(model, "view")) is bytes
    assert extra(model, "nested") == {"q": ({"k": (4,)},)}
    assert isinstance(hash(model), int)
    assert (
        model.hash_key
        == Frozen(queue=(1, (2,)), listed=(3,), view=b"ab", nested={"q": ({"k": [4]},)}).hash_key
    )


def test_nested_containers_are_frozen_all_the_way_down() -> None:
    model = Frozen(
        tree={"leaves": [1, {"deep": [2, 3]}, {4, 5}], "meta": {"inner": {"x": [6]}}},
        rows=[[1, 2], [3, {"k": [4]}]],
    )
    tree = extra(model, "tree")
    rows = extra(model, "rows")

    assert type(tree) is FrozenDict
    assert type(tree["leaves"]) is tuple
    assert type(tree["leaves"][1]) is FrozenDict
    assert tree["leaves"][1]["deep"] == (2, 3)
    assert type(tree["leaves"][2]) is frozenset
    assert type(tree["meta"]) is FrozenDict
    assert type(tree["meta"]["inner"]) is FrozenDict
    assert tree["meta"]["inner"]["x"] == (6,)

    assert rows == ((1, 2), (3, {"k": (4,)}))
    assert type(rows[1][1]) is FrozenDict
    # Everything is frozen, so the whole model hashes.
    assert isinstance(hash(model), int)


class Holder(Frozen):
    declared: object = None


@pytest.mark.parametrize("field", ["declared", "extra"])
def test_values_nested_too_deeply_to_freeze_are_a_hash_key_error_naming_the_field(
    field: str,
) -> None:
    nested: list[object] = []
    for _ in range(sys.getrecursionlimit()):
        nested = [nested]

    with pytest.raises(HashKeyError, match=f"Holder: its field '{field}' holds values nested"):
        Holder(**{field: nested})


def test_freezing_does_not_touch_the_callers_objects() -> None:
    source = {"items": [1, 2]}
    model = Frozen(source=source)

    source["items"].append(3)
    source["new"] = []

    assert extra(model, "source") == {"items": (1, 2)}


def test_mutable_pydantic_model_value_becomes_frozen() -> None:
    plain = Plain(values=[1, 2])
    model = Frozen(inner=plain)
    inner = extra(model, "inner")

    assert type(inner) is Frozen
    assert getattr(inner, "values") == (1, 2)  # noqa: B009
    assert getattr(inner, "note") == "plain"  # noqa: B009
    assert model.model_dump() == {"inner": {"values": (1, 2), "note": "plain"}}
    # The original model is left alone and stays mutable.
    plain.values.append(3)
    assert getattr(inner, "values") == (1, 2)  # noqa: B009
    with pytest.raises(FrozenInstanceError):
        setattr(inner, "values", (9,))  # noqa: B010


def test_frozen_model_value_is_kept_as_is() -> None:
    point = Point(x=1)
    model = Frozen(point=point)

    assert extra(model, "point") is point


def test_already_frozen_containers_keep_their_content() -> None:
    model = Frozen(items=(1, (2, [3])), members=frozenset({1, (2,)}), raw=b"x")

    assert extra(model, "items") == (1, (2, (3,)))
    assert type(extra(model, "items")) is tuple
    assert extra(model, "members") == frozenset({1, (2,)})
    assert type(extra(model, "members")) is frozenset
    assert extra(model, "raw") == b"x"


def test_a_frozen_dict_made_by_hand_has_its_values_frozen_too() -> None:
    # a FrozenDict refuses to change, but may hold a list: the model must not keep it so
    by_hand = FrozenDict({"tags": ["a"], "inner": {"more": ["b"]}})
    model = Frozen(mapping=by_hand, nested={"deep": by_hand})

    for mapping in (extra(model, "mapping"), extra(model, "nested")["deep"]):
        assert mapping == {"tags": ("a",), "inner": {"more": ("b",)}}
        assert type(mapping["tags"]) is tuple
        assert type(mapping["inner"]) is FrozenDict
    assert by_hand["tags"] == ["a"]  # the caller's object is left as it was
    assert hash(model) == hash(Frozen(mapping=by_hand, nested={"deep": by_hand}))
    frozen = FrozenDict({"tags": ("a",), "count": 1})
    assert extra(Frozen(mapping=frozen), "mapping") is frozen  # already frozen: kept


# --- assignment and mutation ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["name", "brand_new"])
def test_assigning_a_field_raises_frozen_instance_error(name: str) -> None:
    model = Frozen(name="Ada")

    with pytest.raises(FrozenInstanceError, match="immutable"):
        setattr(model, name, "Grace")

    assert model.model_dump() == {"name": "Ada"}


def test_assigning_a_typed_field_raises_frozen_instance_error() -> None:
    point = Point(x=1)

    with pytest.raises(FrozenInstanceError, match="immutable"):
        setattr(point, "x", 2)  # noqa: B010 - x is read-only for the type checker

    assert point.x == 1


def test_deleting_a_field_raises_frozen_instance_error() -> None:
    point = Point(x=1)
    model = Frozen(a=1)

    with pytest.raises(FrozenInstanceError, match="immutable"):
        delattr(point, "x")
    with pytest.raises(FrozenInstanceError, match="immutable"):
        delattr(model, "a")

    assert point.x == 1
    assert model.model_extra == {"a": 1}


def _setitem(mapping: dict[Any, Any]) -> None:
    mapping["new"] = 1


def _setitem_existing(mapping: dict[Any, Any]) -> None:
    mapping["a"] = 2


def _delitem(mapping: dict[Any, Any]) -> None:
    del mapping["a"]


def _ior(mapping: dict[Any, Any]) -> None:
    mapping |= {"new": 1}


MUTATIONS: list[tuple[str, Callable[[dict[Any, Any]], object]]] = [
    ("setitem", _setitem),
    ("setitem_existing", _setitem_existing),
    ("delitem", _delitem),
    ("update", lambda mapping: mapping.update({"new": 1})),
    ("update_kwargs", lambda mapping: mapping.update(new=1)),
    ("pop", lambda mapping: mapping.pop("a")),
    ("pop_default", lambda mapping: mapping.pop("missing", None)),
    ("popitem", lambda mapping: mapping.popitem()),
    ("clear", lambda mapping: mapping.clear()),
    ("setdefault", lambda mapping: mapping.setdefault("new", 1)),
    ("setdefault_existing", lambda mapping: mapping.setdefault("a", 1)),
    ("ior", _ior),
]


@pytest.mark.parametrize(("operation", "mutate"), MUTATIONS, ids=[name for name, _ in MUTATIONS])
def test_mutating_a_nested_frozen_dict_raises(
    operation: str, mutate: Callable[[dict[Any, Any]], object]
) -> None:
    model = Frozen(mapping={"a": 1, "nested": {"b": 2}})
    mapping = extra(model, "mapping")

    with pytest.raises(FrozenInstanceError) as raised:
        mutate(mapping)

    assert isinstance(raised.value, MiniAgentsError)
    assert isinstance(raised.value, TypeError)
    message = str(raised.value)
    assert "Frozen" in message
    assert "model_copy(update=" in message  # the error names a fix
    assert mapping == {"a": 1, "nested": {"b": 2}}, operation


@pytest.mark.parametrize(("operation", "mutate"), MUTATIONS, ids=[name for name, _ in MUTATIONS])
def test_mutating_a_deeply_nested_frozen_dict_raises(
    operation: str, mutate: Callable[[dict[Any, Any]], object]
) -> None:
    model = Frozen(outer=[{"inner": {"a": 1}}])
    inner = extra(model, "outer")[0]["inner"]

    with pytest.raises(FrozenInstanceError, match=re.escape("model_copy(update=")):
        mutate(inner)

    assert inner == {"a": 1}, operation


def test_catching_frozen_instance_error_as_type_error() -> None:
    mapping = extra(Frozen(mapping={"a": 1}), "mapping")

    with pytest.raises(TypeError):
        mapping["a"] = 2
    with pytest.raises(MiniAgentsError):
        mapping["a"] = 2


def test_non_mutating_dict_operations_still_work_on_frozen_dict() -> None:
    mapping = extra(Frozen(mapping={"a": 1, "b": 2}), "mapping")

    assert mapping["a"] == 1
    assert mapping.get("missing", "default") == "default"
    assert sorted(mapping) == ["a", "b"]
    assert len(mapping) == 2
    merged = mapping | {"c": 3}
    assert merged == {"a": 1, "b": 2, "c": 3}
    assert type(merged) is FrozenDict  # merging gives a new frozen mapping
    assert mapping == {"a": 1, "b": 2}


def test_nested_tuples_and_frozensets_have_no_mutators() -> None:
    model = Frozen(items=[1], members={1})

    assert not hasattr(extra(model, "items"), "append")
    assert not hasattr(extra(model, "members"), "add")


# --- equality and hashing ------------------------------------------------------------------


def test_equal_by_content() -> None:
    assert Frozen(a=1, b=[1, 2]) == Frozen(a=1, b=[1, 2])
    assert Frozen(a=1, b=2) == Frozen(b=2, a=1)  # field order does not matter
    assert Frozen(a={"x": [1]}) == Frozen(a={"x": (1,)})  # lists and tuples freeze alike
    assert Point(x=1, y=2) == Point(x=1, y=2)


def test_not_equal_when_content_differs() -> None:
    assert Frozen(a=1) != Frozen(a=2)
    assert Frozen(a=1) != Frozen(b=1)
    assert Frozen(a=1) != Frozen(a=1, b=2)
    assert Point(x=1) != Point(x=1, y=1)
    assert Point(x=1) != Point.model_validate({"x": 1, "extra_field": None})


def test_same_content_different_classes_are_not_equal() -> None:
    assert Point(x=1, y=2) != OtherPoint(x=1, y=2)
    assert OtherPoint(x=1, y=2) != Point(x=1, y=2)
    assert Point(x=1, y=2) != Frozen(x=1, y=2)
    assert Frozen(x=1, y=2) != Point(x=1, y=2)
    assert Point(x=1, y=2).model_dump() == OtherPoint(x=1, y=2).model_dump()


def test_not_equal_to_non_frozen_objects() -> None:
    model = Frozen(a=1)

    assert model != {"a": 1}
    assert model != Plain(values=[1])
    assert model.__eq__({"a": 1}) is NotImplemented


def test_equal_models_have_equal_hashes() -> None:
    assert hash(Frozen(a=1, b={"c": [1, 2]})) == hash(Frozen(b={"c": [1, 2]}, a=1))
    assert hash(Point(x=1, y=2)) == hash(Point(x=1, y=2))


def test_usable_as_dict_keys_and_in_sets() -> None:
    table = {Frozen(a=1, tags=["x"]): "first", Point(x=1): "point"}

    assert table[Frozen(a=1, tags=["x"])] == "first"
    assert table[Point(x=1, y=0)] == "point"
    assert Frozen(a=2) not in table
    assert OtherPoint(x=1) not in table

    members = {Frozen(a=1), Frozen(a=1), Frozen(a=2), Point(x=1), OtherPoint(x=1)}
    assert len(members) == 4


class WithPrivate(Frozen):
    x: int = 0
    _note: str = pydantic.PrivateAttr(default="")


def test_private_attributes_never_change_identity() -> None:
    plain = Frozen(a=1, b=[2])
    marked = Frozen(a=1, b=[2])
    key, hashed = plain.hash_key, hash(plain)
    setattr(marked, "_x", 1)  # noqa: B010 - an attribute mypy does not know
    object.__setattr__(plain, "_y", [1])  # even through object.__setattr__

    assert marked == plain
    assert plain == marked
    assert hash(marked) == hashed == hash(plain)
    assert marked.hash_key == key == plain.hash_key
    assert {marked: "found"}[Frozen(a=1, b=(2,))] == "found"
    assert marked.model_dump() == {"a": 1, "b": (2,)}


def test_declared_private_attributes_never_change_identity() -> None:
    first, second = WithPrivate(x=1), WithPrivate(x=1)
    setattr(first, "_note", "seen")  # noqa: B010 - read-only to mypy, as the model is frozen

    assert first == second
    assert hash(first) == hash(second)
    assert first.hash_key == second.hash_key
    assert first != WithPrivate(x=2)


def test_a_private_attribute_is_kept_out_of_an_updated_copy() -> None:
    model = Frozen(a=1)
    setattr(model, "_x", 1)  # noqa: B010

    assert model.model_copy(update={"a": 2}) == Frozen(a=2)


# --- hash_key ------------------------------------------------------------------------------


def test_hash_key_is_a_sha256_hex_digest() -> None:
    key = Frozen(a=1).hash_key

    assert re.fullmatch(r"[0-9a-f]{64}", key)


def test_hash_key_is_stable() -> None:
    model = Frozen(a=1, nested={"b": [1, 2]})

    assert model.hash_key == model.hash_key
    assert model.hash_key == Frozen(nested={"b": [1, 2]}, a=1).hash_key


def test_hash_key_differs_for_different_content() -> None:
    keys = {
        Frozen(a=1).hash_key,
        Frozen(a=2).hash_key,
        Frozen(b=1).hash_key,
        Frozen(a=1, b=1).hash_key,
        Frozen(a="1").hash_key,
        Frozen(a=[1]).hash_key,
        Frozen().hash_key,
    }

    assert len(keys) == 7


def test_hash_key_differs_for_different_classes() -> None:
    assert Point(x=1).hash_key != OtherPoint(x=1).hash_key
    assert Point(x=1).hash_key != Frozen(x=1, y=0).hash_key


def test_hash_key_of_unencodable_content_raises_a_hash_key_error() -> None:
    model = Frozen(thing=object())

    with pytest.raises(HashKeyError, match=r"field thing holds an object \(builtins\.object\)"):
        _ = model.hash_key


def test_hash_key_is_equal_for_equal_models_holding_sets() -> None:
    # 0 and 8 collide in a small set table, so insertion order decides iteration order.
    first = Frozen(members=frozenset([0, 8]))
    second = Frozen(members=frozenset([8, 0]))
    assert first == second
    assert hash(first) == hash(second)

    assert first.hash_key == second.hash_key


def test_hash_key_differs_when_a_nested_model_class_differs() -> None:
    first = Frozen(inner=Point(x=1))
    second = Frozen(inner=OtherPoint(x=1))
    assert first != second

    assert first.hash_key != second.hash_key


# --- class definition checks ---------------------------------------------------------------


def test_list_field_is_rejected_at_class_definition() -> None:
    with pytest.raises(TypeError) as raised:

        class WithList(Frozen):
            items: list[int]

    message = str(raised.value)
    assert "'items'" in message
    assert "WithList" in message
    assert "tuple" in message


def test_set_field_is_rejected_at_class_definition() -> None:
    with pytest.raises(TypeError) as raised:

        class WithSet(Frozen):
            members: set[str]

    message = str(raised.value)
    assert "'members'" in message
    assert "tuple" in message
    assert "frozenset" in message


def test_dict_of_lists_field_is_rejected_at_class_definition() -> None:
    with pytest.raises(TypeError) as raised:

        class WithDictOfLists(Frozen):
            groups: dict[str, list[int]]

    message = str(raised.value)
    assert "'groups'" in message
    assert "list[int]" in message
    assert "tuple" in message


def test_optional_list_field_is_rejected_at_class_definition() -> None:
    with pytest.raises(TypeError, match=r"'maybe_items'.*tuple"):

        class WithOptionalList(Frozen):
            maybe_items: list[int] | None = None


class Validated(Frozen):
    """Declared fields whose validated value is mutable, though the annotation looks fine."""

    listed: Annotated[tuple[int, ...], pydantic.AfterValidator(list)] = ()
    anything: Any = None
    inner: Point | None = None
    scores: dict[str, int] = pydantic.Field(default_factory=dict)


class WithFieldValidator(Frozen):
    names: tuple[str, ...] = ()

    @pydantic.field_validator("names", mode="after")
    @classmethod
    def _sorted(cls, value: tuple[str, ...]) -> Any:
        return sorted(value)  # a list: whatever a validator returns gets frozen too


def test_declared_fields_whose_validated_value_is_mutable_are_frozen() -> None:
    model = Validated(listed=(1, 2), anything=[{"k": {1}}], scores={"a": 1})

    assert type(model.listed) is tuple
    assert model.anything == ({"k": frozenset({1})},)
    assert type(model.anything[0]) is FrozenDict
    assert type(model.scores) is FrozenDict
    assert isinstance(hash(model), int)
    assert WithFieldValidator(names=("b", "a")).names == ("a", "b")
    assert type(WithFieldValidator(names=("b", "a")).names) is tuple


def test_a_mutable_default_of_an_immutable_looking_field_is_frozen() -> None:
    # pydantic does not validate defaults, so a list default stays a list unless frozen
    class WithDefaults(Frozen):
        tags: tuple[str, ...] = ["a"]  # type: ignore[assignment]
        made: tuple[int, ...] = pydantic.Field(default_factory=lambda: [1])  # type: ignore[arg-type]
        fine: tuple[str, ...] = ("b",)

    model = WithDefaults()

    assert type(model.tags) is tuple
    assert type(model.made) is tuple
    assert model.fine == ("b",)
    assert isinstance(hash(model), int)


def test_a_nested_model_validated_from_a_dict_is_frozen() -> None:
    class Outer(Frozen):
        inner: Tagged

    outer = Outer.model_validate({"inner": {"name": "n", "scores": {"a": 1}, "more": [1]}})

    assert type(outer.inner) is Tagged
    assert type(outer.inner.scores) is FrozenDict
    assert extra(outer.inner, "more") == (1,)
    with pytest.raises(FrozenInstanceError):
        outer.inner.scores["b"] = 2


def test_a_model_holds_no_per_instance_private_state() -> None:
    model = Frozen(a=1)
    _ = model.hash_key, hash(model)

    assert model.__pydantic_private__ is None  # no private attribute is set up per instance
    assert model.__dict__ == {}  # the cached key and hash live in slots, not in the content
    assert model.model_extra == {"a": 1}


def test_immutable_container_fields_are_accepted() -> None:
    class Fine(Frozen):
        items: tuple[int, ...] = ()
        members: frozenset[str] = frozenset()
        mapping: dict[str, tuple[int, ...]] = pydantic.Field(default_factory=dict)

    model = Fine(items=(1,), members=frozenset({"a"}), mapping={"k": (1, 2)})
    assert model.items == (1,)
    assert type(model.mapping) is FrozenDict


# --- serialization -------------------------------------------------------------------------


def test_model_dump_and_dump_json_work_without_warnings() -> None:
    # pytest runs with filterwarnings=error, so any serializer warning fails this test.
    extras: dict[str, Any] = {"nested": {"k": [1, {"z": {2}}]}, "inner": Plain(values=[1])}
    model = Tagged(name="n", tags=("a",), labels=frozenset({"x"}), scores={"a": 1}, **extras)

    assert model.model_dump() == {
        "name": "n",
        "tags": ("a",),
        "labels": frozenset({"x"}),
        "scores": {"a": 1},
        "nested": {"k": (1, {"z": frozenset({2})})},
        "inner": {"values": (1,), "note": "plain"},
    }
    assert model.model_dump(mode="json") == {
        "name": "n",
        "tags": ["a"],
        "labels": ["x"],
        "scores": {"a": 1},
        "nested": {"k": [1, {"z": [2]}]},
        "inner": {"values": [1], "note": "plain"},
    }
    assert json.loads(model.model_dump_json()) == model.model_dump(mode="json")


def test_round_trip_through_json() -> None:
    model = Frozen(a=1, nested={"b": [1, 2]})

    restored = Frozen.model_validate_json(model.model_dump_json())

    assert restored == model
    assert restored.hash_key == model.hash_key
    assert type(extra(restored, "nested")) is FrozenDict


def test_model_validate_freezes_values() -> None:
    point = Point.model_validate({"x": 1, "tags": ["a"]})

    assert point.x == 1
    assert extra(point, "tags") == ("a",)


def test_a_field_declared_as_a_mutable_model_is_rejected_at_class_definition() -> None:
    with pytest.raises(TypeError, match=r"'inner'.*Frozen subclass"):

        class HoldsPlain(Frozen):
            inner: Plain


def test_a_mutable_fields_refusal_says_why_for_its_kind_and_where_frozen_comes_from() -> None:
    # (was: every refusal said "an iterable field holds an iterator", a list's and a plain
    # model's too, and named Frozen without its import)
    with pytest.raises(TypeError) as listed:

        class HoldsList(Frozen):
            items: list[int]

    assert "list[int], which is mutable. Declare it" in str(listed.value)
    assert "iterator" not in str(listed.value)
    assert "(from miniagents import Frozen)" in str(listed.value)
    with pytest.raises(TypeError) as modelled:

        class HoldsModel(Frozen):
            inner: Plain

    assert "a pydantic model that is not Frozen" in str(modelled.value)
    assert "iterator" not in str(modelled.value)


@pytest.mark.parametrize(
    "annotation",
    [
        collections.abc.Iterable[str],
        collections.abc.Iterable[str] | None,
        collections.abc.Generator[int, None, None],
        tuple[collections.abc.Iterable[int], ...],
    ],
)
def test_a_field_declared_as_an_iterable_is_rejected_at_class_definition(
    annotation: object,
) -> None:
    # Before, pydantic kept such a field's value as an iterator: the first reader used it up
    # (the second str() of the model showed it empty, two equal models were unequal), and a
    # MessagePromise given to it was taken, to fail only when the field was read.
    expected = r"'parts'.*used up by its first reader.*tuple\[X, \.\.\.\]"
    fields: dict[str, Any] = {"parts": (annotation, ())}
    with pytest.raises(TypeError, match=expected):
        pydantic.create_model("HoldsIterable", __base__=Frozen, **fields)


def test_tuples_and_strings_stay_accepted_though_they_are_iterable() -> None:
    class Fine(Frozen):
        parts: tuple[str, ...] = ()
        word: str = ""
        members: frozenset[int] = frozenset()

    assert Fine.model_validate({"parts": ["a", "b"]}) == Fine(parts=("a", "b"))


def test_a_mutable_model_given_as_an_extra_field_keeps_its_data() -> None:
    model = Frozen(inner=Plain(values=[1, 2]))

    assert model.model_dump(mode="json") == {"inner": {"values": [1, 2], "note": "plain"}}
    assert model.hash_key != Frozen(inner=Plain(values=[3])).hash_key


# --- copying -------------------------------------------------------------------------------


def test_model_copy_without_update_is_equal() -> None:
    model = Frozen(a=1, nested={"b": [1]})

    assert model.model_copy() == model


def test_model_copy_with_update_gets_a_fresh_hash_key() -> None:
    model = Frozen(a=1)
    original_key = model.hash_key

    updated = model.model_copy(update={"a": 2})

    assert updated == Frozen(a=2)
    assert updated.hash_key == Frozen(a=2).hash_key
    assert updated.hash_key != original_key


def test_model_copy_with_update_freezes_new_values() -> None:
    model = Frozen(mapping={"a": 1})

    updated = model.model_copy(update={"mapping": {"a": 2}, "items": [1]})

    assert type(extra(updated, "mapping")) is FrozenDict
    assert extra(updated, "items") == (1,)
    assert isinstance(hash(updated), int)


class Event(Frozen):
    kind: str = pydantic.Field(alias="type")
    count: int = 0
    _seen: bool = pydantic.PrivateAttr(default=False)


class PlainEvent(pydantic.BaseModel, frozen=True, extra="allow"):
    """``Event`` as a plain frozen pydantic model: what its ``model_copy`` does is the norm."""

    kind: str = pydantic.Field(alias="type")
    count: int = 0
    _seen: bool = pydantic.PrivateAttr(default=False)


@pytest.mark.parametrize("update", [{"count": 2}, {"kind": "tap"}, {"type": "tap"}])
def test_model_copy_updates_fields_by_name_as_pydantic_does(update: dict[str, object]) -> None:
    model, plain = Event(type="click", count=1), PlainEvent(type="click", count=1)
    setattr(model, "_seen", True)  # noqa: B010 - read-only to mypy, as the model is frozen
    setattr(plain, "_seen", True)  # noqa: B010

    updated, expected = model.model_copy(update=update), plain.model_copy(update=update)

    assert updated.model_dump() == expected.model_dump()  # no field twice, none lost
    assert updated.model_fields_set == expected.model_fields_set
    assert updated._seen is expected._seen is True  # the private attributes are kept


def test_deepcopy_of_a_model_with_a_nested_dict() -> None:
    model = Frozen(mapping={"a": 1})

    assert copy.deepcopy(model) == model


def test_pickle_round_trip_of_a_model_with_a_nested_dict() -> None:
    model = Frozen(mapping={"a": 1})

    assert pickle.loads(pickle.dumps(model)) == model


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip_keeps_class_content_and_frozenness(protocol: int) -> None:
    extras: dict[str, Any] = {"nested": {"k": [1, {2}]}, "point": Point(x=3)}
    model = Tagged(name="n", tags=("a",), scores={"a": 1}, **extras)

    restored = pickle.loads(pickle.dumps(model, protocol=protocol))

    assert type(restored) is Tagged
    assert restored == model
    assert hash(restored) == hash(model)
    assert restored.hash_key == model.hash_key
    assert type(restored.scores) is FrozenDict
    with pytest.raises(FrozenInstanceError):
        extra(restored, "nested")["k"] = ()
    with pytest.raises(FrozenInstanceError, match="immutable"):
        restored.name = "m"  # type: ignore[misc]


def test_pickles_and_copies_carry_no_cached_key_or_hash() -> None:
    model = Frozen(a=1)
    key = model.hash_key
    hash(model)

    pickled = pickle.dumps(model)

    assert key.encode() not in pickled  # hash() differs between processes: never carried
    for copied in (pickle.loads(pickled), copy.copy(model), copy.deepcopy(model)):
        assert getattr(copied, "_frozen_key", None) is None
        assert getattr(copied, "_frozen_hash", None) is None
        assert copied == model
        assert copied.hash_key == key


def test_models_can_be_weakly_referenced() -> None:
    model = Point(x=1)

    assert weakref.ref(model)() is model


def test_list_inside_a_namedtuple_is_frozen() -> None:
    pair = collections.namedtuple("pair", ["left", "right"])
    model = Frozen(pair=pair([1], 2))

    assert extra(model, "pair")[0] == (1,)
    assert isinstance(hash(model), int)
