"""Streams to the browser: agents served over SSE in the AG-UI and AI SDK protocols (extra ``web``).

:func:`agui_app` and :func:`ai_sdk_app` make ASGI apps (Starlette; mount them in FastAPI or
Starlette, or serve them with uvicorn) that take a protocol's run input, run the agent in a
``MiniAgents`` context of its own, and stream its reply as that protocol's events. Importing
this package without Starlette, sse-starlette and ag-ui-protocol raises a
``MissingExtraError`` that says ``pip install "miniagents[web]"``.

:func:`web_chat_app` serves a ready chat page (one HTML file) with an agent behind it:
``miniagents web`` runs it.

**The reply, read in order.** Each message of the agent's reply is read as it streams, in
the order a reader of the reply sees it: a ``ToolCallMessage`` is a tool call (its tokens
are the arguments' JSON as the model writes it), a ``ToolResultMessage`` is a tool's result
(its tokens are the tool's output as the tool produces it: a sub-agent's reply streams into
it token by token), any other message is a text. The mapping::

    reply part            AG-UI events                          AI SDK UI message stream parts
    --------------------  ------------------------------------  ---------------------------------
    (run starts)          RUN_STARTED                           start, start-step
    text message          TEXT_MESSAGE_START (role, metadata    text-start / text-delta (per
                          .agentAlias) / _CONTENT (per token)   token) / text-end
                          / _END
    tool call             TOOL_CALL_START (parentMessageId:     tool-input-start / tool-input-delta
                          the text before the calls, if any)    (per token) / tool-input-available
                          / TOOL_CALL_ARGS (per token) / _END   (input: the parsed arguments)
    tool result, while    SUBAGENT_STARTED (subagentRunId       data-tool-output-delta (transient;
    the tool produces it  "{callId}-run", parentToolCallId),    data: {toolCallId, delta}) per
                          then TEXT_MESSAGE_START / _CONTENT /  token
                          _END with that subagentRunId
    tool result, done     SUBAGENT_FINISHED, then               tool-output-available (output:
                          TOOL_CALL_RESULT (content: the whole  the whole text), or
                          text; metadata.isError on an error)   tool-output-error (errorText)
    a call that waits     CUSTOM "tool_approval_request" (its   tool-approval-request (approvalId
    for approval          value: an AG-UI Interrupt, id and     and toolCallId: the call's id)
                          toolCallId the call's id)
    the model's next      (nothing)                             finish-step, start-step
    step after results
    (run ends)            RUN_FINISHED                          finish-step, finish, [DONE]
    the agent fails       RUN_ERROR (message, code: the         error (errorText), [DONE]
                          error's class)
    the run is cancelled  RUN_FINISHED (outcome: cancelled)     abort, [DONE]

So a nested stream (a tool's or sub-agent's output) reaches the page live and says which
tool call it belongs to: AG-UI by the nested run's ``parentToolCallId`` (and every
nested event's ``subagentRunId``), the AI SDK by the ``toolCallId`` of each data part.

**Resuming.** Every event has an SSE ``id`` (its position in the run, from ``0``). The
events of a run are kept while it runs and ``keep_runs_for`` seconds after it ends (in
memory), so a client that lost its connection reconnects to the run's URL with
``Last-Event-ID`` and gets the events after that one, then the live rest: nothing lost,
nothing twice. Any number of clients may follow one run at once; the agent runs once.
AG-UI: ``GET {path}/runs/{runId}``; AI SDK: ``GET {path}/{chat id}/stream`` (the AI SDK's
own convention; ``204`` when the chat has no run).

**Approvals.** A call of a tool made with ``requires_approval=`` waits for a person (see
``ToolApprovalRequest``); the page is asked as the table says, and answers with ``POST
{path}/runs/{runId}/approvals/{toolCallId}`` (AG-UI) or ``POST {path}/{chat
id}/approvals/{approvalId}`` (AI SDK) with ``{"approved": true, "arguments": {...}}`` (the
arguments optional, edited) or ``{"approved": false, "reason": "..."}``. The run waits
meanwhile (no LLM call open, no thread blocked) and then goes on in the same stream. A
decision for a call that is not waiting is a 409 (``not_pending``); for a call that asked
nothing, a 404 (``unknown_approval``). (AG-UI's interrupt-and-resume flow, which ends the run
and resumes it in a new one, and the AI SDK's re-sent conversation with approval responses
are not read: the decision goes to its own URL.)

**Cancellation.** When the last client of a live run disconnects and none comes back within
``grace_period`` seconds (0: at once), the run is cancelled: the agent's reply is given up
on, so its LLM calls are cancelled and their HTTP streams closed.

**Bad input** gets a 4xx with a JSON body ``{"error": {"code": ..., "message": ...}}`` that
says what was wrong, and starts no run: a body that is not JSON (400, ``invalid_json``),
not of the protocol's shape (422), over ``max_body_bytes`` (413, ``body_too_large``), an
AG-UI run id in use (409, ``run_exists``) or unknown (404, ``unknown_run``), a
``Last-Event-ID`` that is not an event of the run (400, ``unknown_event_id``).
"""

import importlib

from miniagents.ext.errors import MissingExtraError

for _module in ("starlette", "sse_starlette", "ag_ui"):
    try:
        importlib.import_module(_module)
    except ImportError as _error:
        raise MissingExtraError(
            f"miniagents.ext.web needs {_module} (Starlette, sse-starlette and "
            'ag-ui-protocol). Install them with: pip install "miniagents[web]"'
        ) from _error

from miniagents.ext.web.agui import agui_app as agui_app  # noqa: E402
from miniagents.ext.web.ai_sdk import ai_sdk_app as ai_sdk_app  # noqa: E402
from miniagents.ext.web.web_chat import web_chat_app as web_chat_app  # noqa: E402

__all__ = ["agui_app", "ai_sdk_app", "web_chat_app"]
