"""Bad input to ``a2a_app``: A2A's own JSON-RPC error codes, and nothing starts.

Malformed JSON-RPC, unknown methods, params of the wrong shape, unknown tasks, file parts,
another protocol version, oversized bodies (declared or streamed): each is answered with
the protocol's error code, a message that says what to send, and the details A2A asks
for (a ``google.rpc.ErrorInfo`` naming the error, and the fields at fault), and the agent
is never run. The limits on live tasks answer 503 and 429 (with ``Retry-After``); the
door's protections (JSON posts only, as a JSON-RPC error; the app's own origin; CORS for
A2A's headers) hold. A notification (a request without an ``id``) is never answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from miniagents import InteractionContext, miniagent
from miniagents.ext.a2a import a2a_app
from miniagents.ext.a2a import server as a2a_server
from miniagents.ext.a2a.errors import A2AConfigurationError
from miniagents.ext.a2a.server import (
    DEFAULT_MAX_ID_CHARS,
    DEFAULT_MAX_REQUEST_VALUES,
    MAX_ID_CHARS,
    MAX_REQUEST_VALUES,
)
from miniagents.ext.input_requests import request_input
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings
from miniagents.ext.web.lowlevel import Job, follow_from_now
from miniagents.ext.web.settings import DEFAULT_MAX_BODY_VALUES
from tests.ext.a2a.kit import ALICE, BOB
from tests.ext.a2a.rpc import call, error_of, rpc, send_params, violations
from tests.ext.web.serving import SSEReader, gated, served, until
from tests.fakes.asgi24 import Asgi24
from tests.fakes.fixtures import WAIT

ran: list[str] = []


@miniagent
async def counted(ctx: InteractionContext) -> None:
    """Notes each run."""
    ran.append("ran")
    ctx.reply("ran")


@pytest.fixture(autouse=True)
def nothing_ran() -> None:
    ran.clear()


@pytest.fixture
def app() -> Starlette:
    return a2a_app(
        counted, authentication=NoAuthentication(), settings=WebSettings(max_body_bytes=2_000)
    )


@pytest.fixture
async def web(app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    async with served(app) as client:
        yield client


def _with_data(data: bytes) -> bytes:
    """A ``SendMessage`` body of one data part whose JSON is ``data`` (written as given)."""
    return (
        b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": '
        b'{"messageId": "m", "role": "ROLE_USER", "parts": [{"data": ' + data + b"}]}}}"
    )


@pytest.mark.parametrize(
    ("body", "code", "said"),
    [
        (b"{not json", -32700, "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, -32600, "over the limit"),
        (b'"a string"', -32600, "no JSON-RPC object"),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "GetTask"}]', -32600, "batch"),
        (b'{"id": 1, "method": "GetTask"}', -32600, '"jsonrpc": "2.0"'),
        (b'{"jsonrpc": "2.0", "id": 1}', -32600, "method"),
        (b'{"jsonrpc": "2.0", "id": true, "method": "GetTask"}', -32600, "id is not"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": []}', -32602, "object"),
        (
            _with_data(b'{"x": NaN}'),
            -32700,
            "NaN is not a JSON number",
        ),  # (JSON has no NaN: not a 500)
        (_with_data(b"[-Infinity]"), -32700, "-Infinity"),
        (_with_data(b"[1e999]"), -32700, "too large"),  # (no float: not taken as inf)
    ],
    ids=[
        *("not-json", "too-deep", "not-object", "batch", "no-jsonrpc", "no-method", "id"),
        *("params", "nan", "infinity", "huge-float"),
    ],
)
async def test_a_request_that_is_not_json_rpc_is_refused_with_its_code(
    web: httpx2.AsyncClient, body: bytes, code: int, said: str
) -> None:
    response = await web.post("/", content=body, headers={"content-type": "application/json"})
    error = error_of(response)
    assert error["code"] == code
    assert said in error["message"]
    assert ran == []


async def test_an_integer_of_more_digits_than_python_converts_is_refused_in_our_words() -> None:
    app = a2a_app(counted, authentication=NoAuthentication())  # (the default max_body_bytes)
    async with served(app) as client:
        body = _with_data(b"[" + b"7" * 5_000 + b"]")
        response = await client.post(
            "/", content=body, headers={"content-type": "application/json"}
        )
        error = error_of(response)
        assert error["code"] == -32700
        assert "has 5000 digits" in error["message"]
        assert "set_int_max_str_digits" not in error["message"]  # (no advice to the server)
    assert ran == []


@pytest.mark.parametrize(
    "parts",
    [
        [{"text": "x"}] * (MAX_REQUEST_VALUES // 2),  # (each part: an object and its text)
        [{"data": [0] * MAX_REQUEST_VALUES}],
    ],
    ids=["many-parts", "long-list"],
)
async def test_a_request_of_too_many_json_values_is_refused_before_it_is_read(
    parts: list[object],
) -> None:
    app = a2a_app(counted, authentication=NoAuthentication())  # (the default max_body_bytes)
    async with served(app) as client:
        error = error_of(await call(client, rpc("SendMessage", send_params(parts=parts))))
        assert error["code"] == -32600
        assert f"over {MAX_REQUEST_VALUES} JSON values" in error["message"]
        assert ran == []
        fewer = send_params(parts=[{"data": [0] * (MAX_REQUEST_VALUES // 2)}])
        assert "result" in (await call(client, rpc("SendMessage", fewer))).json()
    assert ran == ["ran"]


@pytest.mark.parametrize(
    ("method", "code", "said"),
    [
        ("Nope", -32601, "There is no method 'Nope'"),
        ("message/send", -32601, "A2A 0.3"),
        ("CreateTaskPushNotificationConfig", -32003, "no push notifications"),
        ("GetExtendedAgentCard", -32007, "no extended card"),
    ],
)
async def test_a_method_the_app_does_not_serve_is_answered_with_its_code(
    web: httpx2.AsyncClient, method: str, code: int, said: str
) -> None:
    error = error_of(await call(web, rpc(method, {}, rpc_id="abc")))
    assert (error["code"], said in error["message"]) == (code, True)
    assert ran == []


@pytest.mark.parametrize(
    ("params", "code", "said"),
    [
        ({"message": {"parts": "text"}}, -32602, "not an A2A SendMessageRequest"),
        ({"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}, -32602, "no parts"),
        (send_params(role="ROLE_AGENT"), -32602, "ROLE_AGENT"),
        (send_params(role=999), -32602, "has the role 999, which A2A does not define"),
        (
            {"message": {"messageId": "m", "parts": [{"url": "https://x.example/f.pdf"}]}},
            -32005,
            "media type 'application/octet-stream', which this agent does not take",
        ),
        (
            {"message": {"messageId": "m", "parts": [{"text": "Hi", "mediaType": "text/html"}]}},
            -32005,
            "media type 'text/html'",
        ),
        (send_params(taskId="no-such-task"), -32001, "no task 'no-such-task'"),
        (
            {**send_params(), "configuration": {"historyLength": -1}},
            -32602,
            "configuration.historyLength is -1: give 0 or more",
        ),
        (send_params(contextId="ctx\u202ecod.exe"), -32602, "contextId 'ctx\\u202ecod.exe'"),
        (send_params(messageId="m\x00"), -32602, "messageId 'm\\x00' holds a control"),
        (send_params(contextId="c" * 257), -32602, "contextId holds 257 characters, over the 256"),
        (send_params(messageId="m" * 300), -32602, "messageId holds 300 characters, over the 256"),
    ],
    ids=[
        "shape",
        "no-parts",
        "agent-role",
        "unknown-role",
        "file",
        "html",
        "unknown-task",
        "negative-history",
        "bidi-context-id",
        "nul-message-id",
        "long-context-id",
        "long-message-id",
    ],
)
@pytest.mark.parametrize("method", ["SendMessage", "SendStreamingMessage"])
async def test_a_message_the_app_cannot_take_starts_nothing(
    app: Starlette,
    web: httpx2.AsyncClient,
    method: str,
    params: dict[str, Any],
    code: int,
    said: str,
) -> None:
    error = error_of(await call(web, rpc(method, params)))
    assert error["code"] == code
    assert said in error["message"]
    assert ran == []
    assert (app.state.runs.live, app.state.runs.kept) == (0, 0)


async def _ids_are_bounded_at_8(client: httpx2.AsyncClient) -> None:
    """An id of 9 characters is refused before the task starts; ids of 8 are taken."""
    error = error_of(await call(client, rpc("SendMessage", send_params(contextId="c" * 9))))
    assert "holds 9 characters, over the 8 an id may hold" in error["message"]
    assert violations(error) == ["message.contextId"]
    assert ran == []
    taken = send_params(contextId="c" * 8, messageId="m" * 8)
    task = (await call(client, rpc("SendMessage", taken))).json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_a_smaller_max_body_values_and_max_id_chars_are_kept_to() -> None:
    # (both were module constants, 10,000 and 256, that no app could lower)
    assert (MAX_REQUEST_VALUES, MAX_ID_CHARS) == (DEFAULT_MAX_REQUEST_VALUES, DEFAULT_MAX_ID_CHARS)
    assert DEFAULT_MAX_REQUEST_VALUES == DEFAULT_MAX_BODY_VALUES  # (one bound, one name)
    settings = WebSettings(max_body_values=40, max_id_chars=8)  # (one setting, every app's)
    app = a2a_app(counted, authentication=NoAuthentication(), settings=settings)
    async with served(app) as client:
        many = send_params(parts=[{"data": list(range(40))}])
        error = error_of(await call(client, rpc("SendMessage", many)))
        assert error["code"] == -32600
        assert "over 40 JSON values" in error["message"]
        assert error["data"][0]["metadata"] == {"maxRequestValues": "40"}
        await _ids_are_bounded_at_8(client)
    assert ran == ["ran"]


async def test_the_deprecated_max_request_values_warns_and_still_bounds_the_params() -> None:
    # (a2a_app's own name for WebSettings.max_body_values: one setting, one name)
    with pytest.warns(DeprecationWarning, match=r"give settings=WebSettings\(max_body_values="):
        app = a2a_app(counted, authentication=NoAuthentication(), max_request_values=40)
    async with served(app) as client:
        many = send_params(parts=[{"data": list(range(40))}])
        error = error_of(await call(client, rpc("SendMessage", many)))
    assert error["code"] == -32600
    assert "over 40 JSON values" in error["message"]
    assert ran == []


async def test_the_deprecated_max_id_chars_warns_and_still_bounds_the_ids() -> None:
    # (a2a_app's own name for WebSettings.max_id_chars, which the other web apps read too)
    with pytest.warns(DeprecationWarning, match=r"give settings=WebSettings\(max_id_chars="):
        app = a2a_app(
            counted,
            authentication=NoAuthentication(),
            settings=WebSettings(max_id_chars=100),
            max_id_chars=8,  # (given both, the deprecated one stands, as max_request_values)
        )
    async with served(app) as client:
        await _ids_are_bounded_at_8(client)
    assert ran == ["ran"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_request_values", 0),
        ("max_request_values", 2.5),
        ("max_id_chars", -1),
        ("max_id_chars", True),
        ("max_id_chars", "256"),
    ],
)
def test_a_bad_setting_of_a2a_app_is_refused_naming_it(name: str, value: object) -> None:
    with pytest.raises(A2AConfigurationError) as refused:
        a2a_app(counted, authentication=NoAuthentication(), **{name: value})  # type: ignore[arg-type]
    said = str(refused.value)
    assert all(word in said for word in (name, "a2a_app", repr(value))), said


async def test_a_clients_ids_of_max_id_chars_are_taken(web: httpx2.AsyncClient) -> None:
    """(Over it, they are refused: see ``test_a_message_the_app_cannot_take_starts_nothing``.)"""
    params = send_params(contextId="c" * MAX_ID_CHARS, messageId="m" * MAX_ID_CHARS)
    task = (await call(web, rpc("SendMessage", params))).json()["result"]["task"]
    assert (task["contextId"], task["status"]["state"]) == ("c" * 256, "TASK_STATE_COMPLETED")
    error = error_of(await call(web, rpc("SendMessage", send_params(contextId="c" * 257))))
    assert violations(error) == ["message.contextId"]


async def test_a_request_id_over_max_id_chars_is_refused_and_starts_nothing(
    web: httpx2.AsyncClient,
) -> None:
    # (was: an id of any length the body held, repeated in each event of a stream it answered)
    for long_id in ("i" * (MAX_ID_CHARS + 1), int("9" * (MAX_ID_CHARS + 1))):
        sent = rpc("SendStreamingMessage", send_params(), rpc_id=long_id)
        answered = await call(web, sent)
        error = error_of(answered)
        assert (answered.json()["id"], error["code"]) == (None, -32600)
        assert f"over the {MAX_ID_CHARS} an id may hold" in error["message"]
        assert error["data"][0]["metadata"] == {"maxIdChars": str(MAX_ID_CHARS)}
    assert ran == []
    taken = await call(web, rpc("SendMessage", send_params(), rpc_id="i" * MAX_ID_CHARS))
    assert taken.json()["id"] == "i" * MAX_ID_CHARS
    assert ran == ["ran"]


@pytest.mark.parametrize("method", ["GetTask", "CancelTask", "SubscribeToTask"])
async def test_an_unknown_task_is_not_found(web: httpx2.AsyncClient, method: str) -> None:
    error = error_of(await call(web, rpc(method, {"id": "no-such-task"})))
    assert error["code"] == -32001
    assert "no task 'no-such-task'" in error["message"]
    assert error["data"][0]["metadata"] == {"taskId": "no-such-task"}
    error = error_of(await call(web, rpc(method, {})))
    assert (error["code"], "names no task" in error["message"]) == (-32602, True)
    assert violations(error) == ["id"]


@pytest.mark.parametrize("method", ["GetTask", "CancelTask", "SubscribeToTask"])
@pytest.mark.parametrize("bad", ["x" * (MAX_ID_CHARS + 1), "a\nb"], ids=["long", "line-break"])
async def test_a_task_id_that_cannot_be_one_is_refused_not_repeated(
    web: httpx2.AsyncClient, method: str, bad: str
) -> None:
    # (was: "There is no task '…'", the id repeated whole, a line break or up to
    # max_body_bytes of it, where the other methods refuse such an id)
    error = error_of(await call(web, rpc(method, {"id": bad})))
    assert error["code"] == -32602
    assert violations(error) == ["id"]
    assert bad not in error["message"]


async def test_a_task_asked_for_with_a_negative_history_length_is_refused(
    web: httpx2.AsyncClient,
) -> None:
    """(As ``ListTasks`` refuses it: not an empty history, silently.)"""
    started = await call(web, rpc("SendMessage", send_params()))
    task_id = started.json()["result"]["task"]["id"]
    error = error_of(await call(web, rpc("GetTask", {"id": task_id, "historyLength": -1})))
    assert (error["code"], "historyLength is -1: give 0 or more" in error["message"]) == (
        -32602,
        True,
    )
    assert violations(error) == ["historyLength"]


async def test_the_fields_at_fault_are_named_in_the_errors_details(
    web: httpx2.AsyncClient,
) -> None:
    error = error_of(await call(web, rpc("SendMessage", send_params(role="ROLE_AGENT"))))
    assert violations(error) == ["message.role"]
    error = error_of(await call(web, rpc("Nope", {})))
    assert error["data"][0]["metadata"] == {"method": "Nope"}


async def test_another_protocol_version_is_refused(web: httpx2.AsyncClient) -> None:
    error = error_of(
        await call(web, rpc("SendMessage", send_params()), headers={"A2A-Version": "0.3"})
    )
    assert error["code"] == -32009
    assert "A2A 1.0" in error["message"]
    answered = await call(web, rpc("SendMessage", send_params()), headers={"A2A-Version": "1.0"})
    assert answered.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert ran == ["ran"]


async def test_an_oversized_body_is_refused_before_it_is_read_whole(
    web: httpx2.AsyncClient,
) -> None:
    big = rpc("SendMessage", send_params("x" * 5_000))
    error = error_of(await call(web, big))  # (a declared Content-Length over the limit)
    assert error["code"] == -32600
    assert "over the limit of 2000 bytes" in error["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read until the limit
        for _ in range(10):
            yield b" " * 500

    response = await web.post("/", content=chunks(), headers={"content-type": "application/json"})
    assert error_of(response)["code"] == -32600
    assert ran == []


async def test_over_the_apps_limit_a_task_is_a_503_and_over_a_principals_a_429() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    auth = BearerTokenAuth({ALICE: "alice", BOB: "bob"})
    limited = a2a_app(
        gated(tokens),
        authentication=auth,
        settings=WebSettings(max_live_runs=2, max_live_runs_per_principal=1),
    )
    alice, bob = {"authorization": f"Bearer {ALICE}"}, {"authorization": f"Bearer {BOB}"}
    async with served(limited) as web:
        sent = rpc("SendMessage", {**send_params(), "configuration": {"returnImmediately": True}})
        assert "result" in (await call(web, sent, headers=alice)).json()
        refused = await call(web, sent, headers=alice)
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "1")
        error = error_of(refused, 429)
        assert "max_live_runs_per_principal=1" in error["message"]
        assert error["data"][0]["metadata"]["limit"] == "max_live_runs_per_principal"
        assert "result" in (await call(web, sent, headers=bob)).json()
        full = await call(web, sent, headers=bob)  # (the app's limit is checked first)
        assert (full.status_code, full.headers["retry-after"]) == (503, "1")
        assert "max_live_runs=2" in full.json()["error"]["message"]
        assert limited.state.runs.live == 2
        tokens.put_nowait(None)
        tokens.put_nowait(None)


async def test_the_door_refuses_what_a_browser_of_another_site_may_send(
    web: httpx2.AsyncClient,
) -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage"}'
    as_form = await web.post("/", content=body, headers={"content-type": "text/plain"})
    error = error_of(as_form, 415)  # (refused before its body is read: as JSON-RPC, id null)
    assert (error["code"], as_form.json()["id"]) == (-32005, None)
    assert "Content-Type: application/json" in error["message"]
    assert as_form.headers["x-content-type-options"] == "nosniff"  # (the door's headers kept)
    assert int(as_form.headers["content-length"]) == len(as_form.content)
    other = await web.post(
        "/",
        content=body,
        headers={"content-type": "application/json", "origin": "https://evil.example"},
    )
    assert other.status_code == 403
    assert ran == []


async def test_an_allowed_origin_may_send_a2as_headers() -> None:
    async with served(
        a2a_app(
            counted,
            authentication=NoAuthentication(),
            settings=WebSettings(allowed_origins=["https://front.example"]),
        )
    ) as web:
        preflight = await web.options(
            "/",
            headers={
                "origin": "https://front.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, a2a-version, traceparent",
            },
        )
    assert preflight.status_code == 200
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"a2a-version", "traceparent", "content-type"} <= {
        header.strip() for header in allowed.split(",")
    }


async def test_a_notification_is_carried_out_and_never_answered(
    app: Starlette, web: httpx2.AsyncClient
) -> None:
    """JSON-RPC 2.0: a request without an ``id`` gets no answer (HTTP 204, no body)."""
    sent = rpc("SendMessage", send_params())
    del sent["id"]
    answered = await call(web, sent)
    assert (answered.status_code, answered.content) == (204, b"")
    await until(lambda: ran == ["ran"])  # (SendMessage starts its task all the same)
    streamed = rpc("SendStreamingMessage", send_params())
    del streamed["id"]
    answered = await call(web, streamed)
    assert (answered.status_code, answered.content) == (204, b"")  # (no stream either)
    await until(lambda: ran == ["ran", "ran"])
    for quiet in (
        rpc("GetTask", {"id": "no-such-task"}),  # (a read: nothing to do)
        rpc("Nope", {}),  # (errors are not answered either)
        rpc("SendMessage", {"message": "not a message"}),
        rpc("SendMessage", send_params(taskId="no-such-task")),
    ):
        del quiet["id"]
        answered = await call(web, quiet)
        assert (answered.status_code, answered.content) == (204, b"")
    assert ran == ["ran", "ran"]


async def test_a_null_id_is_no_notification(web: httpx2.AsyncClient) -> None:
    answered = await call(web, rpc("GetTask", {"id": "no-such-task"}, rpc_id=None))
    assert answered.json()["id"] is None
    assert error_of(answered)["code"] == -32001


def one_stream_app(tokens: asyncio.Queue[str | None]) -> Starlette:
    """An app of a ``gated`` agent that lets alice, its one principal, have one stream open."""
    return a2a_app(
        gated(tokens),
        authentication=BearerTokenAuth({ALICE: "alice"}),
        settings=WebSettings(max_streams_per_principal=1),
    )


async def started(web: httpx2.AsyncClient, headers: dict[str, str]) -> str:
    """The id of a task started by a ``SendMessage`` that returns at once."""
    sent = rpc("SendMessage", {**send_params(), "configuration": {"returnImmediately": True}})
    task_id: str = (await call(web, sent, headers=headers)).json()["result"]["task"]["id"]
    return task_id


async def test_a2as_streams_are_bounded_and_a_refused_one_starts_no_task() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = one_stream_app(tokens)
    alice = {"authorization": f"Bearer {ALICE}"}
    runs = app.state.runs
    async with served(app) as web:
        task_id = await started(web, alice)
        following = rpc("SubscribeToTask", {"id": task_id})
        request = web.build_request("POST", "/", json=following, headers=alice)
        first = await web.send(request, stream=True)
        reader = SSEReader(first)  # (kept: a reader let go of closes its stream)
        await reader.take(1)
        assert runs.open_streams == 1  # (her one stream: the bound)
        for refused in [
            await call(web, following, headers=alice),
            await call(web, rpc("SendStreamingMessage", send_params()), headers=alice),
        ]:
            assert (refused.status_code, refused.headers["retry-after"]) == (429, "1")
            error = error_of(refused, 429)
            assert "max_streams_per_principal=1" in error["message"]
            assert error["data"][0]["metadata"]["limit"] == "max_streams_per_principal"
        assert runs.live == 1  # (the refused stream's task was not started)
        await first.aclose()
        await until(lambda: runs.open_streams == 0)
        tokens.put_nowait(None)
        await until(lambda: runs.live == 0)


async def test_two_subscribers_for_the_last_stream_get_one_stream_and_one_refusal() -> None:
    # (SubscribeToTask looked at the room in its request and took the slot as its stream
    # started: two subscribers that both looked before either started were both let in, and
    # the second's stream refused with the web apps' plain error, no JSON-RPC answer)
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = one_stream_app(tokens)
    alice = {"authorization": f"Bearer {ALICE}"}
    runs = app.state.runs
    route = next(one for one in app.routes if isinstance(one, Route) and one.path == "/")
    answered: list[Response] = []
    both = asyncio.Event()

    async def answer_once_both_are(scope: Scope, receive: Receive, send: Send) -> None:
        response = await route.endpoint(Request(scope, receive))  # (each request's handler)
        answered.append(response)
        if len(answered) == 2:
            both.set()
        await both.wait()  # (neither response starts before both requests were handled)
        await response(scope, receive, send)

    async with served(app) as web:
        task_id = await started(web, alice)
        route.app = answer_once_both_are
        following = rpc("SubscribeToTask", {"id": task_id})
        requests = [web.build_request("POST", "/", json=following, headers=alice)] * 2
        first, second = await asyncio.gather(*(web.send(one, stream=True) for one in requests))
        streamed, refused = (first, second) if first.status_code == 200 else (second, first)
        await refused.aread()
        error = error_of(refused, 429)  # (was: the web apps' {"error": ...}, no JSON-RPC)
        assert error["code"] == -32000
        assert error["data"][0]["metadata"]["limit"] == "max_streams_per_principal"
        reader = SSEReader(streamed)
        assert len(await reader.take(1)) == 1  # (the task as it is now)
        assert runs.open_streams == 1
        await streamed.aclose()
        await until(lambda: runs.open_streams == 0)
        tokens.put_nowait(None)
        await until(lambda: runs.live == 0)


async def test_a_streamed_message_holds_its_stream_from_its_check_on() -> None:
    # (an answer as a message waits for the task to settle before it streams: a second
    # streamed message that came meanwhile was let in, started its task, and was refused
    # only as its stream opened, leaving that task waiting for an answer nobody could send)
    gate = asyncio.Event()

    @miniagent
    async def asking(ctx: InteractionContext) -> None:
        await gate.wait()
        question = request_input("Who are you?")
        ctx.reply(question)
        ctx.reply(f"Hello, {await question.aanswer()}.")

    app = a2a_app(
        asking,
        authentication=BearerTokenAuth({ALICE: "alice"}),
        settings=WebSettings(max_streams_per_principal=1),
        answer_as="message",
    )
    alice = {"authorization": f"Bearer {ALICE}"}
    runs = app.state.runs
    streamed = rpc("SendStreamingMessage", send_params())
    async with served(app) as web:
        first = asyncio.create_task(
            web.send(web.build_request("POST", "/", json=streamed, headers=alice), stream=True)
        )
        await until(lambda: runs.live == 1)
        second = asyncio.create_task(call(web, streamed, headers=alice))
        await until(lambda: second.done() or runs.live == 2)
        gate.set()
        refused = await second
        assert refused.status_code == 429
        assert error_of(refused, 429)["data"][0]["metadata"]["limit"] == (
            "max_streams_per_principal"
        )
        stream = await first
        await stream.aread()
        await stream.aclose()
        assert runs.live == 1  # (the refused message's task was never started)
        await until(lambda: runs.open_streams == 0)


async def test_a_subscriber_that_left_gives_back_its_stream_under_an_asgi_2_4_server() -> None:
    # (SubscribeToTask follows the task's runs in its events: the follower is given back as
    # its events are closed, which must be as the response returns under ASGI 2.4 too)
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = a2a_app(gated(tokens), authentication=NoAuthentication())
    runs = app.state.runs
    server = Asgi24(app)
    async with served(server) as web:
        sent = rpc("SendMessage", {**send_params(), "configuration": {"returnImmediately": True}})
        task_id = (await call(web, sent)).json()["result"]["task"]["id"]
        server.ended.clear()  # (that request's)
        job = runs.job(task_id)
        following = rpc("SubscribeToTask", {"id": task_id})
        async with web.stream("POST", "/", json=following) as response:
            await SSEReader(response).take(1)
            assert (runs.open_streams, job.last_run().followers) == (1, 1)
        await asyncio.wait_for(server.ended.wait(), WAIT)  # (the response has returned)
        assert (runs.open_streams, job.last_run().followers) == (0, 0)
        assert not job.done  # (an A2A task outlives its connections)
        tokens.put_nowait(None)
        await until(lambda: runs.live == 0)


async def test_a_streamed_message_whose_stream_fails_to_start_gives_back_its_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (the slot taken as the message was checked was freed only for answers that were not a
    # task to stream: a stream that raised as it started, in its snapshot, kept it forever)
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = one_stream_app(tokens)
    alice = {"authorization": f"Bearer {ALICE}"}
    runs = app.state.runs
    streamed = rpc("SendStreamingMessage", send_params())

    def failing_snapshot(
        job: Job, snapshot: Callable[[], str], frame: Callable[[str], str] | None = None, **kw: bool
    ) -> object:
        def broken() -> str:
            raise RuntimeError("the snapshot failed")

        return follow_from_now(job, broken, frame, **kw)

    async with served(app) as web:
        monkeypatch.setattr(a2a_server, "follow_from_now", failing_snapshot)
        failed = await call(web, streamed, headers=alice)
        assert failed.status_code == 500
        monkeypatch.undo()
        assert runs.open_streams == 0  # (was: 1, her one stream held by nothing)
        async with web.stream("POST", "/", json=streamed, headers=alice) as response:
            assert response.status_code == 200  # (was: refused, 429)
            await SSEReader(response).take(1)
        tokens.put_nowait(None)
        tokens.put_nowait(None)
        await until(lambda: runs.live == 0)
