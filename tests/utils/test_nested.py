"""Nested mappings merged level by level (``miniagents.utils.nested``)."""

from __future__ import annotations

from typing import Any

from miniagents.utils.nested import merged


def test_nested_dicts_merge_and_other_values_replace() -> None:
    base: dict[str, Any] = {"a": 1, "audio": {"rate": 24000, "format": {"type": "pcm"}}, "b": [1]}
    given: dict[str, Any] = {"audio": {"format": {"bits": 16}, "voice": "x"}, "b": None, "c": 3}

    result = merged(base, given)

    assert result == {
        "a": 1,
        "audio": {"rate": 24000, "format": {"type": "pcm", "bits": 16}, "voice": "x"},
        "b": None,
        "c": 3,
    }


def test_a_dict_replaces_a_value_that_is_not_one_and_neither_argument_changes() -> None:
    base: dict[str, Any] = {"tools": "auto", "audio": {"rate": 24000}}
    given: dict[str, Any] = {"tools": {"mode": "any"}, "audio": {"rate": 16000}}

    result = merged(base, given)

    assert result == {"tools": {"mode": "any"}, "audio": {"rate": 16000}}
    assert base == {"tools": "auto", "audio": {"rate": 24000}}
    assert given == {"tools": {"mode": "any"}, "audio": {"rate": 16000}}
