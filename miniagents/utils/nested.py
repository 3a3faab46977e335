"""Nested mappings (JSON objects): one updated by another, level by level."""

from __future__ import annotations

from typing import Any

__all__ = ["merged"]


def merged(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` updated by ``given``, where both hold a dict, merged the same way.

    Any other value of ``given`` (``None`` too) replaces ``base``'s; neither argument is
    changed.
    """
    result = dict(base)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result
