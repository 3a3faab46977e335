"""``hash_key``: a type-tagged canonical encoding that agrees with ``==``."""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
import math
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miniagents.errors import HashKeyError, MiniAgentsError
from miniagents.messages import Message
from miniagents.promising import Frozen
from tests.subprocesses import ROOT, python_env

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=400)


class Point(Frozen):
    x: Any = 0


class OtherPoint(Frozen):
    x: Any = 0


class A(Frozen):
    pass


class B(Frozen):
    pass


class Same(Frozen):
    x: int = 0


_elsewhere: dict[str, Any] = {"__name__": "tests.elsewhere", "Frozen": Frozen}
exec("class Same(Frozen):\n    x: int = 0\n", _elsewhere)  # a class in a second module
SameElsewhere: type[Frozen] = _elsewhere["Same"]


class Color(enum.Enum):
    RED = 1
    GREEN = "green"


class Shade(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


class Mood(str, enum.Enum):  # noqa: UP042 - a str mixin, as code written before StrEnum has
    CALM = "calm"


def key(value: object) -> str:
    """The key of a model holding ``value``: how a value's encoding shows."""
    return Frozen(v=value).hash_key


# --- the collisions and splits listed in the issue ----------------------------------------


UNEQUAL: list[tuple[str, Frozen, Frozen]] = [
    ("mapping vs pairs", Frozen(v={1: "x"}), Frozen(v=((1, "x"),))),
    ("set vs list", Frozen(v={1, 2}), Frozen(v=[1, 2])),
    ("bytes vs str", Frozen(v=b"abc"), Frozen(v="abc")),
    ("model vs dict with class_", Frozen(v=Frozen(a=1)), Frozen(v={"class_": "Frozen", "a": 1})),
    ("class_ field", Message(text="t"), Message(text="t", class_="Message")),
    ("class_ in two classes", A.model_validate({"class_": 1}), B.model_validate({"class_": 1})),
    ("tuple vs frozenset", Frozen(v=(1,)), Frozen(v=frozenset({1}))),
    ("tuple vs mapping", Frozen(v=()), Frozen(v={})),
    ("frozenset vs mapping", Frozen(v=frozenset()), Frozen(v={})),
    ("same qualname, other module", Same(x=1), SameElsewhere(x=1)),
    ("nested: same qualname, other module", Frozen(v=Same()), Frozen(v=SameElsewhere())),
    ("str vs number", Frozen(v="1"), Frozen(v=1)),
    ("None vs empty str", Frozen(v=None), Frozen(v="")),
    ("enum vs its value", Frozen(v=Color.RED), Frozen(v=1)),
    ("two enums, one value", Frozen(v=Color.RED), Frozen(v=Shade.RED)),
    (
        "date vs datetime",
        Frozen(v=datetime.date(2024, 6, 1)),
        Frozen(v=datetime.datetime(2024, 6, 1)),
    ),
    (
        "naive vs aware datetime",
        Frozen(v=datetime.datetime(2024, 6, 1)),
        Frozen(v=datetime.datetime(2024, 6, 1, tzinfo=datetime.UTC)),
    ),
    ("0.1 vs Decimal('0.1')", Frozen(v=0.1), Frozen(v=Decimal("0.1"))),
    ("a field vs none", Frozen(a=None), Frozen()),
    ("two fields vs one", Frozen(a="b", c="d"), Frozen(a="bc", d="")),
    ("declared vs extra, other class", Point(x=1), Frozen(x=1)),
]


@pytest.mark.parametrize(("case", "first", "second"), UNEQUAL, ids=[c for c, _, _ in UNEQUAL])
def test_unequal_values_get_different_keys(case: str, first: Frozen, second: Frozen) -> None:
    assert first != second, case
    assert first.hash_key != second.hash_key, case


EQUAL: list[tuple[str, Frozen, Frozen]] = [
    ("1 and 1.0", Frozen(x=1), Frozen(x=1.0)),
    ("1 and True", Frozen(x=1), Frozen(x=True)),
    ("0.0 and -0.0", Frozen(x=0.0), Frozen(x=-0.0)),
    ("0 and -0.0", Frozen(x=0), Frozen(x=-0.0)),
    ("0.5, Decimal and Fraction", Frozen(x=0.5), Frozen(x=Decimal("0.50"))),
    ("Fraction", Frozen(x=Fraction(1, 2)), Frozen(x=0.5)),
    ("complex", Frozen(x=complex(2, 0)), Frozen(x=2)),
    ("IntEnum and int", Frozen(x=Level.LOW), Frozen(x=1)),
    ("str enum and str", Frozen(x=Mood.CALM), Frozen(x="calm")),
    ("list and tuple", Frozen(x=[1, [2]]), Frozen(x=(1.0, (2,)))),
    ("set and frozenset", Frozen(x={"a", "b"}), Frozen(x=frozenset({"b", "a"}))),
    ("dict order", Frozen(x={"a": 1, "b": 2}), Frozen(x={"b": 2, "a": 1})),
    ("field order", Frozen(a=1, b=2), Frozen(b=2, a=1)),
    ("numeric keys", Frozen(x={1: "a"}), Frozen(x={1.0: "a"})),
    (
        "one instant, two zones",
        Frozen(x=datetime.datetime(2024, 6, 1, 12, tzinfo=datetime.UTC)),
        Frozen(
            x=datetime.datetime(
                2024, 6, 1, 14, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            )
        ),
    ),
]


@pytest.mark.parametrize(("case", "first", "second"), EQUAL, ids=[c for c, _, _ in EQUAL])
def test_equal_values_get_equal_keys(case: str, first: Frozen, second: Frozen) -> None:
    assert first == second, case
    assert hash(first) == hash(second), case
    assert first.hash_key == second.hash_key, case


def test_every_nan_gets_one_key_though_nan_is_not_equal_to_itself() -> None:
    # The documented choice: a key says "the same content", as JSON would.
    assert Frozen(v=float("nan")) != Frozen(v=float("nan"))
    assert key(float("nan")) == key(math.nan) == key(Decimal("NaN")) == key(-math.nan)
    assert key(math.nan) not in {key(math.inf), key(-math.inf), key(0), key(None)}


def test_private_attributes_do_not_change_the_key() -> None:
    message = Message(text="t", role="user")
    before = message.hash_key
    fresh = Message(text="t", role="user")
    setattr(fresh, "_note", "private")  # noqa: B010 - mypy knows no such attribute

    assert fresh.hash_key == before


# --- the encoding itself --------------------------------------------------------------------


def _s(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"s%d:%b" % (len(data), data)


def test_the_key_is_a_sha256_of_the_documented_encoding() -> None:
    model = Frozen(name="Zoë", n=1, tags=["a"], half=0.5)
    fields = sorted(
        [
            _s("name") + _s("Zoë"),
            _s("n") + b"i1;",
            _s("tags") + b"t1:" + _s("a"),
            _s("half") + b"q1/2;",
        ]
    )
    encoding = b"o" + _s("miniagents.promising.frozen") + _s("Frozen") + b"4:" + b"".join(fields)

    assert model.hash_key == hashlib.sha256(encoding).hexdigest()
    assert model.hash_key == "6aa24486283c028e329c2cf6a970e7dc32b0e5bbd05f7c45664b81447ebe3b7e"


def test_a_message_key_names_its_module_and_class() -> None:
    encoding = (
        b"o" + _s("miniagents.messages.message") + _s("Message") + b"1:" + _s("text") + _s("hi")
    )

    assert Message(text="hi").hash_key == hashlib.sha256(encoding).hexdigest()


def test_bytes_that_are_not_utf8_and_lone_surrogates_are_keyed() -> None:
    assert key(b"\xff\xfe") != key(b"\xff")
    assert key(b"\xff\xfe") != key("\xff\xfe")
    assert key("\ud800") != key("\ud801")
    assert Message(text="t", blob=b"\x80abc").hash_key != Message(text="t", blob=b"abc").hash_key


def test_huge_integers_are_keyed() -> None:
    big = 10**5000  # more digits than str(int) converts by default
    assert key(big) != key(big + 1)
    assert key(big) == key(Decimal(big))


def test_dates_times_uuids_and_enums_are_keyed() -> None:
    values = [
        datetime.datetime(2024, 6, 1, 12),
        datetime.date(2024, 6, 1),
        datetime.time(12, 30),
        datetime.time(12, 30, tzinfo=datetime.UTC),
        datetime.timedelta(days=1),
        UUID(int=7),
        Color.GREEN,
    ]

    assert len({key(value) for value in values}) == len(values)
    assert key(datetime.timedelta(hours=24)) == key(datetime.timedelta(days=1))


# --- what cannot be encoded --------------------------------------------------------------


class Opaque:
    """A value with no canonical encoding."""


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (Frozen(meta={"k": [1, Opaque()]}), "meta['k'][1]"),
        (Frozen(outer=Frozen(inner=(Opaque(),))), "outer.inner[0]"),
        (Frozen(members=frozenset({Opaque()})), "members[<a set element>]"),
        (Frozen(table={Opaque(): 1}), "table[<a key>]"),
    ],
)
def test_an_unencodable_value_raises_naming_the_field_path_and_type(
    model: Frozen, path: str
) -> None:
    with pytest.raises(HashKeyError) as raised:
        _ = model.hash_key

    assert isinstance(raised.value, MiniAgentsError)
    assert isinstance(raised.value, TypeError)
    message = str(raised.value)
    assert f"the field {path} holds an Opaque (tests.frozen.test_hash_key.Opaque)" in message
    assert "convert the value" in message


def test_a_decimal_with_a_huge_exponent_is_refused_not_expanded() -> None:
    with pytest.raises(
        HashKeyError, match=r"field v holds a Decimal \(decimal\.Decimal\), whose exponent"
    ):
        key(Decimal("1e999999999"))


def test_values_nested_too_deeply_raise_a_hash_key_error() -> None:
    nested: object = ()
    for _ in range(sys.getrecursionlimit()):
        nested = (nested,)
    model = Frozen.model_construct(v=nested)  # construction would freeze it recursively too

    with pytest.raises(HashKeyError, match="nested too deeply"):
        _ = model.hash_key


# --- stable across processes ---------------------------------------------------------------

_STABLE_PROGRAM = """
import json
from miniagents.messages import Message
from miniagents.promising import Frozen

models = [
    Frozen(members=frozenset(f"m{i}" for i in range(50)), table={f"k{i}": i for i in range(50)}),
    Message(text="hello", tags={"b", "a", "c"}, nested={"x": [1, 2.5, None]}),
    Frozen(mixed=frozenset({1, "1", b"1", (1,), 2.5})),
]
print(json.dumps([model.hash_key for model in models]))
"""


def test_keys_are_the_same_in_processes_with_other_hash_seeds() -> None:
    keys = []
    for seed in ("1", "2", "12345"):
        done = subprocess.run(
            [sys.executable, "-c", _STABLE_PROGRAM],
            cwd=ROOT,
            env=python_env(PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        keys.append(json.loads(done.stdout))
    namespace: dict[str, Any] = {}
    exec(_STABLE_PROGRAM.replace("print(", "result = ("), namespace)
    local = json.loads(namespace["result"])

    assert keys[0] == keys[1] == keys[2] == local


# --- hypothesis: a == b iff key(a) == key(b) -----------------------------------------------

_numbers = st.one_of(
    st.integers(-3, 3),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, -1.0, math.inf, -math.inf]),
    st.decimals(allow_nan=False, min_value=-100, max_value=100, places=2),
    st.fractions(max_denominator=4),
    st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=4),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _numbers,
    st.text(max_size=3),
    st.binary(max_size=3),
    st.sampled_from([Color.RED, Color.GREEN, Shade.RED, Level.LOW, Mood.CALM, "calm", "1"]),
    st.datetimes(
        min_value=datetime.datetime(2000, 1, 1),
        max_value=datetime.datetime(2030, 1, 1),
        timezones=st.one_of(
            st.none(),
            st.builds(
                lambda hours: datetime.timezone(datetime.timedelta(hours=hours)),
                st.integers(-12, 12),
            ),
        ),
    ),
    st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2000, 1, 3)),
)
_hashables = st.recursive(
    _scalars,
    lambda children: st.one_of(st.tuples(children), st.frozensets(children, max_size=3)),
    max_leaves=4,
)
_field_names = st.sampled_from(["a", "b", "class_", "x"])


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.frozensets(_hashables, max_size=3),
        st.sets(_hashables, max_size=3),
        st.dictionaries(st.one_of(_hashables, _field_names), children, max_size=3),
        st.dictionaries(_field_names, children, max_size=3).map(lambda d: Frozen(**d)),
        st.builds(Point, x=children),
        st.builds(OtherPoint, x=children),
    )


_values = st.recursive(_scalars, _containers, max_leaves=8)


def _twin(value: Any, data: st.DataObject) -> Any:
    """A value equal to ``value``, written differently where Python allows it."""
    choose: Callable[[list[Any]], Any] = lambda options: data.draw(st.sampled_from(options))  # noqa: E731
    if isinstance(value, bool):
        return choose([value, int(value), float(value)])
    if isinstance(value, enum.Enum):
        return value
    if isinstance(value, int):
        options: list[Any] = [value, Decimal(value), Fraction(value)]
        if abs(value) < 2**53:
            options += [float(value), complex(value)]
        return choose(options)
    if isinstance(value, float):
        if math.isinf(value):
            return choose([value, Decimal(value)])
        options = [value, Decimal(value), Fraction(value), complex(value)]
        if value.is_integer():
            options.append(int(value))
        return choose(options)
    if isinstance(value, Decimal) and value.is_finite():
        return choose([value, Fraction(value), Decimal(str(value) + "000")])
    if isinstance(value, Fraction):
        options = [value, float(value)] if value.denominator in (1, 2, 4) else [value]
        return choose(options + ([int(value)] if value.denominator == 1 else []))
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        hours = data.draw(st.integers(-12, 12))
        return value.astimezone(datetime.timezone(datetime.timedelta(hours=hours)))
    if isinstance(value, (list, tuple)):
        items = [_twin(item, data) for item in value]
        return choose([items, tuple(items)])
    if isinstance(value, (set, frozenset)):
        return set(value) if data.draw(st.booleans()) else frozenset(value)
    if isinstance(value, Frozen):
        fields = dict(value)
        names = list(reversed(fields))
        return type(value).model_validate({name: _twin(fields[name], data) for name in names})
    if isinstance(value, dict):
        return {name: _twin(value[name], data) for name in reversed(list(value))}
    return value


@SETTINGS
@given(_values, _values)
def test_two_values_are_equal_exactly_when_their_keys_are(first: Any, second: Any) -> None:
    one, other = Frozen(v=first), Frozen(v=second)
    equal = one == other

    assert equal == (one.hash_key == other.hash_key)
    if equal:
        assert hash(one) == hash(other)


@SETTINGS
@given(_values, st.data())
def test_a_value_written_differently_has_the_same_key(value: Any, data: st.DataObject) -> None:
    twin = _twin(value, data)
    one, other = Frozen(v=value), Frozen(v=twin)

    assert one == other
    assert hash(one) == hash(other)
    assert one.hash_key == other.hash_key


@SETTINGS
@given(st.dictionaries(_field_names, _values, max_size=3), st.data())
def test_messages_agree_too(fields: dict[str, Any], data: st.DataObject) -> None:
    text = data.draw(st.sampled_from([None, "", "t"]))
    message = Message(text=text, **fields)
    other_fields = data.draw(
        st.one_of(st.just(fields), st.dictionaries(_field_names, _values, max_size=3))
    )
    other = Message(text=data.draw(st.sampled_from([text, "t"])), **other_fields)

    assert (message == other) == (message.hash_key == other.hash_key)
