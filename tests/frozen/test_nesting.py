"""``nesting_depth``: how deeply dicts and lists nest, measured without recursion, bounded.

The one measure behind the bounds that guard ``freeze``'s recursion (a tool call's
arguments, a history file's header fields).
"""

from __future__ import annotations

import sys

import pytest

from miniagents.frozen.nesting import nesting_depth


def nested_lists(depth: int, innermost: object) -> object:
    value = innermost
    for _ in range(depth):
        value = [value]
    return value


def recursive_depth(value: object) -> int:
    """The same measure, written recursively (for shallow values only)."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        return 0
    return 1 + max((recursive_depth(item) for item in value), default=0)


@pytest.mark.parametrize(
    "value",
    [
        1,
        "text",
        None,
        (1, 2),  # a tuple is no JSON container
        [],
        {},
        [1],
        [[]],
        {"a": [1, {"b": []}], "c": 2},
        [[1], [[[]]], {"x": {"y": {"z": [0]}}}],
        nested_lists(7, {}),
    ],
)
def test_the_depth_counts_each_level_of_dicts_and_lists(value: object) -> None:
    assert nesting_depth(value, limit=100) == recursive_depth(value)


@pytest.mark.parametrize("innermost", [[], [1], {}, {"a": 1}], ids=repr)
def test_a_value_past_the_limit_measures_one_more_than_the_limit(innermost: object) -> None:
    assert nesting_depth(nested_lists(99, innermost), limit=100) == 100
    assert nesting_depth(nested_lists(100, innermost), limit=100) == 101
    assert nesting_depth(nested_lists(5_000, innermost), limit=100) == 101


def test_a_value_deeper_than_python_s_recursion_limit_is_measured() -> None:
    deep = nested_lists(sys.getrecursionlimit() * 10, 1)
    assert nesting_depth(deep, limit=10**9) == sys.getrecursionlimit() * 10
    assert nesting_depth({"a": deep}, limit=256) == 257
