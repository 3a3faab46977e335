"""How deeply JSON containers (dicts and lists) nest in a value, measured without recursion.

``freeze`` (and ``json.dumps``, pydantic, ``hash_key``) recurse once per level of a value's
dicts and lists, so a value read from outside (a model's tool arguments, a history file's
header) is measured first, and refused past a bound well below Python's recursion limit:
this measure walks the value with a stack of its own, so a value of any depth is measured
(and stops being walked once it is past the bound).
"""

from __future__ import annotations

__all__ = ["nesting_depth"]


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
