"""``a2a_app`` judged by the official A2A JavaScript client, ``@a2a-js/sdk``.

A uvicorn server on 127.0.0.1 serves ``a2a_app`` for a few agents; one node process
(``tests/ext/web/js/a2a_client.mjs``) drives them as a stock client does
(``ClientFactory.createFromUrl``: the card, then JSON-RPC) and reads every event with the
SDK's own parsers: a streamed text (and the task got again), a tool's call and result kept
apart, an approval asked and decided by the next message, a cancelled task, a stream cut and
followed again with nothing lost, an unknown task. The package is installed from
``tests/ext/web/js/package-lock.json`` (``npm ci --prefix tests/ext/web/js``; CI does it):
nothing is downloaded at test time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from miniagents.ext.a2a import a2a_app
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import NoAuthentication, WebSettings
from tests.ext.web.serving import delete_file, gated, nothing_deleted, served, until  # noqa: F401
from tests.subprocesses import end_process_group

JS = Path(__file__).parent.parent / "web" / "js"
SCRIPT = JS / "a2a_client.mjs"
NODE_TIMEOUT = 180  # seconds: a guard against a hang (each scenario has its own, of 30 s)


def weather(city: str) -> str:
    """Get the weather in a city."""
    return f"Sunny in {city}"


def conformance_app() -> Starlette:
    """The apps the node script drives, at ``/{name}/``, and its control routes."""
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    apps = {
        "plain": a2a_app(
            offline_agent.fork(alias="RESEARCHER", reply="Rivers are long.", token_delay=0),
            authentication=NoAuthentication(),
        ),
        "tools": a2a_app(
            offline_agent.fork(
                tools=[weather],
                reply=one_per_call(CallTool("weather", {"city": "Paris"}), "Sunny."),
                token_delay=0,
            ),
            authentication=NoAuthentication(),
        ),
        "approve": a2a_app(
            offline_agent.fork(
                tools=[FunctionTool(delete_file, requires_approval=True)],
                reply=one_per_call(CallTool("delete_file", {"path": "notes.md"}), "Done."),
                token_delay=0,
            ),
            authentication=NoAuthentication(),
            settings=WebSettings(approval_edits=True),
        ),
        "gated": a2a_app(gated(tokens), authentication=NoAuthentication()),
    }

    async def token(request: Request) -> Response:
        tokens.put_nowait((await request.json())["token"])
        return JSONResponse({})

    async def idle(request: Request) -> Response:
        app = apps[request.path_params["name"]]
        await until(lambda: app.state.runs.live == 0)
        return JSONResponse({})

    async def reached(request: Request) -> Response:
        body = await request.json()
        job = apps[request.path_params["name"]].state.runs.job(body["task"])
        await until(lambda: len(job.current.events) >= body["events"])
        return JSONResponse({})

    routes: list[Route | Mount] = [
        Route("/control/token", token, methods=["POST"]),
        Route("/control/idle/{name}", idle, methods=["POST"]),
        Route("/control/reached/{name}", reached, methods=["POST"]),
    ]
    return Starlette(routes=[*routes, *(Mount(f"/{name}", app=app) for name, app in apps.items())])


def node() -> str:
    """The node executable, with the package installed (else the test fails saying how)."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("This test needs Node.js (node, v20 or later) on the PATH: install it.")
    if not (JS / "node_modules" / "@a2a-js" / "sdk").is_dir():
        pytest.fail(
            f"The official A2A JavaScript client is not installed in {JS / 'node_modules'}: "
            "run `npm ci --prefix tests/ext/web/js` (from the repository's root) first."
        )
    return found


@pytest.mark.timeout(240)
async def test_the_official_javascript_client_takes_every_stream() -> None:
    executable = node()
    async with served(conformance_app()) as client:
        process = await asyncio.create_subprocess_exec(
            executable,
            str(SCRIPT),
            str(client.base_url).rstrip("/"),
            cwd=JS,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            process_group=0,  # (it leads a group: ended with all it started, whatever happens)
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT)
        except TimeoutError:
            end_process_group(process)
            out, err = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT)
            pytest.fail(f"The node script did not end in {NODE_TIMEOUT} s: {err.decode()[-4000:]}")
        finally:
            end_process_group(process)
    assert process.returncode == 0, err.decode()[-4000:]
    report: dict[str, Any] = json.loads(out)
    assert not report["problems"], json.dumps(report["problems"], indent=1)
    assert len(report["checked"]) == 6
    assert report["events"] > 20


def test_without_the_installed_package_the_test_fails_and_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(f"{__name__}.JS", tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"npm ci --prefix tests/ext/web/js"):
        node()
