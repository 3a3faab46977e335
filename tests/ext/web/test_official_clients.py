"""The apps' streams, judged by each protocol's own official JavaScript packages.

A uvicorn server on 127.0.0.1 serves ``agui_app`` and ``ai_sdk_app`` for several agents
(offline ones, and an OpenAI agent of the fake LLM server, with the real SDK); one node
process (``js/official_clients.mjs``) drives them as the stock clients do and feeds every
stream to the packages' own parsers, schemas and state machines: ``@ag-ui/client``'s
``HttpAgent`` (its SSE parser, event schemas, verifier and reducer) and the AI SDK's
``Chat`` (``useChat``'s core) with its ``DefaultChatTransport``, ``uiMessageChunkSchema``,
``readUIMessageStream``, ``validateUIMessages`` and ``convertToModelMessages``, in its
majors 5, 6 and 7. Texts, several messages, tool calls with streamed arguments and nested
output, failing tools, agents and models, approvals (approved, edited, denied, asked in the
stream), reconnects with ``Last-Event-ID`` at every event, a reload mid-answer, a page that
stops the answer. The packages are installed from ``js/package-lock.json`` (``npm ci
--prefix tests/ext/web/js``; CI does it): nothing is downloaded at test time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from miniagents import InteractionContext, Message, MessagePromise, MiniAgent, miniagent
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools import FunctionTool, ToolResultMessage
from miniagents.ext.web import NoAuthentication, WebSettings, agui_app, ai_sdk_app
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.web.serving import gated, served, until
from tests.subprocesses import end_process_group

JS = Path(__file__).parent / "js"
SCRIPT = JS / "official_clients.mjs"
NODE_TIMEOUT = 240  # seconds: a guard against a hang (each scenario has its own, of 30 s)


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def weather(city: str) -> str:
    """Get the weather in a city."""
    return f"Sunny in {city}"


def boom(x: int) -> int:
    """A tool that fails."""
    raise ValueError(f"boom {x}")


def delete_file(path: str) -> str:
    """Delete a file (pretend)."""
    return f"Deleted {path}"


helper = offline_agent.fork(alias="HELPER", reply="The helper says hi.", token_delay=0)


@miniagent
async def poet(ctx: InteractionContext, subject: str) -> None:
    """Write a poem.

    Args:
        ctx: The interaction.
        subject: What the poem is about.
    """
    ctx.reply(helper.inquire(subject))


def calls_then(calls: CallTool | list[CallTool], answer: str) -> Callable[[LLMCall], Any]:
    """The offline model's script: ``calls``, then, once their results are in, ``answer``."""

    def reply(call: LLMCall) -> CallTool | list[CallTool] | str:
        answered = call.messages and isinstance(call.messages[-1], ToolResultMessage)
        return answer if answered else calls

    return reply


def tooled(
    tools: list[Any], calls: CallTool | list[CallTool], answer: str
) -> MiniAgent[..., Message]:
    return offline_agent.fork(tools=tools, reply=calls_then(calls, answer), token_delay=0)


@miniagent
async def several(ctx: InteractionContext) -> None:
    """Several messages: one of no tokens, a sub-agent's, one streamed, an empty one."""
    ctx.reply("A message of no tokens.")
    ctx.reply(helper.inquire("hi"))
    ctx.reply(offline_agent.inquire("x", reply="Third message.", token_delay=0))
    ctx.reply("")


@miniagent
async def failing(ctx: InteractionContext) -> None:
    """A message that breaks off mid-way."""

    async def tokens() -> AsyncIterator[str]:
        yield "Some text first. "
        yield "And"
        raise RuntimeError("the agent broke")

    ctx.reply(MessagePromise.from_async_iterable(tokens()))


def conformance_app(llm: FakeLLMServer) -> Starlette:
    """The apps the node script drives, each protocol's at ``/agui/{name}/``, ``/ai/{name}/``.

    Control routes let the script script the fake LLM server, feed the gated agent its
    tokens, and wait until an app has no live run (its cancelled run ended).
    """
    approval = FunctionTool(delete_file, requires_approval=True)
    agents: dict[str, MiniAgent[..., Message]] = {
        "plain": offline_agent.fork(reply="Hello there, friend.", token_delay=0),
        "multi": several,
        "tools": tooled(
            [weather, poet],
            [CallTool("weather", {"city": "Paris"}), CallTool("POET", {"subject": "rivers"})],
            "Both done.",
        ),
        "tool_error": tooled([boom], CallTool("boom", {"x": 1}), "It failed."),
        "agent_error": failing,
        "model": openai_agent.fork(model="gpt-4o-mini", tools=[add], stream=True, max_retries=0),
        "approve": tooled([approval], CallTool("delete_file", {"path": "notes.md"}), "Done."),
        "approve_first": tooled(
            [approval, add],
            [CallTool("delete_file", {"path": "notes.md"}), CallTool("add", {"a": 1, "b": 2})],
            "Done.",
        ),
    }
    queues: dict[str, asyncio.Queue[str | None]] = {"agui": asyncio.Queue(), "ai": asyncio.Queue()}
    apps: dict[str, Starlette] = {}
    # (a scenario approves with edited arguments; the clients get an agent's error as written)
    edits = WebSettings(approval_edits=True, error_texts=True)
    for name, agent in agents.items():
        apps[f"agui/{name}"] = agui_app(agent, authentication=NoAuthentication(), settings=edits)
        apps[f"ai/{name}"] = ai_sdk_app(agent, authentication=NoAuthentication(), settings=edits)
    apps["agui/gated"] = agui_app(
        gated(queues["agui"]),
        authentication=NoAuthentication(),
        settings=WebSettings(grace_period=0),
    )
    apps["ai/gated"] = ai_sdk_app(
        gated(queues["ai"]), authentication=NoAuthentication(), settings=WebSettings(grace_period=0)
    )
    approve = agents["approve"]
    apps["agui-in-stream/approve"] = agui_app(
        approve, authentication=NoAuthentication(), approval_flow="in_stream"
    )
    apps["ai-in-stream/approve"] = ai_sdk_app(
        approve, authentication=NoAuthentication(), approval_flow="in_stream"
    )

    async def script_llm(request: Request) -> Response:
        kind = (await request.json())["kind"]
        if kind == "tool":
            llm.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3})])
            llm.reply(tokens=["It ", "is ", "5."])
        else:  # a stream that breaks after two tokens
            llm.reply(tokens=["Hel", "lo ", "from ", "the ", "model."], cut_after=2)
        return JSONResponse({})

    async def token(request: Request) -> Response:
        queues[request.path_params["protocol"]].put_nowait((await request.json())["token"])
        return JSONResponse({})

    async def idle(request: Request) -> Response:
        app = apps[f"{request.path_params['protocol']}/{request.path_params['name']}"]
        await until(lambda: app.state.runs.live == 0)
        return JSONResponse({})

    routes: list[Route | Mount] = [
        Route("/control/llm", script_llm, methods=["POST"]),
        Route("/control/token/{protocol}", token, methods=["POST"]),
        Route("/control/idle/{protocol}/{name}", idle, methods=["POST"]),
    ]
    routes += [Mount(f"/{path}", app=app) for path, app in apps.items()]
    return Starlette(routes=routes)


def node() -> str:
    """The node executable, with the packages installed (else the test fails saying how)."""
    found = shutil.which("node")
    if found is None:
        pytest.fail(
            "These tests need Node.js 22 or later (node) on the PATH: run `bash .ci/setup`, "
            "which installs it when the machine has none."
        )
    if (
        not (JS / "node_modules" / "@ag-ui" / "client").is_dir()
        or not (JS / "node_modules" / "ai-v5").is_dir()
    ):
        pytest.fail(
            f"The official JavaScript clients are not installed in {JS / 'node_modules'}: "
            "run `npm ci --prefix tests/ext/web/js` (from the repository's root) first."
        )
    return found


async def judged(protocol: str, llm: FakeLLMServer) -> dict[str, Any]:
    """The node script's report on the apps, served for it under uvicorn."""
    executable = node()
    async with served(conformance_app(llm)) as client:
        process = await asyncio.create_subprocess_exec(
            executable,
            str(SCRIPT),
            protocol,
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
    return report


@pytest.fixture
def llm(fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    return fake_llm


@pytest.mark.timeout(300)
async def test_the_official_agui_client_takes_every_stream(llm: FakeLLMServer) -> None:
    report = await judged("agui", llm)
    assert not report["problems"], json.dumps(report["problems"], indent=1)
    assert len(report["checked"]) == 13
    assert report["events"] > 200


@pytest.mark.timeout(300)
async def test_the_official_ai_sdk_clients_v5_v6_v7_take_every_stream(llm: FakeLLMServer) -> None:
    report = await judged("ai-sdk", llm)
    assert not report["problems"], json.dumps(report["problems"], indent=1)
    checked: list[str] = report["checked"]
    assert [name.split(":")[0] for name in checked].count("v5") == 9  # (no approvals in v5)
    assert [name.split(":")[0] for name in checked].count("v6") == 13
    assert [name.split(":")[0] for name in checked].count("v7") == 13
    assert report["events"] > 100  # (the raw streams read; Chat reads many more)


def test_without_the_installed_packages_the_tests_fail_and_say_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(f"{__name__}.JS", tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"npm ci --prefix tests/ext/web/js"):
        node()
