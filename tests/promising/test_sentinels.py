"""Tests for the sentinels: ``AWAIT``, ``CLEAR``, ``DEFAULT`` and ``NO_VALUE``."""

from __future__ import annotations

import copy
import enum
import pickle
import re

import pytest

import miniagents.promising
from miniagents.errors import SentinelMisuseError as PublicSentinelMisuseError
from miniagents.promising import MiniAgentsError
from miniagents.promising.errors import SentinelMisuseError
from miniagents.promising.sentinels import AWAIT, CLEAR, DEFAULT, NO_VALUE, Sentinel

ALL_SENTINELS = [AWAIT, CLEAR, DEFAULT, NO_VALUE]
NAMES = ["AWAIT", "CLEAR", "DEFAULT", "NO_VALUE"]


def test_sentinels_are_reexported_from_promising() -> None:
    assert miniagents.promising.AWAIT is AWAIT
    assert miniagents.promising.CLEAR is CLEAR
    assert miniagents.promising.DEFAULT is DEFAULT
    assert miniagents.promising.NO_VALUE is NO_VALUE
    assert miniagents.promising.Sentinel is Sentinel
    for name in [*NAMES, "Sentinel"]:
        assert name in miniagents.promising.__all__


def test_sentinels_are_the_members_of_sentinel() -> None:
    assert issubclass(Sentinel, enum.Enum)
    assert list(Sentinel) == ALL_SENTINELS
    assert [member.name for member in Sentinel] == NAMES
    assert Sentinel.AWAIT is AWAIT
    assert Sentinel.CLEAR is CLEAR
    assert Sentinel.DEFAULT is DEFAULT
    assert Sentinel.NO_VALUE is NO_VALUE
    for sentinel in ALL_SENTINELS:
        assert isinstance(sentinel, Sentinel)


def test_sentinels_are_distinct() -> None:
    assert len({id(sentinel) for sentinel in ALL_SENTINELS}) == 4
    assert len(set(ALL_SENTINELS)) == 4
    for index, sentinel in enumerate(ALL_SENTINELS):
        for other in ALL_SENTINELS[index + 1 :]:
            assert sentinel is not other
            assert sentinel != other


@pytest.mark.parametrize("sentinel", ALL_SENTINELS, ids=NAMES)
def test_identity_comparison(sentinel: Sentinel) -> None:
    value: object = sentinel

    assert value is sentinel
    assert value == sentinel
    assert Sentinel[sentinel.name] is sentinel
    assert Sentinel(sentinel.value) is sentinel


@pytest.mark.parametrize("sentinel", ALL_SENTINELS, ids=NAMES)
def test_sentinels_are_not_real_values(sentinel: Sentinel) -> None:
    value: object = sentinel

    assert value is not None
    assert value != sentinel.name  # not a str enum: never equal to its name
    assert value != sentinel.value
    assert value != 0
    assert value not in (None, False, 0, "", ())


def test_sentinel_as_a_dict_key_or_default() -> None:
    table: dict[object, str] = {AWAIT: "await", NO_VALUE: "nothing"}

    assert table[AWAIT] == "await"
    assert table.get(CLEAR, "missing") == "missing"
    assert table.get("AWAIT", "missing") == "missing"


def test_mypy_narrows_sentinels_with_is() -> None:
    def describe(value: int | Sentinel) -> str:
        if value is NO_VALUE:
            return "nothing"
        if isinstance(value, Sentinel):
            return value.name.lower()
        return str(value + 1)

    assert describe(NO_VALUE) == "nothing"
    assert describe(AWAIT) == "await"
    assert describe(41) == "42"


@pytest.mark.parametrize("sentinel", ALL_SENTINELS, ids=NAMES)
def test_bool_raises_sentinel_misuse_error(sentinel: Sentinel) -> None:
    with pytest.raises(SentinelMisuseError) as raised:
        bool(sentinel)

    message = str(raised.value)
    assert f"is {sentinel.name}" in message
    assert sentinel.name in message
    assert "identity" in message


@pytest.mark.parametrize("sentinel", ALL_SENTINELS, ids=NAMES)
def test_if_statement_raises(sentinel: Sentinel) -> None:
    branches: list[str] = []

    def check(value: object) -> None:
        if value:
            branches.append("truthy")
        else:
            branches.append("falsy")

    with pytest.raises(SentinelMisuseError, match=re.escape(f"if value is {sentinel.name}:")):
        check(sentinel)
    assert branches == []


def test_boolean_operators_raise() -> None:
    value: object = NO_VALUE

    with pytest.raises(SentinelMisuseError, match="is NO_VALUE"):
        _ = not value
    with pytest.raises(SentinelMisuseError, match="is AWAIT"):
        _ = AWAIT or "fallback"
    with pytest.raises(SentinelMisuseError, match="is CLEAR"):
        _ = CLEAR and "next"


def test_sentinel_misuse_error_is_a_type_error_and_a_miniagents_error() -> None:
    assert PublicSentinelMisuseError is SentinelMisuseError
    assert issubclass(SentinelMisuseError, TypeError)
    assert issubclass(SentinelMisuseError, MiniAgentsError)

    with pytest.raises(TypeError):
        bool(DEFAULT)
    with pytest.raises(MiniAgentsError):
        bool(DEFAULT)


@pytest.mark.parametrize(
    ("sentinel", "name"), list(zip(ALL_SENTINELS, NAMES, strict=True)), ids=NAMES
)
def test_repr_is_the_bare_name(sentinel: Sentinel, name: str) -> None:
    assert repr(sentinel) == name
    assert sentinel.name == name
    assert repr([sentinel]) == f"[{name}]"
    assert f"{sentinel!r}" == name


@pytest.mark.parametrize("sentinel", ALL_SENTINELS, ids=NAMES)
def test_copies_and_pickles_keep_identity(sentinel: Sentinel) -> None:
    assert copy.copy(sentinel) is sentinel
    assert copy.deepcopy(sentinel) is sentinel
    assert pickle.loads(pickle.dumps(sentinel)) is sentinel
