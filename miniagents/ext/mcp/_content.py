"""An MCP tool result's content, as text for a model."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp.types import CallToolResult, ContentBlock

__all__ = ["result_text"]


def result_text(result: CallToolResult, max_chars: int) -> str:
    """The text of a tool result: its text blocks, with other blocks described in brackets.

    Images and audio become ``[image: image/png]``-style notes (a text reply cannot carry
    them), embedded text resources their text, resource links their URI. A result with no
    content but structured content gives that content as JSON. A text longer than
    ``max_chars`` is cut there, and a note that says so follows it (see ``MCPSession``'s
    ``max_result_chars``): the blocks past the cut are counted, never joined.
    """
    parts = [_block_text(block) for block in result.content]
    if not parts and result.structured_content is not None:
        parts = [json.dumps(result.structured_content, ensure_ascii=False)]
    length = sum(map(len, parts)) + max(len(parts) - 1, 0)  # with the newlines between them
    if length <= max_chars:
        return "\n".join(parts)
    kept: list[str] = []
    room = max_chars
    for part in parts:
        if room <= 0:
            break
        kept.append(part[:room])
        room -= len(kept[-1]) + 1
    return (
        "\n".join(kept)[:max_chars] + f"\n[The tool's result was cut here: it had {length:,} "
        f"characters, more than the {max_chars:,} this MCP session passes on "
        "(max_result_chars). Ask for less, e.g. a narrower query or a part of it at a time.]"
    )


def _block_text(block: ContentBlock) -> str:
    from mcp import types  # the session that made the result imported the SDK already

    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, (types.ImageContent, types.AudioContent)):
        return f"[{block.type}: {block.mime_type}]"
    if isinstance(block, types.ResourceLink):
        return f"[resource: {block.uri}]"
    resource = block.resource  # an embedded resource
    if isinstance(resource, types.TextResourceContents):
        return resource.text
    return f"[resource: {resource.uri}]"
