"""The tool set of an LLM agent's ``tools``: made (each tool described) once, and kept.

Its one path both checks the tools as they are bound (``LLMOptions.check``: at ``fork``,
``bind``) and gives each call its tools, so that what the first call would refuse (``5``,
a function with an unannotated parameter) is refused where it is given.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.tools.tool_like import ToolLike
from miniagents.ext.tools.tool_set import ToolSet

__all__ = ["tool_set_of"]

_TOOL_SETS: OrderedDict[tuple[int, ...], tuple[tuple[ToolLike, ...], ToolSet]] = OrderedDict()
"""The tool sets made last, by the ids of their tools (held with them, so the ids stay valid)."""

_TOOL_SETS_KEPT = 64
"""How many tool sets are kept."""


def tool_set_of(tools: Sequence[ToolLike], alias: str) -> ToolSet:
    """The ``ToolSet`` of ``tools``, made once for the same tools among the last few used.

    Describing tools makes pydantic models (milliseconds each), too slow for every call.

    Raises:
        LLMConfigurationError: if ``tools`` is not a sequence of tools.
        ToolDefinitionError: for an item that is no tool, or a tool that cannot be described
            (a parameter without an annotation, ...).
        ToolNameConflictError: for two tools of one name.
    """
    given: object = tools  # typed, but it may be anything at run time
    if not isinstance(given, Sequence) or isinstance(given, str):
        raise LLMConfigurationError(
            f"The tools of the agent {alias} must be a list of tools, not {given!r:.60}: "
            f"e.g. {alias.lower()}.fork(tools=[get_weather])."
        )
    items = tuple(tools)
    key = tuple(map(id, items))  # valid: the cache holds the items themselves
    cached = _TOOL_SETS.get(key)
    if cached is not None:
        _TOOL_SETS.move_to_end(key)
        return cached[1]
    made = ToolSet(items)
    _TOOL_SETS[key] = (items, made)
    if len(_TOOL_SETS) > _TOOL_SETS_KEPT:
        _TOOL_SETS.popitem(last=False)
    return made
