"""The apps' door, under a real uvicorn server: who asks, whose runs they are, what browsers may do.

Two principals (``alice`` and ``bob``, by their bearer tokens) and a stranger (no token, or a
wrong one) use both protocols' apps: nobody unknown starts or sees anything; a run, its
events, its resume and its approvals are its principal's alone (the same run id names two
runs); a page of another site cannot start a run; every response carries the security
headers; one principal cannot take every slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from miniagents import InteractionContext, Message, MiniAgent, miniagent
from miniagents.errors import WebConfigurationError
from miniagents.ext.a2a import a2a_app
from miniagents.ext.llm import LLMCall
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.tools import FunctionTool, ToolResultMessage
from miniagents.ext.web import BearerTokenAuth, agui_app, ai_sdk_app, web_chat_app
from tests.ext.web.serving import (
    AGUI,
    PROTOCOLS,
    Protocol,
    SSEReader,
    agui_input,
    chat_request,
    delete_file,
    deleted,
    gated,
    nothing_deleted,  # noqa: F401
    post_events,
    served,
    until,
)

TOKENS = BearerTokenAuth({"alice-token": "alice", "bob-token": "bob"})
ALICE = {"authorization": "Bearer alice-token"}
BOB = {"authorization": "Bearer bob-token"}
FRONT = "http://front.example"


def delete_then_finish(call: LLMCall) -> CallTool | str:
    """Each conversation: a call of ``delete_file`` (it waits for approval), then an answer."""
    answered = any(isinstance(message, ToolResultMessage) for message in call.messages)
    return "Finished." if answered else CallTool("delete_file", {"path": "a.txt"})


def approving() -> MiniAgent[..., Message]:
    """The offline model calls ``delete_file`` (it waits for approval), then answers."""
    return offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=delete_then_finish,
        token_delay=0,
    )


def counted(calls: list[str]) -> MiniAgent[..., Message]:
    @miniagent
    async def counting(ctx: InteractionContext) -> None:
        calls.append("called")
        ctx.reply("ok")

    return counting


def approvals_path(protocol: Protocol, key: str, call_id: str) -> str:
    return f"/runs/{key}/approvals/{call_id}" if protocol is AGUI else f"/{key}/approvals/{call_id}"


def security_headers_of(response: httpx.Response) -> dict[str, str]:
    return {
        name: response.headers.get(name, "")
        for name in ("content-security-policy", "x-content-type-options", "x-frame-options")
    }


API_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


# -- identity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_request_of_nobody_the_app_knows_is_a_401_and_starts_nothing(
    protocol: Protocol,
) -> None:
    calls: list[str] = []
    app = protocol.app(counted(calls), authentication=TOKENS)
    async with served(app) as client:
        nobody = await client.post("/", json=protocol.body("k1"))
        wrong = await client.post(
            "/", json=protocol.body("k1"), headers={"authorization": "Bearer guess"}
        )
        basic = await client.post(
            "/", json=protocol.body("k1"), headers={"authorization": "Basic YTpi"}
        )
        follow = await client.get(protocol.resume_path("k1"))
        decide = await client.post(approvals_path(protocol, "k1", "c1"), json={"approved": True})
        assert app.state.runs.live == 0
    for refused in (nobody, wrong, basic, follow, decide):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["error"]["code"] == "unauthenticated"
        assert security_headers_of(refused) == API_HEADERS
    assert "not one this app knows" in wrong.json()["error"]["message"]
    assert "Authorization: Bearer <token>" in nobody.json()["error"]["message"]
    assert calls == []


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_an_app_that_knows_nobody_says_once_at_its_start_that_runs_are_unowned(
    protocol: Protocol, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="miniagents.ext.web"):
        async with served(protocol.app(offline_agent.fork(token_delay=0))) as client:
            for key in ("k1", "k2"):
                _response, events = await post_events(client, protocol.body(key))
                assert events[-1].type == protocol.last_type
        said = [record.getMessage() for record in caplog.records]
        assert len(said) == 1  # once, for two requests
        assert "without knowing who asks" in said[0]
        assert "authentication=" in said[0]
        caplog.clear()
        async with served(protocol.app(offline_agent)):
            pass  # no request: said at its start
        assert len(caplog.records) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="miniagents.ext.web"):
        async with served(protocol.app(offline_agent, authentication=TOKENS)):
            pass
    assert caplog.records == []


async def test_an_enclosing_apps_authentication_middleware_names_the_principal() -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.routing import Mount

    inner = agui_app(approving(), authentication="request.user", approval_flow="in_stream")
    outer = Starlette(
        routes=[Mount("/agent", inner)],
        middleware=[Middleware(AuthenticationMiddleware, backend=TOKENS)],
    )
    async with served(outer) as client:
        nobody = await client.post("/agent/", json=agui_input("r1"))
        async with client.stream(
            "POST", "/agent/", json=agui_input("r1"), headers=ALICE
        ) as response:
            reader = SSEReader(response)
            asked = await reader.until("CUSTOM")
            call_id = asked[-1].json["value"]["toolCallId"]
            stranger = await client.get("/agent/runs/r1", headers=BOB)
            decided = await client.post(
                f"/agent/runs/r1/approvals/{call_id}", json={"approved": True}, headers=ALICE
            )
            assert decided.status_code == 200
            await reader.rest()
    assert nobody.status_code == 401
    assert stranger.status_code == 404
    assert deleted == ["a.txt"]


async def test_request_user_with_no_middleware_that_sets_it_refuses_all_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    with caplog.at_level(logging.ERROR, logger="miniagents.ext.web"):
        async with served(agui_app(counted(calls), authentication="request.user")) as client:
            for _ in range(2):
                refused = await client.post("/", json=agui_input("r1"), headers=ALICE)
                assert refused.status_code == 401
    [said] = [record.getMessage() for record in caplog.records]  # once
    assert "no AuthenticationMiddleware set request.user" in said
    assert calls == []


# -- ownership -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_run_is_its_principals_alone_and_the_same_id_names_two_runs(
    protocol: Protocol,
) -> None:
    app = protocol.app(approving(), authentication=TOKENS, approval_flow="in_stream")
    async with (
        served(app) as client,
        client.stream("POST", "/", json=protocol.body("k1"), headers=ALICE) as alices,
    ):
        reader = SSEReader(alices)
        asked = await reader.until("CUSTOM" if protocol is AGUI else "tool-approval-request")
        data = asked[-1].json
        call_id = data["value"]["toolCallId"] if protocol is AGUI else data["approvalId"]
        # bob: her run is not there for him, and his decision decides nothing
        seen = await client.get(protocol.resume_path("k1"), headers=BOB)
        assert seen.status_code == protocol.no_run_status
        decided = await client.post(
            approvals_path(protocol, "k1", call_id), json={"approved": True}, headers=BOB
        )
        assert decided.status_code == 404
        assert decided.json()["error"]["code"] == "unknown_run"
        assert app.state.runs.get("k1", "alice").job.asked(call_id).pending
        # his own run of the same id is another run, and leaves hers running
        async with client.stream("POST", "/", json=protocol.body("k1"), headers=BOB) as bobs:
            assert bobs.status_code == 200
            await SSEReader(bobs).until("CUSTOM" if protocol is AGUI else "tool-approval-request")
        assert not app.state.runs.get("k1", "alice").done
        assert app.state.runs.get("k1", "bob") is not app.state.runs.get("k1", "alice")
        # her decision decides her call, and says who decided
        decided = await client.post(
            approvals_path(protocol, "k1", call_id), json={"approved": True}, headers=ALICE
        )
        assert decided.status_code == 200
        request = app.state.runs.get("k1", "alice").job.asked(call_id)
        rest = await reader.rest()
    assert rest[-1].type == protocol.last_type
    assert (await request.adecision()).decided_by == "alice"
    assert deleted == ["a.txt"]


async def test_a_stranger_cannot_resume_an_agui_run_paused_for_its_approval() -> None:
    app = agui_app(approving(), authentication=TOKENS)
    async with served(app) as client:
        _response, first = await post_events(client, agui_input("r1"), headers=ALICE)
        call_id = first[-1].json["outcome"]["interrupts"][0]["id"]
        entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
        stranger = await client.post("/", json=agui_input("r2", resume=[entry]), headers=BOB)
        assert stranger.status_code == 404
        assert stranger.json()["error"]["code"] == "unknown_interrupt"
        assert app.state.runs.paused("t1", "alice") is not None  # still waits for her
        _response, second = await post_events(
            client, agui_input("r2", resume=[entry]), headers=ALICE
        )
    assert second[-1].json == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r2"}
    assert deleted == ["a.txt"]


async def test_a_stranger_cannot_resume_an_ai_sdk_chat_paused_for_its_approval() -> None:
    app = ai_sdk_app(approving(), authentication=TOKENS)
    async with served(app) as client:
        _response, first = await post_events(client, chat_request("c1"), headers=ALICE)
        asked = next(e.json for e in first if e.type == "tool-approval-request")
        call = next(e.json for e in first if e.type == "tool-input-available")
        part = {
            "type": "tool-delete_file",
            "toolCallId": call["toolCallId"],
            "state": "approval-responded",
            "input": call["input"],
            "approval": {"id": asked["approvalId"], "approved": True},
        }
        answer = {"id": first[0].json["messageId"], "role": "assistant", "parts": [part]}
        user = chat_request("c1")["messages"][0]
        resent = chat_request("c1", messages=[user, answer])
        stranger = await client.post("/", json=resent, headers=BOB)
        assert stranger.status_code == 409  # no chat c1 of his waits
        assert app.state.runs.paused("c1", "alice") is not None
        _response, second = await post_events(client, resent, headers=ALICE)
    assert second[-1].type == "[DONE]"
    assert deleted == ["a.txt"]


# -- approvals that can be trusted ---------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_edits_are_422_with_their_errors_or_refused_when_the_app_takes_none(
    protocol: Protocol,
) -> None:
    for edits in (True, False):
        app = protocol.app(approving(), approval_flow="in_stream", approval_edits=edits)
        async with (
            served(app) as client,
            client.stream("POST", "/", json=protocol.body("k1")) as response,
        ):
            reader = SSEReader(response)
            asked = await reader.until("CUSTOM" if protocol is AGUI else "tool-approval-request")
            data = asked[-1].json
            call_id = data["value"]["toolCallId"] if protocol is AGUI else data["approvalId"]
            if protocol is AGUI:  # the interrupt's schema offers arguments only if edits count
                offered = data["value"]["responseSchema"]["properties"]
                assert ("arguments" in offered) is edits
            url = approvals_path(protocol, "k1", call_id)
            bad = await client.post(url, json={"approved": True, "arguments": {"path": 42}})
            good = await client.post(url, json={"approved": True, "arguments": {"path": "b"}})
            if edits:
                assert bad.status_code == 422
                error = bad.json()["error"]
                assert error["code"] == "invalid_arguments"
                assert len(error["errors"]) == 1
                assert "'path'" in error["errors"][0]
                assert good.status_code == 200
            else:
                for refused in (bad, good):
                    assert refused.json()["error"]["code"] == "edits_not_allowed"
                approved = await client.post(url, json={"approved": True})
                assert approved.status_code == 200  # the call waited: nothing was decided
            await reader.rest()
    assert deleted == ["b", "a.txt"]


# -- browser safety ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_cross_site_or_non_json_post_starts_nothing(protocol: Protocol) -> None:
    calls: list[str] = []
    app = protocol.app(counted(calls))
    body = b'{"id": "k1", "threadId": "t", "runId": "k1", "messages": []}'
    async with served(app) as client:
        own = client.base_url.netloc.decode()
        cases = {
            "cross-site text/plain": (
                {"origin": "http://evil.example", "content-type": "text/plain"},
                403,
            ),
            "cross-site json": (
                {"origin": "http://evil.example", "content-type": "application/json"},
                403,
            ),
            "a sandboxed page": ({"origin": "null", "content-type": "application/json"}, 403),
            "same-site text/plain": (
                {"origin": f"http://{own}", "content-type": "text/plain"},
                415,
            ),
            "a form": ({"content-type": "application/x-www-form-urlencoded"}, 415),
            "no type": ({}, 415),
        }
        for name, (headers, status) in cases.items():
            refused = await client.post("/", content=body, headers=headers)
            assert refused.status_code == status, name
            code = refused.json()["error"]["code"]
            assert code == ("origin_not_allowed" if status == 403 else "unsupported_media_type")
            assert security_headers_of(refused) == API_HEADERS
        mine = await client.post(
            "/",
            content=body,
            headers={"origin": f"http://{own}", "content-type": "application/json; charset=utf-8"},
        )
        assert mine.status_code == 200
        await until(lambda: app.state.runs.live == 0)
    assert calls == ["called"]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_an_allowed_front_end_origin_gets_cors_and_its_preflight(protocol: Protocol) -> None:
    app = protocol.app(
        offline_agent.fork(token_delay=0), allowed_origins=[FRONT], authentication=TOKENS
    )
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with served(app) as client:
        allowed = await client.options("/", headers={"origin": FRONT, **preflight})
        other = await client.options("/", headers={"origin": "http://evil.example", **preflight})
        response, events = await post_events(
            client, protocol.body("k1"), headers={"origin": FRONT, **ALICE}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == FRONT
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert security_headers_of(allowed) == API_HEADERS
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONT
    assert events[-1].type == protocol.last_type


@pytest.mark.parametrize("origin", ["*", "front.example", "http://front.example/app", "ftp://x"])
def test_an_allowed_origin_that_is_no_origin_is_refused_when_the_app_is_made(origin: str) -> None:
    with pytest.raises(WebConfigurationError, match="allowed_origins holds"):
        agui_app(offline_agent, allowed_origins=[origin])


_BAD_LIMITS = [
    ("max_live_runs", 0),
    ("max_live_runs", 2.5),
    ("max_live_runs_per_principal", True),
    ("max_ended_runs", -1),
    ("keep_runs_for", -1.0),
    ("keep_runs_for", float("inf")),
    ("grace_period", float("nan")),
    ("max_body_bytes", 0),
    ("max_body_bytes", -1),
    ("max_body_bytes", True),
    ("max_body_bytes", 1e6),
    ("max_body_bytes", "1000"),
]


PAGE = Path(__file__).resolve().parents[3] / "examples" / "web_chat" / "index.html"


def chat_page_app(agent: MiniAgent[..., Message], **limits: Any) -> Starlette:
    """``web_chat_app`` with the example's page (its limits are its agent's app's)."""
    return web_chat_app(agent, page=PAGE, **limits)


@pytest.mark.parametrize(
    "app", [agui_app, ai_sdk_app, a2a_app, chat_page_app], ids=lambda app: app.__name__
)
@pytest.mark.parametrize(("name", "value"), _BAD_LIMITS)
def test_a_limit_the_app_cannot_keep_to_is_refused_when_the_app_is_made(
    app: Callable[..., object], name: str, value: object
) -> None:
    with pytest.raises(WebConfigurationError, match=f"The app's {name} must be") as refused:
        app(offline_agent, **{name: value})
    assert repr(value) in str(refused.value)
    assert refused.value.parameter == name  # (for a command line to name its own option)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_every_response_carries_the_security_headers(protocol: Protocol) -> None:
    async with served(protocol.app(offline_agent.fork(reply="Hi", token_delay=0))) as client:
        response, _events = await post_events(client, protocol.body("k1"))
        resumed = await client.get(protocol.resume_path("k1"), headers={"last-event-id": "0"})
        unknown = await client.get(protocol.resume_path("nope"))
        invalid = await client.post("/", json={"nothing": 1})
        missing = await client.get("/no/such/path/here")
    for answered in (response, resumed, unknown, invalid, missing):
        assert security_headers_of(answered) == API_HEADERS, answered.request.url
        assert answered.headers["referrer-policy"] == "no-referrer"


# -- fair limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_one_principal_cannot_take_every_slot(protocol: Protocol) -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = protocol.app(
        gated(tokens), authentication=TOKENS, max_live_runs_per_principal=2, grace_period=3600
    )
    async with served(app) as client:
        async with (
            client.stream("POST", "/", json=protocol.body("k1"), headers=ALICE) as first,
            client.stream("POST", "/", json=protocol.body("k2"), headers=ALICE) as second,
        ):
            await SSEReader(first).take(1)
            await SSEReader(second).take(1)
            refused = await client.post("/", json=protocol.body("k3"), headers=ALICE)
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            error = refused.json()["error"]
            assert error["code"] == "too_many_runs_of_yours"
            assert "max_live_runs_per_principal=2" in error["message"]
            assert app.state.runs.get("k3", "alice") is None
            for _ in range(3):
                tokens.put_nowait(None)  # the two runs of hers end, and one of his
            _response, bobs = await post_events(client, protocol.body("k3"), headers=BOB)
            assert bobs[-1].type == protocol.last_type
        await until(lambda: app.state.runs.live == 0)
        tokens.put_nowait(None)
        _response, again = await post_events(client, protocol.body("k3"), headers=ALICE)
    assert again[-1].type == protocol.last_type


async def test_the_chat_pages_limits_are_its_agents_apps() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = web_chat_app(
        gated(tokens),
        page=PAGE,
        authentication=TOKENS,
        grace_period=3600,
        keep_runs_for=60,
        max_live_runs=7,
        max_live_runs_per_principal=1,
        max_ended_runs=3,
        max_body_bytes=2_000,
    )
    (api,) = [route.app for route in app.routes if isinstance(route, Mount)]
    assert isinstance(api, Starlette)
    runs = api.state.runs
    assert (runs.grace, runs.keep_for, runs.max_live, runs.max_ended) == (3600, 60, 7, 3)
    async with served(app) as client:
        big = chat_request("big", text="x" * 3_000)
        too_large = await client.post("/api/chat/", json=big, headers=ALICE)
        assert too_large.status_code == 413
        assert "2000 bytes" in too_large.json()["error"]["message"]
        async with client.stream(
            "POST", "/api/chat/", json=chat_request("k1"), headers=ALICE
        ) as first:
            await SSEReader(first).take(1)
            refused = await client.post("/api/chat/", json=chat_request("k2"), headers=ALICE)
            assert refused.status_code == 429
            assert "max_live_runs_per_principal=1" in refused.json()["error"]["message"]
            tokens.put_nowait(None)
        await until(lambda: runs.live == 0)
