"""What a client is told of an error: a sentence and a reference, the error logged whole.

An agent's or a tool's error may echo what its client must not see: an SDK's error names the
URL it called, with its key; an ``OSError`` a path; a database's error its query. So a
server tells its client the error's class and a reference, and logs the error whole (its
traceback too) once, under that reference, for the operator to look up; an app made with
``error_texts=True`` (A2A's ``a2a_app``, the voice page's ``voice_app``, the MCP server's
``mcp_http_app``) tells the error's text as it is written. The web apps and the MCP server
share it (it imports neither's extra).
"""

from __future__ import annotations

import logging
import uuid
from typing import NamedTuple

__all__ = ["ToldError", "told_error"]


class ToldError(NamedTuple):
    """What a client is told of an error: its ``text``, and the ``reference`` it is logged under."""

    text: str
    reference: str


def told_error(
    error: BaseException,
    logger: logging.Logger,
    failed: str,
    *,
    error_texts: bool,
    logged: str = "",
    who: str = "The agent",
    operator: str = "the agent's operator",
) -> ToldError:
    """The error logged whole under a new reference, and what its client is told of it.

    Args:
        error: The agent's error.
        logger: The server's logger, which logs the error (an ``ERROR`` with its traceback)
            as "<failed> failed with <class> (reference <reference>).".
        failed: What failed, as the log's sentence begins (``"The A2A task 1f2e..."``).
        error_texts: Whether the client is told the error's text as it is written
            (``str(error)``, or its ``repr`` if that is empty); else a sentence naming the
            error's class and the reference, under which the log has it.
        logged: The reference the log has the error under already, if any (a durable
            run's failure read again, after a restart say): the client is told that
            one, and nothing is logged again.
        who: What failed, as the client's sentence begins (``"The tool divide"``).
        operator: Whom the client's sentence tells to ask (``"the server's operator"``).

    Returns:
        The text to tell the client, and the reference (a new one for each error, unless
        ``logged``).
    """
    kind = type(error).__name__
    reference = logged or uuid.uuid4().hex
    if not logged:
        logger.error("%s failed with %s (reference %s).", failed, kind, reference, exc_info=error)
    if error_texts:
        return ToldError(str(error) or repr(error), reference)
    return ToldError(
        f"{who} failed with {kind}. The server's log has the error under the reference "
        f"{reference}: ask {operator} to look it up there.",
        reference,
    )
