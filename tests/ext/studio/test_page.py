"""The studio's page in Chromium (Playwright, Debian's chromium).

The tree of a recorded run, a live run's tokens before it ends, a fork at a second-level
reply (0 requests for the calls before it), and the page used from the keyboard alone.

Each step waits for what the page shows (Playwright's ``expect``, which looks again until it
holds), and a live run is held by the fake server (``pause_after``) until the page has shown
its first tokens: nothing is ordered by time. With ``MINIAGENTS_STUDIO_SCREENSHOTS=1`` the
tests save the screenshots of docs/studio.md into docs/images/ (the committed ones were made
so); otherwise they write none.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.async_api import Locator, Page, expect
from starlette.applications import Starlette
from starlette.routing import Mount

from miniagents import MiniAgents
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.studio import Recorder, RunStore
from miniagents.ext.studio.app import studio_app
from miniagents.ext.studio.fork import FORK_VARIABLE
from miniagents.ext.studio.store import STORE_VARIABLE
from miniagents.testing import FakeLLMServer
from tests.ext.studio import program
from tests.ext.web.browser import chromium_page
from tests.ext.web.serving import served
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401

TOKEN = "studio-test-token"
DOCS_IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"
SCREENSHOTS = os.environ.get("MINIAGENTS_STUDIO_SCREENSHOTS") == "1"

AGENTS = '#tree [role="treeitem"][data-kind="agent"]'
TOOLS = '#tree [role="treeitem"][data-kind="tool"]'


@pytest.fixture
async def studio(
    store: RunStore, openai_env: FakeLLMServer
) -> AsyncIterator[tuple[httpx.AsyncClient, Page]]:
    environment = {"OPENAI_BASE_URL": openai_env.openai_base_url, "OPENAI_API_KEY": "test"}
    app = studio_app(store, token=TOKEN, environment=environment)
    async with served(app) as client, chromium_page(1400, 900) as page:
        yield client, page


async def _screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(DOCS_IMAGES / name))


def _record_as_a_program(server: FakeLLMServer, store: RunStore) -> str:
    """Run the program under ``miniagents run`` (so that it can be forked); its run's id."""
    program.script(server)
    environment = {
        **os.environ,
        "OPENAI_BASE_URL": server.openai_base_url,
        "OPENAI_API_KEY": "test",
        STORE_VARIABLE: str(store.path),
    }
    environment.pop(FORK_VARIABLE, None)
    done = subprocess.run(
        [sys.executable, "-m", "miniagents", "run", "--name", "team", program.__file__],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return store.run("last").id


def _researcher(page: Page, city: str) -> Locator:
    """The row of the researcher of ``city`` (its answer is its preview)."""
    name = page.locator(".name", has_text="RESEARCHER")
    return page.locator(AGENTS).filter(has=name).filter(has_text=f"{city} has")


async def test_a_recorded_three_level_run_draws_its_tree(
    studio: tuple[httpx.AsyncClient, Page], store: RunStore, openai_env: FakeLLMServer
) -> None:
    client, page = studio
    program.script(openai_env)
    with Recorder(store, name="team", command=()) as recorder:
        await program.amain()
    await page.goto(f"{client.base_url}/?run={recorder.run_id}#token={TOKEN}")
    await expect(page.locator("#run-status")).to_have_text("ok")
    await expect(page.locator(AGENTS)).to_have_count(program.AGENT_CALLS)  # one per agent call
    await expect(page.locator(TOOLS)).to_have_count(2)
    levels = await page.locator(AGENTS).evaluate_all(
        "rows => rows.map(row => [row.querySelector('.name').textContent, row.ariaLevel])"
    )
    assert levels == [
        ["ORCHESTRATOR", "1"],
        ["RESEARCHER", "2"],
        ["LIBRARIAN", "4"],  # (under its tool call, at level 3)
        ["RESEARCHER", "2"],
        ["LIBRARIAN", "4"],
        ["CRITIC", "2"],
        ["WRITER", "2"],
    ]
    failed = page.locator("#tree .node.failed")
    await expect(failed).to_have_count(1)
    await expect(failed.locator(".name")).to_have_text("CRITIC")
    await failed.click()
    await expect(page.locator("#details .errorbox")).to_have_text(
        "ValueError: The critic has nothing to say."
    )
    await expect(page.locator("#run-totals")).to_contain_text("7 agent calls · 5 model calls")
    writer = page.locator(AGENTS).filter(has_text="WRITER")
    await writer.click()
    details = page.locator("#details")
    await expect(details).to_contain_text("First token")
    await expect(details.locator(".call .badge")).to_have_text("live")
    await expect(details.locator(".reply-text")).to_have_text(
        "Notes: Paris has 2.1 million people. Rome has 2.8 million people."
    )
    await page.locator("#costliest").click()  # the writer's model alone has a price
    await expect(page.locator(".node.on-path")).to_have_count(2)
    await expect(page.locator('.node[aria-selected="true"] .name')).to_have_text("WRITER")
    await _screenshot(page, "studio-run.png")


async def test_a_live_runs_tokens_appear_before_it_ends(
    studio: tuple[httpx.AsyncClient, Page], store: RunStore, openai_env: FakeLLMServer
) -> None:
    client, page = studio
    program.script(openai_env, paused_writer=True)
    recorder = Recorder(store, name="team", command=()).start()
    running = asyncio.ensure_future(program.amain())
    try:
        await openai_env.wait_paused_async(len(program.CITIES) * 2, timeout=WAIT)
        await page.goto(f"{client.base_url}/?run={recorder.run_id}#token={TOKEN}")
        writer = page.locator(AGENTS).filter(has_text="WRITER")
        await expect(writer.locator(".preview")).to_have_text("Notes so ")  # two tokens of five
        await expect(page.locator("#run-status")).to_have_text("running")
        await expect(writer).to_have_class(re.compile(r"\brunning\b"))
    finally:
        for request in openai_env.requests:  # (the writer's, paused: its three other tokens)
            request.resume()
        await running
        recorder.close()
    await expect(writer.locator(".preview")).to_have_text("Notes so far, then more.")
    await expect(page.locator("#run-status")).to_have_text("ok")


@pytest.mark.timeout(300)  # (the program, then its fork: slow on a loaded machine)
async def test_a_fork_at_a_second_level_reply_replays_the_calls_before_it_and_shows_the_diff(
    studio: tuple[httpx.AsyncClient, Page], store: RunStore, openai_env: FakeLLMServer
) -> None:
    client, page = studio
    first = _record_as_a_program(openai_env, store)
    made = len(openai_env.requests)
    await page.goto(f"{client.base_url}/?run={first}#token={TOKEN}")
    await expect(page.locator("#run-status")).to_have_text("ok")
    await _researcher(page, "Paris").click()
    answer = page.locator("#details .call").nth(1)  # the researcher's second call: its answer
    await expect(answer.locator(".reply-text")).to_have_text("Paris has 2.1 million people.")
    await answer.get_by_role("button", name="Edit reply and fork…").click()
    dialog = page.locator("#fork-dialog")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#fork-text")).to_have_value("Paris has 2.1 million people.")
    await page.locator("#fork-text").fill("Paris has 3 million people.")
    await page.get_by_role("button", name="Fork and run").click()
    await expect(page.locator("#compare-view")).to_be_visible()
    await expect(page.locator("#compare-status")).to_have_text("ok", timeout=120_000)
    summary = page.locator("#compare-summary")
    await expect(summary).to_contain_text("3 replayed, 1 edited, 1 made live")
    # the fake server's request log: the one request of the fork is the writer's (downstream)
    assert [request.json["model"] for request in openai_env.requests[made:]] == ["gpt-4o-mini"]
    paris = page.locator("#diff tr.changed").filter(has_text="RESEARCHER")
    await expect(paris).to_have_count(1)
    await expect(paris.locator("del")).to_have_text(["2.1"])
    await expect(paris.locator("ins")).to_have_text(["3"])
    await expect(paris.locator(".badge.edited")).to_have_count(1)
    writer = page.locator("#diff tr.changed").filter(has_text="WRITER")
    await expect(writer.locator(".badge.live")).to_have_count(1)
    await expect(writer.locator("ins")).to_have_text(["3"])
    # the same: Rome's researcher, the two tool calls and their librarians, the critic
    await expect(page.locator("#diff tr.same")).to_have_count(6)
    await _screenshot(page, "studio-fork.png")


@pytest.mark.timeout(300)
async def test_the_page_is_usable_from_the_keyboard(
    studio: tuple[httpx.AsyncClient, Page], store: RunStore, openai_env: FakeLLMServer
) -> None:
    client, page = studio
    _record_as_a_program(openai_env, store)
    await page.goto(f"{client.base_url}/#token={TOKEN}")
    keyboard = page.keyboard
    await expect(page.locator("#runs button")).to_have_count(1)
    await keyboard.press("r")  # the runs
    await expect(page.locator("#runs button").first).to_be_focused()
    await keyboard.press("Enter")
    await expect(page.locator("#run-status")).to_have_text("ok")
    await keyboard.press("t")  # the tree: its first node (as soon as it has one)
    selected = page.locator('#tree [aria-selected="true"]')
    await expect(selected.locator(".name")).to_have_text("ORCHESTRATOR")
    await expect(selected).to_be_focused()
    await keyboard.press("ArrowDown")
    await expect(selected.locator(".name")).to_have_text("RESEARCHER")
    await keyboard.press("ArrowRight")  # open already: to its first child
    await expect(selected.locator(".name")).to_have_text("LIBRARIAN")
    await expect(selected).to_have_attribute("data-kind", "tool")
    await keyboard.press("ArrowLeft")  # open: closed
    await expect(selected).to_have_attribute("aria-expanded", "false")
    await expect(page.locator(AGENTS)).to_have_count(program.AGENT_CALLS - 1)
    await keyboard.press("ArrowLeft")  # closed: up to its parent
    await expect(selected.locator(".name")).to_have_text("RESEARCHER")
    await keyboard.press("End")
    await expect(selected.locator(".name")).to_have_text("WRITER")
    await keyboard.press("s")  # the slowest branch, selected
    await expect(page.locator("#notice")).to_contain_text("The slowest branch: ORCHESTRATOR")
    await expect(page.locator('.node.on-path[aria-selected="true"]')).to_have_count(1)
    # to a researcher's answer, Tab to its edit button, fork from the dialog
    await keyboard.press("Home")
    await keyboard.press("ArrowDown")
    await keyboard.press("d")  # the details of the node
    await expect(page.locator("#details")).to_be_focused()
    for _ in range(12):
        await keyboard.press("Tab")
        if await page.evaluate(
            "document.activeElement.matches('.call:nth-of-type(2) .edit-reply')"
        ):
            break
    edit = page.locator("#details .call").nth(1).locator(".edit-reply")
    await expect(edit).to_be_focused()
    await keyboard.press("Enter")
    await expect(page.locator("#fork-text")).to_be_focused()
    await keyboard.press("Escape")  # cancelled: the dialog closes
    await expect(page.locator("#fork-dialog")).to_be_hidden()
    await edit.focus()
    await keyboard.press("Enter")
    await keyboard.press("Control+A")
    await keyboard.type("Nothing on this city.")
    await keyboard.press("Control+Enter")
    await expect(page.locator("#compare-view")).to_be_visible()
    await expect(page.locator("#compare-status")).to_have_text("ok", timeout=120_000)
    paris = page.locator("#diff tr.changed").filter(has_text="RESEARCHER")
    await expect(paris.locator("ins")).to_have_text(["Nothing on this city."])
    await expect(paris.locator("del")).to_have_text(["Paris has 2.1 million people."])
    await keyboard.press("?")
    await expect(page.locator("#help-dialog")).to_be_visible()
    await keyboard.press("Escape")
    await expect(page.locator("#help-dialog")).to_be_hidden()


class _Route:
    """An object of a class with no ``__repr__`` of its own: its repr names its address."""

    def __init__(self, region: str) -> None:
        self.region = region


async def test_a_call_the_cache_cannot_key_shows_why_and_offers_no_fork(
    studio: tuple[httpx.AsyncClient, Page], store: RunStore
) -> None:
    # (was: the page showed the call with its fork buttons and not the reason, and the fork
    # was refused only once asked for)
    client, page = studio
    asker = offline_agent.fork(
        alias="ASKER", token_delay=0, reply="live", extra_options={"route": _Route("eu")}
    )
    with Recorder(store, name="unkeyed", command=("python", "asker.py")) as recorder:
        async with MiniAgents():
            assert str(await asker.inquire("q")) == "live"
    await page.goto(f"{client.base_url}/?run={recorder.run_id}#token={TOKEN}")
    await expect(page.locator("#run-status")).to_have_text("ok")
    await page.locator(AGENTS).filter(has_text="ASKER").click()
    call = page.locator("#details .call")
    await expect(call.locator(".reply-text")).to_have_text("live")
    await expect(call.locator(".unkeyed")).to_contain_text(
        "Cannot be forked: The call cache cannot key a call: its call option 'route' holds a "
        "_Route (<"
    )
    await expect(call.locator("button")).to_have_count(0)


async def test_the_page_mounted_under_a_prefix_lists_and_shows_its_runs(
    store: RunStore, openai_env: FakeLLMServer
) -> None:
    """Served by another app under ``/studio/``, the page's script calls the API under the
    prefix too (it called ``/api/...`` of the host's root: nothing listed)."""
    program.script(openai_env)
    with Recorder(store, name="team", command=()) as recorder:
        await program.amain()
    outer = Starlette(routes=[Mount("/studio", app=studio_app(store, token=TOKEN))])
    async with served(outer) as client, chromium_page(1400, 900) as page:
        await page.goto(f"{client.base_url}/studio/#token={TOKEN}")
        await expect(page.locator("#runs button")).to_have_count(1)
        await page.locator("#runs button").click()
        await expect(page).to_have_url(f"{client.base_url}/studio/?run={recorder.run_id}")
        await expect(page.locator("#run-status")).to_have_text("ok")
        await expect(page.locator(AGENTS)).to_have_count(program.AGENT_CALLS)


async def test_two_studios_mounted_on_one_origin_keep_their_tokens_apart(
    store: RunStore, tmp_path: Path
) -> None:
    """Two studios mounted in one app (``/one/``, ``/two/``), each with its token, opened in
    one tab: each page keeps its own token, and lists its runs again once opened without it.
    (Was: both kept it under one key of the tab's sessionStorage: the second's replaced the
    first's, whose page was then refused, its runs not listed.)"""
    other = RunStore(tmp_path / "other.sqlite")
    asker = offline_agent.fork(alias="ASKER", token_delay=0, reply="live")
    for recorded, name in ((store, "first-studio-run"), (other, "second-studio-run")):
        with Recorder(recorded, name=name, command=()):
            async with MiniAgents():
                await asker.inquire("q")
    two_token = "studio-test-token-two"
    outer = Starlette(
        routes=[
            Mount("/one", app=studio_app(store, token=TOKEN)),
            Mount("/two", app=studio_app(other, token=two_token)),
        ]
    )
    try:
        async with served(outer) as client, chromium_page(1400, 900) as page:
            for prefix, token, name in (
                ("one", TOKEN, "first-studio-run"),
                ("two", two_token, "second-studio-run"),
            ):
                await page.goto(f"{client.base_url}/{prefix}/#token={token}")
                await expect(page.locator("#runs button")).to_have_count(1)
                await expect(page.locator("#runs button")).to_contain_text(name)
            await page.goto(f"{client.base_url}/one/")  # (its token kept: not in the address)
            await expect(page.locator("#runs button")).to_have_count(1)
            await expect(page.locator("#runs button")).to_contain_text("first-studio-run")
            await page.goto(f"{client.base_url}/two/")
            await expect(page.locator("#runs button")).to_contain_text("second-studio-run")
    finally:
        other.close()
