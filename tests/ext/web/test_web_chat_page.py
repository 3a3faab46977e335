"""The example's chat page (examples/web_chat/index.html, served by ``web_chat_app``) in Chromium.

A person's session: send a message, see the sub-agent's tokens inside the answer before the
answer ends, reload mid-answer and see it resume, approve a call (the AI SDK's own flow: the
stream ends where the run waits, the page sends the chat again with the approval, and the
run goes on in the same assistant message), see the answer end. The
agent is gated by the test (its poet writes the tokens the test gives it), so every step
is ordered by what the page shows, not by time. A screenshot is saved as an artifact.
Chromium is Debian's ``chromium`` (``.ci/run`` installs it); without it the test fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.async_api import Page
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from miniagents import InteractionContext, MessagePromise, miniagent
from miniagents.errors import WebChatPageError
from miniagents.ext.llm.offline import CallTool, OfflineAgent, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings, web_chat_app
from tests.ext.web.browser import chromium_page, wait_for
from tests.ext.web.serving import (
    chat_request,
    delete_file,
    deleted,
    event_types,
    nothing_deleted,  # noqa: F401
    post_events,
    queued_poet,
    served,
)

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / ".artifacts"
PAGE = ROOT / "examples" / "web_chat" / "index.html"


def page_app(poem: asyncio.Queue[str | None]) -> Starlette:
    calls = [CallTool("POET", {"subject": "rivers"}), CallTool("delete_file", {"path": "notes.md"})]
    agent = offline_agent.fork(
        tools=[queued_poet(poem), FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(calls, "All done."),
        token_delay=0,
    )

    return web_chat_app(
        agent, authentication=NoAuthentication(), page=PAGE, settings=WebSettings(grace_period=3600)
    )


OUTPUTS = "[...document.querySelectorAll('.tool .output')].map(e => e.textContent)"
STATE = "document.body.dataset.state"


async def test_the_page_streams_nested_output_resumes_after_a_reload_and_asks_approval() -> None:
    poem: asyncio.Queue[str | None] = asyncio.Queue()
    async with (
        served(page_app(poem)) as client,
        chromium_page() as browser,
    ):
        await browser.goto(f"{client.base_url}/?ask=A%20poem%20and%20a%20cleanup")
        await wait_for(browser, "document.querySelector('.approval .approve') !== null")
        poem.put_nowait("The rivers ")
        outputs = await wait_for(browser, OUTPUTS, lambda v: bool(v) and v[0] == "The rivers ")
        assert await browser.evaluate(STATE) == "streaming"  # tokens before the answer ends
        assert outputs[1] == ""  # the call that waits for approval has not run
        assert deleted == []

        await browser.reload()  # mid-answer: the page follows the run again
        await wait_for(browser, OUTPUTS, lambda v: bool(v) and v[0] == "The rivers ")
        await wait_for(browser, "document.querySelector('.approval .approve') !== null")
        assert await browser.evaluate(STATE) == "streaming"
        users = "[...document.querySelectorAll('.user')].map(e => e.textContent)"
        assert await browser.evaluate(users) == ["A poem and a cleanup"]

        await browser.evaluate("document.querySelector('.approval .approve').click()")
        poem.put_nowait("run on.")
        poem.put_nowait(None)
        await wait_for(browser, STATE, lambda v: v == "idle")
        outputs = await browser.evaluate(OUTPUTS)
        assert outputs == ["The rivers run on.", "Deleted notes.md"]
        answer = "[...document.querySelectorAll('.assistant > .text')].map(e => e.textContent)"
        assert await browser.evaluate(answer) == ["All done."]
        saved = "JSON.parse(localStorage.getItem('conversation'))"
        assert await browser.evaluate(f"{saved}.length") == 2  # one answer, resumed in place
        part = await browser.evaluate(
            f"{saved}[1].parts.find(p => p.type === 'tool-delete_file')"
        )  # answered the AI SDK's way: the approval in the part, sent with the chat
        assert part["state"] == "output-available"
        assert part["approval"]["approved"] is True
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "web_chat.png"
        await browser.screenshot(path=str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert deleted == ["notes.md"]


async def test_a_reload_after_the_answer_ended_unseen_shows_all_of_it() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()

    async def from_queue() -> AsyncIterator[str]:
        while (token := await tokens.get()) is not None:
            yield token

    @miniagent
    async def teller(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(from_queue()))

    app = web_chat_app(
        teller,
        authentication=NoAuthentication(),
        page=PAGE,
        settings=WebSettings(grace_period=3600),
    )
    text = "[...document.querySelectorAll('.assistant > .text')].map(e => e.textContent)"
    async with (
        served(app) as client,
        chromium_page() as browser,
    ):
        await browser.goto(f"{client.base_url}/?ask=Tell%20me")
        tokens.put_nowait("Once ")
        await wait_for(browser, text, lambda v: v == ["Once "])
        chat_id = await browser.evaluate("localStorage.getItem('chatId')")
        await browser.goto("about:blank")  # the page goes away mid-answer
        await wait_for(browser, "location.href", lambda v: v == "about:blank")
        tokens.put_nowait("upon a time.")
        tokens.put_nowait(None)
        async with client.stream("GET", f"/api/chat/{chat_id}/stream") as run:
            if run.status_code == 200:  # still streaming: read it to the run's end
                async for _ in run.aiter_lines():
                    pass
        ended = await client.get(f"/api/chat/{chat_id}/stream")
        assert ended.status_code == 204  # the run has ended: no active stream now

        await browser.goto(f"{client.base_url}/")  # the page again: it resumes
        await wait_for(browser, STATE, lambda v: v == "idle")
        assert await browser.evaluate(text) == ["Once upon a time."]
        saved = "JSON.parse(localStorage.getItem('conversation'))"
        assert await browser.evaluate(f"{saved}[1].parts[0].text") == "Once upon a time."


def cleaner(reply: str) -> OfflineAgent[...]:
    """An offline agent that calls ``delete_file`` (it waits for approval), then says ``reply``."""
    return offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(CallTool("delete_file", {"path": "notes.md"}), reply),
        token_delay=0,
    )


async def asked_to_clean_up(browser: Page, base_url: str) -> None:
    """The page opened at ``base_url`` asking to clean up, until the call waits for approval."""
    await browser.goto(f"{base_url}/?ask=Clean%20up")
    await wait_for(browser, "document.querySelector('.approval .approve') !== null")
    await wait_for(browser, STATE, lambda v: v == "idle")  # the stream ended: it waits


async def test_a_call_denied_after_the_stream_paused_sends_the_chat_again_and_ends_it() -> None:
    agent = cleaner("Kept.")
    async with (
        served(web_chat_app(agent, authentication=NoAuthentication(), page=PAGE)) as client,
        chromium_page() as browser,
    ):
        await asked_to_clean_up(browser, str(client.base_url))
        await browser.evaluate("document.querySelector('.approval .deny').click()")
        await wait_for(
            browser,
            "[...document.querySelectorAll('.assistant > .text')].map(e => e.textContent)",
            lambda v: v == ["Kept."],
        )
        await wait_for(browser, STATE, lambda v: v == "idle")
        denied = "document.querySelector('.tool.error .output').textContent"
        assert await browser.evaluate(denied) == (
            "The user denied the call of the tool delete_file; it did not run. Their reason: "
            "Denied on the page."
        )
        assert await browser.evaluate("document.querySelectorAll('.approval').length") == 0
    assert deleted == []


async def test_a_reload_while_a_call_waits_for_approval_asks_nothing_again() -> None:
    agent = cleaner("Done.")
    users = "[...document.querySelectorAll('.user')].map(e => e.textContent)"
    async with (
        served(web_chat_app(agent, authentication=NoAuthentication(), page=PAGE)) as client,
        chromium_page() as browser,
    ):
        await asked_to_clean_up(browser, str(client.base_url))
        assert await browser.evaluate("location.search") == ""  # (was: ?ask=Clean%20up)
        await browser.reload()
        await wait_for(browser, "document.querySelector('.approval .approve') !== null")
        await wait_for(browser, STATE, lambda v: v == "idle")
        assert await browser.evaluate(users) == ["Clean up"]  # (was: asked again, twice)
        await browser.evaluate("document.querySelector('.approval .approve').click()")
        text = "[...document.querySelectorAll('.assistant > .text')].map(e => e.textContent)"
        await wait_for(browser, text, lambda v: v == ["Done."])
    assert deleted == ["notes.md"]


async def test_an_approval_the_app_refuses_is_shown_and_not_sent_again() -> None:
    agent = cleaner("Done.")
    app = web_chat_app(agent, authentication=NoAuthentication(), page=PAGE)
    refusing: list[bool] = []  # (set: the run is gone, as after a restart or keep_runs_for)
    posts: list[str] = []  # the chats sent once the run is gone

    async def gone(scope: Scope, receive: Receive, send: Send) -> None:
        if refusing and scope["type"] == "http" and scope["method"] == "POST":
            posts.append(scope["path"])
            error = {"code": "not_pending", "message": "No run of the chat waits for them."}
            await JSONResponse({"error": error}, status_code=409)(scope, receive, send)
            return
        await app(scope, receive, send)

    async with served(gone) as client, chromium_page() as browser:
        await asked_to_clean_up(browser, str(client.base_url))
        refusing.append(True)
        await browser.evaluate("document.querySelector('.approval .approve').click()")
        await wait_for(browser, STATE, lambda v: v == "idle")  # (was: streaming, for ever)
        said = "[...document.querySelectorAll('.assistant .error')].map(e => e.textContent)"
        assert await browser.evaluate(said) == ["Error: No run of the chat waits for them."]
    assert posts == ["/api/chat/"]  # (was: sent again and again, hundreds a minute)
    assert deleted == []


async def test_the_pages_requests_are_the_routes_the_app_serves_with_no_redirect() -> None:
    app = web_chat_app(cleaner("Done."), authentication=NoAuthentication(), page=PAGE)
    answered: list[tuple[str, str, int]] = []  # each request's method, path and status

    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await app(scope, receive, send_recorded if scope["type"] == "http" else send)

    async with served(recorded) as client, chromium_page() as browser:
        await asked_to_clean_up(browser, str(client.base_url))
        await browser.evaluate("document.querySelector('.approval .approve').click()")
        text = "[...document.querySelectorAll('.assistant > .text')].map(e => e.textContent)"
        await wait_for(browser, text, lambda v: v == ["Done."])
    posted = [(path, status) for method, path, status in answered if method == "POST"]
    assert posted == [("/api/chat/", 200), ("/api/chat/", 200)]  # (asked, then approved)
    assert [one for one in answered if 300 <= one[2] < 400] == []  # (no 307 to /api/chat/)
    assert deleted == ["notes.md"]


async def test_a_method_the_page_does_not_serve_is_the_apps_json_405_with_its_allow_header() -> (
    None
):
    # (was: Starlette's plain-text "Method Not Allowed", unlike the agent's app under it)
    app = web_chat_app(offline_agent, authentication=NoAuthentication(), page=PAGE)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        refused = await client.post("/", json={})
    assert refused.status_code == 405
    assert refused.headers["content-type"] == "application/json"
    allowed = refused.headers["allow"]  # (in a set's order: Starlette's)
    assert set(allowed.split(", ")) == {"GET", "HEAD"}
    error = refused.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["message"] == f"/ does not serve POST; send {allowed}."


def test_a_page_that_is_not_a_file_is_refused_when_the_app_is_made(tmp_path: Path) -> None:
    with pytest.raises(WebChatPageError, match=r"'.*nope\.html' is not a file; give the path"):
        web_chat_app(offline_agent, authentication=NoAuthentication(), page=tmp_path / "nope.html")
    with pytest.raises(FileNotFoundError):  # as the builtin it stands for
        web_chat_app(offline_agent, authentication=NoAuthentication(), page=tmp_path)


async def test_the_page_opened_with_a_token_sends_it_and_runs_under_its_policy() -> None:
    agent = offline_agent.fork(reply="Hello there.", token_delay=0)
    app = web_chat_app(
        agent, page=PAGE, authentication=BearerTokenAuth({"tok-123-456-789-0": "ada"})
    )
    text = "[...document.querySelectorAll('.assistant > .text')].map(e => e.textContent)"
    async with (
        served(app) as client,
        chromium_page() as browser,
    ):
        page = await client.get("/")
        assert "script-src 'sha256-" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        await browser.goto(
            f"{client.base_url}/?ask=Hi#token=tok-123-456-789-0"
        )  # as miniagents web says
        await wait_for(browser, STATE, lambda v: v == "idle")  # its script ran: the policy lets it
        assert await browser.evaluate(text) == ["Hello there."]  # answered: the token was sent
        assert await browser.evaluate("location.hash") == ""  # it left the address bar
        chat_id = await browser.evaluate("localStorage.getItem('chatId')")
        stranger = await client.get(f"/api/chat/{chat_id}/stream")
    assert stranger.status_code == 401


async def test_a_chat_posted_to_api_chat_without_a_slash_is_answered_not_redirected() -> None:
    """``POST /api/chat``, where the AI SDK's ``useChat`` sends a chat by default, is the
    agent's app's root, as ``/api/chat/`` is (it was a 307 to ``/api/chat/``: a request
    more for every message); the app's other paths stay under ``/api/chat/``."""
    agent = offline_agent.fork(reply="Hello there.", token_delay=0)
    app = web_chat_app(agent, authentication=NoAuthentication(), page=PAGE)
    async with served(app) as client:
        bare, events = await post_events(client, chat_request("c1"), "/api/chat")
        slashed, again = await post_events(client, chat_request("c2"), "/api/chat/")
        ended = await client.get("/api/chat/c1/stream")
        page = await client.get("/")
    assert (bare.status_code, slashed.status_code) == (200, 200)
    assert bare.headers["content-type"].startswith("text/event-stream")
    assert event_types(events)[-2:] == ["finish", "[DONE]"]
    assert event_types(events) == event_types(again)
    assert "".join(e.json["delta"] for e in events if e.type == "text-delta") == "Hello there."
    assert ended.status_code == 204  # (its resume: the chat's stream has ended)
    assert page.status_code == 200
