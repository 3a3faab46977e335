"""Reading a Google-style docstring: the description, and the ``Args:`` section apart.

The arguments' sections are ``Args:`` and its other names (``Arguments:``, ``Parameters:``,
``Keyword Args:``, ...), and ``Other Parameters:`` (those a reader seldom needs), each
entry read alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Docstring", "parse_docstring"]

_ARGS_HEADERS = frozenset(
    {
        "args",
        "arguments",
        "parameters",
        "params",
        "keyword args",
        "keyword arguments",
        "other parameters",
    }
)
_SECTION = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_TYPE = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
"""An entry's type in parentheses, which may hold parentheses two deep: ``(tuple(int, int))``."""
_ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_][A-Za-z0-9_]*)\s*(?:" + _TYPE + r")?\s*:\s*(.*)$")


@dataclass(frozen=True)
class Docstring:
    """A docstring split into the description (without ``Args:``) and each argument's text."""

    description: str = ""
    arguments: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """Split a (dedented) Google-style docstring.

    The description is everything but the arguments' sections (``Args:``, ``Other
    Parameters:``, ...): the summary, the body and other sections such as ``Returns:``;
    each argument's text joins its wrapped lines.
    """
    if not doc:
        return Docstring()
    lines = doc.expandtabs().splitlines()
    kept: list[str] = []
    arguments: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        header = _SECTION.match(line.strip())
        if header and header.group(1).strip().lower() in _ARGS_HEADERS:
            index = _read_arguments(lines, index + 1, _indent(line), arguments)
            continue
        kept.append(line)
        index += 1
    return Docstring("\n".join(kept).strip(), arguments)


def _read_arguments(lines: list[str], index: int, header: int, into: dict[str, str]) -> int:
    """Read the entries after an ``Args:`` header; return the index of the first line after."""
    entry: str | None = None
    entry_indent = -1
    while index < len(lines):
        line = lines[index]
        if line.strip():
            indent = _indent(line)
            if indent <= header:
                break  # the section ended: a new section or text at the header's level
            match = _ENTRY.match(line.strip())
            if match and (entry is None or indent <= entry_indent):
                entry = match.group(1).lstrip("*")
                entry_indent = indent
                into[entry] = match.group(2).strip()
            elif entry is not None:
                into[entry] = f"{into[entry]} {line.strip()}".strip()
        index += 1
    return index


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
