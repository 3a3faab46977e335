"""The studio's web app under a real uvicorn: who may ask, what it answers, its live events."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import logging
import re
import socket
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx2 as httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from miniagents import InteractionContext, MiniAgent, MiniAgents, miniagent
from miniagents.ext.studio import Fork, ForkResult, Recorder, RunInfo, RunStore, RunTree
from miniagents.ext.studio import app as studio_app_module
from miniagents.ext.studio.app import PAGE_POLICY, studio_app, studio_lifespan
from miniagents.ext.studio.cli import studio_main
from miniagents.ext.studio.errors import StudioConfigurationError, StudioError
from miniagents.ext.studio.events import encode_batch
from miniagents.ext.studio.fork import plan_fork
from miniagents.ext.studio.store import Chunk
from miniagents.ext.web.lowlevel import aread_bounded
from miniagents.ext.web.serving import HEADERS_SECONDS, server_config, server_stop
from miniagents.testing import virtual_time
from tests.ext.studio.kit import many_calls
from tests.ext.web.serving import answer_of, bounded, configs_run, served, trickle
from tests.fakes.asgi24 import Asgi24
from tests.fakes.fixtures import WAIT

TOKEN = "s3cr3t-studio-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@miniagent
async def greeter(ctx: InteractionContext) -> None:
    ctx.reply("Hello.")


@pytest.fixture
async def recorded(store: RunStore) -> str:
    recorder = Recorder(store, name="greeting", command=()).start()
    async with MiniAgents():
        await greeter.inquire()
    await recorder.aclose()  # (written and ended as it returns: the tests edit the file by hand)
    return recorder.run_id


@pytest.fixture
async def client(store: RunStore) -> AsyncIterator[httpx.AsyncClient]:
    async with served(studio_app(store, token=TOKEN)) as made:
        yield made


async def _events(response: httpx.Response) -> list[tuple[str, Any]]:
    """The SSE events of a response, to its end: (kind, data)."""
    found: list[tuple[str, Any]] = []
    kind = "message"
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            found.append((kind, json.loads(line[6:])))
            kind = "message"
    return found


async def test_the_api_answers_only_the_tokens_holder_and_the_page_is_public(
    client: httpx.AsyncClient, recorded: str
) -> None:
    assert (await client.get("/api/runs")).status_code == 401
    wrong = await client.get("/api/runs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "not one this app knows" in wrong.json()["error"]["message"]
    page = await client.get("/")
    assert page.status_code == 200
    assert "<title>MiniAgents Studio</title>" in page.text
    assert page.headers["content-security-policy"] == PAGE_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    script = await client.get("/studio.js")
    assert script.headers["content-type"].startswith("text/javascript")
    runs = (await client.get("/api/runs", headers=AUTH)).json()
    assert [run["id"] for run in runs["runs"]] == [recorded]
    assert runs["runs"][0]["forkable"] is False
    assert (await client.get("/api/runs/last", headers=AUTH)).json()["name"] == "greeting"


async def test_the_studio_mounted_under_a_prefix_serves_its_page_files_and_api_there(
    store: RunStore, recorded: str
) -> None:
    """Mounted in another app (``Mount("/studio", app=...)``), the page, the files it links
    (resolved against the page's address, as a browser does) and the API answer under the
    prefix. (Each file was looked up by the request's whole path: a 500, KeyError; and the
    page named its files and the API from the host's root, outside the mount.)"""
    outer = Starlette(routes=[Mount("/studio", app=studio_app(store, token=TOKEN))])
    async with served(outer) as client:
        page = await client.get("/studio/")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == PAGE_POLICY
        linked = re.findall(r'(?:href|src)="([^"#:]+)"', page.text)
        assert sorted(linked) == ["studio.css", "studio.js"]
        for name in linked:
            served_file = await client.get(str(page.url.join(name)))
            assert served_file.status_code == 200, name
            assert served_file.headers["content-type"].startswith("text/"), name
        script = (await client.get("/studio/studio.js")).text
        paths = re.findall(r'(?:api|fetch)\((["`])([^"`]*)\1', script)
        assert paths
        assert all(path.startswith("api/") for _, path in paths), paths
        runs = await client.get(str(page.url.join("api/runs")), headers=AUTH)
        assert [run["id"] for run in runs.json()["runs"]] == [recorded]
        assert (await client.get("/studio/api/runs")).status_code == 401
        assert (await client.get("/studio/nothing.js")).status_code == 404


async def test_a_method_a_route_does_not_serve_is_the_json_405_with_its_allow_header(
    client: httpx.AsyncClient, recorded: str
) -> None:
    # (was: Starlette's plain-text "Method Not Allowed", unlike the studio's other refusals)
    refused = await client.get(f"/api/runs/{recorded}/fork", headers=AUTH)
    assert refused.status_code == 405
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["allow"] == "POST"
    error = refused.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["message"] == f"/api/runs/{recorded}/fork does not serve GET; send POST."


async def test_a_host_it_does_not_know_and_a_post_of_another_site_are_refused(
    client: httpx.AsyncClient, recorded: str
) -> None:
    rebound = await client.get("/api/runs", headers={**AUTH, "Host": "attacker.example"})
    assert rebound.status_code == 400  # a DNS name of someone else's pointed at 127.0.0.1
    assert rebound.json()["error"]["code"] == "host_not_allowed"
    for local in ("localhost:8100", "127.0.0.1", "[::1]:8100", "LOCALHOST"):
        known = await client.get("/api/runs", headers={**AUTH, "Host": local})
        assert known.status_code == 200, local
    assert (await client.get("/", headers={"Host": "[::1].attacker.example"})).status_code == 400
    other_site = await client.post(
        f"/api/runs/{recorded}/fork",
        headers={**AUTH, "Origin": "https://attacker.example"},
        json={"call": 1, "reply": "x"},
    )
    assert other_site.status_code == 403
    form = await client.post(f"/api/runs/{recorded}/fork", headers=AUTH, content=b"call=1")
    assert form.status_code == 415


async def test_bad_requests_are_answered_with_what_to_send(
    client: httpx.AsyncClient, recorded: str
) -> None:
    fork = f"/api/runs/{recorded}/fork"
    cases = [
        (await client.post(fork, headers=AUTH, json=[1]), 422, "bad_fork"),
        (await client.post(fork, headers=AUTH, json={"call": "1"}), 422, "bad_fork"),
        (await client.post(fork, headers=AUTH, json={"call": 1, "reply": 3}), 422, "bad_fork"),
        (await client.post(fork, headers=AUTH, json={"call": 1, "reply": "x"}), 404, "not_found"),
        (
            await client.post(
                fork, headers={**AUTH, "Content-Type": "application/json"}, content=b"{"
            ),
            400,
            "invalid_json",
        ),
        (
            await client.post(fork, headers=AUTH, json={"call": 1, "reply": "x" * 300_000}),
            413,
            "body_too_large",
        ),
        (await client.get("/api/runs/nope", headers=AUTH), 404, "not_found"),
        (await client.get("/api/runs?limit=0", headers=AUTH), 400, "bad_limit"),
        (
            await client.get(f"/api/runs/{recorded}/events?after=x", headers=AUTH),
            400,
            "bad_position",
        ),
        (await client.get(f"/api/diff?left={recorded}", headers=AUTH), 400, "bad_diff"),
        (await client.get("/api/forks/nope", headers=AUTH), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_a_gzipped_fork_body_is_read_as_sent_never_uncompressed(
    client: httpx.AsyncClient, recorded: str
) -> None:
    # 300 KB uncompressed, over the fork's bound of 256 KiB, in a few hundred bytes gzipped:
    # nothing uncompresses it (Starlette, no middleware, aread_bounded), so the bound counts
    # the bytes held, and the bytes are no JSON
    padded = json.dumps({"call": 1, "reply": "x" * 300_000}).encode()
    sent = gzip.compress(padded)
    assert len(sent) < 2_000
    headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = await client.post(f"/api/runs/{recorded}/fork", headers=headers, content=sent)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")


async def test_a_fork_at_a_call_numbered_below_1_is_a_422_not_a_servers_failure(
    client: httpx.AsyncClient, recorded: str
) -> None:
    for call in (0, -3):
        asked = await client.post(
            f"/api/runs/{recorded}/fork", headers=AUTH, json={"call": call, "reply": "x"}
        )
        # (was: a 500 "store_error", plan_fork's StudioConfigurationError taken for the store's)
        assert (asked.status_code, asked.json()["error"]["code"]) == (422, "bad_fork"), call


async def test_a_fork_edit_holding_a_lone_surrogate_is_a_422_and_starts_no_program(
    store: RunStore, tmp_path: Path
) -> None:
    # (was: a 202, the fork's program started and failed at once with a UnicodeEncodeError,
    # one of the most forks running taken meanwhile, and the error logged)
    run_id = "20261129-000000-lone00"
    _record_a_run_of(store, run_id, (sys.executable, "-c", "print(1)"), tmp_path)
    async with served(studio_app(store, token=TOKEN)) as client:
        for body in (
            '{"call": 1, "system": "be \\ud800brief"}',
            '{"call": 1, "prompt": "\\udfff"}',
        ):
            asked = await client.post(
                f"/api/runs/{run_id}/fork",
                headers={**AUTH, "Content-Type": "application/json"},
                content=body,
            )
            assert asked.status_code == 422, asked.text
            error = asked.json()["error"]
            assert error["code"] == "cannot_fork"
            assert "lone surrogate" in error["message"], error
        paired = await client.post(  # (a character past U+FFFF, as JSON writes it: taken)
            f"/api/runs/{run_id}/fork",
            headers={**AUTH, "Content-Type": "application/json"},
            content='{"call": 1, "system": "be \\ud83d\\ude00 brief"}',
        )
        assert paired.status_code == 202, paired.text
        fork = f"/api/forks/{paired.json()['run']}"

        async def ended() -> dict[str, Any]:
            state: dict[str, Any] = {"running": True}
            while state["running"]:
                state = (await client.get(fork, headers=AUTH)).json()
            return state

        assert (await asyncio.wait_for(ended(), WAIT))["returncode"] == 0


async def test_a_store_that_fails_is_a_500_by_the_reference_its_error_is_logged_under(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store the studio cannot read: each request is a 500 ``store_error`` that names the
    reference its error is logged under (once, whole), in every server's words, and nothing
    of the error. (Was: "its log says why", with no reference to find it by among the
    log's lines.)"""
    broken = tmp_path / "runs.sqlite"
    broken.write_bytes(b"not a database, " * 1_000)  # (a file the studio cannot read)
    async with served(studio_app(broken, token=TOKEN)) as client:
        with caplog.at_level(logging.ERROR, logger="miniagents.ext.studio"):
            answers = [
                await client.get("/api/runs", headers=AUTH),
                await client.get("/api/runs/last", headers=AUTH),
            ]
    references = []
    for answer in answers:
        said = answer.json()["error"]
        assert (answer.status_code, said["code"]) == (500, "store_error")
        # (was: the store's path and SQLite's words, to whoever asked)
        found = re.fullmatch(
            r"The studio could not read its store of recorded runs\. The server's log has the "
            r"error under the reference ([0-9a-f]{32}): ask the studio's operator to look it "
            r"up there\. Retry once the store is fixed\.",
            said["message"],
        )
        assert found is not None, said
        references.append(found.group(1))
        assert str(tmp_path) not in answer.text
    assert len(set(references)) == 2
    logged = [record for record in caplog.records if record.name == "miniagents.ext.studio"]
    kinds = [type(record.exc_info[1]).__name__ for record in logged if record.exc_info]
    assert [record.getMessage() for record in logged] == [
        f"Answering GET {path} failed with {kind} (reference {reference})."
        for path, kind, reference in zip(
            ["/api/runs", "/api/runs/last"], kinds, references, strict=True
        )
    ]
    assert all(
        record.exc_info
        and isinstance(record.exc_info[1], StudioError)
        and str(broken) in str(record.exc_info[1])
        for record in logged
    )


class _CheckingStore(RunStore):
    """A store whose reading refuses a run id it takes for no id (an argument's error)."""

    def run(self, run_id: str) -> RunInfo:
        if run_id.startswith("-"):
            raise StudioConfigurationError(f"A run's id never starts with '-': {run_id!r}.")
        return super().run(run_id)


async def test_a_configuration_error_of_what_a_request_gave_is_a_400_with_its_message(
    tmp_path: Path,
) -> None:
    store = _CheckingStore(tmp_path / "runs.sqlite")
    async with served(studio_app(store, token=TOKEN)) as client:
        answer = await client.get("/api/runs/-x", headers=AUTH)
    store.close()
    # (was: a 500 "store_error", the caller's mistake taken for the store's failure)
    assert (answer.status_code, answer.json()["error"]) == (
        400,
        {"code": "bad_request", "message": "A run's id never starts with '-': '-x'."},
    )


async def test_the_events_of_an_ended_run_come_whole_then_its_end(
    client: httpx.AsyncClient, recorded: str
) -> None:
    async with client.stream("GET", f"/api/runs/{recorded}/events", headers=AUTH) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await _events(response)
    [(_, chunk), (end, run)] = events  # one chunk (the recorder wrote one batch), the end
    assert chunk["first"] == 1
    assert [event[0] for event in chunk["events"]] == ["node", "message", "end"]
    assert chunk["events"][1][6] == "Hello."  # (a plain message: its text)
    assert (end, run["status"]) == ("end", "ok")
    async with client.stream(
        "GET", f"/api/runs/{recorded}/events", headers={**AUTH, "Last-Event-ID": "2"}
    ) as response:
        later = await _events(response)
    assert later[0][1]["first"] == 3  # the events after the 2nd: the chunk cut there
    assert [event[0] for event in later[0][1]["events"]] == ["end"]


@pytest.mark.parametrize("deleted", [False, True], ids=["ended", "deleted as it is followed"])
async def test_a_live_runs_events_stream_as_they_are_written(
    client: httpx.AsyncClient, store: RunStore, deleted: bool
) -> None:
    # and a run deleted from the store while it is followed (another studio's delete) ends
    # the stream saying so
    gate = asyncio.Event()
    with Recorder(store, command=()) as recorder:
        async with MiniAgents():
            reply = gated(gate).inquire()
            recorder.flush()  # (the node is written now: the stream has it at once)
            run_id = recorder.run_id
            async with client.stream("GET", f"/api/runs/{run_id}/events", headers=AUTH) as response:
                lines = response.aiter_lines()
                first = [line async for line in _until_data(lines)]
                events = json.loads(first[-1][6:])["events"]
                assert events[0][:5] == ["node", 1, None, "agent", "SLOW"]  # before the run ends
                if deleted:
                    store.delete(run_id)
                else:
                    gate.set()
                    await reply
                    recorder.close()
                rest = [line async for line in lines]
            gate.set()
            await reply
    if not deleted:
        assert any(line.startswith("event: end") for line in rest)
        return
    errors = [json.loads(line[6:]) for line in rest if line.startswith("data: ")]
    assert "event: error" in rest
    assert errors == [{"message": f"The run {run_id} is no longer in the store (deleted)."}]


async def test_a_live_runs_events_end_whole_as_the_studios_server_stops(store: RunStore) -> None:
    """The studio's server stops while a live run is followed: the stream ends at once,
    whole, and the server stops without waiting its shutdown's grace. (It went on until
    the server's shutdown cut it, 5 seconds later: a body cut short.) The page follows
    again from its last event."""
    gate, stop = asyncio.Event(), asyncio.Event()
    app = studio_app(store, token=TOKEN)
    with Recorder(store, command=()) as recorder:
        async with MiniAgents():
            reply = gated(gate).inquire()
            recorder.flush()
            async with (
                served(app, stop=stop, bounded=True) as client,
                client.stream(
                    "GET", f"/api/runs/{recorder.run_id}/events", headers=AUTH
                ) as response,
            ):
                lines = response.aiter_lines()
                first = [line async for line in _until_data(lines)]
                stop.set()
                rest = [line async for line in lines]  # (was: httpx.RemoteProtocolError)
            gate.set()
            await reply
    assert first[0] == "id: 1"
    assert [line for line in rest if line] == []  # (ended: no error, no end of the run)


_REQUEST: ContextVar[int | None] = ContextVar("_REQUEST", default=None)


def _numbered(app: ASGIApp) -> ASGIApp:
    """``app``, each of its requests numbered (``_REQUEST``, from 1) in its task's context."""
    numbers = itertools.count(1)

    async def numbered(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            _REQUEST.set(next(numbers))
        await app(scope, receive, send)

    return numbered


class _LookingStore(RunStore):
    """A store that notes, once ``counting``, which request each look at a run is made for."""

    def __init__(self, path: Path, wanted: int) -> None:
        super().__init__(path)
        self.loop = asyncio.get_running_loop()
        self.counting = False
        self.looks: list[int | None] = []
        self.wanted = wanted
        self.enough = asyncio.Event()

    def run(self, run_id: str) -> RunInfo:
        if self.counting:
            self.looks.append(_REQUEST.get())
            if len(self.looks) == self.wanted:
                self.loop.call_soon_threadsafe(self.enough.set)
        return super().run(run_id)


async def test_the_followers_of_a_live_run_share_one_look_at_the_store(store: RunStore) -> None:
    """Three followers of a quiet live run: after its first look, each waits for the run's one
    watch (it looks each 0.1 s, for all), then all get its end. (Was: each follower looked
    itself, each 0.1 s, in a thread: the looks grew with the followers.)"""
    gate = asyncio.Event()
    looking = _LookingStore(store.path, wanted=12)
    async with served(_numbered(studio_app(looking, token=TOKEN))) as client:
        with Recorder(store, command=()) as recorder:
            async with MiniAgents(), contextlib.AsyncExitStack() as streams:
                reply = gated(gate).inquire()  # (quiet: nothing more is written until the end)
                recorder.flush()
                url = f"/api/runs/{recorder.run_id}/events"
                followers = []
                for _ in range(3):
                    response = await streams.enter_async_context(
                        client.stream("GET", url, headers=AUTH)
                    )
                    lines = response.aiter_lines()
                    first = [line async for line in _until_data(lines)]
                    assert first[0] == "id: 1"
                    followers.append(lines)
                looking.counting = True
                await asyncio.wait_for(looking.enough.wait(), WAIT)
                looks = Counter(looking.looks[: looking.wanted])
                # one request's context looks on (the watch's); another at most once, as it
                # began to wait (was: each of the three, about 4 times each)
                assert sorted(looks.values())[:-1] <= [1, 1], looks
                gate.set()
                await reply
                recorder.close()
                for lines in followers:
                    rest = [line async for line in lines]
                    assert "event: end" in rest


def gated(gate: asyncio.Event) -> MiniAgent[[]]:
    """An agent ``SLOW`` that replies "Done." once ``gate`` is set."""

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        await gate.wait()
        ctx.reply("Done.")

    return slow


async def _until_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    async for line in lines:
        yield line
        if line.startswith("data: "):
            return


def test_a_directory_given_as_the_store_is_refused_alike_by_the_store_the_recorder_and_the_app(
    tmp_path: Path,
) -> None:
    """(was: the app alone refused it; a RunStore and a Recorder took it, and failed at their
    first read or write with SQLite's "unable to open database file")."""
    makers: tuple[Callable[[Path | str], object], ...] = (
        RunStore,
        Recorder,
        lambda store: studio_app(store, token=TOKEN),
    )
    places: tuple[Path | str, ...] = (tmp_path, str(tmp_path))
    for make, given in itertools.product(makers, places):
        with pytest.raises(StudioConfigurationError, match="is a directory, not the file") as info:
            make(given)
        assert str(info.value) == (
            f"The store of recorded runs {str(tmp_path)!r} is a directory, not the file of the "
            f"runs: give a file in it, e.g. {str(tmp_path / 'miniagents_runs.sqlite')!r}."
        )
        assert info.value.parameter == "store"


def test_the_app_refuses_options_it_cannot_keep(store: RunStore) -> None:
    with pytest.raises(StudioConfigurationError, match="needs a bearer token"):
        studio_app(store, token="")
    with pytest.raises(StudioConfigurationError, match="needs a bearer token"):
        studio_app(store, token="two words")
    for weak in ("x", "s3cr3t", "fifteen-chars-x"):  # (guessed, over the network)
        with pytest.raises(StudioConfigurationError, match="give one of at least 16"):
            studio_app(store, token=weak)
    with pytest.raises(StudioConfigurationError, match="allowed_hosts is empty"):
        studio_app(store, token=TOKEN, allowed_hosts=())
    with pytest.raises(StudioConfigurationError, match="studio_app needs max_forks to be"):
        studio_app(store, token=TOKEN, max_forks=0)
    for seconds in (0, -1.0, float("nan"), float("inf"), True, "15"):  # (was: True taken)
        for name in ("keepalive", "fork_timeout"):  # (was: fork_timeout unchecked, each fork
            with pytest.raises(  # failing when it started)
                StudioConfigurationError,
                match=f"studio_app needs {name} to be a positive, finite number of seconds",
            ) as refused:
                studio_app(store, token=TOKEN, **{name: seconds})  # type: ignore[arg-type]
            assert refused.value.parameter == name
    with pytest.raises(StudioConfigurationError, match="needs keepalive"):
        studio_app(store, token=TOKEN, keepalive=None)  # type: ignore[arg-type]
    # (was: accepted, to fail at each fork with a bare TypeError from the program's start)
    with pytest.raises(StudioConfigurationError, match="studio_app needs environment to be"):
        studio_app(store, token=TOKEN, environment={"PORT": 8000})  # type: ignore[dict-item]


async def test_event_streams_past_the_most_followers_are_refused(store: RunStore) -> None:
    gate = asyncio.Event()
    slow = gated(gate)
    async with served(studio_app(store, token=TOKEN, max_followers=1)) as client:
        with Recorder(store, command=()) as recorder:
            async with MiniAgents():
                reply = slow.inquire()
                recorder.flush()
                events = f"/api/runs/{recorder.run_id}/events"
                async with client.stream("GET", events, headers=AUTH) as first:
                    lines = first.aiter_lines()  # (held: the stream stays open while it is)
                    [line async for line in _until_data(lines)]
                    second = await client.get(events, headers=AUTH)
                    assert second.status_code == 503
                    assert second.json()["error"]["code"] == "too_many_followers"
                gate.set()
                await reply
        async with client.stream("GET", events, headers=AUTH) as again:  # (its place is free)
            assert again.status_code == 200
            assert [line async for line in again.aiter_lines()][-2].startswith("data: ")


async def test_a_position_or_limit_that_is_no_small_whole_number_is_a_400(
    client: httpx.AsyncClient, recorded: str
) -> None:
    events = f"/api/runs/{recorded}/events"
    for after in ("%C2%B2", "9" * 30, "9" * 5_000):  # ("²" is a digit to str.isdigit)
        refused = await client.get(f"{events}?after={after}", headers=AUTH)
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "bad_position")
    resumed = await client.get(events, headers={**AUTH, "Last-Event-ID": "9" * 20})
    assert resumed.status_code == 400
    refused = await client.get("/api/runs?limit=%C2%B2", headers=AUTH)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "bad_limit")


async def test_a_damaged_chunk_ends_the_event_stream_with_an_error_event_saying_so(
    client: httpx.AsyncClient, recorded: str, store: RunStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A chunk that cannot be read ends the stream with an ``error`` event naming the run
    and the reference its error is logged under (once), in the words of every server's
    error: "The server's log has the error under the reference ...". (Was: "The studio's
    log", a second wording of the same thing.)"""
    with sqlite3.connect(store.path) as damaging:  # (a batch cut short: a crash mid-write)
        damaging.execute("UPDATE studio_chunks SET data = substr(data, 1, 20)")
    damaging.close()
    with caplog.at_level(logging.ERROR, logger="miniagents.ext.studio"):
        async with client.stream("GET", f"/api/runs/{recorded}/events", headers=AUTH) as response:
            events = await _events(response)  # (whole: not cut with the body unfinished)
    [(kind, said)] = events
    assert kind == "error"
    found = re.fullmatch(
        rf"A chunk of the run {recorded}'s events cannot be read: the store is damaged\. The "
        r"server's log has the error under the reference ([0-9a-f]{32}): ask the studio's "
        r"operator to look it up there\.",
        said["message"],
    )
    assert found is not None, said  # (the server's path: logged, not told)
    logged = [record for record in caplog.records if record.name == "miniagents.ext.studio"]
    assert [record.getMessage() for record in logged] == [
        f"Following the events of the run {recorded} failed with StudioStoreError "
        f"(reference {found.group(1)})."
    ]
    assert logged[0].exc_info is not None
    assert store.path.name in str(logged[0].exc_info[1])


async def test_a_chunk_the_store_holds_as_text_with_line_breaks_is_one_event_or_an_error(
    client: httpx.AsyncClient, recorded: str, store: RunStore
) -> None:
    [(_, _, data)] = store.chunks(recorded)
    events = json.loads(data)
    recorder = Recorder(store, name="edited", command=()).start()
    async with MiniAgents():
        await greeter.inquire()
    await recorder.aclose()
    edited = recorder.run_id
    injected = '[]\n\nevent: end\ndata: {"status": "ok"}\r\n\r\nid: 99'
    with sqlite3.connect(store.path) as editing:  # (a store edited by hand)
        pretty = json.dumps(events, indent=1)  # (line breaks between the values: still JSON)
        editing.execute("UPDATE studio_chunks SET data = ? WHERE run = ?", (pretty, recorded))
        editing.execute("UPDATE studio_chunks SET data = ? WHERE run = ?", (injected, edited))
    editing.close()
    frames = {}
    for run in (recorded, edited):
        text = (await client.get(f"/api/runs/{run}/events", headers=AUTH)).text
        frames[run] = [frame.splitlines() for frame in re.split(r"\r?\n\r?\n", text) if frame]
    # (was: the stored text as it was, its line breaks cutting the event; an injected end)
    [chunk, end] = frames[recorded]
    assert [line.partition(": ")[0] for line in chunk] == ["id", "data"]
    assert json.loads(chunk[1].partition(": ")[2]) == {"first": 1, "events": events}
    assert end[0] == "event: end"
    [error] = frames[edited]
    assert [line.partition(": ")[0] for line in error] == ["event", "data"]
    assert error[0] == "event: error"
    assert "cannot be read" in json.loads(error[1].partition(": ")[2])["message"]


def test_a_host_that_is_no_host_name_is_a_configuration_error_and_one_line_of_the_command(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(StudioConfigurationError, match="holds 'http://studio"):
        studio_app(store, token=TOKEN, allowed_hosts=["http://studio.internal"])
    with pytest.raises(SystemExit) as exited:  # (was: the WebConfigurationError's traceback)
        studio_main(["--store", str(store.path), "--allow-host", "http://studio.internal"], "s")
    assert exited.value.code == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith("s: error: argument --allow-host: allowed_hosts holds 'http://")


async def test_a_fork_body_that_trickles_in_is_a_408_past_the_studios_own_deadline(
    store: RunStore, recorded: str
) -> None:
    # (a short deadline: the trickle, a byte at a time, never ends the body)
    app = studio_app(store, token=TOKEN, body_seconds=0.5)  # (was: 30 s, whatever was asked)
    async with bounded(server_config(app)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /api/runs/{recorded}/fork HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        trickling = asyncio.create_task(trickle(writer, b" "))  # (never the body's end)
        try:
            head, answer = await answer_of(reader)
        finally:
            writer.close()
            await trickling
    assert head.startswith(b"HTTP/1.1 408 ")  # (and JSON, as the studio's other errors)
    assert answer["error"]["code"] == "body_too_slow"
    assert "did not all arrive within 0.5 seconds" in answer["error"]["message"]
    with pytest.raises(StudioConfigurationError, match="body_seconds to be a positive"):
        studio_app(store, token=TOKEN, body_seconds=0)


async def test_a_fork_body_nested_past_the_parsers_depth_is_a_400(
    client: httpx.AsyncClient, recorded: str
) -> None:
    nested = await client.post(
        f"/api/runs/{recorded}/fork",
        headers={**AUTH, "Content-Type": "application/json"},
        content=b"[" * 100_000,  # (was: a RecursionError, a 500)
    )
    assert (nested.status_code, nested.json()["error"]["code"]) == (400, "invalid_json")


@pytest.mark.parametrize(
    ("column", "damaged"),
    [
        ("command", "{"),  # JSON that does not parse
        ("command", '{"program": "x.py"}'),  # JSON of the wrong shape (not a list of texts)
        ("command", "[1, 2]"),
        ("fork", "[1]"),
    ],
)
async def test_a_run_whose_record_is_damaged_is_a_4xx_and_leaves_the_other_runs_listed(
    client: httpx.AsyncClient, store: RunStore, recorded: str, column: str, damaged: str
) -> None:
    with Recorder(store, name="broken", command=()) as recorder:
        async with MiniAgents():
            await greeter.inquire()
    broken = recorder.run_id
    with sqlite3.connect(store.path) as damaging:
        damaging.execute(f"UPDATE studio_runs SET {column} = ? WHERE id = ?", (damaged, broken))
    damaging.close()
    listed = await client.get("/api/runs", headers=AUTH)
    assert listed.status_code == 200  # (was: a 500, the good run unlisted with it)
    runs = {run["id"]: run for run in listed.json()["runs"]}
    assert runs.keys() == {recorded, broken}
    assert runs[recorded]["damaged"] is None
    assert runs[broken]["damaged"].startswith(f"The record of the run {broken!r} is damaged")
    assert runs[broken]["forkable"] is False
    answers = [
        await client.get(f"/api/runs/{broken}", headers=AUTH),
        await client.get(f"/api/runs/{broken}/events", headers=AUTH),
        await client.post(f"/api/runs/{broken}/fork", headers=AUTH, json={"call": 1, "reply": "x"}),
        await client.get(f"/api/diff?left={recorded}&right={broken}", headers=AUTH),
    ]
    for answer in answers:
        said = answer.json()["error"]
        assert (answer.status_code, said["code"]) == (422, "damaged_run"), answer.request.url
        assert said["message"].startswith(f"The record of the run {broken!r} is damaged")
    assert (await client.get(f"/api/runs/{recorded}", headers=AUTH)).status_code == 200
    store.delete(broken)  # (what the message advises: it can be deleted)
    assert [run["id"] for run in (await client.get("/api/runs", headers=AUTH)).json()["runs"]] == [
        recorded
    ]


async def test_a_diff_or_fork_of_a_run_past_the_most_events_read_is_a_413(
    store: RunStore, recorded: str
) -> None:
    big = many_calls(store, 3_000)
    app = studio_app(store, token=TOKEN, max_run_events=2_999)
    async with served(app) as client:
        answers = [
            await client.get(f"/api/diff?left={recorded}&right={big}", headers=AUTH),
            await client.post(
                f"/api/runs/{big}/fork", headers=AUTH, json={"call": 1, "reply": "x"}
            ),
        ]
        for answer in answers:  # (was: the whole run read, whatever its size)
            said = answer.json()["error"]
            assert (answer.status_code, said["code"]) == (413, "run_too_large")
            assert said["message"].startswith(f"The run {big!r} has 3,000 events, more than")
            assert "max_run_events" in said["message"]
        assert not app.state.forks.states  # (no program started)
        same = await client.get(f"/api/diff?left={recorded}&right={recorded}", headers=AUTH)
        assert same.status_code == 200
    with pytest.raises(StudioConfigurationError, match="studio_app needs max_run_events to be"):
        studio_app(store, token=TOKEN, max_run_events=0)


async def test_a_client_that_left_a_quiet_runs_events_is_noticed_by_the_keepalive(
    store: RunStore,
) -> None:
    gate = asyncio.Event()
    server = Asgi24(
        studio_app(store, token=TOKEN, max_followers=1, keepalive=0.01),
        lambda path: path.endswith("/events"),
    )
    async with served(server) as client:
        with Recorder(store, command=()) as recorder:
            async with MiniAgents():
                reply = gated(gate).inquire()  # (quiet: nothing more is written until the end)
                recorder.flush()
                events = f"/api/runs/{recorder.run_id}/events"
                async with client.stream("GET", events, headers=AUTH) as response:
                    lines = response.aiter_lines()
                    [line async for line in _until_data(lines)]
                    async for line in lines:
                        if line:
                            break
                    assert line == ": keepalive"  # (a comment: EventSource skips it)
                # the client left (the connection closed): the next keepalive fails, the
                # stream ends, its place is given back (was: held until the run wrote more)
                await asyncio.wait_for(server.ended.wait(), WAIT)
                second = await client.get(f"/api/runs/{recorder.run_id}", headers=AUTH)
                assert second.status_code == 200
                async with client.stream("GET", events, headers=AUTH) as again:
                    assert again.status_code == 200  # (not a 503: one follower at most)
                    gate.set()
                    await reply
                    recorder.close()
                    rest = [line async for line in again.aiter_lines()]
                assert any(line.startswith("event: end") for line in rest)


def test_miniagents_studio_takes_the_web_commands_options_of_its_bounds(
    store: RunStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = configs_run(monkeypatch)
    bounds = ["--body-seconds", "2.5", "--max-connections", "7", "--headers-seconds", "3"]
    bounds += ["--linger-seconds", "0"]
    proxies = ["--trusted-proxy", "10.0.0.1", "--trusted-proxy", "10.0.0.2"]
    served = ["--store", str(store.path), "--port", "0"]
    assert studio_main([*served, *bounds, *proxies], "s") == 0  # (was: unrecognized)
    (config,) = configs
    assert getattr(config.http, "most", None) == 7
    assert getattr(config.http, "deadline", None) == 3.0
    assert getattr(config.http, "linger", None) == 0.0
    proxied = getattr(config.app, "app", None)  # (inside the serving's, around the studio)
    assert isinstance(proxied, ProxyHeadersMiddleware)
    app = getattr(proxied.app, "app", None)  # (inside the count of the proxy's clients)
    assert isinstance(app, Starlette)
    deadlines = [m.kwargs.get("seconds") for m in app.user_middleware if "seconds" in m.kwargs]
    assert deadlines == [2.5]  # (the door's body deadline)
    for refused, said in (
        (["--body-seconds", "0"], "argument --body-seconds: WebSettings needs body_seconds"),
        (["--max-connections", "0"], "argument --max-connections: server_config needs"),
    ):
        assert said in _refused_by_studio([*served, *refused], capsys)
    assert len(configs) == 1  # (nothing served with a bound it cannot keep)


def test_miniagents_studio_takes_an_option_for_each_of_the_studios_own_limits(
    store: RunStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = configs_run(monkeypatch)
    made: list[dict[str, object]] = []

    def spied(*args: Any, **kwargs: Any) -> Starlette:
        made.append(kwargs)
        return studio_app(*args, **kwargs)

    monkeypatch.setattr(studio_app_module, "studio_app", spied)
    served = ["--store", str(store.path), "--port", "0"]
    limits = {
        "--max-forks": "3",
        "--max-followers": "5",
        "--max-reads": "6",
        "--fork-timeout": "42.5",
        "--max-run-events": "1000",
        "--keepalive": "7.5",
    }
    given = [part for option, value in limits.items() for part in (option, value)]
    assert studio_main([*served, *given], "s") == 0  # (was: unrecognized arguments)
    [kwargs] = made
    assert {name: kwargs[name] for name in kwargs if name not in ("token", "allowed_hosts")} == {
        "max_forks": 3,
        "max_followers": 5,
        "max_reads": 6,
        "fork_timeout": 42.5,
        "max_run_events": 1000,
        "keepalive": 7.5,
    }
    assert studio_main(served, "s") == 0  # (left out: studio_app's own defaults)
    assert set(made[1]) == {"token", "allowed_hosts"}
    for refused, said in (
        (["--max-forks", "0"], "argument --max-forks: studio_app needs max_forks"),
        (["--fork-timeout", "0"], "argument --fork-timeout: studio_app needs fork_timeout"),
        (["--keepalive", "inf"], "argument --keepalive: studio_app needs keepalive"),
    ):
        assert said in _refused_by_studio([*served, *refused], capsys)
    assert len(configs) == 2  # (nothing served with a limit it cannot keep)
    with pytest.raises(SystemExit):
        studio_main(["--help"], "s")
    assert "--max-run-events N" in capsys.readouterr().out


async def test_miniagents_studio_answers_by_the_host_it_listens_on_as_it_prints_its_address(
    store: RunStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = configs_run(monkeypatch)
    served = ["--store", str(store.path), "--port", "0", "--host", "127.0.0.2"]
    assert studio_main(served, "s") == 0
    printed = re.search(r"at http://(127\.0\.0\.2:\d+)/#token=(\S+)", capsys.readouterr().out)
    assert printed is not None
    host, token = printed.groups()
    (config,) = configs
    async with bounded(config) as port, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{port}"
        headers = {"Host": host, "Authorization": f"Bearer {token}"}
        # the page and the API by the printed address (was: 400 host_not_allowed for both)
        assert (await client.get(f"{url}/", headers=headers)).status_code == 200
        assert (await client.get(f"{url}/api/runs", headers=headers)).status_code == 200
        other = {**headers, "Host": f"127.0.0.3:{port}"}  # (another name of this machine)
        refused = await client.get(f"{url}/api/runs", headers=other)
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "host_not_allowed")
    said = _refused_by_studio([*served[:-1], "http://127.0.0.2"], capsys)
    assert "argument --host: 'http://127.0.0.2' is no host name nor address" in said
    assert len(configs) == 1  # (nothing served)


def test_a_token_that_is_not_ascii_is_refused_by_the_app_and_the_command(
    store: RunStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """(It was taken and never matched: a header is read as Latin-1, the token compared as
    UTF-8, and a browser's fetch sends no other header: every request a 401, nothing said.)"""
    token = "clé-secrète-du-studio"
    with pytest.raises(StudioConfigurationError) as refused:
        studio_app(store, token=token)
    assert "not ASCII" in str(refused.value)
    assert "secrets.token_urlsafe()" in str(refused.value)
    assert refused.value.parameter == "token"
    configs = configs_run(monkeypatch)
    said = _refused_by_studio(["--store", str(store.path), "--port", "0", "--token", token], capsys)
    assert "argument --token: The studio's token is not ASCII" in said
    assert configs == []


def _refused_by_studio(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What ``miniagents studio`` says on stderr as it refuses ``arguments`` (status 2)."""
    with pytest.raises(SystemExit) as exited:
        studio_main(arguments, "s")
    assert exited.value.code == 2
    return capsys.readouterr().err


async def test_the_studios_server_bounds_its_connections_and_the_size_of_their_headers(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = configs_run(monkeypatch)
    served = ["--store", str(store.path), "--port", "0"]
    assert studio_main(served, "s") == 0
    (config,) = configs  # the apps' one serving (was: the studio's own, with no deadline)
    assert (getattr(config.http, "most", None), config.timeout_keep_alive) == (128, 5)
    assert getattr(config.http, "deadline", None) == HEADERS_SECONDS
    assert config.h11_max_incomplete_event_size == 16 * 1024
    # (one connection served: a second is one too many)
    assert studio_main([*served, "--max-connections", "1"], "s") == 0
    (_default, config) = configs
    server = uvicorn.Server(config)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    address = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=address) as first, httpx.AsyncClient() as second:
            assert (await first.get("/api/runs")).status_code == 401  # (kept alive, open)
            refused = await second.get(f"{address}/api/runs", headers=AUTH)
            assert (refused.status_code, refused.text) == (503, "Service Unavailable")
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        writer.write(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"x" * 20_000)
        # (headers not ended, past 16 KiB: refused, not read on and kept)
        assert (await reader.readline()).startswith(b"HTTP/1.1 400 ")
        writer.close()
        await writer.wait_closed()
    finally:
        server.should_exit = True
        await serving
        listener.close()


async def test_reads_of_whole_runs_past_the_most_at_once_are_a_503_to_retry(
    store: RunStore, recorded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, released = threading.Event(), threading.Event()
    read_whole = RunTree.of

    def held(runs: RunStore, run: str, max_events: int) -> RunTree:
        entered.set()
        released.wait(WAIT)
        return read_whole(runs, run, max_events)

    monkeypatch.setattr(RunTree, "of", held)
    diff = f"/api/diff?left={recorded}&right={recorded}"
    async with served(studio_app(store, token=TOKEN, max_reads=1)) as client:
        first = asyncio.create_task(client.get(diff, headers=AUTH))
        await asyncio.to_thread(entered.wait, WAIT)  # (the first diff reads, held)
        refused = [  # (was: each read at once, however many)
            await client.get(diff, headers=AUTH),
            await client.post(
                f"/api/runs/{recorded}/fork",
                headers={**AUTH, "Content-Type": "application/json"},
                json={"call": 1, "reply": "Hi."},
            ),
        ]
        for response in refused:
            assert (response.status_code, response.headers["retry-after"]) == (503, "1")
            error = response.json()["error"]
            assert error["code"] == "too_many_reads"
            assert error["message"].endswith("at once as it may (1); retry in a moment.")
        released.set()
        assert (await first).status_code == 200
        assert (await client.get(diff, headers=AUTH)).status_code == 200  # (its place back)


async def test_a_fork_past_the_most_running_is_a_429_before_its_run_is_read(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connected, released = asyncio.Event(), asyncio.Event()

    async def held(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()  # (the fork's program runs, waiting for a byte)
        await released.wait()
        writer.write(b"!")
        await writer.drain()
        writer.close()

    gate = await asyncio.start_server(held, "127.0.0.1", 0)
    port = gate.sockets[0].getsockname()[1]
    waiting = f"import socket; socket.create_connection(('127.0.0.1', {port})).recv(1)"
    run_id = "20261129-000000-held00"
    _record_a_run_of(store, run_id, (sys.executable, "-c", waiting), tmp_path)
    reads: list[str] = []
    read_whole = RunTree.of

    def counted(runs: RunStore, run: str, max_events: int) -> RunTree:
        reads.append(run)
        return read_whole(runs, run, max_events)

    monkeypatch.setattr(RunTree, "of", counted)
    fork = f"/api/runs/{run_id}/fork"
    asked = {"call": 1, "system": "Be brief."}
    async with gate, served(studio_app(store, token=TOKEN, max_forks=1)) as client:
        first = await client.post(fork, headers=AUTH, json=asked)
        assert first.status_code == 202, first.text
        await asyncio.wait_for(connected.wait(), WAIT)
        assert len(reads) == 1
        refused = await client.post(fork, headers=AUTH, json=asked)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "too_many_forks"
        assert len(reads) == 1  # (was: the run read whole, then refused)
        released.set()
        state = f"/api/forks/{first.json()['run']}"

        async def ended() -> dict[str, Any]:
            found: dict[str, Any] = {"running": True}
            while found["running"]:
                found = (await client.get(state, headers=AUTH)).json()
            return found

        assert (await asyncio.wait_for(ended(), WAIT))["returncode"] == 0


def _record_a_run_of(store: RunStore, run_id: str, command: tuple[str, ...], folder: Path) -> None:
    """Record the ended run ``run_id`` of ``command``, with one call, forkable at call 1."""
    name = run_id.rsplit("-", 1)[-1]
    store.open_run(
        RunInfo(run_id, name, command, str(folder), 0.0, None, "running", None, None, None)
    )
    request = {"provider": "openai", "model": "m", "key": "k", "request": {"messages": []}}
    store.append(run_id, [(1, 1, encode_batch([("call", 1, None, 0, request)]))])
    store.end_run(run_id, "ok", None)


async def _forked(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """Fork ``run_id`` at its call 1 through the studio's API: the fork's state once it ended."""
    asked = await client.post(
        f"/api/runs/{run_id}/fork", headers=AUTH, json={"call": 1, "system": "Be brief."}
    )
    assert asked.status_code == 202, asked.text
    fork = f"/api/forks/{asked.json()['run']}"

    async def ended() -> dict[str, Any]:
        state: dict[str, Any] = {"running": True}
        while state["running"]:
            state = (await client.get(fork, headers=AUTH)).json()
        return state

    return await asyncio.wait_for(ended(), WAIT)


async def test_a_fork_whose_program_cannot_start_shows_its_error_by_reference_only(
    store: RunStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a run recorded with a key among its arguments, whose program is gone: the error of
    # starting it again names the command line (was: shown to the page as written)
    command = (str(tmp_path / "gone"), "--api-key", "sk-live-secret")
    run_id = "20261129-000000-gone00"
    _record_a_run_of(store, run_id, command, tmp_path)
    with caplog.at_level(logging.ERROR, logger="miniagents.ext.studio"):
        async with served(studio_app(store, token=TOKEN)) as client:
            state = await _forked(client, run_id)
    shown = state["error"]
    assert "sk-live-secret" not in shown
    assert shown.startswith("The fork's program failed with StudioForkError.")
    reference = re.search(r"the reference ([0-9a-f]{32})", shown)
    assert reference is not None, shown
    logged = [record for record in caplog.records if reference.group(1) in record.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "sk-live-secret" in str(logged[0].exc_info[1])  # (the log has it whole)


async def test_a_forks_output_is_shown_with_its_environments_secrets_redacted(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (was: shown as written: a key the program printed was on the page)
    monkeypatch.setenv("SERVICE_SECRET", "hunter2-but-longer")  # (the studio's environment)
    monkeypatch.setenv("SHORT_PASSWORD", "pw")  # (too short to tell from a word: kept)
    printing = (
        "import os; print('key', os.environ['MY_API_KEY'], 'and', os.environ['SERVICE_SECRET'],"
        " os.environ['SHORT_PASSWORD'], os.environ['PLAIN'])"
    )
    command = (sys.executable, "-c", printing)
    run_id = "20261129-000000-print0"
    _record_a_run_of(store, run_id, command, tmp_path)
    environment = {"MY_API_KEY": "sk-test-0123456789", "PLAIN": "sk-test-0123456789-not"}
    async with served(studio_app(store, token=TOKEN, environment=environment)) as client:
        state = await _forked(client, run_id)
    assert state["returncode"] == 0, state
    assert state["output"].strip() == (
        "key [redacted: MY_API_KEY] and [redacted: SERVICE_SECRET] pw [redacted: MY_API_KEY]-not"
    )


async def test_a_secret_cut_in_two_where_the_kept_output_begins_is_not_shown(
    store: RunStore, tmp_path: Path
) -> None:
    # (was: the fork kept the last 64 KB of the output, then the page redacted the secrets:
    # the end of one cut at the 64 KB boundary no longer matched, and was shown as it is)
    secret = "sk-" + "".join(f"{number:04d}" for number in range(750))[:2997]  # 3,000 chars
    lines = 30  # (90,030 bytes: the last 65,536 begin 486 characters into the 9th secret)
    printing = f"import os, sys; sys.stdout.write((os.environ['MY_API_KEY'] + '\\n') * {lines})"
    command = (sys.executable, "-c", printing)
    run_id = "20261129-000000-print1"
    _record_a_run_of(store, run_id, command, tmp_path)
    environment = {"MY_API_KEY": secret}
    async with served(studio_app(store, token=TOKEN, environment=environment)) as client:
        state = await _forked(client, run_id)
    assert state["returncode"] == 0, state
    assert secret[-8:] not in state["output"]
    assert state["output"] == "[redacted: MY_API_KEY]\n" * 21  # (the 21 whole ones kept)


async def test_a_mounted_studio_stops_its_forks_as_the_host_app_stops_with_its_lifespan(
    store: RunStore, tmp_path: Path
) -> None:
    """A studio mounted in a host app whose lifespan enters ``studio_lifespan``: the program
    of a fork still running is stopped as the host app's server stops. (Starlette runs no
    lifespan of a mounted app: the program went on after the server stopped.)"""
    connected, gone = asyncio.Event(), asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()  # (the fork's program runs, waiting for a byte it never gets)
        await reader.read()  # (its end: the program was killed)
        gone.set()
        writer.close()

    gate = await asyncio.start_server(held, "127.0.0.1", 0)
    port = gate.sockets[0].getsockname()[1]
    waiting = f"import socket; socket.create_connection(('127.0.0.1', {port})).recv(1)"
    run_id = "20261129-000000-mount0"
    _record_a_run_of(store, run_id, (sys.executable, "-c", waiting), tmp_path)
    studio = studio_app(store, token=TOKEN)

    @contextlib.asynccontextmanager
    async def lifespan(_host: Starlette) -> AsyncIterator[None]:
        async with studio_lifespan(studio):
            yield

    host = Starlette(routes=[Mount("/studio", app=studio)], lifespan=lifespan)
    async with gate:
        async with served(host) as client:
            asked = await client.post(
                f"/studio/api/runs/{run_id}/fork", headers=AUTH, json={"call": 1, "system": "."}
            )
            assert asked.status_code == 202, asked.text
            await asyncio.wait_for(connected.wait(), WAIT)
            assert not gone.is_set()
        await asyncio.wait_for(gone.wait(), WAIT)  # (was: it ran on, the server stopped)
    assert studio.state.forks.running() == 0


def test_studio_lifespan_refuses_an_app_the_studio_did_not_make() -> None:
    with pytest.raises(StudioConfigurationError, match="the app that studio_app made"):
        studio_lifespan(Starlette())


class _WatchFailingStore(RunStore):
    """A store whose first look of a watch (a read of one chunk) fails with a bug's error."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.loop = asyncio.get_running_loop()
        self.failed = asyncio.Event()

    def chunks(self, run_id: str, after: int = 0, limit: int = 20) -> list[Chunk]:
        if limit == 1 and not self.failed.is_set():
            self.loop.call_soon_threadsafe(self.failed.set)
            raise RuntimeError("a bug of the store")
        return super().chunks(run_id, after, limit)


async def test_a_watch_whose_store_fails_is_logged_once_and_its_followers_go_on(
    store: RunStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The watch of a live run fails with an error that is no ``StudioError``: it is logged
    once, whole, and its follower looks again at once (a new watch) and gets the run's end,
    told nothing of it. The log's line names no reference: no client is told one to look up
    (a follower whose own look failed would be told its own failure, by the reference the
    log has that under). (Was: the watch's task ended with the error, never retrieved, and
    its followers waited for the keepalive, 15 s; then a reference no client was shown.)"""
    gate = asyncio.Event()
    failing = _WatchFailingStore(store.path)
    with caplog.at_level(logging.ERROR, logger="miniagents.ext.studio"):
        async with served(studio_app(failing, token=TOKEN)) as client:
            with Recorder(store, command=()) as recorder:
                async with MiniAgents():
                    reply = gated(gate).inquire()
                    recorder.flush()
                    url = f"/api/runs/{recorder.run_id}/events"
                    async with client.stream("GET", url, headers=AUTH) as response:
                        lines = response.aiter_lines()
                        first = [line async for line in _until_data(lines)]
                        await asyncio.wait_for(failing.failed.wait(), WAIT)
                        gate.set()
                        await reply
                        recorder.close()

                        async def rest() -> list[str]:
                            return [line async for line in lines]

                        ended = await asyncio.wait_for(rest(), WAIT)
    assert first[0] == "id: 1"
    assert "event: end" in ended
    assert "event: error" not in first + ended
    logged = [record for record in caplog.records if record.name == "miniagents.ext.studio"]
    assert [record.getMessage() for record in logged] == [
        f"The studio's watch of the run {recorder.run_id} failed with RuntimeError; its "
        "followers look again."
    ]
    assert logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], RuntimeError)


class _FailingLooks:
    """A store whose every look of a watch fails, as a broken disk's."""

    def chunks(self, run_id: str, after: int = 0, limit: int = 20) -> list[Chunk]:
        raise RuntimeError("a bug of the store")


async def test_the_failures_of_the_watches_of_a_thousand_runs_log_a_bounded_number_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A thousand short runs followed one after the other (100 s), each one's watch failing
    once, the store broken: the lines logged are bounded across the runs, the first failure
    whole and at most one line of those since each 60 s. (Was: the bound was each run's
    watch's own, so each of the thousand was logged whole, with its traceback.)"""
    watches = studio_app_module._Watches(cast(RunStore, _FailingLooks()))
    runs = [f"20261129-000000-r{number:05}" for number in range(1_000)]
    with caplog.at_level(logging.INFO, logger="miniagents.ext.studio"), virtual_time():
        for run_id in runs:
            watch = watches.follow(run_id)
            changed = watch.changed
            watch.look_on()
            await changed.wait()  # (its watch failed: its follower leaves, the run ended)
            assert watch.task is not None
            await watch.task
            watches.leave(run_id)
    logged = [record for record in caplog.records if record.name == "miniagents.ext.studio"]
    assert len(logged) == 2, [record.getMessage() for record in logged]  # (was: 1,000)
    assert logged[0].getMessage() == (
        f"The studio's watch of the run {runs[0]} failed with RuntimeError; its followers look "
        "again."
    )
    assert logged[0].exc_info is not None
    assert logged[1].exc_info is None
    assert "failed again with RuntimeError (the watches' failures since the last line: " in (
        logged[1].getMessage()
    )
    assert watches.watches == {}


class _FlakyStore:
    """A store whose watch's looks fail ``failures`` times, then read a run that has ended."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def chunks(self, run_id: str, after: int = 0, limit: int = 20) -> list[Chunk]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("a bug of the store")
        return []

    def run(self, run_id: str) -> SimpleNamespace:
        return SimpleNamespace(status="ended")


async def test_a_watch_whose_store_fails_again_and_again_logs_a_bounded_number_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A store that fails each watch's look for 70 s (each 0.1 s, a new watch started by
    the follower its failure woke, 700 failures), then reads: the first failure is logged
    whole, the next one to come 60 s after it gives one line of the failures since, without
    a traceback, and one line says the store reads again and after how many failures.
    (Was: each of the 700 was logged whole, an ``ERROR`` with its traceback.)"""
    failures = 700
    flaky = _FlakyStore(failures)
    watch = studio_app_module._Watch(cast(RunStore, flaky), "20261129-000000-flaky0")
    with caplog.at_level(logging.INFO, logger="miniagents.ext.studio"), virtual_time():
        for _ in range(failures + 1):  # (each failure wakes the follower, which looks on)
            changed = watch.changed
            watch.look_on()
            await changed.wait()
        assert watch.task is not None
        await watch.task
    assert flaky.failures == 0
    logged = [record for record in caplog.records if record.name == "miniagents.ext.studio"]
    lines = [record.getMessage() for record in logged]
    assert len(lines) == 3, lines
    assert lines[0] == (
        "The studio's watch of the run 20261129-000000-flaky0 failed with RuntimeError; its "
        "followers look again."
    )
    assert logged[0].exc_info is not None
    again = re.fullmatch(
        r"The studio's watch of the run 20261129-000000-flaky0 failed again with "
        r"RuntimeError \(the watches' failures since the last line: (\d+)\); its followers "
        r"look again\.",
        lines[1],
    )
    assert again is not None, lines[1]
    assert int(again[1]) in (600, 601)  # (the one 60 s after the first, to a float's rounding)
    assert logged[1].levelno == logging.ERROR
    assert logged[1].exc_info is None
    assert lines[2] == (
        "The studio's watch of the run 20261129-000000-flaky0 reads the store again "
        f"(failures in a row before: {failures})."
    )
    assert logged[2].levelno == logging.WARNING


async def test_a_fork_that_just_ended_shows_its_result_before_its_tasks_callback_runs(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state of a fork asked for between the end of its program's task and that task's
    callback (a moment later) shows how it ended. (Was: ``running`` false, with neither
    its exit status nor an error: a page polling then showed an ended fork with no result.)"""
    run_id = "20261129-000000-ended0"
    _record_a_run_of(store, run_id, (sys.executable, "-c", "pass"), tmp_path)
    app = studio_app(store, token=TOKEN)
    seen: list[dict[str, Any] | None] = []
    looked = asyncio.Event()

    async def ended_at_once(_runs: RunStore, planned: Fork, **_options: Any) -> ForkResult:
        def look() -> None:  # (queued before the task's callback: it runs first)
            seen.append(app.state.forks.state(planned.child))
            looked.set()

        asyncio.get_running_loop().call_soon(look)
        return ForkResult(planned.child, 0, "done\n")

    monkeypatch.setattr(studio_app_module, "afork", ended_at_once)
    async with served(app) as client:
        asked = await client.post(
            f"/api/runs/{run_id}/fork", headers=AUTH, json={"call": 1, "system": "."}
        )
        assert asked.status_code == 202, asked.text
        await asyncio.wait_for(looked.wait(), WAIT)
    child = asked.json()["run"]
    assert seen == [
        {"run": child, "running": False, "error": None, "returncode": 0, "output": "done\n"}
    ]


class _ReadFailingStore(RunStore):
    """A store whose reads of a run's chunks for a follower fail with ``failure``."""

    def __init__(self, path: Path, failure: Exception) -> None:
        super().__init__(path)
        self.failure = failure

    def chunks(self, run_id: str, after: int = 0, limit: int = 20) -> list[Chunk]:
        raise self.failure


@pytest.mark.parametrize(
    "failure",
    [
        OSError(5, "Input/output error"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        RuntimeError("a bug of the store"),
    ],
    ids=["disk", "decoding", "bug"],
)
async def test_a_followers_read_that_fails_otherwise_ends_its_stream_with_an_error_event(
    store: RunStore, recorded: str, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    """A follower's read of the store fails with an error that is no ``StudioStoreError``
    (a disk's ``OSError``, a record that does not decode, a store's bug): its stream ends,
    whole, with an ``error`` event naming the run, the error's class and a reference, and
    the error is logged once under it. (Was: the follower ended with the error unhandled,
    and its client's stream was cut without a word.)"""
    failing = _ReadFailingStore(store.path, failure)
    with caplog.at_level(logging.ERROR, logger="miniagents.ext.studio"):
        async with (
            served(studio_app(failing, token=TOKEN)) as client,
            client.stream("GET", f"/api/runs/{recorded}/events", headers=AUTH) as response,
        ):
            events = await _events(response)  # (was: httpx.RemoteProtocolError)
    failing.close()
    [(kind, said)] = events
    assert kind == "error"
    kind_name = type(failure).__name__
    found = re.fullmatch(
        rf"Reading the events of the run {recorded} failed with {kind_name}\. The server's "
        r"log has the error under the reference ([0-9a-f]{32}): ask the studio's operator to "
        r"look it up there\. Follow the run again \(reload the page\) once it is fixed\.",
        said["message"],
    )
    assert found is not None, said
    logged = [record for record in caplog.records if record.name == "miniagents.ext.studio"]
    assert [record.getMessage() for record in logged] == [
        f"Following the events of the run {recorded} failed with {kind_name} "
        f"(reference {found.group(1)})."
    ]
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[1] is failure


async def test_a_mounted_studio_whose_lifespan_never_started_refuses_forks_naming_it(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A studio mounted in a host app whose lifespan does not enter ``studio_lifespan``: a
    fork is a 503 that names it, and starts no program; the rest of the API answers. (Was:
    the fork started, its program left running as the server stopped, with no word.)"""
    run_id = "20261129-000000-nolif0"
    _record_a_run_of(store, run_id, (sys.executable, "-c", "pass"), tmp_path)
    started: list[str] = []

    async def recorded_fork(_runs: RunStore, planned: Fork, **_options: Any) -> ForkResult:
        started.append(planned.child)
        return ForkResult(planned.child, 0, "")

    monkeypatch.setattr(studio_app_module, "afork", recorded_fork)
    studio = studio_app(store, token=TOKEN)
    host = Starlette(routes=[Mount("/studio", app=studio)])  # (no lifespan entering the studio's)
    async with served(host) as client:
        listed = await client.get("/studio/api/runs", headers=AUTH)
        asked = await client.post(
            f"/studio/api/runs/{run_id}/fork", headers=AUTH, json={"call": 1, "system": "."}
        )
    assert listed.status_code == 200
    assert [run["id"] for run in listed.json()["runs"]] == [run_id]
    assert asked.status_code == 503, asked.text  # (was: 202, the program started)
    error = asked.json()["error"]
    assert error["code"] == "no_lifespan"
    assert "studio_lifespan(studio)" in error["message"]
    assert started == []


class _HeldPlans:
    """``plan_fork``, held in its thread until ``released``; what it was asked in, noted.

    ``entered`` has the request's server's stop event (``server_stop()``, in the thread's
    copy of the request's context) once a plan is being read.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.entered: asyncio.Future[asyncio.Event | None] = self.loop.create_future()
        self.released = threading.Event()
        self.started: list[str] = []

    def plan(self, *arguments: Any, **options: Any) -> Fork:
        stop = server_stop()
        self.loop.call_soon_threadsafe(self.entered.set_result, stop)
        self.released.wait(WAIT)  # (a bound, should the test fail before it releases it)
        return plan_fork(*arguments, **options)

    async def afork(self, _runs: RunStore, planned: Fork, **_options: Any) -> ForkResult:
        self.started.append(planned.child)
        return ForkResult(planned.child, 0, "")


async def test_a_fork_whose_run_is_read_as_the_server_begins_to_stop_is_refused(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The studio's server begins to stop while a fork's run is read: the fork is a 503
    (``shutting_down``) and starts no program. (Was: a 202, its program started as the
    server stopped, to be killed a moment later by the lifespan's end.)"""
    run_id = "20261129-000000-stop00"
    _record_a_run_of(store, run_id, (sys.executable, "-c", "pass"), tmp_path)
    held, stop = _HeldPlans(), asyncio.Event()
    monkeypatch.setattr(studio_app_module, "plan_fork", held.plan)
    monkeypatch.setattr(studio_app_module, "afork", held.afork)
    async with served(studio_app(store, token=TOKEN), stop=stop, bounded=True) as client:
        asked = asyncio.create_task(
            client.post(f"/api/runs/{run_id}/fork", headers=AUTH, json={"call": 1, "system": "."})
        )
        stopping = await asyncio.wait_for(held.entered, WAIT)
        assert stopping is not None
        assert not stopping.is_set()
        stop.set()  # (the server's shutdown begins: the request's connection is told)
        await asyncio.wait_for(stopping.wait(), WAIT)
        held.released.set()
        answer = await asyncio.wait_for(asked, WAIT)
    assert answer.status_code == 503, answer.text  # (was: 202)
    assert answer.json()["error"] == {
        "code": "shutting_down",
        "message": "The studio is shutting down: a fork started now would be stopped at once. "
        "Fork again once the studio has started again.",
    }
    assert held.started == []


async def test_a_fork_whose_run_is_read_as_the_studios_lifespan_ends_is_refused(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The studio's lifespan ends (its forks stopped) while a fork's run is read: the fork is
    a 503 (``shutting_down``) and starts no program. (Was: a 202, its program started after
    the lifespan had stopped the forks, and nothing stopped it.)"""
    run_id = "20261129-000000-stop01"
    _record_a_run_of(store, run_id, (sys.executable, "-c", "pass"), tmp_path)
    held = _HeldPlans()
    monkeypatch.setattr(studio_app_module, "plan_fork", held.plan)
    monkeypatch.setattr(studio_app_module, "afork", held.afork)
    studio = studio_app(store, token=TOKEN)
    lifespan = studio_lifespan(studio)
    transport = httpx.ASGITransport(app=studio)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        await lifespan.__aenter__()
        try:
            asked = asyncio.create_task(
                client.post(
                    f"/api/runs/{run_id}/fork", headers=AUTH, json={"call": 1, "system": "."}
                )
            )
            await asyncio.wait_for(held.entered, WAIT)
        finally:
            await lifespan.__aexit__(None, None, None)  # (its forks stopped: none runs)
        held.released.set()
        answer = await asyncio.wait_for(asked, WAIT)
    assert answer.status_code == 503, answer.text  # (was: 202)
    assert answer.json()["error"]["code"] == "shutting_down"
    assert held.started == []


class _FailingStore(RunStore):
    """A store whose reads of runs (the list, one run) fail with ``failure``."""

    def __init__(self, path: Path, failure: Exception) -> None:
        super().__init__(path)
        self.failure = failure

    def runs(self, limit: int = 20) -> list[RunInfo]:
        raise self.failure

    def run(self, run_id: str) -> RunInfo:
        raise self.failure


@pytest.mark.parametrize(
    "failure",
    [OSError(5, "Input/output error: /srv/runs.sqlite"), RuntimeError("a bug of the store")],
    ids=["disk", "bug"],
)
async def test_an_unexpected_error_of_the_api_is_a_json_500_by_reference_logged_once(
    store: RunStore, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    """A read of the API fails with an error that is no ``StudioError`` (a disk's
    ``OSError``, a store's bug): each request is a 500 in the studio's JSON shape, naming
    the error's class and a reference, the error logged once under it, its text shown to
    nobody. (Was: Starlette's plain-text "Internal Server Error", the error logged by the
    server with no reference to match.)"""
    failing = _FailingStore(store.path, failure)
    paths = ["/api/runs", "/api/runs/last", "/api/runs/last/events", "/api/diff?left=a&right=b"]
    with caplog.at_level(logging.ERROR):
        async with served(studio_app(failing, token=TOKEN)) as client:
            answers = [await client.get(path, headers=AUTH) for path in paths]
    failing.close()
    kind = type(failure).__name__
    references = []
    for path, answer in zip(paths, answers, strict=True):
        assert answer.status_code == 500, answer.text
        assert answer.headers["content-type"] == "application/json"  # (was: text/plain)
        said = answer.json()["error"]
        assert said["code"] == "server_error"
        found = re.fullmatch(
            rf"The studio's answer to GET {re.escape(path.partition('?')[0])} failed with "
            rf"{kind}\. The server's log has the error under the reference ([0-9a-f]{{32}}): "
            r"ask the studio's operator to look it up there\. Retry once it is fixed\.",
            said["message"],
        )
        assert found is not None, said
        assert str(failure) not in answer.text
        references.append(found.group(1))
    assert len(set(references)) == len(paths)
    assert [(record.name, record.getMessage()) for record in caplog.records] == [
        (
            "miniagents.ext.studio",
            f"Answering GET {path.partition('?')[0]} failed with {kind} (reference {reference}).",
        )
        for path, reference in zip(paths, references, strict=True)
    ]
    assert all(record.exc_info and record.exc_info[1] is failure for record in caplog.records)


async def test_the_forks_kept_past_the_hundredth_drop_the_oldest_ended_not_a_running_one(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The studio keeps the last 100 forks' states: with the oldest one still running, the
    oldest ended one is dropped as the 101st starts, the running one kept (its state still
    shown). (Was: the trimming stopped at the running one, so every fork after it was kept
    until it ended, past 100.)"""
    run_id = "20261129-000000-keep00"
    _record_a_run_of(store, run_id, (sys.executable, "-c", "pass"), tmp_path)
    held = asyncio.Event()
    started: asyncio.Queue[asyncio.Task[Any]] = asyncio.Queue()
    programs = itertools.count(1)

    async def quick_or_held(_runs: RunStore, planned: Fork, **_options: Any) -> ForkResult:
        task = asyncio.current_task()
        assert task is not None
        started.put_nowait(task)
        if next(programs) == 1:
            await held.wait()  # (the first fork runs until the test ends it)
        return ForkResult(planned.child, 0, "")

    monkeypatch.setattr(studio_app_module, "afork", quick_or_held)
    app = studio_app(store, token=TOKEN)
    transport = httpx.ASGITransport(app=app)
    async with (
        studio_lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://localhost") as client,
    ):
        children = []
        for _ in range(101):
            asked = await client.post(
                f"/api/runs/{run_id}/fork", headers=AUTH, json={"call": 1, "system": "."}
            )
            assert asked.status_code == 202, asked.text
            children.append(asked.json()["run"])
            program = await asyncio.wait_for(started.get(), WAIT)
            if len(children) > 1:
                await asyncio.wait_for(program, WAIT)  # (ended before the next starts)
        states = [await client.get(f"/api/forks/{child}", headers=AUTH) for child in children]
        held.set()
    assert next(programs) == 102
    assert states[0].json()["running"] is True  # (the running one kept)
    assert states[1].status_code == 404  # (was: 200, kept: 101 forks)
    assert [state.status_code for state in states[2:]] == [200] * 99
    assert all(state.json()["running"] is False for state in states[2:])


async def test_a_studio_served_by_two_servers_stops_its_forks_as_the_last_one_stops(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One studio app served by two servers at once (its lifespan entered twice): the first
    server's stop leaves the forks running and the other server forking; the last one's
    stops them, and refuses forks. (Was: the first to stop stopped every fork, the other
    server's too, and the other server refused forks from then on, ``shutting_down``.)"""
    run_id = "20261129-000000-twice0"
    _record_a_run_of(store, run_id, (sys.executable, "-c", "pass"), tmp_path)

    async def held(_runs: RunStore, planned: Fork, **_options: Any) -> ForkResult:
        await asyncio.Event().wait()  # (runs until it is stopped)
        return ForkResult(planned.child, 0, "")

    monkeypatch.setattr(studio_app_module, "afork", held)
    app = studio_app(store, token=TOKEN, max_forks=3)
    fork = f"/api/runs/{run_id}/fork"
    body = {"call": 1, "system": "."}
    async with contextlib.AsyncExitStack() as second:
        other = await second.enter_async_context(served(app))
        async with served(app) as first:
            asked = await first.post(fork, headers=AUTH, json=body)
            assert asked.status_code == 202, asked.text
            children = [asked.json()["run"]]
        # (the first server has stopped, its lifespan ended: the other serves on)
        state = await other.get(f"/api/forks/{children[0]}", headers=AUTH)
        assert state.json()["running"] is True  # (was: False, "cancelled")
        asked = await other.post(fork, headers=AUTH, json=body)
        assert asked.status_code == 202, asked.text  # (was: 503 shutting_down)
        children.append(asked.json()["run"])
    assert app.state.forks.running() == 0
    for child in children:
        assert app.state.forks.state(child)["error"] == "cancelled"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        refused = await client.post(fork, headers=AUTH, json=body)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "shutting_down"


async def test_a_client_that_leaves_while_its_forks_body_is_read_is_answered_nothing(
    store: RunStore,
    recorded: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client closes its connection while the body of its fork is read: the request ends
    quietly, nothing logged above debug. (Was: ``ClientDisconnect`` re-raised, logged by the
    server as an error, "Exception in ASGI application", with its traceback.)"""
    loop = asyncio.get_running_loop()
    entered: asyncio.Future[None] = loop.create_future()
    ended: asyncio.Future[BaseException | None] = loop.create_future()

    async def watched(request: Any, max_bytes: int) -> bytes | None:
        entered.set_result(None)
        try:
            return await aread_bounded(request, max_bytes)
        except BaseException as error:
            ended.set_result(error)
            raise

    monkeypatch.setattr(studio_app_module, "aread_bounded", watched)
    server_log = logging.getLogger("uvicorn")  # (its config keeps it from the root's handlers)
    with caplog.at_level(logging.DEBUG), contextlib.ExitStack() as stack:
        async with served(studio_app(store, token=TOKEN)) as client:
            server_log.addHandler(caplog.handler)  # (once its config has set its handlers)
            stack.callback(server_log.removeHandler, caplog.handler)
            port = client.base_url.port
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST /api/runs/{recorded}/fork HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
                "Content-Length: 100\r\n\r\n{".encode()
            )
            await writer.drain()
            await asyncio.wait_for(entered, WAIT)  # (its body is being read: the client leaves)
            writer.close()
            await writer.wait_closed()
            assert await reader.read() == b""  # (answered nothing)
            assert type(await asyncio.wait_for(ended, WAIT)).__name__ == "ClientDisconnect"
    loud = [record for record in caplog.records if record.levelno > logging.DEBUG]
    assert [(record.name, record.getMessage()) for record in loud] == []  # (was: the error)
