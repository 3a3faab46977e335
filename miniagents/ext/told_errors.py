"""What a client is told of an error: a sentence and a reference, the error logged whole.

An agent's or a tool's error may echo what its client must not see: an SDK's error names the
URL it called, with its key; an ``OSError`` a path; a database's error its query. So a
server tells its client the error's class and a reference, and logs the error whole (its
traceback too) once, under that reference, for the operator to look up; an app made with
``error_texts=True`` (A2A's ``a2a_app``, the voice page's ``voice_app``, the MCP server's
``mcp_http_app``) tells the error's text as it is written. The web apps and the MCP server
share it (it imports neither's extra).

A tool's exception that became its error result is the model's to read (it needs the text
to recover), and a client streamed the result (a web app's, the MCP server's) is told as of
an agent's error (:class:`ToldResult`): what the tool replied before it failed, then the
sentence and the reference the exception was logged under where it was caught, unless the
app tells error texts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator
from typing import NamedTuple

from miniagents.ext.tools.running import error_part
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise

__all__ = ["ToldError", "ToldResult", "told_error", "told_reference"]


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
    return ToldError(_sentence(who, kind, reference, operator), reference)


def told_reference(reference: str, operator: str = "the agent's operator") -> str:
    """The sentence that tells a client where its error is: in the log, under ``reference``.

    Every error told by reference ends with it (:func:`told_error`'s text, a tool's
    exception :class:`ToldResult` tells); a server that says what failed in words of its
    own (the studio's damaged run, its store's failure) adds it to them, so that a client
    reads the same words wherever the log has its error.

    Args:
        reference: The reference the server's log has the error under.
        operator: Whom the client is told to ask (``"the studio's operator"``).

    Returns:
        "The server's log has the error under the reference <reference>: ask <operator>
        to look it up there."
    """
    return (
        f"The server's log has the error under the reference {reference}: ask {operator} to "
        "look it up there."
    )


def _sentence(who: str, kind: str, reference: str, operator: str) -> str:
    return f"{who} failed with {kind}. {told_reference(reference, operator)}"


class ToldResult:
    """A tool's result as a client is told it: its tokens as they come, an exception's told.

    The part of the result's text that tells the model a tool's exception (one that is no
    ``ToolError``: see :class:`~miniagents.ext.tools.running.ToolErrorPart`) is held back
    and told as :func:`told_error` tells an error: a sentence naming the tool and the
    exception's class, with the reference the log has the exception under (logged whole,
    with its traceback, where it was caught), unless ``error_texts``. Everything else
    streams as it comes: the part is the result's last token, said in its metadata before
    it comes. The model still reads the result whole; a client that sends the conversation
    back (AG-UI's, the AI SDK's) sends what it was told.
    """

    __slots__ = ("_error_texts", "_operator", "_result", "text")

    def __init__(
        self,
        result: MessagePromise[Message],
        *,
        error_texts: bool,
        operator: str = "the agent's operator",
    ) -> None:
        self._result = result
        self._error_texts = error_texts
        self._operator = operator
        self.text = ""
        """The whole text the client is told, once :meth:`tokens` has ended."""

    async def tokens(self) -> AsyncGenerator[str, None]:
        """The result's tokens as the client is told them, each as soon as it is known."""
        result, sent = self._result, 0
        async for token in result:
            part = None if self._error_texts else error_part(result.metadata)
            told = token if part is None else token[: max(part.at - sent, 0)]
            if told:
                sent += len(told)
                yield told
        text = (await result).text or ""
        part = None if self._error_texts else error_part(result.metadata)
        if part is not None:
            name = result.metadata.get("tool_name")
            tool = f"The tool {name}" if isinstance(name, str) and name else "A tool"
            text = text[: part.at] + _sentence(
                tool, part.error_class, part.reference, self._operator
            )
            yield text[sent:]
        self.text = text
