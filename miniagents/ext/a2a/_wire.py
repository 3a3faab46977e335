"""What both sides of an A2A hop agree on beyond the protocol: MiniAgents' names in its JSON.

A2A carries a task's events as JSON (the protobuf JSON mapping of its messages: camelCase
fields, enums by name). MiniAgents' server says more than the protocol requires, in the
``metadata`` of its artifacts, statuses and messages, under one key (:data:`META`), and its
client reads it back (other servers say none of it, and their replies are texts):

- each message of the reply is an artifact, whose ``kind`` is ``text`` (a text, streamed
  token by token; a message's images are file parts after its text), ``file`` or ``data``
  (an ``A2AFile`` or ``A2AData``: one file or data part, sent whole), ``tool-call`` (a
  tool call: its arguments' JSON, streamed, and the parsed ``arguments`` on its last chunk)
  or ``tool-result`` (a tool's result, streamed as the tool produces it: a sub-agent's
  reply token by token; ``isError`` and ``denied`` on its last chunk); a text says its
  ``role`` and ``agentAlias``, a call and a result their ``toolCallId`` and ``toolName``; a
  text's last chunk carries the model's ``usage`` (tokens and cost) and ``model`` when the
  message knows them, and every last chunk ``done``;
- a task that waits for approvals is ``TASK_STATE_INPUT_REQUIRED``, its status message a
  text and a data part ``{"toolApprovalRequest": {"toolCallId", "toolName", "arguments",
  "responseSchema"}}`` per call that waits; the next message to the task decides them, a
  data part ``{"toolCallId": ..., "approved": true or false, "arguments"?: {...},
  "reason"?: "..."}`` per call;
- a task whose agent asks its caller a question is ``TASK_STATE_INPUT_REQUIRED`` (a
  request to authenticate: ``TASK_STATE_AUTH_REQUIRED``), its status message the question
  (no approval request in it); the next message to the task is the answer;
- a task the agent rejected (it raised ``A2ATaskRejectedError``) is ``TASK_STATE_REJECTED``,
  its status message the error's;
- a failed task's status says the error's class (``errorType``); a completed task's, the
  usage of its reply (every call of a model it caused, the agents it called as tools
  included: more than the sum of its texts' when it called some).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from miniagents.ext.a2a.errors import A2AError
from miniagents.ext.llm.messages import TokenUsage

__all__ = [
    "APPROVAL_REQUEST",
    "AUTH_REQUIRED",
    "CANCELED",
    "COMPLETED",
    "DATA",
    "DECISION_SCHEMA",
    "FAILED",
    "FILE",
    "FINAL_STATES",
    "INPUT_REQUIRED",
    "META",
    "PAUSED_STATES",
    "REJECTED",
    "SUBMITTED",
    "TEXT",
    "TOOL_CALL",
    "TOOL_RESULT",
    "WORKING",
    "Code",
    "ours",
    "usage_json",
    "usage_of",
]

META: Final = "miniagents"
"""The key of MiniAgents' own metadata in an artifact's, a status's or a message's."""

TEXT: Final = "text"
FILE: Final = "file"
DATA: Final = "data"
TOOL_CALL: Final = "tool-call"
TOOL_RESULT: Final = "tool-result"

APPROVAL_REQUEST: Final = "toolApprovalRequest"
"""The key of a call's approval request in a data part of an input-required status."""

SUBMITTED: Final = "TASK_STATE_SUBMITTED"
WORKING: Final = "TASK_STATE_WORKING"
COMPLETED: Final = "TASK_STATE_COMPLETED"
FAILED: Final = "TASK_STATE_FAILED"
CANCELED: Final = "TASK_STATE_CANCELED"
INPUT_REQUIRED: Final = "TASK_STATE_INPUT_REQUIRED"
REJECTED: Final = "TASK_STATE_REJECTED"
AUTH_REQUIRED: Final = "TASK_STATE_AUTH_REQUIRED"

FINAL_STATES: Final = frozenset({COMPLETED, FAILED, CANCELED, REJECTED})
"""The terminal states: nothing more happens to such a task."""

PAUSED_STATES: Final = frozenset({INPUT_REQUIRED, AUTH_REQUIRED})
"""The interrupted states: the task waits for the client's next message."""

DECISION_SCHEMA: Final[Mapping[str, object]] = {
    "type": "object",
    "properties": {
        "toolCallId": {"type": "string"},
        "approved": {"type": "boolean"},
        "arguments": {"type": ["object", "null"]},
        "reason": {"type": ["string", "null"]},
    },
    "required": ["toolCallId", "approved"],
    "additionalProperties": False,
}
"""The JSON schema of a decision, as a data part of the message that answers a task."""


class Code:
    """The JSON-RPC error codes of A2A (the protocol's own, and JSON-RPC's)."""

    PARSE_ERROR: Final = -32700
    INVALID_REQUEST: Final = -32600
    METHOD_NOT_FOUND: Final = -32601
    INVALID_PARAMS: Final = -32602
    INTERNAL: Final = -32603
    TASK_NOT_FOUND: Final = -32001
    TASK_NOT_CANCELABLE: Final = -32002
    PUSH_NOT_SUPPORTED: Final = -32003
    UNSUPPORTED_OPERATION: Final = -32004
    CONTENT_TYPE_NOT_SUPPORTED: Final = -32005
    INVALID_AGENT_RESPONSE: Final = -32006
    EXTENDED_CARD_NOT_CONFIGURED: Final = -32007
    EXTENSION_SUPPORT_REQUIRED: Final = -32008
    VERSION_NOT_SUPPORTED: Final = -32009
    SERVER_BUSY: Final = -32000
    """(JSON-RPC's range for a server's own errors: too many tasks; with HTTP 503 or 429)"""


_USAGE_FIELDS: Final = (
    ("input_tokens", "inputTokens"),
    ("output_tokens", "outputTokens"),
    ("cached_input_tokens", "cachedInputTokens"),
    ("cache_write_tokens", "cacheWriteTokens"),
    ("reasoning_tokens", "reasoningTokens"),
    ("cost_usd", "costUsd"),
)


def usage_json(usage: TokenUsage) -> dict[str, object]:
    """``usage`` as the JSON of the metadata (the counts it knows, camelCase)."""
    return {
        name: value for field, name in _USAGE_FIELDS if (value := getattr(usage, field)) is not None
    }


def usage_of(value: object) -> TokenUsage | None:
    """The usage that metadata's JSON ``value`` says (``None``: it says none, or not as one)."""
    if not isinstance(value, Mapping):
        return None
    fields: dict[str, object] = {}
    for field, name in _USAGE_FIELDS:
        found = value.get(name)
        if isinstance(found, bool) or not isinstance(found, int | float):
            continue
        fields[field] = float(found) if field == "cost_usd" else int(found)
    return TokenUsage.model_validate(fields) if fields else None


def ours(metadata: object) -> Mapping[str, object]:
    """MiniAgents' own part of an A2A ``metadata`` object (empty if it has none)."""
    if isinstance(metadata, Mapping):
        found = metadata.get(META)
        if isinstance(found, Mapping):
            return found
    return {}


class _RPCError(A2AError):
    """A JSON-RPC error to answer (raised by a method's handler, never out of the app).

    Args:
        code: Its JSON-RPC code (:class:`~miniagents.ext.a2a._wire.Code`).
        message: What was wrong, and how to do it right.
        metadata: More of what was wrong, for its ``ErrorInfo`` (string values).
        violations: The params' fields that break a rule, each with why (a
            ``google.rpc.BadRequest``).
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.metadata = dict(metadata or {})
        self.violations = tuple(violations)
