"""The settings a ``MiniAgents`` context keeps for extensions: one typed section each.

An extension declares its settings as a *section*: a frozen dataclass whose fields all have
defaults (``LLMSettings`` of :mod:`miniagents.ext.llm.settings`). A context keeps the values
it was given by field name (so an extension names its fields after itself, as
``llm_stall_timeout``), over those of the context around it; an extension reads its section,
built from those values (the fields not given keep their defaults)::

    MiniAgents(llm_stall_timeout=30)          given: {"llm_stall_timeout": 30}
      MiniAgents(stream_llm_tokens_by_default=False)
        extension_settings(LLMSettings)    -> LLMSettings(stream_llm_tokens_by_default=False,
                                                llm_stall_timeout=30, llm_logger_agent=False)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar, cast

__all__ = ["ExtensionSettings"]

S = TypeVar("S")


class ExtensionSettings:
    """The extension settings of one context: the values given to it, over its parent's."""

    __slots__ = ("_given", "_sections", "_values")

    def __init__(self, given: Mapping[str, object]) -> None:
        """Keep the values given to the context, by field name."""
        self._given = dict(given)
        self._values = self._given
        self._sections: dict[type[Any], object] = {}

    def inherit(self, parent: ExtensionSettings | None) -> None:
        """Take the values of ``parent`` (an outer context) for the fields not given here."""
        self._values = self._given if parent is None else {**parent._values, **self._given}
        self._sections = {}

    def give(self, values: Mapping[str, object]) -> None:
        """Give the context more values (over those given before), from now on."""
        self._given = {**self._given, **values}
        self._values = {**self._values, **values}
        self._sections = {}

    def values(self) -> dict[str, object]:
        """Every value this context holds, given to it or inherited (e.g. to send elsewhere)."""
        return dict(self._values)

    def section(self, kind: type[S]) -> S:
        """The section ``kind`` (a dataclass): the values held for its fields, else its defaults."""
        found = self._sections.get(kind)
        if found is None:
            names = {field.name for field in dataclasses.fields(cast(Any, kind))}
            found = kind(**{name: value for name, value in self._values.items() if name in names})
            self._sections[kind] = found
        return cast(S, found)
