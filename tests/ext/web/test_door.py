"""The apps' door, under a real uvicorn server: who asks, whose runs they are, what browsers may do.

Two principals (``alice`` and ``bob``, by their bearer tokens) and a stranger (no token, or a
wrong one) use both protocols' apps: nobody unknown starts or sees anything; a run, its
events, its resume and its approvals are its principal's alone (the same run id names two
runs); a page of another site cannot start a run; every response carries the security
headers; one principal cannot take every slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute
from starlette.types import Message as ASGIMessage
from starlette.websockets import WebSocket

from miniagents import InteractionContext, Message, MiniAgent, MiniAgents, miniagent
from miniagents.errors import A2AConfigurationError, WebConfigurationError
from miniagents.ext.a2a import a2a_app
from miniagents.ext.llm import LLMCall
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.tools import FunctionTool, ToolResultMessage
from miniagents.ext.web import (
    BearerTokenAuth,
    NoAuthentication,
    WebSettings,
    agui_app,
    ai_sdk_app,
    web_chat_app,
)
from miniagents.ext.web.lowlevel import Door
from miniagents.ext.web.serving import server_config
from miniagents.ext.web.settings import LOCAL_HOSTS
from tests.ext.web.serving import (
    AGUI,
    PROTOCOLS,
    Protocol,
    SSEReader,
    aclosed_with,
    agui_input,
    answered_chat,
    bounded,
    chat_request,
    delete_file,
    deleted,
    gated,
    nothing_deleted,  # noqa: F401
    post_events,
    served,
    unmetered,
    until,
)

TOKENS = BearerTokenAuth({"alice-secret-token": "alice", "bob-secret-token": "bob"})
ALICE = {"authorization": "Bearer alice-secret-token"}
BOB = {"authorization": "Bearer bob-secret-token"}
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


async def waiting_call(reader: SSEReader, protocol: Protocol) -> tuple[str, Any]:
    """The id of the call the stream says waits for approval, and that event's data."""
    asked = await reader.until("CUSTOM" if protocol is AGUI else "tool-approval-request")
    data = asked[-1].json
    return data["value"]["toolCallId"] if protocol is AGUI else data["approvalId"], data


def approvals_path(protocol: Protocol, key: str, call_id: str) -> str:
    return f"/runs/{key}/approvals/{call_id}" if protocol is AGUI else f"/{key}/approvals/{call_id}"


def security_headers_of(response: httpx.Response) -> dict[str, str]:
    return {
        name: response.headers.get(name, "")
        for name in ("content-security-policy", "x-content-type-options", "x-frame-options")
    }


PAGE = Path(__file__).resolve().parents[3] / "examples" / "web_chat" / "index.html"


def chat_page_app(agent: MiniAgent[..., Message], **knobs: Any) -> Starlette:
    """``web_chat_app`` with the example's page (its settings are its agent's app's)."""
    return web_chat_app(agent, page=PAGE, **knobs)


API_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


# -- hosts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_host_the_app_does_not_serve_is_a_400_before_anything_runs(
    protocol: Protocol,
) -> None:
    """DNS rebinding: a page of a name that resolves to this machine is not its own origin."""
    calls: list[str] = []
    for authentication in (NoAuthentication(), TOKENS):
        app = protocol.app(counted(calls), authentication=authentication)
        async with served(app) as client:
            port = client.base_url.port
            for name in ("rebind.evil.example", "localhost.evil.example", "127.0.0.2", "[::2]"):
                authority = f"{name}:{port}"
                rebound = {"host": authority, "origin": f"http://{authority}", **ALICE}
                for refused in (
                    await client.post("/", json=protocol.body("k1"), headers=rebound),
                    await client.get(protocol.resume_path("k1"), headers=rebound),
                    await client.post(approvals_path(protocol, "k1", "c1"), headers=rebound),
                    await client.options("/", headers=rebound),
                ):
                    assert refused.status_code == 400, (name, refused.request.method)
                    assert refused.json()["error"]["code"] == "host_not_allowed"
                    assert repr(authority) in refused.json()["error"]["message"]
                    assert security_headers_of(refused) == API_HEADERS
            assert calls == []
            hosts = ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}")
            for number, host in enumerate((*hosts, "LOCALHOST")):
                own = {"host": host, "origin": f"http://{host}"}  # this machine's page
                served_here = await client.post(
                    "/", json=protocol.body(f"ok{number}"), headers={**own, **ALICE}
                )
                assert served_here.status_code == 200, host
            await until(lambda: app.state.runs.live == 0)  # noqa: B023 - awaited in the loop
        assert calls == ["called"] * 5
        calls.clear()


async def test_the_hosts_allowed_are_names_wildcard_subdomains_or_any_when_said() -> None:
    settings = WebSettings(allowed_hosts=["chat.example.com", "*.agents.example"])
    app = agui_app(offline_agent.fork(token_delay=0), authentication=TOKENS, settings=settings)
    anywhere = agui_app(
        offline_agent.fork(token_delay=0),
        authentication=TOKENS,
        settings=WebSettings(allowed_hosts=["*"]),
    )
    answers: dict[str, int] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as client:
        for host in (
            "chat.example.com",
            "chat.example.com:8443",
            "a.agents.example",
            "b.a.agents.example",
            "agents.example",  # (the wildcard is its subdomains only)
            "evilagents.example",
            "chat.example.com.evil.example",
            "localhost",  # (told other names: this machine's are not added)
            "",
            "chat.example.com:x",
            "user@chat.example.com",
        ):
            response = await client.get("http://x/runs/nope", headers={"host": host, **ALICE})
            answers[host] = response.status_code
        own = "http://chat.example.com"
        same_origin = await client.post(
            f"{own}/", json=agui_input("r1"), headers={"origin": own, **ALICE}
        )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=anywhere)) as client:
        answers["any name (*)"] = (
            await client.get("http://any.example/runs/nope", headers=ALICE)
        ).status_code
    assert answers == {
        "chat.example.com": 404,  # served (there is no such run)
        "chat.example.com:8443": 404,
        "a.agents.example": 404,
        "b.a.agents.example": 404,
        "agents.example": 400,
        "evilagents.example": 400,
        "chat.example.com.evil.example": 400,
        "localhost": 400,
        "": 400,
        "chat.example.com:x": 400,
        "user@chat.example.com": 400,
        "any name (*)": 404,
    }
    assert same_origin.status_code == 200  # a page of a host it serves is its own origin


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


@pytest.mark.parametrize(
    ("tokens", "said"),
    [
        ({"": "ada"}, "an empty token"),  # ("Authorization: Bearer " would be ada's)
        ({"  ": "ada"}, "an empty token"),
        ({" tok-1": "ada"}, "spaces around it"),  # (never matched: the given one is stripped)
        ({"tok-1": ""}, "no principal"),
        ({"x": "ada"}, "a token of 1 characters"),  # (any length was taken: guessed at once)
        ({"fifteen-chars-x": "ada"}, "secrets.token_urlsafe(32)"),  # (the fix, said)
    ],
    ids=["empty", "blank", "spaced", "nobody", "short", "under-16"],
)
def test_a_bearer_token_that_would_let_anyone_in_or_nobody_is_refused(
    tokens: dict[str, str], said: str
) -> None:
    with pytest.raises(WebConfigurationError) as refused:
        BearerTokenAuth(tokens)
    assert said in str(refused.value)
    assert refused.value.parameter == "tokens"


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_context_factory_that_makes_no_context_fails_the_run_naming_the_fix(
    protocol: Protocol, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: each run failed with a TypeError about the asynchronous context manager protocol)
    caplog.set_level(logging.ERROR, logger="miniagents.ext.web")
    app = protocol.app(offline_agent, authentication=NoAuthentication(), context=lambda: None)
    async with served(app) as client:
        _response, events = await post_events(client, protocol.body("k1"))
    ending = next(event.json for event in reversed(events) if event.data != "[DONE]")
    told = ending.get("message", ending.get("errorText"))
    assert told.startswith("The agent OFFLINE_AGENT failed with WebConfigurationError. "), told
    logged = [record for record in caplog.records if record.name == "miniagents.ext.web"]
    assert len(logged) == 1  # (the run's failure, under the reference its client was told)
    assert logged[0].exc_info is not None
    error = logged[0].exc_info[1]
    assert isinstance(error, WebConfigurationError)
    assert error.parameter == "context"
    assert str(error) == (
        f"{protocol.app.__name__}'s context= made None, not a MiniAgents context, so the run "
        "could not start. Pass the class, context=MiniAgents, or a function that returns one "
        "with your settings, context=lambda: MiniAgents(...)."
    )


@pytest.mark.parametrize(
    "app", [agui_app, ai_sdk_app, a2a_app, chat_page_app], ids=lambda app: app.__name__
)
def test_an_app_made_without_authentication_is_refused_naming_both_ways_to_make_it(
    app: Callable[..., object],
) -> None:
    for left_out in ({}, {"authentication": None}):
        with pytest.raises(WebConfigurationError) as refused:
            app(offline_agent, **left_out)
        said = str(refused.value)
        assert f"{app.__name__ if app is not chat_page_app else 'web_chat_app'} needs " in said
        assert "authentication=BearerTokenAuth(" in said  # who asks, for others
        assert "authentication=NoAuthentication()" in said  # nobody, for local development
        assert refused.value.parameter == "authentication"


@pytest.mark.parametrize("app", [agui_app, ai_sdk_app, a2a_app], ids=lambda app: app.__name__)
def test_a_context_instance_is_refused_as_the_app_is_made_naming_the_factory(
    app: Callable[..., object],
) -> None:
    # (was: taken, and each run failed calling the instance)
    for wrong in (MiniAgents(), "MiniAgents"):
        with pytest.raises(WebConfigurationError) as refused:
            app(offline_agent, authentication=NoAuthentication(), context=wrong)
        said = str(refused.value)
        assert f"{app.__name__} needs context to be a function that makes" in said
        assert "context=MiniAgents" in said
        assert "context=lambda: MiniAgents(...)" in said
        assert refused.value.parameter == "context"
    for right in (MiniAgents, lambda: MiniAgents()):
        app(offline_agent, authentication=NoAuthentication(), context=right)


@pytest.mark.parametrize(
    "app", [agui_app, ai_sdk_app, a2a_app, chat_page_app], ids=lambda app: app.__name__
)
def test_an_authentication_of_no_kind_the_apps_take_is_refused_as_the_app_is_made(
    app: Callable[..., object],
) -> None:
    # (was: taken as 'request.user', so every request was a 401 and the log named
    # 'request.user', which was never given)
    for wrong in ("none", "NoAuthentication", True, {"token": "ada"}, BearerTokenAuth):
        with pytest.raises(WebConfigurationError) as refused:
            app(offline_agent, authentication=wrong)
        said = str(refused.value)
        assert "needs authentication to be a Starlette AuthenticationBackend (an instance" in said
        assert "authentication=NoAuthentication() for local development" in said
        assert refused.value.parameter == "authentication"
    for right in ("request.user", NoAuthentication(), BearerTokenAuth({"a" * 16: "ada"})):
        app(offline_agent, authentication=right)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_an_app_that_knows_nobody_says_so_once_at_its_start_only_if_it_serves_others(
    protocol: Protocol, caplog: pytest.LogCaptureFixture
) -> None:
    public = WebSettings(allowed_hosts=[*LOCAL_HOSTS, "chat.example.com"])
    with caplog.at_level(logging.WARNING, logger="miniagents.ext.web"):
        app = protocol.app(
            offline_agent.fork(token_delay=0), authentication=NoAuthentication(), settings=public
        )
        async with served(app) as client:
            for key in ("k1", "k2"):
                _response, events = await post_events(client, protocol.body(key))
                assert events[-1].type == protocol.last_type
        said = [record.getMessage() for record in caplog.records]
        assert len(said) == 1  # once, at its start, for two requests
        assert "chat.example.com with NoAuthentication" in said[0]
        assert "authentication=" in said[0]
        caplog.clear()
        async with served(protocol.app(offline_agent, authentication=NoAuthentication())):
            pass  # this machine's names only: nothing to say
        async with served(protocol.app(offline_agent, authentication=TOKENS, settings=public)):
            pass
    assert caplog.records == []


@contextlib.asynccontextmanager
async def behind_a_proxy(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app``, served behind a proxy of this machine that names each client."""
    async with (
        bounded(server_config(app, trusted_proxies=["127.0.0.1"])) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        yield client


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_an_app_that_knows_nobody_serves_no_client_of_another_machine_whatever_its_host(
    protocol: Protocol,
) -> None:
    # a client on the network (192.0.2.7, as the proxy in front names it) that writes this
    # machine's name in its Host header: it would be served as the local user
    from_afar = {"host": "localhost", "x-forwarded-for": "192.0.2.7"}
    calls: list[str] = []
    app = protocol.app(counted(calls), authentication=NoAuthentication())
    async with behind_a_proxy(app) as client:
        refused = await client.post("/", json=protocol.body("k1"), headers=from_afar)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "client_not_local"
        assert "authentication=" in refused.json()["error"]["message"]
        followed = await client.get(protocol.resume_path("k1"), headers=from_afar)
        assert followed.status_code == 403
        assert calls == []
        response, events = await post_events(client, protocol.body("k2"))  # (this machine)
        assert response.status_code == 200
        assert events[-1].type == protocol.last_type
    assert calls == ["called"]
    public = WebSettings(allowed_hosts=[*LOCAL_HOSTS, "chat.example.com"])  # (said at its start)
    for served_to_others in (
        protocol.app(counted(calls), authentication=NoAuthentication(), settings=public),
        protocol.app(counted(calls), authentication=TOKENS),
    ):
        async with behind_a_proxy(served_to_others) as client:
            response, events = await post_events(
                client, protocol.body("k3"), headers={**from_afar, **ALICE}
            )
            assert response.status_code == 200
            assert events[-1].type == protocol.last_type
    assert calls == ["called"] * 3


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
        call_id, _data = await waiting_call(reader, protocol)
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
    assert unmetered(second[-1].json) == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r2"}
    assert deleted == ["a.txt"]


async def test_a_stranger_cannot_resume_an_ai_sdk_chat_paused_for_its_approval() -> None:
    app = ai_sdk_app(approving(), authentication=TOKENS)
    async with served(app) as client:
        _response, first = await post_events(client, chat_request("c1"), headers=ALICE)
        resent = answered_chat(first, {"approved": True}, text="Hi")
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
        app = protocol.app(
            approving(),
            authentication=NoAuthentication(),
            approval_flow="in_stream",
            settings=WebSettings(approval_edits=edits),
        )
        async with (
            served(app) as client,
            client.stream("POST", "/", json=protocol.body("k1")) as response,
        ):
            reader = SSEReader(response)
            call_id, data = await waiting_call(reader, protocol)
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


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_by_default_an_approval_may_not_replace_the_models_arguments(
    protocol: Protocol,
) -> None:
    app = protocol.app(approving(), authentication=TOKENS, approval_flow="in_stream")
    async with (
        served(app) as client,
        client.stream("POST", "/", json=protocol.body("k1"), headers=ALICE) as response,
    ):
        reader = SSEReader(response)
        call_id, data = await waiting_call(reader, protocol)
        if protocol is AGUI:  # the interrupt offers no arguments to send back
            assert "arguments" not in data["value"]["responseSchema"]["properties"]
        url = approvals_path(protocol, "k1", call_id)
        chosen = {"approved": True, "arguments": {"path": "/attacker/chose/this"}}
        refused = await client.post(url, json=chosen, headers=ALICE)
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "edits_not_allowed"
        approved = await client.post(url, json={"approved": True}, headers=ALICE)
        assert approved.status_code == 200  # the call waited: the refusal decided nothing
        await reader.rest()
    assert deleted == ["a.txt"]  # the model's arguments, not the approver's


# -- browser safety ------------------------------------------------------------------------------


@pytest.mark.parametrize("app", [agui_app, ai_sdk_app, a2a_app], ids=lambda app: app.__name__)
async def test_a_method_a_route_does_not_serve_is_a_json_405_with_its_allow_header(
    app: Callable[..., Starlette],
) -> None:
    # (was: Starlette's plain-text "Method Not Allowed", unlike every other refusal)
    served_app = app(offline_agent, authentication=NoAuthentication())
    transport = httpx.ASGITransport(app=served_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for method in ("GET", "PUT", "DELETE"):
            refused = await client.request(method, "/")
            assert refused.status_code == 405, method
            assert refused.headers["content-type"] == "application/json"
            error = refused.json()["error"]
            assert error["code"] == "method_not_allowed"
            assert error["message"] == f"/ does not serve {method}; send POST."
            assert refused.headers["allow"] == "POST"


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_cross_site_or_non_json_post_starts_nothing(protocol: Protocol) -> None:
    calls: list[str] = []
    app = protocol.app(counted(calls), authentication=NoAuthentication())
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
async def test_a_page_of_another_site_cannot_hold_the_users_streams_of_a_run(
    protocol: Protocol,
) -> None:
    # a page of any site may open an EventSource on a run it knows the id of: it reads
    # nothing (no CORS), but each would hold one of the user's streams
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    settings = WebSettings(max_streams_per_principal=2, allowed_origins=[FRONT])
    app = protocol.app(gated(tokens), authentication=NoAuthentication(), settings=settings)
    async with (
        served(app) as client,
        client.stream("POST", "/", json=protocol.body("k1")) as own,
    ):
        reader = SSEReader(own)
        await reader.take(1)
        path = protocol.resume_path("k1")
        for origin in ("http://evil.example", "null", "http://evil.example"):
            async with client.stream("GET", path, headers={"origin": origin}) as foreign:
                assert foreign.status_code == 403
                await foreign.aread()
                assert foreign.json()["error"]["code"] == "origin_not_allowed"
        async with client.stream("GET", path, headers={"origin": FRONT}) as front:
            assert front.status_code == 200  # (the user's second stream: the front end's)
            tokens.put_nowait("done")
            tokens.put_nowait(None)
            followed = await SSEReader(front).rest()
        assert followed[-1].type == protocol.last_type
        assert (await reader.rest())[-1].type == protocol.last_type


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_browsers_request_of_another_site_that_says_no_origin_is_refused(
    protocol: Protocol,
) -> None:
    # an <img>, a <script> or a frame of a page of another site: the browser sends no
    # Origin, but says where the request comes from in Sec-Fetch-Site
    calls: list[str] = []
    settings = WebSettings(allowed_origins=[FRONT])
    app = protocol.app(counted(calls), authentication=NoAuthentication(), settings=settings)
    path = protocol.resume_path("k1")
    image = {"sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"}
    framed = {"sec-fetch-mode": "navigate", "sec-fetch-dest": "iframe"}
    async with served(app) as client:
        for site, kind in (("cross-site", image), ("same-site", image), ("Cross-Site", framed)):
            refused = await client.get(path, headers={"sec-fetch-site": site, **kind})
            assert refused.status_code == 403, site
            error = refused.json()["error"]
            assert error["code"] == "origin_not_allowed"
            assert f"({site.lower()})" in error["message"]
            assert "allowed_origins" in error["message"]
            posted = await client.post(
                "/", json=protocol.body("k1"), headers={"sec-fetch-site": site}
            )
            assert posted.status_code == 403, site
        for headers in (
            {},  # (no browser's)
            {"sec-fetch-site": "same-origin", **image},
            {"sec-fetch-site": "none"},  # (the user's own: typed, a bookmark)
            {"sec-fetch-site": "cross-site", "origin": FRONT},  # (an allowed front end)
            # a link followed in the user's own tab: it shows what it opens
            {
                "sec-fetch-site": "cross-site",
                "sec-fetch-mode": "navigate",
                "sec-fetch-dest": "document",
            },
        ):
            answered = await client.get(path, headers=headers)
            assert answered.status_code == protocol.no_run_status, headers
        assert calls == []
        response, events = await post_events(client, protocol.body("k2"))  # (no browser's)
        assert response.status_code == 200
        assert events[-1].type == protocol.last_type
    assert calls == ["called"]


async def test_a_page_of_another_site_may_link_the_chat_page_but_not_reach_its_agent() -> None:
    app = chat_page_app(offline_agent, authentication=NoAuthentication())
    linked = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    async with served(app) as client:
        page = await client.get("/", headers={**linked, "sec-fetch-dest": "document"})
        assert page.status_code == 200  # (the page is public: a link to it opens it)
        assert "text/html" in page.headers["content-type"]
        framed = {**linked, "sec-fetch-dest": "iframe"}
        refused = await client.get("/api/chat/c1/stream", headers=framed)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "origin_not_allowed"
        own = await client.get("/api/chat/c1/stream", headers={"sec-fetch-site": "same-origin"})
        assert own.status_code == 204


async def opened(
    app: Starlette,
    headers: dict[str, str],
    *,
    denial: bool,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> list[ASGIMessage]:
    """What ``app`` sends to a WebSocket opened with ``headers``; ``denial``: whether its
    server can answer the opening with a response (ASGI's ``websocket.http.response``);
    ``client``: the address the connection comes from."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
        "server": ("127.0.0.1", 8000),
        "client": client,
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if denial else {},
    }
    received: list[ASGIMessage] = [{"type": "websocket.connect"}]
    sent: list[ASGIMessage] = []

    async def receive() -> ASGIMessage:
        return received.pop() if received else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: ASGIMessage) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_websocket_is_held_to_the_hosts_and_origins_before_it_is_accepted() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    settings = WebSettings(allowed_origins=[FRONT])
    door = Door(NoAuthentication(), settings, "a websocket app")
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], middleware=door.middleware())
    own = {"host": "localhost:8000"}
    for headers in (own, {**own, "origin": "http://localhost:8000"}, {**own, "origin": FRONT}):
        sent = await opened(app, headers, denial=True)
        assert sent[0]["type"] == "websocket.accept", headers
    hosts = "This app does not answer to this host: add it to WebSettings's allowed_hosts."
    origins = (
        "A page of this origin may not use this app: add the origin to WebSettings's "
        "allowed_origins."
    )
    for headers, code, reason in (
        ({"host": "rebind.evil.example:8000"}, 4400, hosts),
        ({**own, "origin": "https://evil.example"}, 4403, origins),
        ({**own, "origin": "null"}, 4403, origins),
    ):
        for denial in (True, False):  # (a server that can answer its opening, and one not)
            # opened and closed at once, saying why, which its page reads (was: a 403 to its
            # opening, which a browser hides from its page: a bare 1006)
            assert await opened(app, headers, denial=denial) == [
                {"type": "websocket.accept", "subprotocol": None},
                {"type": "websocket.close", "code": code, "reason": reason},
            ]


async def test_a_websocket_whose_credentials_the_backend_refuses_is_closed_4401_saying_why() -> (
    None
):
    # a real WebSocket client against the real server (server_config's, uvicorn's protocols)
    from websockets.asyncio.client import connect

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(
            websocket.user.identity if websocket.user.is_authenticated else ""
        )
        await websocket.close()

    door = Door(TOKENS, WebSettings(), "a websocket app")
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], middleware=door.middleware())
    async with bounded(server_config(app)) as port:
        url = f"ws://127.0.0.1:{port}/ws"
        async with connect(url, additional_headers=ALICE) as known:
            assert await known.recv() == "alice"
        wrong = {"authorization": "Bearer not-a-token-of-this-app"}
        async with connect(url, additional_headers=wrong) as refused:
            # opened and closed at once, saying why (was: a bare 1000 before it opened)
            await aclosed_with(
                refused,
                4401,
                "This app does not know who opens this WebSocket: send the credentials it "
                "takes (e.g. a bearer token).",
            )


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_an_app_that_knows_nobody_serves_no_client_a_proxy_it_does_not_trust_relays(
    protocol: Protocol,
) -> None:
    # a reverse proxy of this machine, not named in trusted_proxies (the default), that
    # writes Host: localhost (Apache's default): every request comes from 127.0.0.1, and
    # only the proxy's headers say it is a client on the network's
    calls: list[str] = []
    app = protocol.app(counted(calls), authentication=NoAuthentication())
    relayed = [
        {"x-forwarded-for": "192.0.2.7"},
        {"x-forwarded-for": "127.0.0.1, 192.0.2.7"},
        {"x-real-ip": "192.0.2.7"},
        {"forwarded": 'for="[2001:db8::7]:4711";proto=http'},
        {"forwarded": "for=unknown"},
    ]
    async with (
        bounded(server_config(app)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        for number, headers in enumerate(relayed):
            sent = {"host": "localhost", **headers}
            refused = await client.post("/", json=protocol.body(f"k{number}"), headers=sent)
            assert refused.status_code == 403, headers
            assert refused.json()["error"]["code"] == "client_not_local"
            assert "relayed by a proxy" in refused.json()["error"]["message"]
        assert calls == []
        local = {"x-forwarded-for": "127.0.0.1", "forwarded": 'for="[::1]:5000"'}
        response, events = await post_events(client, protocol.body("here"), headers=local)
        assert response.status_code == 200  # (a proxy of this machine, for this machine)
        assert events[-1].type == protocol.last_type
    assert calls == ["called"]


async def test_an_app_that_knows_nobody_opens_no_websocket_of_a_client_of_another_machine() -> None:
    # the client's address set in the ASGI scope (as a server sets it from the connection,
    # or from the header of a trusted proxy): no address of another machine is at hand
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    def made(authentication: Any, settings: WebSettings) -> Starlette:
        door = Door(authentication, settings, "a websocket app")
        return Starlette(routes=[WebSocketRoute("/ws", endpoint)], middleware=door.middleware())

    local = made(NoAuthentication(), WebSettings())
    own = {"host": "localhost:8000", "origin": "http://localhost:8000"}
    for address in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        sent = await opened(local, own, denial=True, client=(address, 50000))
        assert sent[0]["type"] == "websocket.accept", address
    afar = ("192.0.2.7", 50000)
    for denial in (True, False):  # (a server that can answer its opening, and one not)
        assert await opened(local, own, denial=denial, client=afar) == [
            {"type": "websocket.accept", "subprotocol": None},
            {
                "type": "websocket.close",
                "code": 4403,
                "reason": "This app knows nobody (NoAuthentication), so it serves this "
                "machine only: give it authentication=.",
            },
        ]
    public = WebSettings(allowed_hosts=[*LOCAL_HOSTS, "chat.example.com"])
    for served_to_others in (made(NoAuthentication(), public), made(TOKENS, WebSettings())):
        sent = await opened(served_to_others, own, denial=True, client=afar)
        assert sent[0]["type"] == "websocket.accept"


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_an_allowed_front_end_origin_gets_cors_and_its_preflight(protocol: Protocol) -> None:
    app = protocol.app(
        offline_agent.fork(token_delay=0),
        authentication=TOKENS,
        settings=WebSettings(allowed_origins=[FRONT]),
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
        agui_app(
            offline_agent,
            authentication=NoAuthentication(),
            settings=WebSettings(allowed_origins=[origin]),
        )


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_every_response_carries_the_security_headers(protocol: Protocol) -> None:
    async with served(
        protocol.app(
            offline_agent.fork(reply="Hi", token_delay=0), authentication=NoAuthentication()
        )
    ) as client:
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
        gated(tokens),
        authentication=TOKENS,
        settings=WebSettings(max_live_runs_per_principal=2, grace_period=3600),
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


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_without_authentication_every_request_counts_as_the_one_local_users(
    protocol: Protocol,
) -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    bound = WebSettings().max_live_runs_per_principal
    app = protocol.app(
        gated(tokens), authentication=NoAuthentication(), settings=WebSettings(grace_period=3600)
    )
    async with served(app) as client, contextlib.AsyncExitStack() as streams:
        for number in range(bound):
            started = await streams.enter_async_context(
                client.stream("POST", "/", json=protocol.body(f"k{number}"))
            )
            await SSEReader(started).take(1)
        refused = [await client.post("/", json=protocol.body(f"k{n}")) for n in (10, 11)]
        for one in refused:
            assert one.status_code == 429
            assert one.json()["error"]["code"] == "too_many_runs_of_yours"
            assert f"max_live_runs_per_principal={bound}" in one.json()["error"]["message"]
        assert app.state.runs.live == bound
        for _ in range(bound):
            tokens.put_nowait(None)
    await until(lambda: app.state.runs.live == 0)


def _stream(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], **body: Any
) -> Any:
    """A request whose response is read as a stream (``client.send(..., stream=True)``)."""
    return client.send(client.build_request(method, path, headers=headers, **body), stream=True)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_one_principals_open_streams_are_bounded_and_a_closed_one_frees_its_slot(
    protocol: Protocol,
) -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    bound = WebSettings().max_streams_per_principal
    settings = WebSettings(grace_period=3600)
    app = protocol.app(gated(tokens), authentication=TOKENS, settings=settings)
    runs = app.state.runs
    before = asyncio.all_tasks()
    async with served(app) as client:
        path = protocol.resume_path("k1")
        opened = [await _stream(client, "POST", "/", ALICE, json=protocol.body("k1"))]
        first = SSEReader(opened[0])  # (kept: a reader let go of closes its stream)
        await first.take(1)
        for _ in range(bound - 1):  # her followers of her run, each a stream of its own
            opened.append(await _stream(client, "GET", path, ALICE))
            assert opened[-1].status_code == 200
        assert runs.open_streams == bound
        refused: list[httpx.Response] = []
        for _ in range(20):  # 1,000 more, 50 at once
            batch = [client.get(path, headers=ALICE) for _ in range(50)]
            refused += await asyncio.gather(*batch)
        assert {response.status_code for response in refused} == {429}
        assert {response.headers["retry-after"] for response in refused} == {"1"}
        error = refused[0].json()["error"]
        assert error["code"] == "too_many_streams_of_yours"
        assert f"max_streams_per_principal={bound}" in error["message"]
        new_run = await client.post("/", json=protocol.body("k2"), headers=ALICE)
        assert new_run.status_code == 429  # a run she could not follow starts nothing
        assert runs.get("k2", "alice") is None
        # to another principal her run is not there, as ever (not "too many")
        assert (await client.get(path, headers=BOB)).status_code == protocol.no_run_status
        bobs = await _stream(client, "POST", "/", BOB, json=protocol.body("k1"))
        assert bobs.status_code == 200  # her bound is hers
        bobs_reader = SSEReader(bobs)
        await bobs_reader.take(1)
        assert runs.open_streams == bound + 1
        await opened.pop().aclose()  # one of hers closes: its slot is free again
        await until(lambda: runs.open_streams == bound)
        again = await _stream(client, "GET", path, ALICE)
        assert again.status_code == 200
        for stream in [*opened, again, bobs]:
            await stream.aclose()
        await until(lambda: runs.open_streams == 0)
        for _ in range(2):
            tokens.put_nowait(None)
        await until(lambda: runs.live == 0)
    await until(lambda: not _started_since(before))  # no task of the app's is left


def _started_since(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """The tasks started since ``before`` that still run (but the caller's, and sse-starlette's
    watcher of the server's shutdown, which it starts once per event loop)."""
    ours = {asyncio.current_task()}
    return {
        task
        for task in asyncio.all_tasks() - before - ours
        if getattr(task.get_coro(), "__qualname__", "")
        not in ("_shutdown_watcher", "until.<locals>.poll")
    }


async def test_a_resume_whose_stream_would_pass_the_bound_decides_nothing() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    held, deleting = gated(tokens), approving()

    @miniagent
    async def holding_or_deleting(ctx: InteractionContext) -> None:
        asked = await ctx.message_promises
        chosen = held if "hold" in str(asked[-1]) else deleting
        ctx.reply(chosen.inquire(asked))

    settings = WebSettings(max_streams_per_principal=1, grace_period=3600)
    app = agui_app(holding_or_deleting, authentication=TOKENS, settings=settings)
    runs = app.state.runs
    async with served(app) as client:
        _response, first = await post_events(client, agui_input("r1"), headers=ALICE)
        call_id = first[-1].json["outcome"]["interrupts"][0]["id"]  # paused: its stream ended
        await until(lambda: runs.open_streams == 0)  # (its slot freed as its stream closes)
        holding = await _stream(
            client, "POST", "/", ALICE, json=agui_input("h1", thread="t2", text="hold")
        )
        reader = SSEReader(holding)  # (kept: a reader let go of closes its stream)
        await reader.take(1)
        entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
        refused = await client.post("/", json=agui_input("r2", resume=[entry]), headers=ALICE)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_streams_of_yours"
        assert runs.paused("t1", "alice").asked(call_id).pending  # nothing was decided
        await holding.aclose()
        await until(lambda: runs.open_streams == 0)
        _response, second = await post_events(
            client, agui_input("r2", resume=[entry]), headers=ALICE
        )
        assert unmetered(second[-1].json) == {
            "type": "RUN_FINISHED",
            "threadId": "t1",
            "runId": "r2",
        }
        tokens.put_nowait(None)
        await until(lambda: runs.live == 0)
    assert deleted == ["a.txt"]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_the_apps_open_streams_are_bounded_whoever_holds_them(protocol: Protocol) -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    settings = WebSettings(grace_period=3600, max_streams=2)
    app = protocol.app(gated(tokens), authentication=TOKENS, settings=settings)
    async with served(app) as client:
        alices = await _stream(client, "POST", "/", ALICE, json=protocol.body("k1"))
        bobs = await _stream(client, "POST", "/", BOB, json=protocol.body("k1"))
        readers = [SSEReader(stream) for stream in (alices, bobs)]  # (kept: see above)
        for reader in readers:
            await reader.take(1)
        refused = await client.get(protocol.resume_path("k1"), headers=BOB)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "too_many_streams"
        assert "max_streams=2" in refused.json()["error"]["message"]
        assert refused.headers["retry-after"] == "1"
        await bobs.aclose()
        await until(lambda: app.state.runs.open_streams == 1)
        follower = await _stream(client, "GET", protocol.resume_path("k1"), ALICE)
        assert follower.status_code == 200
        for stream in (alices, follower):
            await stream.aclose()
        tokens.put_nowait(None)
        tokens.put_nowait(None)
        await until(lambda: app.state.runs.live == 0)


async def test_the_chat_pages_limits_are_its_agents_apps() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    settings = WebSettings(grace_period=3600, max_live_runs_per_principal=1, max_body_bytes=2_000)
    app = web_chat_app(gated(tokens), page=PAGE, authentication=TOKENS, settings=settings)
    (api,) = [route.app for route in app.routes if isinstance(route, Mount)]
    assert isinstance(api, Starlette)
    runs = api.state.runs
    assert runs.settings is settings  # read by the names it was given, none renamed
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


async def test_the_chat_pages_runs_are_cancelled_when_it_stops() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    settings = WebSettings(grace_period=3600)  # (its run goes on once its client left)
    app = web_chat_app(gated(tokens), page=PAGE, authentication=TOKENS, settings=settings)
    (api,) = [route.app for route in app.routes if isinstance(route, Mount)]
    assert isinstance(api, Starlette)
    runs = api.state.runs
    async with served(app) as client:
        started = await _stream(client, "POST", "/api/chat/", ALICE, json=chat_request("k1"))
        await SSEReader(started).take(1)
        job = runs.job("k1", "alice")
        await started.aclose()
        assert job is not None
        assert not job.done
    assert job.done  # (cancelled as the app stopped: no task of it left running)
    assert runs.live == 0


@pytest.mark.parametrize(
    "app", [agui_app, ai_sdk_app, a2a_app, chat_page_app], ids=lambda app: app.__name__
)
def test_a_plain_function_given_as_the_agent_is_refused_as_the_app_is_made(
    app: Callable[..., object],
) -> None:
    # (was: taken, and every request failed with an AttributeError on it)
    async def plain(ctx: InteractionContext) -> None:
        ctx.reply("hi")

    with pytest.raises(WebConfigurationError) as refused:
        app(plain, authentication=NoAuthentication())
    said = str(refused.value)
    name = app.__name__ if app is not chat_page_app else "web_chat_app"
    assert f"{name} needs agent to be an agent (a MiniAgent); got <function " in said
    assert "Decorate the function with @miniagent" in said
    assert refused.value.parameter == "agent"
    with pytest.raises(WebConfigurationError, match="Pass an agent: a function decorated"):
        app(None, authentication=NoAuthentication())
    app(miniagent(plain), authentication=NoAuthentication())


@pytest.mark.parametrize("app", [agui_app, ai_sdk_app], ids=lambda app: app.__name__)
def test_an_approval_flow_of_no_kind_the_apps_take_is_refused_naming_both(
    app: Callable[..., object],
) -> None:
    # (was: taken, and run as "protocol")
    for wrong in ("instream", "in-stream", "PROTOCOL", None, True):
        with pytest.raises(WebConfigurationError) as refused:
            app(offline_agent, authentication=NoAuthentication(), approval_flow=wrong)
        said = str(refused.value)
        assert f"{app.__name__} needs approval_flow to be 'protocol' or 'in_stream'; got" in said
        assert 'Pass approval_flow="protocol"' in said
        assert refused.value.parameter == "approval_flow"
    for right in ("protocol", "in_stream"):
        app(offline_agent, authentication=NoAuthentication(), approval_flow=right)


def test_an_a2a_answer_as_of_no_kind_it_takes_is_refused_naming_both() -> None:
    # (was: taken, and answered as "task")
    wrongs: list[Any] = ["messages", "Task", None]
    for wrong in wrongs:
        with pytest.raises(A2AConfigurationError) as refused:
            a2a_app(offline_agent, authentication=NoAuthentication(), answer_as=wrong)
        assert "a2a_app needs answer_as to be 'task', 'message' or a function" in str(refused.value)
        assert 'Pass answer_as="task" (the default) or answer_as="message".' in str(refused.value)
    for right in ("task", "message", lambda _request: "message"):
        a2a_app(offline_agent, authentication=NoAuthentication(), answer_as=right)


@pytest.mark.parametrize(
    "tokens", ["a-secret-token-of-many-chars", ["a" * 16], {5: "ada"}, {"a" * 16: 5}, None]
)
def test_bearer_tokens_that_are_no_mapping_of_str_to_str_are_refused_without_showing_them(
    tokens: object,
) -> None:
    # (was: an AttributeError, e.g. 'str' object has no attribute 'items')
    with pytest.raises(WebConfigurationError) as refused:
        BearerTokenAuth(tokens)  # type: ignore[arg-type]
    said = str(refused.value)
    assert "BearerTokenAuth needs tokens to be a mapping of each token (a str)" in said
    assert "Pass e.g. BearerTokenAuth({token: 'ada'})" in said
    assert "a-secret-token" not in said  # (a token is no log's)
    assert "a" * 16 not in said
    assert refused.value.parameter == "tokens"


def test_agui_inputs_that_name_no_field_of_the_run_input_are_refused_naming_them() -> None:
    # (was: taken, and every run input failed with a KeyError: "forwardedProps", and each
    # letter of inputs="state")
    wrongs: list[Any] = [["forwardedProps"], "state", ["state", "messages"], 5]
    for wrong in wrongs:
        with pytest.raises(WebConfigurationError) as refused:
            agui_app(offline_agent, authentication=NoAuthentication(), inputs=wrong)
        said = str(refused.value)
        assert "agui_app needs inputs to be a collection of the names 'state', 'tools'" in said
        assert 'Pass e.g. inputs=["state"]' in said
        assert refused.value.parameter == "inputs"
    agui_app(offline_agent, authentication=NoAuthentication(), inputs={"state", "forwarded_props"})
