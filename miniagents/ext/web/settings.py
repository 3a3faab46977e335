"""``WebSettings``: the limits and the door settings that every web app takes, written once.

``agui_app``, ``ai_sdk_app``, ``web_chat_app`` and ``a2a_app`` take them as one object,
``settings=WebSettings(...)`` (each field keyword-only, each checked when the object is
made); the run manager and the door of each app read the same object, by the same names.
What is an app's own (its agent, its inputs and arguments, its approval flow, its page,
its card) stays the app's parameter, as does ``authentication=``, which every app must be
given (see :mod:`miniagents.ext.web.auth`).

One object may serve several apps (an AG-UI app and an AI SDK app mounted side by side,
say): each app keeps its own runs and counts them against its own limits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from miniagents.arguments import check_count, check_flag, check_seconds
from miniagents.ext.errors import WebConfigurationError

__all__ = [
    "DEFAULT_BODY_SECONDS",
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_BODY_VALUES",
    "DEFAULT_MAX_ENDED_RUNS",
    "DEFAULT_MAX_ENDED_RUN_BYTES",
    "DEFAULT_MAX_ID_CHARS",
    "DEFAULT_MAX_LIVE_RUNS",
    "DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL",
    "DEFAULT_MAX_LIVE_RUN_BYTES",
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_MAX_STREAMS_PER_PRINCIPAL",
    "LOCAL_HOSTS",
    "WebSettings",
    "checked_host",
]

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""The hosts an app serves unless told others: this machine's own names, with any port."""

DEFAULT_GRACE_PERIOD = 10.0
"""Seconds a run of AG-UI or the AI SDK goes on after its last client left."""

DEFAULT_MAX_LIVE_RUNS = 100
"""The most runs an app runs at once (one more is a 503 until one ends)."""

DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL = 10
"""The most runs one principal runs at once (one more is a 429 until one of theirs ends)."""

DEFAULT_MAX_LIVE_RUN_BYTES = 4_000_000
"""The most bytes one live run's events hold (an AG-UI or AI SDK run is cut past them), and
one live A2A task (its runs' events, its client's messages: a turn is cut past them)."""

DEFAULT_MAX_ENDED_RUNS = 1_000
"""The most ended runs an app keeps for late readers (one more forgets the oldest ended)."""

DEFAULT_MAX_ENDED_RUN_BYTES = 32_000_000
"""The most bytes an app's ended runs (and A2A tasks) keep (more forgets the oldest ended)."""

DEFAULT_MAX_STREAMS = 1_000
"""The most event streams an app sends at once (one more is a 503 until one closes)."""

DEFAULT_MAX_STREAMS_PER_PRINCIPAL = 20
"""The most event streams one principal has open at once (one more is a 429)."""

DEFAULT_MAX_BODY_BYTES = 1_000_000
"""The largest request body the apps read (a bigger one is a 413)."""

DEFAULT_MAX_BODY_VALUES = 10_000
"""The most JSON values a request's body holds, at every depth (a body of more is a 413)."""

DEFAULT_MAX_ID_CHARS = 256
"""The most characters an id a client chooses may hold (a longer one is refused)."""

DEFAULT_BODY_SECONDS = 30.0
"""Seconds a request's body has to arrive, all of it, from the request's arrival (then a 408)."""


@dataclass(frozen=True, kw_only=True)
class WebSettings:
    """The limits and the door of a web app: the settings every app shares.

    Each field is checked when the object is made: a value the app could not keep to is a
    ``WebConfigurationError`` that names the field (its ``parameter``), so a command line
    can name its own option for it. Sequences are kept as tuples (origins as
    ``scheme://host[:port]``, hosts in lower case).

    Attributes:
        allowed_hosts: The host names the app answers to (the request's ``Host`` header,
            any port): any other is a 400 (``host_not_allowed``) before anything else
            runs, so a page of a name that an attacker points at this machine (DNS
            rebinding) reaches nothing. ``"*.example.com"`` allows every subdomain of
            ``example.com`` (not ``example.com`` itself); ``"*"`` allows any host (only
            behind a proxy that checks the host itself). By default this machine's own
            names (``localhost``, ``127.0.0.1``, ``[::1]``): an app served under another
            name (a public one, a proxy's) lists it.
        allowed_origins: The origins of front ends on other origins that may call the app
            (CORS, preflight included), e.g. ``"https://chat.example.com"``; its own origin
            always may. A POST from a page of any other origin is a 403, and a POST that is
            not JSON a 415. ``"*"`` is refused (a page of any site could use the app with
            its users' credentials).
        approval_edits: Whether a decision on a call that waits for approval may replace
            the call's arguments (``False``, the default: a decision that carries
            arguments is a 422, ``edits_not_allowed``, and decides nothing; ``True``: the
            edited arguments are checked against the tool's schema, a 422
            ``invalid_arguments`` if they do not fit).
        error_texts: Whether a run that its agent's error ends tells its client (and every
            later reader of the run) the error's text as it is written (``True``). By
            default (``False``) it is told a sentence that names the error's class and a
            reference, and the server's log has the error whole, once, under that
            reference: an error's text may echo what the client must not see (an LLM SDK's
            error names the URL it called, with its key; an ``OSError`` a path). The errors
            the library writes for the client (``WebRunTooLargeError``,
            ``WebServerStoppedError``, ``InputRequestError``, a tool's ``ToolError``;
            A2A's rejection, ``A2ATaskRejectedError``) are told as they are. Every app reads
            it: AG-UI's ``RUN_ERROR``, the AI SDK's and the chat page's error part, an A2A
            task's failed status (and its webhooks), the voice page's error.
        grace_period: Seconds a run goes on after its last client left before it is
            cancelled (its LLM calls with it): ``0`` at once, ``math.inf`` never.
            ``None``, the default, is the app's own: 10 seconds for ``agui_app``,
            ``ai_sdk_app`` and ``web_chat_app``, never for ``a2a_app`` (A2A's tasks outlive
            their connections; ``CancelTask`` cancels them).
        keep_runs_for: Seconds an ended run stays for the clients that come back for it
            (``Last-Event-ID``, A2A's ``GetTask``), and a run paused for approvals waits for
            them before it is cancelled.
        max_live_runs: The most runs running (or paused) at once in the app; one more is a
            503 (``too_many_runs``, with ``Retry-After``) and starts nothing.
        max_live_runs_per_principal: The most runs one principal runs (or has paused) at
            once; one more is a 429 (``too_many_runs_of_yours``, with ``Retry-After``) and
            starts nothing. An app without authentication counts every request as one
            principal's (``NoAuthentication``: the one local user).
        max_live_run_bytes: The most bytes one live run holds. In ``agui_app``,
            ``ai_sdk_app`` and ``web_chat_app``, a run keeps every event it streamed (for
            the clients that reconnect) and its reply its text while it runs: a run whose
            events grow past this is cut there (its agent cancelled), and its client, and
            every later reader of the run, gets the protocol's error
            (``WebRunTooLargeError``: AG-UI's ``RUN_ERROR``, the AI SDK's ``error`` part,
            which the chat page shows). In ``a2a_app``, this is the bytes one live task holds:
            a task of many turns (each answer to its questions) holds each turn's events and
            its client's messages while it lives, and a running turn is cut once they pass
            this, its earlier turns counted (its task fails, its status message the error's,
            for its stream and ``GetTask``). A message to a task that holds more, with it,
            is refused (a JSON-RPC error that says to start a new task).
        max_ended_runs: The most ended runs kept for late readers: past it, the oldest
            ended run of the principal who has the most kept is forgotten, before
            ``keep_runs_for`` is up (as if it had passed), so one principal's burst of short
            runs pushes out their own; a live or paused run is never forgotten so. ``0``
            keeps none.
        max_ended_run_bytes: The most bytes every app's ended runs keep, all together: each
            ended run's events (for late readers), and, in ``a2a_app``, each ended task's
            JSON too (for ``GetTask`` and ``ListTasks``: its client's messages, each up to
            ``max_body_bytes``, its questions and its artifacts). Past it, the oldest ended
            run (an ended task, with its runs) of the principal who keeps the most bytes is
            forgotten, before ``keep_runs_for`` is up, so one principal's large runs push
            out their own (one larger than the bound alone is kept by nobody once it ends);
            a live or paused run is never forgotten so. ``0`` keeps none.
        max_streams: The most event streams (SSE responses: a run's own, its followers',
            its resumes) the app sends at once; one more is a 503 (``too_many_streams``,
            with ``Retry-After``). A stream's slot is free again when it closes.
        max_streams_per_principal: The most event streams one principal has open at once
            (each follower of a run, each resume, counts); one more is a 429
            (``too_many_streams_of_yours``, with ``Retry-After``).
        max_body_bytes: The largest request body taken, in bytes (a bigger one is a 413,
            ``body_too_large``, refused as it arrives).
        max_body_values: The most JSON values (objects, lists, strings, numbers,
            ``true``, ``false`` and ``null``, counted at every depth) a request's body holds
            in ``agui_app``, ``ai_sdk_app`` and ``web_chat_app`` (a run's input, a chat, a
            decision), or its params in ``a2a_app``; a body of more is a 413
            (``too_many_values``; in ``a2a_app``, -32600) before it is read further. Reading
            a body into the protocol's models, and its messages into the agent's, takes the
            server's time, a few microseconds a value, during which it serves nobody else: a
            body of tiny messages within ``max_body_bytes`` held every other request up for
            over a second. 10,000 (the default) is a chat of over a thousand messages.
        max_id_chars: The most characters an id a client chooses may hold: AG-UI's
            ``runId`` and ``threadId``, the AI SDK's (and the chat page's) chat ``id``, and
            in ``a2a_app`` a message's ``contextId`` and ``messageId``, a webhook's ``id``
            and a request's JSON-RPC ``id``. The app keeps such an id (its runs' key, a
            durable run's workflow id), repeats it in its answers and logs it: a longer one
            is refused before anything starts (a 422 with the app's code for a bad body; in
            ``a2a_app``, -32602, or -32600 for a request's ``id``).
        body_seconds: Seconds a request's body has to arrive, all of it, from the request's
            arrival at the app (its headers read), however late the app starts reading it: a
            client that sends it a byte at a time past them, or nothing after its headers, is
            answered a 408 (``body_too_slow``), and the request holds its connection and its
            task no longer.

    Raises:
        WebConfigurationError: for a value the app could not keep to (a count under its
            least, a duration that is negative or not a number, an origin or a host that
            is not one), naming the field.
    """

    allowed_hosts: Sequence[str] = LOCAL_HOSTS
    allowed_origins: Sequence[str] = ()
    approval_edits: bool = False
    error_texts: bool = False
    grace_period: float | None = None
    keep_runs_for: float = 300.0
    max_live_runs: int = DEFAULT_MAX_LIVE_RUNS
    max_live_runs_per_principal: int = DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL
    max_live_run_bytes: int = DEFAULT_MAX_LIVE_RUN_BYTES
    max_ended_runs: int = DEFAULT_MAX_ENDED_RUNS
    max_ended_run_bytes: int = DEFAULT_MAX_ENDED_RUN_BYTES
    max_streams: int = DEFAULT_MAX_STREAMS
    max_streams_per_principal: int = DEFAULT_MAX_STREAMS_PER_PRINCIPAL
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_body_values: int = DEFAULT_MAX_BODY_VALUES
    max_id_chars: int = DEFAULT_MAX_ID_CHARS
    body_seconds: float = DEFAULT_BODY_SECONDS

    def __post_init__(self) -> None:
        for name, least in _COUNTS.items():
            check_count(
                getattr(self, name), name, least=least, owner=_OWNER, fix=_fix(name), error=_ERROR
            )
        for name, zero in _DURATIONS.items():
            check_seconds(
                getattr(self, name), name, zero=zero, owner=_OWNER, fix=_fix(name), error=_ERROR
            )
        if self.grace_period is not None:
            check_seconds(
                self.grace_period,
                "grace_period",
                zero=True,
                forever=True,
                owner=_OWNER,
                fix=_fix("grace_period") + " math.inf: never.",
                error=_ERROR,
            )
        if not isinstance(self.approval_edits, bool):
            raise WebConfigurationError(
                f"approval_edits must be True or False; got {self.approval_edits!r}.",
                parameter="approval_edits",
            )
        check_flag(self.error_texts, "error_texts", owner=_OWNER, error=_ERROR)
        origins = tuple(_origin(one) for one in _strings("allowed_origins", self.allowed_origins))
        hosts = tuple(checked_host(one) for one in _strings("allowed_hosts", self.allowed_hosts))
        object.__setattr__(self, "allowed_origins", origins)
        object.__setattr__(self, "allowed_hosts", hosts)


_COUNTS = {
    "max_live_runs": 1,
    "max_live_runs_per_principal": 1,
    "max_live_run_bytes": 1,
    "max_ended_runs": 0,
    "max_ended_run_bytes": 0,
    "max_streams": 1,
    "max_streams_per_principal": 1,
    "max_body_bytes": 1,
    "max_body_values": 1,
    "max_id_chars": 1,
}
"""Each count of the settings, with its least value."""

_DURATIONS = {"keep_runs_for": True, "body_seconds": False}
"""Each duration of the settings (but the grace period, which may be None or forever), with
whether 0 is taken."""


_OWNER = "WebSettings"
"""Who takes the settings, in the message of a refused one."""
_ERROR = WebConfigurationError
"""The error of a refused setting (an :class:`~miniagents.root_error.ArgumentError`)."""


def _fix(name: str) -> str:
    """How to give the setting ``name`` instead."""
    return f"Pass such a value (or leave {name} out for its default)."


def _strings(name: str, values: object) -> Sequence[str]:
    """``values``, a sequence of strings (a lone string is refused: it is not a list)."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise WebConfigurationError(
            f"{name} must be a list of strings; got {values!r}. Pass a list, e.g. "
            f"{name}=[{values!r}].",
            parameter=name,
        )
    for value in values:
        if not isinstance(value, str):
            raise WebConfigurationError(
                f"{name} holds {value!r}, which is not a string.", parameter=name
            )
    return values


def _origin(origin: str) -> str:
    """``origin`` as ``scheme://host[:port]`` (refused if it is not an origin).

    Written as a browser writes a page's ``Origin`` (the host in lower case, no default
    port), which the apps match it with as it is.
    """
    parts = urlsplit(origin)
    if origin == "*" or parts.scheme not in ("http", "https") or not parts.netloc:
        raise WebConfigurationError(
            f"allowed_origins holds {origin!r}, which is not an origin: give each front "
            "end's scheme, host and port, e.g. 'https://chat.example.com' ('*' is not "
            "taken: a page of any site could then use the app with its users' credentials).",
            parameter="allowed_origins",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise WebConfigurationError(
            f"allowed_origins holds {origin!r}, which has a path, a query or a user: an "
            "origin is a scheme, host and port only, e.g. "
            f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}.",
            parameter="allowed_origins",
        )
    default_port = ":443" if parts.scheme == "https" else ":80"
    return f"{parts.scheme}://{parts.netloc.lower().removesuffix(default_port)}"


_NAME = re.compile(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_IPV6 = re.compile(r"\[[0-9a-f:.]+\]")


def checked_host(host: str) -> str:
    """``host`` as the apps match it and a URL writes it (lower case, IPv6 in brackets).

    ``allowed_hosts`` is checked with it, and so is the ``--host`` of ``miniagents web``,
    whose printed URL writes the host so (``http://[::1]:8000/``).

    Args:
        host: A host name (``*.`` for its subdomains), an IPv4 address, an IPv6 address
            (bracketed or not), or ``*`` (any).

    Raises:
        WebConfigurationError: if ``host`` is none of those (a scheme, a port or a path in
            it, say).
    """
    name = host.strip().lower().removesuffix(".")
    if name.count(":") > 1 and not name.startswith("["):
        name = f"[{name}]"  # (an IPv6 address, as a Host header writes it)
    if name == "*" or _NAME.fullmatch(name) or _IPV6.fullmatch(name):
        return name
    raise WebConfigurationError(
        f"allowed_hosts holds {host!r}, which is not a host name: give each name the app is "
        "reached by, without scheme, port or path (e.g. 'chat.example.com', "
        "'*.example.com' for its subdomains, '127.0.0.1', '[::1]'; '*' for any).",
        parameter="allowed_hosts",
    )
