"""Streams to the browser: agents served over SSE in the AG-UI and AI SDK protocols (extra ``web``).

:func:`agui_app` and :func:`ai_sdk_app` make ASGI apps (Starlette; mount them in FastAPI or
Starlette, or serve them with uvicorn) that take a protocol's run input, run the agent in a
``MiniAgents`` context of its own, and stream its reply as that protocol's events. Importing
this package without Starlette, sse-starlette and ag-ui-protocol raises a
``MissingExtraError`` that says ``pip install "miniagents[web]"``.

:func:`web_chat_app` serves a chat page (one HTML file, e.g. ``examples/web_chat/index.html``
of the repository) with an agent behind it: ``miniagents web`` runs it.

Every app is given ``authentication=`` (who asks: see :mod:`miniagents.ext.web.auth`; for
local development, the named choice :class:`~miniagents.ext.web.auth.NoAuthentication`)
and takes its limits, the hosts and origins it serves and whether approvals may edit
arguments as one :class:`~miniagents.ext.web.settings.WebSettings` (``settings=``), each
named once there; what is an app's own (its inputs, arguments, context, approval flow,
page) stays its parameter::

    app = agui_app(agent, authentication=NoAuthentication())  # this machine only
    app = ai_sdk_app(
        agent,
        authentication=BearerTokenAuth({"s3cr3t-token-of-ada": "ada"}),
        settings=WebSettings(allowed_hosts=["chat.example.com"], max_live_runs=20),
    )

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
    tool result, done     SUBAGENT_FINISHED (SUBAGENT_ERROR     tool-output-available (output:
                          of message the result's text, if the  the whole text), or
                          tool failed), then TOOL_CALL_RESULT   tool-output-error (errorText)
                          (content: the whole text;
                          metadata.isError on an error)
    a call that needs     (asked where the run pauses)          tool-approval-request (approvalId
    approval                                                    and toolCallId: the call's id)
    the reply waits for   RUN_FINISHED (outcome: interrupt,     finish-step, finish, [DONE]
    a decision            an Interrupt per waiting call)        (the stream ends; the run waits)
    the run resumed       RUN_STARTED (the new run's ids)       start (the same messageId); the
                                                                decided calls' outputs outside a
                                                                step, then start-step
    a denied call         TOOL_CALL_RESULT (metadata.isError,   tool-output-denied
                          .denied)
    in_stream flow: a     CUSTOM "tool_approval_request" (its   tool-approval-request (the
    call that waits       value: an AG-UI Interrupt)            stream stays open)
    the model's next      (nothing)                             finish-step, start-step
    step after results
    (run ends)            RUN_FINISHED (usage: per model;       finish-step, finish
                          metadata.costUsd)                     (messageMetadata.usage), [DONE]
    the agent fails       RUN_ERROR (message, code: the         message-metadata (usage), error
                          error's class; usage)                 (errorText), [DONE]
    the run is cancelled  TEXT_MESSAGE_END, TOOL_CALL_END,      message-metadata (usage), abort,
                          SUBAGENT_FINISHED of what is open,    [DONE]
                          then RUN_FINISHED (outcome:
                          cancelled; usage)

The usage is what the reply's texts said (an LLM agent's answer: its tool loop's), left out
when they said none.

So a nested stream (a tool's or sub-agent's output) reaches the page live and says which
tool call it belongs to: AG-UI by the nested run's ``parentToolCallId`` (and every
nested event's ``subagentRunId``), the AI SDK by the ``toolCallId`` of each data part.

**Resuming.** Every event has an SSE ``id``: its position in the run, from ``0`` (for a
durable agent's app, inside a message, followed by where the message stands, so that a
client resuming after a restart never gets two answers spliced: see docs/web.md). The
events of a run are kept while it runs and ``keep_runs_for`` seconds after it ends (in
memory), so a client that lost its connection reconnects to the run's URL with
``Last-Event-ID`` and gets the events after that one, then the live rest: nothing lost,
nothing twice. Any number of clients may follow one run at once; the agent runs once.
AG-UI: ``GET {path}/runs/{runId}``; AI SDK: ``GET {path}/{chat id}/stream`` (the AI SDK's
own convention, ``useChat``'s ``resume``: without ``Last-Event-ID`` it streams the chat's
run only while the run streams, from its first event, and is a ``204`` when the chat has
no active stream, its run ended or paused: the page has that message already). When the
agent is durable (``durable(agent)`` of ``miniagents.ext.dbos``), each run is a durable
run named after it, and runs survive a restart of the server: the app launches DBOS at its
start (recovering the runs a crash stopped; a mounted app, whose lifespan does not run,
at its first request), and a request for a run it does not know finds the run in the
database and replays it from its record (the same events in the same order, so a
``Last-Event-ID`` keeps its place; no finished model or tool call is made again, and a
pause that was resumed pauses again and goes on in the run that resumed it); a run that
waited for an approval waits for it again, and the protocol's answer resumes it.

**Approvals.** A call of a tool made with ``requires_approval=`` waits for a person (see
``ToolApprovalRequest``), and the page is asked in the protocol's own way
(``approval_flow="protocol"``, the default): where the reply can go no further until a
call is decided, the stream ends as the protocol says a waiting run ends, and the agent
waits (no LLM call open, no thread blocked) for the protocol's own answer. AG-UI: a new run
of the thread whose ``resume`` answers the interrupts (``{"interruptId", "status":
"resolved", "payload": {"approved": ..., "arguments"?, "reason"?}}``, or ``"status":
"cancelled"``, a denial). AI SDK: the chat sent again (``useChat`` with
``sendAutomaticallyWhen``) with the tool part in state ``approval-responded`` (``approval:
{id, approved, reason}``). That request's stream goes on from where the run stopped (a
resume sent while the run still streams waits until it stops there). A
waiting run nobody resumes within ``keep_runs_for`` is cancelled (a durable one whose calls
were all decided elsewhere meanwhile goes on, unread); a new run of the thread
(a new message of the chat) abandons it. While a run still streams, a decision may also
come to ``POST {path}/runs/{runId}/approvals/{toolCallId}`` (AG-UI) or ``POST {path}/{chat
id}/approvals/{approvalId}`` (AI SDK) with ``{"approved": true}`` or ``{"approved": false,
"reason": "..."}``: the run then never stops there. A decision may replace the call's
arguments (``"arguments": {...}``, there or in an AG-UI resume's payload) only when the
settings say ``approval_edits=True`` (else it is a 422, ``edits_not_allowed``); edited
arguments that do not fit the tool's argument schema are a 422 (``invalid_arguments``,
naming what is wrong) that decides nothing: the call still waits, to be answered again.
With ``approval_flow="in_stream"`` a run never pauses: the stream stays open until the
decision comes to that URL, and the event that says a call waits is AG-UI's ``CUSTOM``
event named ``tool_approval_request`` (its ``value`` an ``Interrupt`` naming the call) and
the AI SDK's ``tool-approval-request`` part (its ``approvalId`` the call's id). A decision
for a call that is not waiting is a 409 (``not_pending``; ``paused`` at the URL when the
run has paused: answer it the protocol's way); for a call that asked nothing, a 404
(``unknown_approval``, AG-UI ``unknown_interrupt``).

**Limits** (the settings'). At most ``max_live_runs`` runs run (or wait paused) at once:
one more is a 503 (``too_many_runs``, with ``Retry-After``) and starts nothing; one
principal runs at most ``max_live_runs_per_principal`` (a 429, ``too_many_runs_of_yours``).
At most ``max_streams`` event streams are sent at once (a 503, ``too_many_streams``), at
most ``max_streams_per_principal`` to one principal (a 429, ``too_many_streams_of_yours``):
a stream's slot is freed as it closes. A finished run is forgotten ``keep_runs_for``
seconds after it ends, read again or not, and sooner when more than ``max_ended_runs``
(1,000) runs have ended since, or when the ended runs keep more than
``max_ended_run_bytes`` (32 MB) of events in all: the oldest ended goes first (of the
principal who keeps the most; a live or paused run never does).

**Which hosts.** A request whose ``Host`` is not one of the settings' ``allowed_hosts``
(this machine's names by default: ``localhost``, ``127.0.0.1``, ``[::1]``, any port) is a
400 (``host_not_allowed``) before anything else runs, whatever the authentication: a page
of a name an attacker points at the server (DNS rebinding) reaches nothing.

**Who asks** (:mod:`miniagents.ext.web.auth`). ``authentication=`` (a Starlette
``AuthenticationBackend``, e.g. :class:`~miniagents.ext.web.auth.BearerTokenAuth`, or
``"request.user"`` behind an enclosing ``AuthenticationMiddleware``) names the principal of
each request (``request.user.identity``); a request of nobody known is a 401
(``unauthenticated``) and starts nothing. A run, its events, its resume, its cancellation
and its approvals are its principal's: to another it is a 404 (the AI SDK's resume: 204),
and the same run id names one run per principal (a durable run's workflow id holds its
principal, so it keeps its owner across a restart). A decision records who gave it
(``ToolDecision.decided_by``). An app made without ``authentication=`` is a
``WebConfigurationError``; ``authentication=NoAuthentication()`` is the named choice of
nobody (for local development): runs are nobody's, every request counts as one principal's
for the limits, and an app that serves other hosts than this machine's warns as it starts.
A POST must be JSON (415,
``unsupported_media_type``) from the app's own origin or one of ``allowed_origins`` (403,
``origin_not_allowed``; CORS, preflight included, for those); a browser's request that
says no ``Origin`` but ``Sec-Fetch-Site: cross-site`` or ``same-site`` (an image or a frame
of another site's page) is a 403 too (a link followed in the user's own tab still opens a
page); every response carries a Content-Security-Policy (``default-src 'none';
frame-ancestors 'none'``), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``
and ``Referrer-Policy: no-referrer``. Any text (lone surrogates, NUL, line separators,
``data:`` lines) streams as valid UTF-8 JSON, one SSE event each.

**AG-UI's inputs.** ``agui_app(agent, inputs=["state", "tools", "context",
"forwarded_props"])`` gives the agent those fields of the ``RunAgentInput`` as keyword
arguments of the same names.

**Cancellation.** When the last client of a live run disconnects and none comes back within
``grace_period`` seconds (0: at once), the run is cancelled: the agent's reply is given up
on, so its LLM calls are cancelled and their HTTP streams closed.

**Bad input** gets a 4xx with a JSON body ``{"error": {"code": ..., "message": ...}}`` that
says what was wrong, and starts no run: a body that is not JSON (400, ``invalid_json``),
not of the protocol's shape (422), over ``max_body_bytes`` (413, ``body_too_large``), not
all sent within ``body_seconds`` of the request's arrival (408, ``body_too_slow``), an
AG-UI run id in use (409, ``run_exists``) or unknown (404, ``unknown_run``), a
``Last-Event-ID`` that is not an event of the run (400, ``unknown_event_id``), a resume
that answers no waiting call or is not a decision (404, 409, 422), edited arguments the
tool refuses (422, ``invalid_arguments``, each problem listed in its ``errors``) or any
edit when the settings say ``approval_edits=False``, the default (422,
``edits_not_allowed``).
"""

from miniagents.ext.errors import MissingExtraError

MissingExtraError.unless_importable(
    ["starlette", "sse_starlette", "ag_ui"],
    "miniagents.ext.web needs {module} (Starlette, sse-starlette and ag-ui-protocol). "
    'Install them with: pip install "miniagents[web]"',
)

from miniagents.ext.web.agui import agui_app as agui_app  # noqa: E402
from miniagents.ext.web.ai_sdk import ai_sdk_app as ai_sdk_app  # noqa: E402
from miniagents.ext.web.auth import BearerTokenAuth as BearerTokenAuth  # noqa: E402
from miniagents.ext.web.auth import NoAuthentication as NoAuthentication  # noqa: E402
from miniagents.ext.web.settings import WebSettings as WebSettings  # noqa: E402
from miniagents.ext.web.web_chat import web_chat_app as web_chat_app  # noqa: E402

__all__ = [
    "BearerTokenAuth",
    "NoAuthentication",
    "WebSettings",
    "agui_app",
    "ai_sdk_app",
    "web_chat_app",
]
