"""A griffe extension for the API reference: the docstrings' reST markup, as Markdown.

The docstrings are Google style with a few reST habits that mkdocstrings would show as
they are written: roles (``:class:`~miniagents.Message```, ``:func:`pipeline```) become
code spans naming the object (its last part when the target starts with ``~``, as Sphinx
shows it), and ``.. marble::`` diagrams become fenced text blocks. The docstrings
themselves stay as they are (``help()`` and editors read them). mkdocs.yml loads it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(~?)([^`<]*?)(?:\s*<([^>]+)>)?`")
_MARBLE = re.compile(
    r"^(?P<indent>[ \t]*)\.\. marble::[ \t]*\n(?:(?P=indent)[ \t]+:\w+:.*\n)*\n?"
    r"(?P<body>(?:(?P=indent)[ \t]+\S.*\n?)+)",
    re.MULTILINE,
)


def _role(match: re.Match[str]) -> str:
    short, text, target = match.group(1), match.group(2).strip(), match.group(3)
    name = text or target or ""
    if short and not target:
        name = name.rsplit(".", 1)[-1]
    return f"`{name}`"


def _marble(match: re.Match[str]) -> str:
    indent = match.group("indent")
    lines = match.group("body").rstrip("\n").splitlines()
    depth = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    body = "\n".join(f"{indent}{line[depth:]}" for line in lines)
    return f"{indent}```text\n{body}\n{indent}```\n"


def as_markdown(text: str) -> str:
    """The docstring ``text`` with its reST roles and marble directives made Markdown."""
    return _ROLE.sub(_role, _MARBLE.sub(_marble, text))


class RestRoles(griffe.Extension):
    """Rewrite each loaded object's docstring with :func:`as_markdown`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Called by griffe for each object it loads."""
        if obj.docstring is not None:
            obj.docstring.value = as_markdown(obj.docstring.value)
