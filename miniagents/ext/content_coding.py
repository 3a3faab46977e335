"""The content codings a response names, for the clients that bound what a remote sends.

Such a client counts a body's bytes as they come, before its HTTP library decodes them, and
an encoded body's bytes say nothing of what it decodes to (a few kB of gzip are gigabytes).
So it asks for bodies as they are (``Accept-Encoding: identity``) and refuses, unread, one
whose ``Content-Encoding`` names a coding all the same: the A2A client
(:mod:`miniagents.ext.a2a.client`) and the MCP session over HTTP
(:mod:`miniagents.ext.mcp.session`) tell it by :func:`encoded_with`.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["encoded_with"]


def encoded_with(values: Iterable[str]) -> str:
    """The codings that ``Content-Encoding`` header ``values`` name, as one text.

    ``""`` when they name none (no header, an empty one, or only ``identity``): the body is
    as it was sent. Otherwise the codings in their order, lower-cased, joined by ``", "``
    (``"gzip"``, ``"deflate, br"``), to be named in the refusal.
    """
    codings = (part.strip().lower() for value in values for part in value.split(","))
    return ", ".join(coding for coding in codings if coding not in ("", "identity"))
