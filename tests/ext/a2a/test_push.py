"""Push notifications: a task's changes posted to the webhooks its client set, by the rules.

A webhook (a real receiver under uvicorn on 127.0.0.1) hears each change of state of its
task, in order, with the client's token and credentials and the app's signature; it is
set only under the allowed URLs (no credentials in the URL, no redirect followed), only by
whoever may read the task, at most ``max_per_task`` a task; a post is tried again on a 5xx
and given up after its attempts; the four methods keep, give, list and delete webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from miniagents.ext.a2a import A2APushNotifications, a2a_app
from miniagents.ext.a2a._webhooks import Poster, Webhook
from miniagents.ext.a2a.errors import A2AConfigurationError
from miniagents.ext.a2a.push import SIGNATURE_HEADER, signature_valid
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings
from miniagents.testing import manual_time, virtual_time
from tests.ext.a2a.kit import ALICE, BOB, Receiver, greeter, pushing, receiving
from tests.ext.a2a.rpc import call, error_of, rpc, send_params, serving, violations
from tests.ext.web.serving import served, until
from tests.fakes.fixtures import WAIT

SECRET = "push-secret"


def greeting(receiver: Receiver, **options: Any) -> Starlette:
    """The greeter's app, whose tasks' webhooks may be under the receiver's ``hooks/``."""
    return a2a_app(
        greeter, authentication=NoAuthentication(), push_notifications=pushing(receiver, **options)
    )


async def test_each_change_of_state_is_posted_in_order_signed_with_the_clients_token() -> None:
    async with receiving() as receiver:
        app = greeting(receiver, signing_secret=SECRET)
        async with served(app) as web:
            card = (await web.get("/.well-known/agent-card.json")).json()
            config = {
                "url": f"{receiver.url}hooks/mine",
                "token": "client-token",
                "authentication": {"scheme": "Bearer", "credentials": "hook-credentials"},
            }
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            task = (await call(web, rpc("SendMessage", params))).json()["result"]["task"]
            await until(
                lambda: receiver.states() == ["TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED"]
            )
            await call(web, rpc("SendMessage", send_params("Ada", taskId=task["id"])))
            await until(lambda: len(receiver.posts) == 4)
    assert card["capabilities"]["pushNotifications"] is True
    assert receiver.states() == [
        "TASK_STATE_WORKING",
        "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_WORKING",
        "TASK_STATE_COMPLETED",
    ]
    for headers, body in receiver.posts:
        assert json.loads(body)["statusUpdate"]["taskId"] == task["id"]
        assert headers["x-a2a-notification-token"] == "client-token"
        assert headers["authorization"] == "Bearer hook-credentials"
        assert headers["content-type"] == "application/json"
        assert signature_valid(SECRET, headers[SIGNATURE_HEADER.lower()], body)
        assert not signature_valid(SECRET, headers[SIGNATURE_HEADER.lower()], body + b" ")
        assert not signature_valid("another", headers[SIGNATURE_HEADER.lower()], body)


async def test_the_four_methods_keep_give_list_and_delete_a_tasks_webhooks() -> None:
    async with receiving() as receiver:
        app = greeting(receiver, max_per_task=2)
        async with served(app) as web:
            task = (await call(web, rpc("SendMessage", send_params()))).json()["result"]["task"]
            hook = {
                "taskId": task["id"],
                "id": "first",
                "url": f"{receiver.url}hooks/a",
                "authentication": {"scheme": "Bearer", "credentials": "secret"},
            }
            made = (await call(web, rpc("CreateTaskPushNotificationConfig", hook))).json()
            assert made["result"] == {
                "id": "first",
                "taskId": task["id"],
                "url": f"{receiver.url}hooks/a",
                "authentication": {"scheme": "Bearer"},  # (its credentials are not given back)
            }
            second = {"taskId": task["id"], "url": f"{receiver.url}hooks/b"}
            named = (await call(web, rpc("CreateTaskPushNotificationConfig", second))).json()
            assert named["result"]["id"]  # (one the app made)
            third = {"taskId": task["id"], "url": f"{receiver.url}hooks/c"}
            over = error_of(await call(web, rpc("CreateTaskPushNotificationConfig", third)))
            assert (over["code"], "the most it takes" in over["message"]) == (-32602, True)
            ids = {"taskId": task["id"], "id": "first"}
            got = (await call(web, rpc("GetTaskPushNotificationConfig", ids))).json()["result"]
            assert got == made["result"]
            listed = await call(web, rpc("ListTaskPushNotificationConfigs", {"taskId": task["id"]}))
            assert [one["id"] for one in listed.json()["result"]["configs"]] == [
                "first",
                named["result"]["id"],
            ]
            for _ in range(2):  # (deleting twice is deleting once)
                deleted = await call(web, rpc("DeleteTaskPushNotificationConfig", ids))
                assert deleted.json() == {"jsonrpc": "2.0", "id": 1, "result": None}
            gone = error_of(await call(web, rpc("GetTaskPushNotificationConfig", ids)))
            assert gone["code"] == -32001
            unknown = error_of(
                await call(web, rpc("ListTaskPushNotificationConfigs", {"taskId": "no-such-task"}))
            )
            assert unknown["code"] == -32001


@pytest.mark.parametrize("bad", ["x" * 257, "a\nb"], ids=["long", "line-break"])
async def test_a_task_or_webhook_id_that_cannot_be_one_is_refused_not_repeated(bad: str) -> None:
    # (was: "There is no task '…'" / "no webhook '…'", the id repeated whole, a line break
    # or up to max_body_bytes of it, where the other methods refuse such an id)
    async with receiving() as receiver, served(greeting(receiver)) as web:
        task = (await call(web, rpc("SendMessage", send_params()))).json()["result"]["task"]
        for method, params, field in (
            ("ListTaskPushNotificationConfigs", {"taskId": bad}, "taskId"),
            ("DeleteTaskPushNotificationConfig", {"taskId": bad, "id": "x"}, "taskId"),
            ("GetTaskPushNotificationConfig", {"taskId": task["id"], "id": bad}, "id"),
        ):
            error = error_of(await call(web, rpc(method, params)))
            assert (error["code"], violations(error)) == (-32602, [field]), method
            assert bad not in error["message"]


async def test_a_refused_answer_sets_no_webhook_and_one_over_the_bound_answers_nothing() -> None:
    async with receiving() as receiver:
        app = greeting(receiver, max_per_task=1)
        async with served(app) as web:
            task = (await call(web, rpc("SendMessage", send_params()))).json()["result"]["task"]
            named = {"taskId": task["id"]}
            listing = rpc("ListTaskPushNotificationConfigs", named)
            hook = {"url": f"{receiver.url}hooks/a"}
            answer = {
                **send_params("Ada", taskId=task["id"], contextId="another-context"),
                "configuration": {"taskPushNotificationConfig": hook},
            }
            refused = error_of(await call(web, rpc("SendMessage", answer)))
            assert violations(refused) == ["message.contextId"]
            assert (await call(web, listing)).json()["result"]["configs"] == []
            made = await call(web, rpc("CreateTaskPushNotificationConfig", {**hook, **named}))
            assert "result" in made.json()
            message = {**answer["message"], "contextId": task["contextId"]}
            over = {"message": message, "configuration": answer["configuration"]}
            error = error_of(await call(web, rpc("SendMessage", over)))
            assert (error["code"], "the most it takes" in error["message"]) == (-32602, True)
            got = await call(web, rpc("GetTask", {"id": task["id"]}))
            assert got.json()["result"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://evil.example/hooks/x", "not under a URL this agent posts to"),
        ("{url}other/x", "not under a URL this agent posts to"),
        ("{url}hooksx", "not under a URL this agent posts to"),
        ("{url}hooks/../admin", "has a '.' or '..' segment"),  # (posted to /admin)
        ("{url}hooks/%2E%2e/admin", "has a '.' or '..' segment"),  # (a server's /admin)
        ("{url}hooks/./x", "has a '.' or '..' segment"),
        ("{url}hooks/..%2Fadmin", "has a '.' or '..' segment"),  # (a decoding server's /admin)
        ("{url}hooks/%2e%2e%2fadmin", "has a '.' or '..' segment"),
        ("{url}hooks/..%5Cadmin", "has a '.' or '..' segment"),  # ("\\": a "/" to some)
        ("{url}hooks/..\\admin", "has a '.' or '..' segment"),
        ("{url}hooks/..;/admin", "has a '.' or '..' segment"),  # (";x": the segment's params)
        ("{url}hooks/..;x=1/admin", "has a '.' or '..' segment"),  # (Tomcat's /admin)
        ("{url}hooks/..%3B/admin", "has a '.' or '..' segment"),
        ("{url}hooks/.;/x", "has a '.' or '..' segment"),
        ("http://user:pass@{host}/hooks/x", "holds credentials"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("", "a webhook needs its url"),
    ],
)
async def test_a_webhook_under_no_allowed_url_is_refused_and_nothing_starts(
    url: str, why: str
) -> None:
    async with receiving() as receiver:
        app = greeting(receiver)
        host = receiver.url.removeprefix("http://").rstrip("/")
        config = {"url": url.format(url=receiver.url, host=host)}
        params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
        async with served(app) as web:
            error = error_of(await call(web, rpc("SendMessage", params)))
        assert (error["code"], why in error["message"]) == (-32602, True)
        assert violations(error) == ["configuration.taskPushNotificationConfig.url"]
        assert app.state.runs.kept == 0


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("url", "{url}hooks/a\x00b", "a control character"),
        ("url", " {url}hooks/x", "has spaces around it"),  # (was: kept, and never posted)
        ("url", "{url}hooks/" + "a" * 70_000, "longer than"),
        ("token", "t\u20ac", "not printable ASCII"),
        ("token", "t\r\nX-Injected: 1", "not printable ASCII"),
        ("authentication", {"scheme": "Bearer", "credentials": "c\u20ac"}, "not printable ASCII"),
        ("id", "h" * 257, "id holds 257 characters, over the 256"),
        ("id", "h\u202eook", "holds a control or format character"),  # (was: kept, listed)
    ],
    ids=[
        "nul-in-url",
        "space-before-url",
        "long-url",
        "unicode-token",
        "crlf-token",
        "unicode-credentials",
        "long-id",
        "bidi-id",
    ],
)
async def test_a_webhook_its_posts_could_not_be_sent_to_is_refused_and_nothing_starts(
    field: str, value: Any, why: str
) -> None:
    async with receiving() as receiver:
        app = greeting(receiver)
        given = value.format(url=receiver.url) if field == "url" else value
        config = {"url": f"{receiver.url}hooks/x", field: given}
        params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
        async with served(app) as web:
            error = error_of(await call(web, rpc("SendMessage", params)))
        assert (error["code"], why in error["message"]) == (-32602, True), error["message"]
        assert violations(error)[0].startswith("configuration.taskPushNotificationConfig.")
        assert app.state.runs.kept == 0


async def test_only_whoever_may_read_the_task_sets_or_sees_its_webhooks() -> None:
    tokens = BearerTokenAuth({ALICE: "alice", BOB: "bob"})
    alice, bob = {"Authorization": f"Bearer {ALICE}"}, {"Authorization": f"Bearer {BOB}"}
    async with receiving() as receiver:
        app = a2a_app(greeter, authentication=tokens, push_notifications=pushing(receiver))
        async with served(app) as web:
            task = (await call(web, rpc("SendMessage", send_params()), headers=alice)).json()
            task_id = task["result"]["task"]["id"]
            hook = {"taskId": task_id, "id": "h", "url": f"{receiver.url}hooks/h"}
            refused = await call(web, rpc("CreateTaskPushNotificationConfig", hook), headers=bob)
            assert error_of(refused)["code"] == -32001  # (her task is none of his)
            made = await call(web, rpc("CreateTaskPushNotificationConfig", hook), headers=alice)
            assert made.json()["result"]["id"] == "h"
            listing = rpc("ListTaskPushNotificationConfigs", {"taskId": task_id})
            assert error_of(await call(web, listing, headers=bob))["code"] == -32001
            deleting = rpc("DeleteTaskPushNotificationConfig", {"taskId": task_id, "id": "h"})
            assert error_of(await call(web, deleting, headers=bob))["code"] == -32001
            still = await call(web, listing, headers=alice)
            assert [one["id"] for one in still.json()["result"]["configs"]] == ["h"]


async def test_a_post_is_tried_again_on_a_5xx_and_given_up_after_its_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with receiving() as receiver:
        receiver.answers = [Response(status_code=503), Response(status_code=200)]
        receiver.answers += [Response(status_code=500)] * 3
        app = greeting(receiver, attempts=3, retry_delay=0)
        async with served(app) as web:
            config = {"url": f"{receiver.url}hooks/flaky"}
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            with caplog.at_level(logging.WARNING, logger="miniagents.ext.a2a"):
                await call(web, rpc("SendMessage", params))
                await until(lambda: len(receiver.posts) == 5)
                await until(lambda: "given up after 3 attempt(s): HTTP 500" in caplog.text)
    assert receiver.states() == ["TASK_STATE_WORKING"] * 2 + ["TASK_STATE_INPUT_REQUIRED"] * 3


async def test_a_redirect_is_not_followed() -> None:
    async with receiving() as receiver:
        receiver.answers = [Response(status_code=307, headers={"location": "http://evil.example/"})]
        app = greeting(receiver, attempts=1)
        async with served(app) as web:
            config = {"url": f"{receiver.url}hooks/moved"}
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            await call(web, rpc("SendMessage", params))
            await until(lambda: len(receiver.posts) == 2)
    assert receiver.states() == ["TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED"]


async def test_an_answer_whose_body_never_ends_holds_up_no_post() -> None:
    never = asyncio.Event()  # (the receiver's body: a byte, then nothing, never ended)

    async def endless() -> AsyncIterator[bytes]:
        yield b"{"
        await never.wait()

    async with receiving() as receiver:
        receiver.answers = [StreamingResponse(endless(), media_type="application/json")]
        app = greeting(receiver, timeout=60.0)  # (read, it would wait for the rest so long)
        async with served(app) as web:
            config = {"url": f"{receiver.url}hooks/endless"}
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            await call(web, rpc("SendMessage", params))
            await until(lambda: len(receiver.posts) == 2)
            never.set()
    assert receiver.states() == ["TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED"]


async def test_a_post_whose_answer_trickles_in_is_given_up_after_its_timeout() -> None:
    """A post waits ``timeout`` seconds in all, however its answer trickles in.

    (Each read of the HTTP client waits ``timeout`` at most: a receiver that sends a byte
    of its answer's head a little more often would hold the webhook's posts for ever.) The
    receiver is a bare TCP server in the test's own loop, on a virtual clock.
    """
    requests: list[bytes] = []
    given_up: list[str] = []
    heard = asyncio.Event()

    class Heard(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            given_up.append(record.getMessage())
            heard.set()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\n")
        try:
            while True:  # (a header line every 5 s: each read waits less than the timeout)
                await asyncio.sleep(5)
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/slow"
    settings = A2APushNotifications(allowed_urls=[f"http://127.0.0.1:{port}/hooks/"], attempts=1)
    poster = Poster(settings)
    logger = logging.getLogger("miniagents.ext.a2a")
    handler = Heard(logging.WARNING)
    logger.addHandler(handler)
    try:
        with virtual_time() as clock:
            poster.post([Webhook("h", "task", url)], '{"statusUpdate": {}}')
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.wait(), 600)
            assert given_up, f"the post still waits at {clock.elapsed:g} s"
            assert clock.elapsed == pytest.approx(10.0)
    finally:
        logger.removeHandler(handler)
        await poster.aclose()
        server.close()
        await server.wait_closed()
    assert "given up after 1 attempt(s): no answer within 10 seconds" in given_up[0]
    assert len(requests) == 1


async def test_a_task_cancelled_where_it_waits_posts_that_it_was_cancelled() -> None:
    async with receiving() as receiver:
        app = greeting(receiver)
        async with served(app) as web:
            config = {"url": f"{receiver.url}hooks/x"}
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            task = (await call(web, rpc("SendMessage", params))).json()["result"]["task"]
            await call(web, rpc("CancelTask", {"id": task["id"]}))
            await until(lambda: len(receiver.posts) == 3)
    assert receiver.states()[-1] == "TASK_STATE_CANCELED"


async def test_the_app_stops_its_posts_when_it_stops() -> None:
    hold = asyncio.Event()

    async def slow_hook(request: Request) -> Response:
        await hold.wait()
        return Response()

    async with serving(
        lambda url: Starlette(routes=[Route("/hooks/x", slow_hook, methods=["POST"])])
    ) as url:
        app = a2a_app(
            greeter,
            authentication=NoAuthentication(),
            push_notifications=A2APushNotifications(allowed_urls=[url]),
        )
        async with served(app) as web:
            config = {"url": f"{url}hooks/x"}
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            await call(web, rpc("SendMessage", params))
        hold.set()  # (the app has stopped: its post was cancelled, nothing left running)


async def test_a_deleted_webhook_is_posted_nothing_more_and_one_set_again_hears_the_rest() -> None:
    def posting() -> list[asyncio.Task[Any]]:
        return [task for task in asyncio.all_tasks() if "a2a push" in task.get_name()]

    async with receiving() as receiver:
        receiver.hold = asyncio.Event()  # (the first post is under way, the rest wait behind)
        async with served(greeting(receiver)) as web:
            config = {"id": "h", "url": f"{receiver.url}hooks/h", "token": "old"}
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            task = (await call(web, rpc("SendMessage", params))).json()["result"]["task"]
            await until(lambda: len(receiver.posts) == 1)  # (and one more waits)
            deleting = {"taskId": task["id"], "id": "h"}
            await call(web, rpc("DeleteTaskPushNotificationConfig", deleting))
            again = {**config, "taskId": task["id"], "token": "new"}
            await call(web, rpc("CreateTaskPushNotificationConfig", again))
            await call(web, rpc("SendMessage", send_params("Ada", taskId=task["id"])))
            receiver.hold.set()
            await until(lambda: not posting())  # (every post that was to be sent, sent)
    tokens = [headers["x-a2a-notification-token"] for headers, _ in receiver.posts]
    assert list(zip(tokens, receiver.states(), strict=True)) == [
        ("old", "TASK_STATE_WORKING"),  # (under way when it was deleted)
        ("new", "TASK_STATE_WORKING"),
        ("new", "TASK_STATE_COMPLETED"),
    ]


async def test_a_webhook_replaced_under_its_id_is_sent_what_waited_for_the_old_one() -> None:
    # (a config set again under its id, without a delete, left the posts waiting for the old
    # one queued as they were: sent to the old URL, with the old token and credentials)
    async with receiving() as old, receiving() as new:
        old.hold = asyncio.Event()  # (its first post is under way, the next waits behind)
        allowed = [f"{old.url}hooks/", f"{new.url}hooks/"]
        pushes = A2APushNotifications(allowed_urls=allowed)
        app = a2a_app(greeter, authentication=NoAuthentication(), push_notifications=pushes)
        async with served(app) as web:
            config = {"id": "h", "url": f"{old.url}hooks/h", "token": "old"}
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            task = (await call(web, rpc("SendMessage", params))).json()["result"]["task"]
            await until(lambda: len(old.posts) == 1)  # (and the question's post waits)
            replacing = {"taskId": task["id"], "id": "h", "url": f"{new.url}hooks/h"}
            await call(web, rpc("CreateTaskPushNotificationConfig", {**replacing, "token": "new"}))
            old.hold.set()
            await until(lambda: len(new.posts) == 1)
            await call(web, rpc("SendMessage", send_params("Ada", taskId=task["id"])))
            await until(lambda: len(new.posts) == 3)
    assert [headers["x-a2a-notification-token"] for headers, _ in old.posts] == ["old"]
    assert old.states() == ["TASK_STATE_WORKING"]  # (under way when it was replaced)
    assert [headers["x-a2a-notification-token"] for headers, _ in new.posts] == ["new"] * 3
    assert new.states() == [
        "TASK_STATE_INPUT_REQUIRED",  # (was: posted to the old URL, with the old token)
        "TASK_STATE_WORKING",
        "TASK_STATE_COMPLETED",
    ]


def _posting() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if "a2a push" in task.get_name()]


async def test_a_post_tried_again_after_its_webhook_was_replaced_goes_to_the_new_one() -> None:
    # (was: each try of a post under way went to the URL it began with, with its token)
    async with receiving() as old, receiving() as new:
        old.hold, old.answers = asyncio.Event(), [Response(status_code=503)]
        settings = A2APushNotifications(allowed_urls=[old.url, new.url], retry_delay=0)
        poster = Poster(settings)
        try:
            first = Webhook("h", "t", f"{old.url}hooks/h", "old", "Bearer", "old-credentials")
            poster.post([first], "{}")
            await until(lambda: len(old.posts) == 1)  # (under way: answered 503 once let go)
            poster.readdress(Webhook("h", "t", f"{new.url}hooks/h"))  # (no token, no credentials)
            old.hold.set()
            await until(lambda: not _posting())
        finally:
            await poster.aclose()
    assert len(old.posts) == 1
    [(headers, _)] = new.posts
    assert "x-a2a-notification-token" not in headers  # (the old one never goes to the new URL)
    assert "authorization" not in headers


@pytest.mark.parametrize("status", [403, 503])
async def test_a_webhook_replaced_while_its_last_try_is_under_way_is_tried_at_the_new_one(
    status: int,
) -> None:
    # (the old address refuses the post, 403, or fails its last try, 503, once the webhook
    # is replaced: was, the post was given up, its new address never tried)
    async with receiving() as old, receiving() as new:
        old.hold, old.answers = asyncio.Event(), [Response(status_code=status)]
        settings = A2APushNotifications(allowed_urls=[old.url, new.url], attempts=1)
        poster = Poster(settings)
        try:
            poster.post([Webhook("h", "t", f"{old.url}hooks/h", "old")], "{}")
            [sender] = _posting()
            await until(lambda: len(old.posts) == 1)  # (under way: answered once let go)
            poster.readdress(Webhook("h", "t", f"{new.url}hooks/h", "new"))
            old.hold.set()
            await asyncio.wait_for(sender, WAIT)
        finally:
            await poster.aclose()
    assert len(old.posts) == 1
    [(headers, body)] = new.posts
    assert (headers["x-a2a-notification-token"], body) == ("new", b"{}")


async def test_a_post_under_way_when_its_webhook_is_deleted_is_not_tried_again() -> None:
    async with receiving() as receiver:
        receiver.hold, receiver.answers = asyncio.Event(), [Response(status_code=503)]
        poster = Poster(A2APushNotifications(allowed_urls=[receiver.url], retry_delay=0))
        try:
            poster.post([Webhook("h", "t", f"{receiver.url}hooks/h")], "{}")
            await until(lambda: len(receiver.posts) == 1)
            poster.forget("t", "h")
            receiver.hold.set()
            await until(lambda: not _posting())
        finally:
            await poster.aclose()
    assert len(receiver.posts) == 1  # (was: tried again, to the deleted webhook)


async def test_a_webhook_deleted_and_set_again_elsewhere_while_a_post_is_under_way() -> None:
    """The post under way ends (not tried again); what waited for the deleted config is
    dropped with it (A2A: a deleted config is sent nothing more); the one set again under
    its id, at another URL with other credentials, hears only what came after it was set."""
    async with receiving() as old, receiving() as new:
        old.hold, old.answers = asyncio.Event(), [Response(status_code=503)]  # (tried again)
        allowed = [f"{old.url}hooks/", f"{new.url}hooks/"]
        pushes = A2APushNotifications(allowed_urls=allowed, retry_delay=0)
        app = a2a_app(greeter, authentication=NoAuthentication(), push_notifications=pushes)
        async with served(app) as web:
            auth = {"scheme": "Bearer", "credentials": "old-credentials"}
            config = {"id": "h", "url": f"{old.url}hooks/h", "token": "old", "authentication": auth}
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            task = (await call(web, rpc("SendMessage", params))).json()["result"]["task"]
            await until(lambda: len(old.posts) == 1)  # (and the question's post waits behind)
            deleting = {"taskId": task["id"], "id": "h"}
            await call(web, rpc("DeleteTaskPushNotificationConfig", deleting))
            again = {
                "taskId": task["id"],
                "id": "h",
                "url": f"{new.url}hooks/h",
                "token": "new",
                "authentication": {"scheme": "Bearer", "credentials": "new-credentials"},
            }
            await call(web, rpc("CreateTaskPushNotificationConfig", again))
            await call(web, rpc("SendMessage", send_params("Ada", taskId=task["id"])))
            old.hold.set()
            await until(lambda: len(new.posts) == 2 and not _posting())
    assert old.states() == ["TASK_STATE_WORKING"]  # (under way as it was deleted: no new try)
    assert new.states() == ["TASK_STATE_WORKING", "TASK_STATE_COMPLETED"]  # (not the question)
    for headers, _ in new.posts:
        assert headers["x-a2a-notification-token"] == "new"
        assert headers["authorization"] == "Bearer new-credentials"


def _sleeps_before_a_retry(sender: asyncio.Task[Any]) -> bool:
    """Whether ``sender`` waits out the delay before a post's next try (its coroutines')."""
    coroutine: Any = sender.get_coro()
    while coroutine is not None and coroutine.cr_code.co_name != "_apost":
        coroutine = coroutine.cr_await
    awaited = None if coroutine is None else coroutine.cr_await
    return awaited is not None and getattr(awaited, "cr_code", None) is asyncio.Event.wait.__code__


async def test_a_webhook_deleted_and_set_again_while_its_post_waits_to_be_tried_again() -> None:
    async with receiving() as old, receiving() as new:
        old.answers = [Response(status_code=503)]
        settings = A2APushNotifications(allowed_urls=[old.url, new.url], retry_delay=5)
        poster = Poster(settings)
        try:
            with manual_time() as clock:
                first = Webhook("h", "t", f"{old.url}hooks/h", "old", "Bearer", "old-credentials")
                poster.post([first], '"first"')
                poster.post([first], '"queued"')
                await until(lambda: any(_sleeps_before_a_retry(task) for task in _posting()))
                poster.forget("t", "h")
                again = Webhook("h", "t", f"{new.url}hooks/h", "new", "Bearer", "new-credentials")
                poster.post([again], '"after"')
                clock.advance(5)
                await until(lambda: not _posting())
                assert (poster.principals_posting, poster.posts_waiting) == (0, 0)
        finally:
            await poster.aclose()
    assert [body for _, body in old.posts] == [b'"first"']  # (not tried again once deleted)
    [(headers, body)] = new.posts
    assert body == b'"after"'  # (what was queued for the deleted config is dropped)
    assert headers["x-a2a-notification-token"] == "new"
    assert headers["authorization"] == "Bearer new-credentials"


async def test_a_webhook_set_again_as_the_deleted_ones_post_waits_to_retry_hears_at_once() -> None:
    # (was: the deleted config's sender, asleep until its next try, kept the place: the new
    # config's posts waited for the end of that sleep, an hour here, the test's WAIT first)
    async with receiving() as old, receiving() as new:
        old.answers = [Response(status_code=503)]
        settings = A2APushNotifications(allowed_urls=[old.url, new.url], retry_delay=3600)
        poster = Poster(settings)
        try:
            poster.post([Webhook("h", "t", f"{old.url}hooks/h", "old")], '"first"')
            await until(lambda: any(_sleeps_before_a_retry(task) for task in _posting()))
            poster.forget("t", "h")
            again = Webhook("h", "t", f"{new.url}hooks/h", "new")
            poster.post([again], '"one"')
            poster.post([again], '"two"')
            await until(lambda: len(new.posts) == 2 and not _posting())
            assert (poster.principals_posting, poster.posts_waiting) == (0, 0)
        finally:
            await poster.aclose()
    assert [body for _, body in old.posts] == [b'"first"']
    assert [body for _, body in new.posts] == [b'"one"', b'"two"']  # (in order)
    assert [headers["x-a2a-notification-token"] for headers, _ in new.posts] == ["new"] * 2


async def test_a_webhook_deleted_while_its_post_waits_to_retry_ends_its_sender_at_once() -> None:
    # (was: the sender slept out its delay, an hour here, only to find the webhook gone)
    async with receiving() as receiver:
        receiver.answers = [Response(status_code=503)]
        poster = Poster(A2APushNotifications(allowed_urls=[receiver.url], retry_delay=3600))
        try:
            poster.post([Webhook("h", "t", f"{receiver.url}hooks/h")], "{}")
            [sender] = _posting()
            await until(lambda: _sleeps_before_a_retry(sender))
            poster.forget("t", "h")
            await asyncio.wait_for(sender, WAIT)
            assert not _posting()
            assert (poster.principals_posting, poster.posts_waiting) == (0, 0)
        finally:
            await poster.aclose()
    assert len(receiver.posts) == 1  # (not tried again)


async def test_a_webhook_replaced_while_its_post_waits_to_retry_is_tried_there_at_once() -> None:
    # (was: the post slept out the delay of the old address, an hour here, the test's WAIT
    # first, before its first try at the new one)
    async with receiving() as old, receiving() as new:
        old.answers = [Response(status_code=503)]
        settings = A2APushNotifications(allowed_urls=[old.url, new.url], retry_delay=3600)
        poster = Poster(settings)
        try:
            poster.post([Webhook("h", "t", f"{old.url}hooks/h", "old", "Bearer", "old-key")], "{}")
            [sender] = _posting()
            await until(lambda: _sleeps_before_a_retry(sender))
            poster.readdress(Webhook("h", "t", f"{new.url}hooks/h", "new", "Bearer", "new-key"))
            await asyncio.wait_for(sender, WAIT)
            assert (poster.principals_posting, poster.posts_waiting) == (0, 0)
        finally:
            await poster.aclose()
    assert len(old.posts) == 1
    [(headers, body)] = new.posts
    assert body == b"{}"
    assert headers["x-a2a-notification-token"] == "new"
    assert headers["authorization"] == "Bearer new-key"


async def test_a_replaced_webhooks_new_address_has_its_tries_counted_afresh() -> None:
    # (the old address's failed try is not counted against the new one: with two attempts,
    # the new address's 503 is tried again, not given up; and each replace wakes the post)
    async with receiving() as old, receiving() as new:
        old.answers, new.answers = [Response(status_code=503)], [Response(status_code=503)]
        settings = A2APushNotifications(
            allowed_urls=[old.url, new.url], attempts=2, retry_delay=3600
        )
        poster = Poster(settings)
        try:
            poster.post([Webhook("h", "t", f"{old.url}hooks/h", "old")], "{}")
            [sender] = _posting()
            await until(lambda: _sleeps_before_a_retry(sender))
            poster.readdress(Webhook("h", "t", f"{new.url}hooks/h", "new"))
            await until(lambda: len(new.posts) == 1 and _sleeps_before_a_retry(sender))
            poster.readdress(Webhook("h", "t", f"{new.url}hooks/h", "newer"))
            await asyncio.wait_for(sender, WAIT)
        finally:
            await poster.aclose()
    assert len(old.posts) == 1
    assert [headers["x-a2a-notification-token"] for headers, _ in new.posts] == ["new", "newer"]


async def test_the_same_webhook_set_again_leaves_its_post_waiting_to_retry_as_it_was() -> None:
    # (nothing changed: the receiver that failed is not tried again before its delay)
    async with receiving() as receiver:
        receiver.answers = [Response(status_code=503)]
        poster = Poster(A2APushNotifications(allowed_urls=[receiver.url], retry_delay=3600))
        try:
            webhook = Webhook("h", "t", f"{receiver.url}hooks/h", "token")
            poster.post([webhook], "{}")
            [sender] = _posting()
            await until(lambda: _sleeps_before_a_retry(sender))
            poster.readdress(Webhook("h", "t", f"{receiver.url}hooks/h", "token"))  # (equal)
            await asyncio.sleep(0)  # (a sender woken would run now, and post again)
            assert _sleeps_before_a_retry(sender)
            poster.forget("t", "h")
            await asyncio.wait_for(sender, WAIT)
        finally:
            await poster.aclose()
    assert len(receiver.posts) == 1


@pytest.mark.parametrize("change", ["deleted and set again", "replaced"])
async def test_a_post_waiting_for_its_turn_goes_where_its_webhook_is_when_it_has_it(
    change: str,
) -> None:
    # (was: posted, once it had its principal's turn, where its webhook was as it asked for
    # the turn: a deleted config's URL, with its credentials, or a replaced one's old URL)
    release = asyncio.Event()
    async with held_receiver("/hooks/held", release) as (url, heard):
        settings = A2APushNotifications(allowed_urls=[url], max_posts_per_principal=1)
        poster = Poster(settings)
        try:
            poster.post([Webhook("h", "t1", f"{url}hooks/held", owner="alice")], "{}")
            await until(lambda: heard == ["/hooks/held"])
            poster.post([Webhook("h", "t2", f"{url}hooks/old", owner="alice")], '"before"')
            await until(lambda: poster.posts_waiting == 1)  # (hers waits for her one turn)
            new = Webhook("h", "t2", f"{url}hooks/new", owner="alice")
            if change == "replaced":
                poster.readdress(new)
            else:
                poster.forget("t2", "h")
                poster.post([new], '"after"')
            release.set()
            await until(lambda: not _posting())
            assert (poster.principals_posting, poster.posts_waiting) == (0, 0)
        finally:
            await poster.aclose()
    assert heard == ["/hooks/held", "/hooks/new"]


async def test_the_posters_close_ends_a_deleted_webhooks_post_and_the_new_ones_waiting() -> None:
    async with receiving() as receiver:
        receiver.hold = asyncio.Event()
        poster = Poster(A2APushNotifications(allowed_urls=[receiver.url]))
        try:
            poster.post([Webhook("h", "t", f"{receiver.url}hooks/old", owner="alice")], "{}")
            await until(lambda: len(receiver.posts) == 1)
            poster.forget("t", "h")
            poster.post([Webhook("h", "t", f"{receiver.url}hooks/new", owner="alice")], "{}")
            await poster.aclose()
            assert not _posting()
            assert (poster.principals_posting, poster.posts_waiting) == (0, 0)
        finally:
            receiver.hold.set()
            await poster.aclose()
    assert len(receiver.posts) == 1


@pytest.mark.parametrize(
    "allowed",
    [[], "https://hooks.example/", ["ftp://hooks.example/"], ["https://hooks.example/?x=1"]],
)
def test_push_notifications_need_urls_webhooks_can_be_under(allowed: Any) -> None:
    with pytest.raises(A2AConfigurationError, match="allowed_urls"):
        A2APushNotifications(allowed_urls=allowed)


def test_a_bound_of_posts_per_principal_above_the_pool_is_refused() -> None:
    from miniagents.ext.a2a.push import MAX_CONNECTIONS

    A2APushNotifications(
        allowed_urls=["https://hooks.example/a2a/"], max_posts_per_principal=MAX_CONNECTIONS
    )
    with pytest.raises(A2AConfigurationError, match="max_posts_per_principal=101"):
        A2APushNotifications(
            allowed_urls=["https://hooks.example/a2a/"], max_posts_per_principal=MAX_CONNECTIONS + 1
        )


def test_the_allowed_urls_the_docs_show_are_one_host_one_port_one_path() -> None:
    with pytest.raises(A2AConfigurationError) as refused:
        A2APushNotifications(allowed_urls=["ftp://hooks.example/"])
    shown = [
        *re.findall(r"``(https?://[^`]+)``", A2APushNotifications.__doc__ or ""),
        *re.findall(r"'(https?://[^']+)'", str(refused.value)),
    ]
    examples = [url for url in shown if url != "http://127.0.0.1:*/"]  # (the one warned of)
    assert len(examples) == 4
    for url in examples:  # (was: http://127.0.0.1:*/, a post to any port of this machine)
        parts = urlsplit(url)
        assert ":*" not in parts.netloc, url
        assert parts.path.strip("/"), url
        assert A2APushNotifications(allowed_urls=[url]).refusal(f"{url}hook") is None
    assert "would let it post to any service" in (A2APushNotifications.__doc__ or "")


def test_a_signature_of_another_time_is_refused() -> None:
    from miniagents.ext.a2a.push import secret_key, sign

    body = b'{"statusUpdate": {}}'
    header = f"t=1000,v1={sign(secret_key(SECRET), 1000, body)}"
    assert signature_valid(SECRET, header, body, now=1100)
    assert not signature_valid(SECRET, header, body, now=2000)  # (replayed later)
    assert not signature_valid(SECRET, "v1=abc", body)


async def test_without_push_notifications_the_methods_say_so() -> None:
    async with served(a2a_app(greeter, authentication=NoAuthentication())) as web:
        card = (await web.get("/.well-known/agent-card.json")).json()
        error = error_of(
            await call(web, rpc("GetTaskPushNotificationConfig", {"taskId": "t", "id": "x"}))
        )
        config = {"url": "https://hooks.example/x"}
        inline = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
        refused = error_of(await call(web, rpc("SendMessage", inline)))
    assert card["capabilities"]["pushNotifications"] is False
    assert error["code"] == refused["code"] == -32003


def test_the_tck_agent_allows_the_kits_receiver_on_this_machine_only_where_its_run_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "examples" / "a2a" / "tck_agent.py"
    spec = importlib.util.spec_from_file_location("tck_agent", path)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    receiver = "http://127.0.0.1:9/hooks/1"  # (a port of this machine: none by default)
    monkeypatch.delenv(example.RECEIVERS_VARIABLE, raising=False)
    assert example.push_notifications().refusal(receiver) is not None  # (was: allowed)
    assert example.push_notifications().refusal("https://example.com/hook") is None
    monkeypatch.setenv(example.RECEIVERS_VARIABLE, "http://localhost:*/ http://127.0.0.1:*/")
    assert example.push_notifications().refusal(receiver) is None  # (the kit's run sets it)


async def test_a_receivers_cookie_is_never_sent_with_another_webhooks_posts() -> None:
    """A post carries no cookie: what one client's receiver sets reaches no other's.

    (The app's HTTP client is shared by every task's posts: a cookie jar would hand Alice's
    receiver's session to Bob's receiver, under the same allowed host, or fix Bob's posts
    to a session of hers.)
    """
    tokens = BearerTokenAuth({ALICE: "alice", BOB: "bob"})
    alice, bob = {"Authorization": f"Bearer {ALICE}"}, {"Authorization": f"Bearer {BOB}"}
    async with receiving() as receiver:
        receiver.answers = [
            Response(status_code=200, headers={"set-cookie": "session=alices; Path=/"})
        ] * 2
        app = a2a_app(greeter, authentication=tokens, push_notifications=pushing(receiver))
        async with served(app) as web:
            for headers, name, posts in ((alice, "alice", 2), (bob, "bob", 4)):
                config = {"url": f"{receiver.url}hooks/{name}"}
                params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
                await call(web, rpc("SendMessage", params), headers=headers)
                await until(partial(_posted, receiver, posts))
    assert receiver.states() == ["TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED"] * 2
    assert [headers.get("cookie") for headers, _ in receiver.posts] == [None] * 4


def _posted(receiver: Receiver, count: int) -> bool:
    return len(receiver.posts) == count


async def test_a_webhooks_token_or_credentials_past_a_headers_length_are_refused() -> None:
    """Each is a header of every post (at most 8,192 characters): longer, it is refused.

    (The task keeps each webhook: ten of a megabyte's token each would be ten megabytes a
    task, counted nowhere.)
    """
    async with receiving() as receiver, served(greeting(receiver)) as web:
        task = (await call(web, rpc("SendMessage", send_params()))).json()["result"]["task"]
        named = {"taskId": task["id"], "url": f"{receiver.url}hooks/a"}
        long = "t" * 8_193
        for field, given in (
            ("token", {"token": long}),
            ("authentication.credentials", {"authentication": {"credentials": long}}),
            ("authentication.scheme", {"authentication": {"scheme": long}}),
        ):
            made = await call(web, rpc("CreateTaskPushNotificationConfig", {**named, **given}))
            refused = error_of(made)
            assert (refused["code"], violations(refused)) == (-32602, [field])
            assert "8192 characters" in refused["message"]
        listing = rpc("ListTaskPushNotificationConfigs", {"taskId": task["id"]})
        assert (await call(web, listing)).json()["result"]["configs"] == []
        most = {**named, "token": "t" * 8_192}
        assert "result" in (await call(web, rpc("CreateTaskPushNotificationConfig", most))).json()


async def test_a_task_that_ended_takes_webhooks_counted_among_the_ended_tasks_bytes() -> None:
    """An ended task takes a webhook too (A2A's conformance kit sets one then; nothing more
    is posted for it), and what its webhooks keep counts among the bytes the ended tasks keep
    (``max_ended_run_bytes``), those set after the end too: past the bound, it is let go of.
    (Its webhooks were counted nowhere: ~10 MB an ended task.)"""
    async with receiving() as receiver:
        app = a2a_app(
            greeter,
            authentication=NoAuthentication(),
            push_notifications=pushing(receiver),
            settings=WebSettings(max_ended_run_bytes=12_000),
        )
        async with served(app) as web:
            task = (await call(web, rpc("SendMessage", send_params()))).json()["result"]["task"]
            credentials = "c" * 8_000
            hook = {
                "taskId": task["id"],
                "id": "kept",
                "url": f"{receiver.url}hooks/a",
                "authentication": {"scheme": "Bearer", "credentials": credentials},
            }
            assert (
                "result" in (await call(web, rpc("CreateTaskPushNotificationConfig", hook))).json()
            )
            done = await call(web, rpc("SendMessage", send_params("Ada", taskId=task["id"])))
            assert done.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
            job = app.state.runs.job(task["id"])
            assert job is not None
            assert job.done
            ended_with = job.kept_bytes
            assert ended_with > len(credentials)  # (the webhook's credentials with the rest)
            small = {"taskId": task["id"], "id": "late", "url": f"{receiver.url}hooks/b"}
            made = await call(web, rpc("CreateTaskPushNotificationConfig", small))
            assert made.json()["result"]["id"] == "late"
            assert job.kept_bytes > ended_with  # (counted as it is set)
            listing = rpc("ListTaskPushNotificationConfigs", {"taskId": task["id"]})
            configs = (await call(web, listing)).json()["result"]["configs"]
            assert sorted(config["id"] for config in configs) == ["kept", "late"]
            deleted = {"taskId": task["id"], "id": "late"}
            await call(web, rpc("DeleteTaskPushNotificationConfig", deleted))
            assert job.kept_bytes == ended_with  # (its bytes let go of with it)
            large = {**hook, "id": "large"}  # (another 8,000 bytes: over the 12,000 kept)
            assert (
                "result" in (await call(web, rpc("CreateTaskPushNotificationConfig", large))).json()
            )
            gone = error_of(await call(web, rpc("GetTask", {"id": task["id"]})))
    assert gone["code"] == -32001  # (let go of: past max_ended_run_bytes)


@asynccontextmanager
async def held_receiver(held: str, release: asyncio.Event) -> AsyncIterator[tuple[str, list[str]]]:
    """A receiver (its URL, the paths posted to) that answers a post under ``held``
    only once ``release`` is set, any other at once."""
    heard: list[str] = []

    async def hook(request: Request) -> Response:
        heard.append(request.url.path)
        if request.url.path.startswith(held):
            await release.wait()
        return Response(status_code=200)

    def make(url: str) -> Starlette:
        return Starlette(routes=[Route("/hooks/{name}", hook, methods=["POST"])])

    async with serving(make) as url:
        yield url, heard


async def test_one_principals_slow_receivers_hold_up_no_other_principals_posts() -> None:
    tokens = BearerTokenAuth({ALICE: "alice", BOB: "bob"})
    alice, bob = {"Authorization": f"Bearer {ALICE}"}, {"Authorization": f"Bearer {BOB}"}
    release = asyncio.Event()
    async with held_receiver("/hooks/alice", release) as (url, heard):
        pushing = A2APushNotifications(allowed_urls=[f"{url}hooks/"], max_posts_per_principal=2)
        app = a2a_app(greeter, authentication=tokens, push_notifications=pushing)

        def hers() -> list[str]:
            return [path for path in heard if path.startswith("/hooks/alice")]

        async with served(app) as web:
            for n in range(3):  # (three tasks of hers, a webhook each, whose posts hang)
                config = {"url": f"{url}hooks/alice-{n}"}
                params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
                await call(web, rpc("SendMessage", params), headers=alice)
            await until(lambda: len(hers()) >= 2)
            config = {"url": f"{url}hooks/bob"}
            params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
            await call(web, rpc("SendMessage", params), headers=bob)
            await until(lambda: heard.count("/hooks/bob") == 2)  # (both his, answered)
            assert len(hers()) == 2  # (her third webhook's first post waits its turn)
            release.set()
            await until(lambda: len(hers()) == 6)  # (then each of her posts, in turn)
    assert sorted(hers()) == sorted(f"/hooks/alice-{n}" for n in range(3) for _ in range(2))


async def test_busy_principals_filling_the_connections_leave_a_freed_one_to_anothers_post() -> None:
    # (was: each principal bounded alone, so a few busy ones filled the connections, and
    # another's post waited for one behind each of theirs, its timeout running)
    release_bob, release_alice = asyncio.Event(), asyncio.Event()
    heard: list[str] = []

    async def hook(request: Request) -> Response:
        heard.append(request.url.path)
        if request.url.path.startswith("/hooks/bob"):
            await release_bob.wait()
        elif request.url.path.startswith("/hooks/alice-held"):
            await release_alice.wait()
        return Response(status_code=200)

    def make(url: str) -> Starlette:
        return Starlette(routes=[Route("/hooks/{name}", hook, methods=["POST"])])

    async with serving(make) as url:
        settings = A2APushNotifications(allowed_urls=[url], max_posts_per_principal=4)
        poster = Poster(settings, connections=4)
        try:
            held = [
                Webhook(f"h{n}", f"a{n}", f"{url}hooks/alice-held", owner="alice")
                for n in (0, 1, 2)
            ]
            poster.post(held, "{}")
            poster.post([Webhook("h", "b", f"{url}hooks/bob", owner="bob")], "{}")
            await until(lambda: len(heard) == 4)  # (the four connections, all held)
            poster.post([Webhook("h", "a3", f"{url}hooks/alice-more", owner="alice")], "{}")
            poster.post([Webhook("h", "c", f"{url}hooks/carol", owner="carol")], "{}")
            release_bob.set()  # (one connection free: hers is under her share, alice's not)
            await until(lambda: "/hooks/carol" in heard)
            release_alice.set()
            await until(lambda: "/hooks/alice-more" in heard and poster.principals_posting == 0)
        finally:
            await poster.aclose()
    # (alice, holding three of four, waited: carol's post was under her share)
    assert heard.index("/hooks/carol") < heard.index("/hooks/alice-more")


async def test_a_principals_turns_to_post_are_forgotten_once_none_is_used() -> None:
    release = asyncio.Event()
    async with held_receiver("/hooks/held", release) as (url, heard):
        poster = Poster(A2APushNotifications(allowed_urls=[url], max_posts_per_principal=1))
        try:
            for owner in ("alice", "bob", None):  # (None: the one user of NoAuthentication)
                task = f"task-of-{owner}"
                held = f"{url}hooks/held-{owner}"
                poster.post([Webhook(f"h{n}", task, held, owner=owner) for n in range(2)], "{}")
            await until(lambda: len(heard) == 3)  # (one of each principal's two)
            assert poster.principals_posting == 3
            release.set()
            await until(lambda: len(heard) == 6 and poster.principals_posting == 0)
        finally:
            await poster.aclose()


async def test_a_freed_turn_goes_to_the_post_that_waited_for_it_first() -> None:
    # (was: as a post ended, its webhook's next post, asking at once, took the turn before
    # the posts already waiting for one woke, and these waited behind it again)
    release = asyncio.Event()
    async with held_receiver("/hooks/held", release) as (url, heard):
        poster = Poster(A2APushNotifications(allowed_urls=[url], max_posts_per_principal=1))
        try:
            first = Webhook("h", "t1", f"{url}hooks/held", owner="alice")
            poster.post([first], "{}")
            poster.post([first], "{}")  # (its next, asked as the first ends)
            await until(lambda: heard == ["/hooks/held"])
            poster.post([Webhook("h", "t2", f"{url}hooks/waiting", owner="alice")], "{}")
            await until(lambda: poster.posts_waiting == 1)  # (hers waits for her one turn)
            release.set()
            await until(lambda: len(heard) == 3 and poster.principals_posting == 0)
        finally:
            await poster.aclose()
    assert heard == ["/hooks/held", "/hooks/waiting", "/hooks/held"]
