"""How large a JSON value read from outside is (its depth, its count of values), measured bounded.

``freeze`` (and ``json.dumps``, pydantic, ``hash_key``) recurse once per level of a value's
dicts and lists, so a value read from outside (a model's tool arguments, a history file's
header) is measured first, and refused past a bound well below Python's recursion limit:
:func:`nesting_depth` walks the value with a stack of its own, so a value of any depth is
measured. Reading a request's many tiny values into models takes a server's time, so its
body is counted first (:func:`holds_over`). Each walk stops once past its bound, so its
time is bounded by the bound, whatever the value holds.
"""

from __future__ import annotations

__all__ = ["holds_over", "nesting_depth"]


def nesting_depth(value: object, *, limit: int) -> int:
    """How many levels of dicts and lists nest in ``value``, up to ``limit + 1``.

    A value that is no dict or list is 0 levels deep; a dict or list is one level deeper
    than the deepest dict or list among its values (``[]`` and ``[1]`` are 1, ``[[]]`` and
    ``{"a": [1]}`` are 2). The walk stops at the first container deeper than ``limit``:
    ``limit + 1`` then says "deeper than the limit", however deep the value goes.

    Example:
        >>> nesting_depth({"a": [1, [2]]}, limit=100)
        3
        >>> nesting_depth([[[[]]]], limit=2)
        3
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return depth  # (limit + 1: its parent, if any, was within the limit)
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def holds_over(value: object, most: int) -> bool:
    """Whether the JSON ``value`` holds over ``most`` values (itself included), counted to there.

    Every dict, list, string, number, ``True``, ``False`` and ``None`` counts, at every depth.

    Example:
        >>> holds_over({"a": [1, 2]}, 4)
        False
        >>> holds_over({"a": [1, 2, 3]}, 4)
        True
    """
    count = 0
    left = [value]
    while left:
        count += 1
        if count > most:
            return True
        item = left.pop()
        if isinstance(item, dict):
            left.extend(item.values())
        elif isinstance(item, list):
            left.extend(item)
    return False
