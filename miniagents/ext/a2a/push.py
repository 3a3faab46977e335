"""Push notifications: an A2A task's changes of state, posted to the webhooks its client set.

A client that does not keep a stream open names a webhook for a task (A2A's
``CreateTaskPushNotificationConfig``, or ``configuration.taskPushNotificationConfig`` of
the message that starts it), and the app posts each change of the task's state there: the
``statusUpdate`` event (A2A's ``StreamResponse`` JSON), from working to its end, a question
included; the artifacts are read with ``GetTask`` (or streamed). An app posts nowhere
unless it is made with :class:`A2APushNotifications`, and then only as the door's rules
say:

- **who** may set a webhook: whoever may read the task (its owner, with
  ``authentication=``); a task of another principal is not found, and its webhooks are
  neither listed nor changed;
- **where**: only under the URLs the app allows (``allowed_urls``: a scheme, a host, a
  port, or ``*`` for any, and a path each webhook starts with; a path with a ``.`` or
  ``..`` segment, which would leave it once resolved, is refused, and so is one encoded,
  ``..%2F`` or ``..%5C``, or with parameters, ``..;/``), never with credentials in the
  URL, never following a redirect, so that a client cannot make the server post to hosts
  of its choosing (SSRF), and never with a cookie (one a receiver set would go with other
  clients' posts); a URL no post could be sent to (a control character, spaces around
  it, over 8,192 characters) is refused, and so are a token, scheme and credentials that
  are not printable ASCII or hold over 8,192 characters (each post's headers carry them);
- **signed**: each post carries the client's ``token`` (``X-A2A-Notification-Token``) and
  its credentials (``Authorization: <scheme> <credentials>``) as A2A says, and, with a
  ``signing_secret``, ``X-A2A-Signature: t=<unix time>,v1=<hex>``, the HMAC-SHA256 of
  ``"<t>.<body>"`` under the secret (:func:`signature_valid` checks one), so that a
  receiver knows the post came from this app, whole, and recently;
- **bounded**: at most ``max_per_task`` webhooks a task, counted among the bytes the ended
  tasks keep (``max_ended_run_bytes``; one set after the task ended too); each post
  waits ``timeout`` seconds at most and is tried ``attempts`` times (after
  ``retry_delay`` seconds, doubled each time) on a connection error, a timeout, a 429 or
  a 5xx (only the status of an answer is read, never its body); the posts to one webhook
  go in order, at most ``max_queued`` wait, and what is still waiting when the app stops
  is dropped; at most ``max_posts_per_principal`` posts of one principal's tasks are under
  way at once (the others wait their turn), so that one principal's slow receivers hold
  none of the connections another's posts need; and at most :data:`MAX_CONNECTIONS` in
  all, of which, once the posts under way are within ``max_posts_per_principal`` of them,
  a principal starts one more only while it holds less than its share (the connections
  over the principals posting), so that a few busy principals cannot fill them between
  them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from miniagents.arguments import check_count, check_seconds
from miniagents.ext.a2a.errors import A2AConfigurationError

__all__ = [
    "MAX_CONNECTIONS",
    "SIGNATURE_HEADER",
    "A2APushNotifications",
    "secret_key",
    "sign",
    "signature_valid",
]

SIGNATURE_HEADER = "X-A2A-Signature"
"""The header of a post's signature (with an ``A2APushNotifications.signing_secret``)."""

MAX_CONNECTIONS = 100
"""The most connections an app's posts are sent over at once (to every receiver)."""

_OWNER = "A2APushNotifications"
_MAX_URL_LENGTH = 8_192  # (longer is no webhook's: servers refuse such request lines)


@dataclass(frozen=True)
class A2APushNotifications:
    """Push notifications, and the rules of who may set a webhook where (see the module).

    Attributes:
        allowed_urls: The URLs webhooks may be under: each a scheme, host, port (``*``:
            any) and path prefix, e.g. ``https://hooks.example.com/a2a/`` or, for a
            receiver on this machine, ``http://127.0.0.1:8200/a2a-hooks/``; a webhook
            elsewhere is refused (-32602). Allow one host, one port and one path each:
            every client that may set a webhook makes the app post where it allows, and
            ``http://127.0.0.1:*/`` would let it post to any service listening on this
            machine (``*`` suits a host that serves nothing but webhooks).
        signing_secret: The secret each post is signed with (``X-A2A-Signature``), if any.
        max_per_task: The most webhooks one task has.
        timeout: Seconds one post may take.
        attempts: How many times a post is tried before it is given up (logged).
        retry_delay: Seconds before the second try (doubled before each next).
        max_queued: The most posts that wait for one webhook (one more drops the oldest).
        max_posts_per_principal: The most posts of one principal's tasks under way at once
            (``NoAuthentication``: the one local user's), well below the
            :data:`MAX_CONNECTIONS` the app posts over; one more waits its turn.
    """

    allowed_urls: Sequence[str]
    signing_secret: str | bytes | None = field(default=None, repr=False)
    max_per_task: int = 10
    timeout: float = 10.0
    attempts: int = 3
    retry_delay: float = 1.0
    max_queued: int = 100
    max_posts_per_principal: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.allowed_urls, str) or not self.allowed_urls:
            raise A2AConfigurationError(
                "A2APushNotifications needs allowed_urls: the URLs webhooks may be under, "
                f"e.g. ['https://hooks.example.com/a2a/']; got {self.allowed_urls!r}."
            )
        for allowed in self.allowed_urls:
            _Prefix.of(allowed)
        for name in ("max_per_task", "attempts", "max_queued", "max_posts_per_principal"):
            check_count(getattr(self, name), name, owner=_OWNER, error=A2AConfigurationError)
        if self.max_posts_per_principal > MAX_CONNECTIONS:
            raise A2AConfigurationError(
                f"{_OWNER}(max_posts_per_principal={self.max_posts_per_principal}) is more "
                f"than the {MAX_CONNECTIONS} connections the app posts over, so it would "
                "bound nothing: give at most that, well below it to keep room for other "
                "principals' posts."
            )
        for name in ("timeout", "retry_delay"):
            check_seconds(
                getattr(self, name), name, zero=True, owner=_OWNER, error=A2AConfigurationError
            )

    def refusal(self, url: str) -> str | None:
        """Why a webhook at ``url`` may not be set (``None``: it may)."""
        if len(url) > _MAX_URL_LENGTH:
            return f"the webhook URL is longer than {_MAX_URL_LENGTH} characters"
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
            return f"the webhook URL {url!r} holds a control character"
        if url != url.strip(" "):  # (one before it: urlsplit skips it, httpx finds no URL)
            return f"the webhook URL {url!r} has spaces around it: send it without them"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return f"the webhook URL {url!r} is not a URL"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"the webhook URL {url!r} is not an http(s) URL"
        if parts.username is not None or parts.password is not None:
            return f"the webhook URL {url!r} holds credentials: send them as authentication"
        # (the path decoded whole, a "\\" read as a "/": a receiver that decodes "..%2F", or
        # takes "..\\" for "../", resolves the segment then, out from under the prefix; and
        # each segment without its parameters, after a ";": Tomcat's "..;/" is a "../")
        segments = unquote(parts.path).replace("\\", "/").split("/")
        if any(segment.partition(";")[0] in (".", "..") for segment in segments):
            return (
                f"the webhook URL {url!r} has a '.' or '..' segment in its path (once "
                "decoded): send the path as it is meant, without them"
            )
        for allowed in self.allowed_urls:
            if _Prefix.of(allowed).admits(parts.scheme, parts.hostname, port, parts.path):
                return None
        return (
            f"the webhook URL {url!r} is not under a URL this agent posts to "
            f"({', '.join(self.allowed_urls)})"
        )


@dataclass(frozen=True)
class _Prefix:
    """An allowed URL: its scheme, host, port (``None``: any) and path prefix."""

    scheme: str
    host: str
    port: int | None
    path: str

    @classmethod
    def of(cls, allowed: str) -> _Prefix:
        any_port = ":*" in allowed.split("/", 3)[2] if allowed.count("/") >= 2 else False
        parts = urlsplit(allowed.replace(":*", "", 1) if any_port else allowed)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or port == -1
            or parts.username is not None
            or parts.query
            or parts.fragment
        ):
            raise A2AConfigurationError(
                f"allowed_urls holds {allowed!r}, which is no URL webhooks can be under: give "
                "a scheme, a host, a port (or :* for any) and a path, e.g. "
                "'https://hooks.example.com/a2a/' or 'http://127.0.0.1:8200/a2a-hooks/'."
            )
        default = 443 if parts.scheme == "https" else 80
        path = parts.path or "/"
        return cls(parts.scheme, parts.hostname, None if any_port else port or default, path)

    def admits(self, scheme: str, host: str, port: int | None, path: str) -> bool:
        default = 443 if scheme == "https" else 80
        if (scheme, host.lower()) != (self.scheme, self.host.lower()):
            return False
        if self.port is not None and (port or default) != self.port:
            return False
        path = path or "/"
        return path.startswith(self.path) and (
            self.path.endswith("/") or len(path) == len(self.path) or path[len(self.path)] == "/"
        )


def signature_valid(
    secret: str | bytes,
    signature: str,
    body: bytes,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` (an ``X-A2A-Signature``) signs ``body`` under ``secret``.

    It must name a time (``t``) within ``tolerance`` seconds of ``now`` (a post replayed
    later is refused) and an HMAC-SHA256 (``v1``) of ``"<t>.<body>"`` under the secret.
    """
    fields = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
    try:
        stamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    expected = sign(secret_key(secret), stamp, body)
    return hmac.compare_digest(expected, fields.get("v1", ""))


def secret_key(secret: str | bytes) -> bytes:
    """The key of a signing secret (a ``str``'s UTF-8 bytes)."""
    return secret.encode() if isinstance(secret, str) else secret


def sign(key: bytes, stamp: int, body: bytes) -> str:
    """The ``v1`` of a post's signature: the hex HMAC-SHA256 of ``"<stamp>.<body>"``."""
    return hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
