"""Running one tool call: a ``ToolResultMessage`` promise whose tokens stream as they come.

::

    call:    ToolCallMessage(tool_name="weather", arguments={"city": "Paris"}, call_id="c1")
    tool:    ....."Sunny"...", 21 °C"|
    result:  --------"Sunny"--", 21 °C"--|   -> ToolResultMessage(text="Sunny, 21 °C",
                                                 tool_name="weather", call_id="c1",
                                                 is_error=False)
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import NamedTuple, TypeVar, overload

from miniagents.arguments import refused_argument
from miniagents.ext.tools.approval import ToolApprovalRequest, withdraw_request
from miniagents.ext.tools.errors import ToolCallError, ToolDefinitionError, ToolError
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.observing import (
    ToolCallWatch,
    decided_tool_call,
    end_tool_call,
    watch_tool_call,
)
from miniagents.ext.tools.recording import recorded_decision, recorded_tool_call
from miniagents.ext.tools.tool import Tool
from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents.lowlevel import start_task
from miniagents.root_error import ArgumentError, MiniAgentsError

__all__ = [
    "ERROR_SEPARATOR",
    "ToolErrorPart",
    "carry_error_reference",
    "checked_call",
    "error_part",
    "error_result",
    "run_tool_call",
    "told_as_written",
]

logger = logging.getLogger(__name__)

ERROR_SEPARATOR = "\n\n"
"""Between what a tool replied before it failed and the text of the error."""

_REFERENCE = "miniagents_error_reference"
"""The key of an exception's ``__dict__`` that holds the reference it was logged under."""

_CLASS = "miniagents_error_class"
"""The key of an exception's ``__dict__`` that holds the class name it is told by, when it
stands for another (``carry_error_reference``)."""

_TEXT = "miniagents_error_text"
"""The key of an exception's ``__dict__`` that holds the text it is told by, when it stands
for another (``carry_error_reference``): the other's, without the substitute's own words."""

_WRITTEN = "miniagents_error_written"
"""The key of an exception's ``__dict__`` that says it stands for an error told as written
(``carry_error_reference``): ``"alone"``, a ``ToolError``'s sentence, told by itself;
``"classed"``, another's (an ``InputRequestError``'s), told after its class's name."""


class ToolErrorPart(NamedTuple):
    """Where a result's text tells the model a tool's exception, one not written for it.

    A tool's exception that is not told as written (as a ``ToolError``'s or an
    ``InputRequestError``'s text is: the library or the tool wrote it for the model) may
    echo what only the model may read: an SDK's error names the URL it called, with its
    key. It is logged whole (an ``ERROR``, with its traceback) once, where it is caught,
    under a reference; its error result says so in its metadata
    (``error_class``, ``error_at``, ``error_reference``), set before its text's error part is
    appended (one token), so that a server that streams the result to its clients can tell
    them the class and the reference there (see ``miniagents.ext.told_errors.ToldResult``)
    while the model gets the text whole.

    Attributes:
        at: Where the error's text begins in the result's text (after what the tool
            replied before it failed, and ``ERROR_SEPARATOR``).
        error_class: The name of the exception's class.
        reference: The reference the log has the exception under (a durable run's call
            read again keeps the one its first run logged).
    """

    at: int
    error_class: str
    reference: str

    def metadata(self) -> dict[str, object]:
        """The result's metadata fields that say it (``error_part`` reads them back)."""
        return {
            "error_class": self.error_class,
            "error_at": self.at,
            "error_reference": self.reference,
        }


def error_part(metadata: Mapping[str, object]) -> ToolErrorPart | None:
    """The part of a result's text that tells a tool's exception not written for the model.

    ``metadata``: the result's (``promise.metadata``, known as it streams: set before the
    part's token). ``None`` for a result that has none (no error, or one told as written).
    """
    at, error_class = metadata.get("error_at"), metadata.get("error_class")
    reference = metadata.get("error_reference")
    if type(at) is not int or at < 0 or not isinstance(error_class, str):
        return None
    if not isinstance(reference, str):
        return None
    return ToolErrorPart(at, error_class, reference)


ResultT = TypeVar("ResultT", bound=ToolResultMessage)
"""The class of a tool's result: a ``ToolResultMessage`` subclass given as ``result_class``."""


@overload
def run_tool_call(
    tool: Tool,
    call: ToolCallMessage,
    *,
    result_class: type[ResultT],
    approval: ToolApprovalRequest | None = ...,
    **metadata: object,
) -> MessagePromise[ResultT]: ...


@overload
def run_tool_call(
    tool: Tool,
    call: ToolCallMessage,
    *,
    result_class: type[ToolResultMessage] = ...,
    approval: ToolApprovalRequest | None = ...,
    **metadata: object,
) -> MessagePromise[ToolResultMessage]: ...


def run_tool_call(
    tool: Tool,
    call: ToolCallMessage,
    *,
    result_class: type[ToolResultMessage] = ToolResultMessage,
    approval: ToolApprovalRequest | None = None,
    **metadata: object,
) -> MessagePromise[ToolResultMessage]:
    """Start ``call`` of ``tool`` now, in the background; return its result as it streams.

    With a pending ``approval`` request (see ``request_approval``), the tool waits for its
    decision: approved, it runs (with the edited arguments, if any); denied, the result is
    an error result that tells the model so (with the person's reason). A tool that needs
    approval for the call's arguments (``tool.needs_approval``) and is given no request
    does not run: its result is an error result that says so.

    The result resolves to a :class:`ToolResultMessage` (a ``result_class``, with any
    ``metadata`` fields) with the call's ``tool_name`` and ``call_id``; its type says the
    class: ``MessagePromise[result_class]``. Its tokens are the tool's reply, each passed
    on as soon as the tool produces it. It never fails for the tool's sake: arguments that
    are not valid JSON, arguments the tool's ``validate`` refuses, a run past the tool's
    ``timeout`` (cancelled) and exceptions of the
    tool (after any reply so far, and a blank line) end it as an error result
    (``is_error=True``) whose text tells the model what went wrong (an exception that is
    no ``ToolError`` says where its text begins, see ``ToolErrorPart``). Only cancellation ends
    it with an error (``StreamCancelledError``): cancelling the result
    (``result.cancel()``, or every consumer giving up) cancels the tool. A tool that calls
    ``sys.exit()`` ends it with that ``SystemExit``, which its reader gets as it is.

    The call runs in a task of the current ``MiniAgents`` context, which waits for it on exit.

    Raises:
        NoActiveContextError: outside of a ``MiniAgents`` context.
        ToolDefinitionError: if ``tool`` is not a ``Tool`` (e.g. a function).
        ArgumentError: if ``call`` is not a ``ToolCallMessage``.
    """
    if not isinstance(tool, Tool):
        raise ToolDefinitionError(
            f"run_tool_call takes a Tool, not {tool!r}: make one with as_tool(...), e.g. "
            "run_tool_call(as_tool(add), call), or run the call with ToolSet([add]).run(call)."
        )
    checked_call(call, "run_tool_call")
    result = MessageTokenAppender(
        message_class=result_class, **metadata, tool_name=call.tool_name, call_id=call.call_id
    )
    task = start_task(_run(tool, call, result, approval), f"tool {tool.name}")
    result.cancel_when_abandoned(task)
    return result.promise


def checked_call(call: object, owner: str) -> ToolCallMessage:
    """``call`` if it is a ``ToolCallMessage`` (what ``owner`` takes).

    Raises:
        ArgumentError: for anything else (e.g. a tuple of calls, or a dict of arguments).
    """
    if not isinstance(call, ToolCallMessage):
        raise refused_argument(
            call,
            "call",
            "a ToolCallMessage",
            owner=owner,
            fix="Pass the model's ToolCallMessage, e.g. ToolCallMessage(tool_name='add', "
            "arguments={'a': 1, 'b': 2}, call_id='c1').",
            error=ArgumentError,
        )
    return call


@overload
def error_result(
    call: ToolCallMessage, text: str, *, result_class: type[ResultT], **metadata: object
) -> MessagePromise[ResultT]: ...


@overload
def error_result(
    call: ToolCallMessage,
    text: str,
    *,
    result_class: type[ToolResultMessage] = ...,
    **metadata: object,
) -> MessagePromise[ToolResultMessage]: ...


def error_result(
    call: ToolCallMessage,
    text: str,
    *,
    result_class: type[ToolResultMessage] = ToolResultMessage,
    **metadata: object,
) -> MessagePromise[ToolResultMessage]:
    """A complete error result for ``call`` (e.g. for a tool the model named wrongly).

    It is a ``result_class`` (``ToolResultMessage`` by default), which its type says:
    ``MessagePromise[result_class]``.
    """
    fields = {"tool_name": call.tool_name, "call_id": call.call_id, "is_error": True}
    message = result_class.model_validate({**metadata, "text": text, **fields})
    return MessagePromise(prefill_message=message)


async def _run(
    tool: Tool,
    call: ToolCallMessage,
    result: MessageTokenAppender[ToolResultMessage],
    approval: ToolApprovalRequest | None,
) -> None:
    watch = watch_tool_call(tool, call, result.promise)  # tracing; None: not observed
    if watch is None:
        await _call(tool, call, result, approval, None)
        return
    failure: BaseException | None = None
    try:
        failure = await _call(tool, call, result, approval, watch)
    except BaseException as error:
        failure = error
        raise
    finally:
        end_tool_call(watch, failure)


async def _call(
    tool: Tool,
    call: ToolCallMessage,
    result: MessageTokenAppender[ToolResultMessage],
    approval: ToolApprovalRequest | None,
    watch: ToolCallWatch | None,
) -> BaseException | None:
    """Run the call into ``result``; the tool's error that ended it there, if any.

    That error is one that became an error result, or a ``BaseException`` the result fails
    with (a ``SystemExit``, DBOS's refusal to record a step), so that its reader gets it as
    ``await asyncio.to_thread(sys.exit)`` would; only a ``KeyboardInterrupt`` is raised.
    """
    replied = False
    try:
        if len(call.text or "") > tool.max_argument_chars:
            raise ToolCallError(_oversized(tool, len(call.text or "")))
        if call.arguments_error is not None:
            raise ToolCallError(
                f"The call of the tool {tool.name} could not be read: {call.arguments_error} "
                "Call it again with a JSON object of arguments."
            )
        arguments = await _approved_arguments(tool, call, approval, watch)
        validated = tool.validate(arguments)
        pieces = recorded_tool_call(tool, call, lambda: _logged(tool, tool.run(validated)))
        try:
            async with asyncio.timeout(tool.timeout) as deadline:
                try:
                    async for piece in pieces:
                        if result.closed:  # cancelled: the cancellation is on its way here
                            return None
                        if piece:
                            replied = True
                            result.append(piece)
                finally:
                    aclose = getattr(pieces, "aclose", None)
                    if aclose is not None:
                        await aclose()
        except TimeoutError as error:
            if not deadline.expired():  # the tool's own TimeoutError: an error like any
                raise
            raise ToolCallError(
                f"The tool {tool.name} did not finish within its timeout of {tool.timeout:g} "
                "seconds, so its run was cancelled. Call it again with arguments that ask "
                "for less, or do without it."
            ) from error
    except asyncio.CancelledError as error:
        result.fail(error)
        raise
    except Exception as error:
        if result.closed:
            return None
        reference = _reference(tool, error)
        if reference is None and not isinstance(error, ToolCallError):
            logger.info("The tool %s failed; the model gets the error.", tool.name, exc_info=error)
        separator = ERROR_SEPARATOR if replied else ""
        fields: dict[str, object] = {"is_error": True}
        if reference is not None:  # (its text is not ours: said where it begins)
            at = len(result.appended) + len(separator)
            fields.update(ToolErrorPart(at, _told_class(error), reference).metadata())
        result.update_metadata(**fields)
        result.append(separator + _error_text(tool, error))
        result.complete()
        return error
    except KeyboardInterrupt as error:  # not for the model to handle: it stops the loop
        result.fail(error)
        raise
    except BaseException as error:  # sys.exit() in the tool (its thread), DBOS's refusal to
        result.fail(error)  # record a cancelled run's step: for its reader to get (raised out
        return error  # of this task, a SystemExit would stop the loop; any, be never read)
    result.complete()
    return None


async def _approved_arguments(
    tool: Tool,
    call: ToolCallMessage,
    approval: ToolApprovalRequest | None,
    watch: ToolCallWatch | None,
) -> Mapping[str, object]:
    """The arguments to run with, once a person approved the call (if it needs it)."""
    if approval is None:
        if tool.needs_approval(call.arguments):
            raise ToolCallError(
                f"The tool {tool.name} needs a person's approval to run, and nobody was "
                "asked; the call did not run."
            )
        return call.arguments
    try:
        decision = await recorded_decision(tool, call, approval)  # durable runs record it
    except asyncio.CancelledError:
        withdraw_request(approval)  # nobody is to be asked any more: not pending
        raise
    decided_tool_call(watch, decision)  # (tracing: who decided, and when)
    if not decision.approved:
        reason = f" Their reason: {decision.reason}" if decision.reason else ""
        raise ToolCallError(
            f"The user denied the call of the tool {tool.name}; it did not run.{reason}"
        )
    return call.arguments if decision.arguments is None else decision.arguments


async def _logged(tool: Tool, pieces: AsyncIterator[str]) -> AsyncIterator[str]:
    """``pieces``, an exception not written for the model logged as it passes.

    It carries its reference (``_reference``) on, so that a durable run records it with it:
    the call read again (replayed) tells the same reference, and logs nothing.
    """
    try:
        async for piece in pieces:
            yield piece
    except Exception as error:
        _reference(tool, error)
        raise
    finally:
        aclose = getattr(pieces, "aclose", None)
        if aclose is not None:
            await aclose()


def _reference(tool: Tool, error: Exception) -> str | None:
    """The reference the log has ``error`` under, unless it is written for the model.

    ``None`` for an error told as written (``told_as_written``); else the reference
    ``error`` carries, or a new one, under which it is logged whole now (an ``ERROR``, with
    its traceback; a remote tool's error, whose ``traceback_logged`` is false, with the
    remote text instead).
    """
    if told_as_written(error):
        return None
    carried = vars(error).get(_REFERENCE)  # (in its __dict__: pickled with it)
    if isinstance(carried, str):
        return carried
    reference = vars(error)[_REFERENCE] = uuid.uuid4().hex
    kind = type(error).__name__
    remote = isinstance(error, ToolError) and not error.traceback_logged
    logger.error(
        "The tool %s failed with %s (reference %s); the model gets its text.%s",
        tool.name,
        kind,
        reference,
        f" The remote tool answered: {_error_text(tool, error)}" if remote else "",
        exc_info=None if remote else error,  # (a remote error's: only our own raise)
    )
    return reference


def told_as_written(error: BaseException) -> bool:
    """Whether ``error``'s text is written for its reader, so told to every client as written.

    The one question every place that tells an error asks (a tool's result, a web app's
    failed run): the library's errors say it by their class's ``told_as_written``, a
    ``ToolError``'s (not a remote tool's, ``MCPToolError``), an ``InputRequestError``'s (an
    agent's question withdrawn, as an agent used as a tool's is: a model answers no
    question), a web run's cut or stop; an error that stands for one of them (a durable
    run's substitute for one it cannot record, see ``carry_error_reference``) says so
    too. Any other exception's text may echo what only the model (or the operator's log)
    may read: it is told by its class and a reference.
    """
    if vars(error).get(_WRITTEN) in ("alone", "classed"):
        return True
    return isinstance(error, MiniAgentsError) and getattr(error, "told_as_written", False) is True


def carry_error_reference(substitute: BaseException, original: BaseException) -> None:
    """Make ``substitute``, which stands for ``original``, tell its reference, class and text.

    For a durable run that cannot record ``original`` as itself (it cannot be pickled) and
    records ``substitute`` instead: the call read again tells the reference ``original`` was
    logged under, and the model its class's name and its text, as for ``original`` itself,
    and logs nothing (``substitute`` keeps them in its ``__dict__``, pickled with it). An
    ``original`` told as written (``told_as_written``) makes ``substitute`` told as written
    too, with ``original``'s text (and class, where it names it). Nothing is carried for
    any other error logged under none.
    """
    if told_as_written(original):
        vars(substitute)[_WRITTEN] = "alone" if _told_alone(original) else "classed"
        vars(substitute)[_CLASS] = _told_class(original)
        vars(substitute)[_TEXT] = _said(original)
        return
    carried = vars(original).get(_REFERENCE)
    if not isinstance(carried, str):
        return
    vars(substitute)[_REFERENCE] = carried
    vars(substitute)[_CLASS] = _told_class(original)
    vars(substitute)[_TEXT] = _said(original)


def _told_alone(error: BaseException) -> bool:
    """Whether ``error``'s text is told to the model alone, without its class's name.

    A ``ToolError``'s (ours: a sentence, whose class would tell the model nothing, e.g. an
    MCP session's, closed: "The MCP session of ..."), or one that stands for such an error.
    """
    return isinstance(error, ToolError) or vars(error).get(_WRITTEN) == "alone"


def _told_class(error: BaseException) -> str:
    """The name of the class ``error`` is told by: its own, or the one it stands for."""
    told = vars(error).get(_CLASS)
    return told if isinstance(told, str) else type(error).__name__


def _said(error: BaseException) -> str:
    """The text of ``error`` (its ``str``, or what stands for one that cannot be read)."""
    try:
        return str(error)
    except Exception as failure:  # an error whose __str__ fails must not hang the result
        return f"(its message could not be read: {type(failure).__name__})"


def _oversized(tool: Tool, length: int) -> str:
    """The error the model is told for a call whose arguments are longer than the tool takes."""
    most = tool.max_argument_chars
    return (
        f"The call of the tool {tool.name} was not run: its arguments are {length:,} "
        f"characters long, more than the {most:,} the tool takes. Call it again with "
        "shorter arguments (pass less at a time). For a tool that takes long texts, its "
        "author raises the bound with max_argument_chars=..."
    )


def _error_text(tool: Tool, error: Exception) -> str:
    """The result the model is shown for the tool's error (its ``str``, or what stands for it).

    An error that stands for another (``carry_error_reference``) is told as that other
    would be: by its class and text, once, without the substitute's class or words.
    """
    told = vars(error).get(_TEXT)
    said = told if isinstance(told, str) else _said(error)
    kind = _told_class(error)
    if not said.strip():  # (an empty result tells the model nothing; some APIs refuse it)
        return f"The tool {tool.name} failed: {kind}, without a message."
    if _told_alone(error):
        return said
    return f"The tool {tool.name} failed: {kind}: {said}"
