"""The mistakes a newcomer makes following the docs, each met with an error that names the fix.

Each test writes what a user new to MiniAgents writes (a slight variation of a docs page's
snippet, with the mistake) and checks that the library says what was wrong and what to do,
where it was written, instead of failing later or giving a silently wrong result.
"""

from __future__ import annotations

import pytest

from miniagents.errors import ToolDefinitionError
from miniagents.ext.tools import ToolSet


def test_a_tool_whose_default_is_not_of_its_type_is_refused_where_it_is_defined() -> None:
    def add(a: int, b: int = "zero") -> int:  # type: ignore[assignment]
        """Add two numbers."""
        return a + b

    with pytest.raises(
        ToolDefinitionError, match=r"'b' of the tool add is typed int, but its default, 'zero'"
    ):
        ToolSet([add])


def test_a_tool_whose_default_is_none_for_a_plain_type_is_told_to_make_it_optional() -> None:
    def lookup(query: str, limit: int = None) -> str:  # type: ignore[assignment]  # noqa: RUF013
        """Look a query up."""
        return query

    with pytest.raises(ToolDefinitionError, match=r"declare it `limit: int \| None = None`"):
        ToolSet([lookup])


def test_a_tools_defaults_of_their_types_are_taken() -> None:
    def convert(amount: float = 1, unit: str = "C", limit: int | None = None) -> str:
        """Convert an amount."""
        return f"{amount} {unit} {limit}"

    (tool,) = ToolSet([convert])
    assert tool.parameters["properties"] == {
        "amount": {"default": 1, "type": "number"},
        "unit": {"default": "C", "type": "string"},
        "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
    }
