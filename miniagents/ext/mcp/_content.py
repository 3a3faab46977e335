"""An MCP tool result's content, as text for a model."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp.types import CallToolResult, ContentBlock

__all__ = ["result_text"]


def result_text(result: CallToolResult) -> str:
    """The text of a tool result: its text blocks, with other blocks described in brackets.

    Images and audio become ``[image: image/png]``-style notes (a text reply cannot carry
    them), embedded text resources their text, resource links their URI. A result with no
    content but structured content gives that content as JSON.
    """
    parts = [_block_text(block) for block in result.content]
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


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
