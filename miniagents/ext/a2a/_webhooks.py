"""The posts of push notifications: each task's webhooks, and a queue of posts per webhook.

What the rules are (who, where, how signed, how bounded) is :mod:`miniagents.ext.a2a.push`'s;
this module keeps a task's webhooks (:class:`Webhook`) and posts each notification to
them, in order per webhook, with its tries (:class:`Poster`), at most
``max_posts_per_principal`` of one principal's at once, and at most
:data:`~miniagents.ext.a2a.push.MAX_CONNECTIONS` in all: once the posts under way are
within ``max_posts_per_principal`` of that, a principal may start one more only while it
holds less than its share of them (the connections over the principals posting or waiting
to), so that a few busy principals cannot fill the connections between them. Posts that
wait for their turn take it first come, first served: as a turn frees, it goes to the
first waiting post that may start, before any post that comes later asks for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from miniagents.ext.a2a.push import (
    MAX_CONNECTIONS,
    SIGNATURE_HEADER,
    A2APushNotifications,
    secret_key,
    sign,
)
from miniagents.promising.lowlevel import spawn

__all__ = ["Poster", "Webhook", "webhook_of"]

_logger = logging.getLogger("miniagents.ext.a2a")


@dataclass(frozen=True)
class Webhook:
    """A webhook a client set for a task: where, what each post carries, and whose it is.

    ``owner`` is the principal of the task (``None``: an app that knows nobody), whose
    posts share their bound of posts under way.
    """

    id: str
    task_id: str
    url: str
    token: str = ""
    scheme: str = ""
    credentials: str = field(default="", repr=False)
    owner: str | None = None

    @property
    def size(self) -> int:
        """About the bytes it keeps: those of its fields' texts."""
        texts = (self.id, self.task_id, self.url, self.token, self.scheme, self.credentials)
        return sum(len(text.encode()) for text in texts)

    def json(self) -> dict[str, object]:
        """The webhook as A2A's ``TaskPushNotificationConfig`` (its credentials left out)."""
        found: dict[str, object] = {"id": self.id, "taskId": self.task_id, "url": self.url}
        if self.token:
            found["token"] = self.token
        if self.scheme:
            found["authentication"] = {"scheme": self.scheme}
        return found


class Poster:
    """Posts the notifications of an app's tasks to their webhooks (see the module)."""

    def __init__(
        self, settings: A2APushNotifications, *, connections: int = MAX_CONNECTIONS
    ) -> None:
        self.settings = settings
        self._connections = connections  # (fewer in a test)
        secret = settings.signing_secret
        self._key = None if secret is None else secret_key(secret)
        # (task, webhook id): the webhook as its task's config says now, and the posts waiting
        self._queues: dict[tuple[str, str], _Queue] = {}
        self._senders: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        # principal: the turns of its posts, kept while one is under way or waits
        self._turns: dict[str | None, _Turns] = {}
        self._posting = 0  # the posts under way, of every principal
        # the posts waiting for a turn, in the order they came: their turns, and their wake-up
        self._waiting: deque[tuple[_Turns, asyncio.Future[None]]] = deque()

    @property
    def principals_posting(self) -> int:
        """How many principals have a post under way, or waiting its turn."""
        return len(self._turns)

    @property
    def posts_waiting(self) -> int:
        """How many posts wait for their turn (see the module)."""
        return len(self._waiting)

    def post(self, webhooks: Sequence[Webhook], event: str) -> None:
        """Post ``event`` (a ``StreamResponse``'s JSON) to each of ``webhooks``, in order."""
        body = event.encode()
        for webhook in webhooks:
            place = (webhook.task_id, webhook.id)
            queue = self._queues.get(place)
            if queue is None:
                queue = self._queues[place] = _Queue(webhook)
            queue.bodies.append(body)
            if len(queue.bodies) > self.settings.max_queued:
                queue.bodies.popleft()
                _logger.warning(
                    "The webhook %s of the task %s has over %s posts waiting: the oldest "
                    "was dropped.",
                    webhook.url,
                    webhook.task_id,
                    self.settings.max_queued,
                )
            if place not in self._senders:
                self._senders[place] = spawn(self._asend(place), f"a2a push {webhook.url}")

    async def _asend(self, place: tuple[str, str]) -> None:
        """Post what waits for the webhook at ``place``, in order, while anything does.

        The queue is looked up before each post: a webhook deleted meanwhile has none, and
        one set again under its id after a delete has a new one.
        """
        try:
            while (queue := self._queues.get(place)) and queue.bodies:
                await self._apost(place, queue, queue.bodies.popleft())
        finally:
            self._senders.pop(place, None)
            if (queue := self._queues.get(place)) and not queue.bodies:
                del self._queues[place]

    async def _apost(self, place: tuple[str, str], queue: _Queue, body: bytes) -> None:
        """Post ``body`` to the webhook of ``queue``, trying again on a failure that may pass.

        Each try reads the webhook again once it has its turn: one deleted meanwhile
        (``queue`` no longer the place's) is tried no more, and one replaced is tried at its
        new URL, with its own token and credentials. A change of the webhook after a try
        began cuts short the wait before the next: one deleted ends the post, and one
        replaced is tried at once at its new address, with its tries and their delays
        counted afresh (what the old address answered says nothing of the new one's); so is
        one replaced while its last try, or one refused, was under way.
        """
        settings = self.settings
        delay, attempt = settings.retry_delay, 0
        while True:
            attempt += 1
            if self._queues.get(place) is not queue:
                return  # (deleted)
            webhook, changed = queue.webhook, queue.changed
            try:
                async with (
                    self._turn(webhook.owner),  # (waited for before the post's timeout runs)
                    asyncio.timeout(settings.timeout),  # (in all: its reads may trickle)
                ):
                    if self._queues.get(place) is not queue:
                        return  # (deleted while it waited for its turn)
                    # (replaced while it waited: the new one, and the event of its change)
                    webhook, changed = queue.webhook, queue.changed
                    status = await self._apost_once(webhook.url, body, self._headers(webhook, body))
            except httpx.HTTPError as error:
                said = repr(error)
            except TimeoutError:
                said = f"no answer within {settings.timeout:g} seconds"
            else:
                if 200 <= status < 300:
                    return
                said = f"HTTP {status}"
                if status != 429 and status < 500:
                    attempt = settings.attempts  # (refused: trying again changes nothing)
            # (its last try, or a refused one, of a webhook changed since is not the end: the
            # wait below returns at once, and the new address is tried afresh)
            if attempt >= settings.attempts and not changed.is_set():
                _logger.warning(
                    "A push notification of the task %s to %s was given up after %s "
                    "attempt(s): %s.",
                    webhook.task_id,
                    webhook.url,
                    attempt,
                    said,
                )
                return
            try:
                async with asyncio.timeout(delay):
                    await changed.wait()
            except TimeoutError:
                delay *= 2
            else:  # (cut short: a config set again after a delete is posted at once, by this
                # sender, and the new address of one replaced is tried at once, afresh)
                delay, attempt = settings.retry_delay, 0

    def _headers(self, webhook: Webhook, body: bytes) -> dict[str, str]:
        """The headers of a post of ``body`` to ``webhook``: its token, credentials, signature."""
        headers = {"Content-Type": "application/json"}
        if webhook.token:
            headers["X-A2A-Notification-Token"] = webhook.token
        if webhook.scheme and webhook.credentials:
            headers["Authorization"] = f"{webhook.scheme} {webhook.credentials}"
        if self._key is not None:
            stamp = int(time.time())
            headers[SIGNATURE_HEADER] = f"t={stamp},v1={sign(self._key, stamp, body)}"
        return headers

    async def _apost_once(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """Post ``body`` to ``url`` once: the status of the answer, whose body is never read.

        (A receiver's answer says nothing past its status: read, an endless or huge one
        would hold up the webhook's posts, or fill the memory.)
        """
        async with self._http().stream("POST", url, content=body, headers=headers) as response:
            return response.status_code

    @contextlib.asynccontextmanager
    async def _turn(self, owner: str | None) -> AsyncIterator[None]:
        """Hold one of ``owner``'s turns to post (waiting for one), forgotten when none is used.

        (The posts of every principal share one pool of connections: without turns, one
        principal's slow receivers would hold all of it, and another's posts would wait;
        and, a few principals' turns filling it, a post of another's would wait for a
        connection with its timeout running, behind each of theirs that came before it.)
        """
        turns = self._turns.get(owner)
        if turns is None:
            turns = self._turns[owner] = _Turns()
        turns.users += 1
        try:
            if self._may_post(turns):  # (no post that waits may start: see _grant)
                self._take(turns)
            else:
                await self._await_turn(turns)
            try:
                yield
            finally:
                turns.posting -= 1
                self._posting -= 1
        finally:
            turns.users -= 1
            if not turns.users:
                del self._turns[owner]
            self._grant()  # (a post ended, or a principal left: its share goes to the others)

    async def _await_turn(self, turns: _Turns) -> None:
        """Wait in line until :meth:`_grant` gives the post a turn of ``turns``' principal."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (turns, waiter)
        self._waiting.append(entry)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # (given a turn, then cancelled)
                turns.posting -= 1
                self._posting -= 1
            else:
                self._waiting.remove(entry)
            raise

    def _take(self, turns: _Turns) -> None:
        turns.posting += 1
        self._posting += 1

    def _grant(self) -> None:
        """Give turns to the waiting posts that may start now, first come, first served.

        Each is taken for its post before it wakes, so that a post that asks later (the next
        post of the same webhook, say) finds it taken.
        """
        for entry in list(self._waiting):
            turns, waiter = entry
            if self._may_post(turns):
                self._waiting.remove(entry)
                self._take(turns)
                waiter.set_result(None)

    def _may_post(self, turns: _Turns) -> bool:
        """Whether a post of the principal of ``turns`` may start now (see the module)."""
        mine, connections = self.settings.max_posts_per_principal, self._connections
        if turns.posting >= mine or self._posting >= connections:
            return False
        if self._posting < connections - mine:  # (room for a whole principal's more)
            return True
        return turns.posting < max(1, connections // len(self._turns))  # (its share)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=self._connections),
                timeout=self.settings.timeout,
                follow_redirects=False,
                trust_env=False,
                cookies=_no_cookies(),
            )
        return self._client

    def readdress(self, webhook: Webhook) -> None:
        """Send what waits for the webhook of ``webhook``'s task and id to ``webhook`` instead.

        For a webhook replaced under its id: a notification not sent yet, and the next try
        of the one under way, goes where the task's config says now, with its credentials.
        A post waiting to be tried again is tried at once at the new address, its tries
        counted afresh (see :meth:`_apost`); the same webhook set again changes nothing.
        """
        queue = self._queues.get((webhook.task_id, webhook.id))
        if queue is not None and queue.webhook != webhook:
            queue.webhook = webhook
            queue.changed.set()  # (the post waiting to be tried again tries the new one)
            queue.changed = asyncio.Event()  # (for the next change)

    def forget(self, task_id: str, webhook_id: str) -> None:
        """Post nothing more for the webhook ``webhook_id`` of ``task_id`` (nor try again).

        What waited for it is dropped with it (A2A: a deleted config is sent nothing more):
        one set again under its id later has a queue of its own, of what comes after.
        """
        queue = self._queues.pop((task_id, webhook_id), None)
        if queue is not None:
            queue.changed.set()  # (its sender waits no more to try again)

    async def aclose(self) -> None:
        """Drop what waits, stop the posts under way, close the HTTP client."""
        self._queues.clear()
        senders = list(self._senders.values())
        for sender in senders:
            sender.cancel()
        for sender in senders:
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass
class _Queue:
    """A webhook's posts waiting, the webhook as its task's config says now, and its changes.

    ``changed`` is set once the webhook is deleted (the queue no longer its place's) or
    replaced; a replaced one's queue takes a new event then, for its next change.
    """

    webhook: Webhook
    bodies: deque[bytes] = field(default_factory=deque)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Turns:
    """A principal's turns to post: its posts under way, and those under way or waiting."""

    posting: int = 0
    users: int = 0


def _no_cookies() -> CookieJar:
    """A cookie jar that keeps no cookie: a post carries none, whatever a receiver set.

    (The client posts every task's notifications: a cookie one client's receiver set would
    go with the posts of every other client's webhooks on its host.)
    """
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def webhook_of(config: Mapping[str, object], task_id: str, webhook_id: str) -> Webhook:
    """The webhook of a ``TaskPushNotificationConfig``'s JSON (its fields checked before)."""
    authentication = config.get("authentication")
    scheme = credentials = ""
    if isinstance(authentication, Mapping):
        scheme = str(authentication.get("scheme", ""))
        credentials = str(authentication.get("credentials", ""))
    return Webhook(
        id=webhook_id,
        task_id=task_id,
        url=str(config.get("url", "")),
        token=str(config.get("token", "")),
        scheme=scheme,
        credentials=credentials,
    )
