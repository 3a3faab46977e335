"""Tool names that every provider accepts: ``^[a-zA-Z0-9_-]{1,64}$``."""

from __future__ import annotations

import hashlib
import re

from miniagents.ext.tools.errors import ToolDefinitionError

__all__ = ["MAX_NAME_LENGTH", "tool_name"]

MAX_NAME_LENGTH = 64
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


def tool_name(name: str, what: str) -> str:
    """``name`` made valid for the providers, deterministically.

    Every other character becomes ``_``; a name longer than 64 characters keeps its first
    55 and ends with ``_`` and 8 hex digits of its hash, so long names stay distinct.

    Raises:
        ToolDefinitionError: if ``name`` is empty.
    """
    if not name:
        raise ToolDefinitionError(
            f"{what} has an empty name, and a tool needs one. Give it a name, e.g. name=..."
        )
    valid = _INVALID.sub("_", name)
    if len(valid) <= MAX_NAME_LENGTH:
        return valid
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{valid[: MAX_NAME_LENGTH - 9]}_{digest}"
