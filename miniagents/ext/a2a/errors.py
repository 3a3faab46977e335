"""Errors of A2A (agents across services); the whole hierarchy is drawn in :mod:`miniagents.errors`.

A remote agent's failure reaches the caller as one of these, never as the SDK's own errors
(each pickles with its attributes, so it crosses to a Ray driver as itself):
the remote said the request was wrong (:class:`A2ARemoteError` and its subclasses, by the
JSON-RPC code it answered), its task failed, was rejected or was cancelled there
(:class:`A2ATaskFailedError` and its subclasses), it asks for input the caller cannot give
(:class:`A2AInputRequiredError`), the remote could not be reached
(:class:`A2AConnectionError`, :class:`A2AHTTPError`), or it sent more than the caller
takes (:class:`A2AReplyTooLargeError`).
"""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "A2ACardError",
    "A2ACardOriginError",
    "A2AConfigurationError",
    "A2AConnectionError",
    "A2AError",
    "A2AHTTPError",
    "A2AInputRequiredError",
    "A2AInvalidRequestError",
    "A2AProtocolError",
    "A2ARemoteError",
    "A2AReplyTooLargeError",
    "A2ATaskCanceledError",
    "A2ATaskFailedError",
    "A2ATaskNotFoundError",
    "A2ATaskRejectedError",
    "A2AUnsupportedOperationError",
]


class A2AError(MiniAgentsError):
    """Serving an agent over A2A, or calling a remote A2A agent, failed."""


class A2AConfigurationError(A2AError, ArgumentError):
    """``a2a_app`` or ``a2a_agent`` was given options it cannot use (the message names them).

    Also an ``A2AFile`` made with fields it cannot hold (no bytes and no URL, or both).
    """


class A2ACardError(A2AError, ValueError):
    """A remote agent's card could not be fetched, or names no JSON-RPC interface to call."""


class A2ACardOriginError(A2ACardError):
    """A fetched card names an interface on another origin, where the caller's headers do not go.

    The caller's own rule (``a2a_agent``'s ``headers_to_other_origins``), not a stale card:
    the card is not fetched again for it.
    """


class A2AConnectionError(A2AError, ConnectionError):
    """The remote agent could not be reached, or its stream broke and could not be resumed."""


class A2AHTTPError(A2AError):
    """The remote agent answered with an HTTP error (e.g. 401: the credentials it wants).

    Attributes:
        status: The HTTP status code, when the SDK said it (else ``None``).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class A2AProtocolError(A2AError):
    """The remote agent's answers break the A2A protocol (an event of no task, say)."""


class A2ARemoteError(A2AError):
    """The remote agent answered a JSON-RPC error (its code and data are kept).

    Attributes:
        code: The JSON-RPC error code (e.g. ``-32001``, task not found).
        data: The error's data, if it sent some.
    """

    def __init__(self, message: str, code: int = 0, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class A2AInvalidRequestError(A2ARemoteError, ValueError):
    """The remote refused the request as invalid: its JSON, method, params, content or version."""


class A2ATaskNotFoundError(A2ARemoteError, LookupError):
    """The remote has no such task (never started there, forgotten, or another's)."""


class A2AUnsupportedOperationError(A2ARemoteError):
    """The remote does not do what was asked (push notifications, a task that has ended...)."""


class A2ATaskFailedError(A2AError):
    """The remote agent's task ended failed (or was rejected) instead of completing.

    Attributes:
        task_id: The remote task's id.
        state: Its final state, as A2A names it (``TASK_STATE_FAILED``, ...).
        remote_type: The class name of the remote agent's error, when the remote said it
            (a MiniAgents server does).
    """

    def __init__(
        self, message: str, *, task_id: str = "", state: str = "", remote_type: str | None = None
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.state = state
        self.remote_type = remote_type


class A2ATaskCanceledError(A2ATaskFailedError):
    """The remote task was cancelled there (not by this caller) before it completed."""


class A2ATaskRejectedError(A2ATaskFailedError):
    """A task was rejected: the agent will not do it (state ``TASK_STATE_REJECTED``).

    Both sides use it: ``a2a_agent`` raises it when the remote rejected its task, and an
    agent served with ``a2a_app`` raises it to reject its own (its message is the status
    message the client reads): ``raise A2ATaskRejectedError("I only answer about rivers.")``.
    """


class A2AInputRequiredError(A2AError):
    """The remote task asks for input (or authentication) that this agent does not give.

    Raised by an ``a2a_agent`` made with ``questions="raise"`` (by default a question is an
    ``A2AInputRequest`` in the reply, which the caller answers). A MiniAgents server's
    approvals are not this: ``a2a_agent`` asks for them in its reply and sends the
    decisions.

    Attributes:
        task_id: The remote task's id (it waits there for the input).
        context_id: Its context.
        state: ``TASK_STATE_INPUT_REQUIRED`` or ``TASK_STATE_AUTH_REQUIRED``.
        question: The text of the remote's request, whole: the caller may need all of it
            to answer (in a call that gives everything at first). It is bounded all the
            same, counted among the reply's characters of text: a question of more than
            ``max_reply_chars`` characters is an ``A2AReplyTooLargeError`` instead. The
            message quotes it cut to 400 characters, on one line (``quoted_words``).
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: str = "",
        context_id: str = "",
        state: str = "",
        question: str = "",
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.context_id = context_id
        self.state = state
        self.question = question


class A2AReplyTooLargeError(A2AError):
    """The remote agent sent more than ``a2a_agent`` takes; the remote task is cancelled.

    Its reply went over ``max_reply_chars`` characters of text, or ``max_reply_messages``
    messages (artifacts and approval requests), or one event of its stream (or one answer)
    over ``max_event_bytes`` bytes or ``max_event_values`` JSON values.

    Attributes:
        task_id: The remote task's id (empty if the remote named none before, nor in the
            first bytes of an event or answer refused: then the task, if it started one, was
            not cancelled, and the message says so).
        limit: The name of the limit it went over (``max_reply_chars``,
            ``max_reply_messages``, ``max_event_bytes`` or ``max_event_values``).
    """

    def __init__(self, message: str, *, task_id: str = "", limit: str = "") -> None:
        super().__init__(message)
        self.task_id = task_id
        self.limit = limit
