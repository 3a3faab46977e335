"""Static typing tests for ``miniagents.ext.web``: the apps and their arguments.

The ``check_*`` functions are never called: mypy checks them (``mypy.ini`` is strict, with
``warn_unused_ignores``); each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_web_types_pass_mypy` runs the check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Literal, assert_type

from ag_ui.core import RunAgentInput
from starlette.applications import Starlette

from miniagents import InteractionContext, Message, MessagePromise, MiniAgents, miniagent
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.web import (
    BearerTokenAuth,
    NoAuthentication,
    WebSettings,
    agui_app,
    ai_sdk_app,
    web_chat_app,
)
from miniagents.ext.web.agui import ApprovalFlow as AGUIApprovalFlow
from miniagents.ext.web.ai_sdk import ApprovalFlow as AISDKApprovalFlow
from miniagents.ext.web.ai_sdk import ChatRequest
from miniagents.ext.web.auth import Authentication
from miniagents.ext.web.lowlevel import ToldResult
from miniagents.ext.web.serving import server_stop
from miniagents.ext.web.settings import checked_host
from tests.fakes.typecheck import assert_passes_mypy


@miniagent
async def greeter(ctx: InteractionContext, name: str = "you") -> None:
    ctx.reply(f"Hello, {name}!")


def thread_of(run: RunAgentInput) -> Mapping[str, object]:
    return {"name": run.thread_id}


def chat_of(request: ChatRequest) -> Mapping[str, object]:
    return {"name": request.id}


LOCAL = NoAuthentication()


def check_the_apps_are_starlette_apps_of_any_agent() -> None:
    assert_type(agui_app(greeter, authentication=LOCAL), Starlette)
    assert_type(ai_sdk_app(offline_agent, authentication=LOCAL), Starlette)
    assert_type(
        agui_app(
            greeter,
            authentication=LOCAL,
            settings=WebSettings(
                grace_period=0, keep_runs_for=60.0, max_body_bytes=10_000, max_live_runs=10
            ),
            arguments=thread_of,
            context=lambda: MiniAgents(llm_stall_timeout=5),
            inputs=["state", "tools", "context", "forwarded_props"],
            approval_flow="protocol",
        ),
        Starlette,
    )
    assert_type(ai_sdk_app(greeter, authentication=LOCAL, arguments=chat_of), Starlette)
    assert_type(ai_sdk_app(greeter, authentication=LOCAL, approval_flow="in_stream"), Starlette)
    assert_type(web_chat_app(greeter, page=Path("index.html"), authentication=LOCAL), Starlette)


def check_the_settings_are_one_typed_object() -> None:
    settings = WebSettings(
        allowed_hosts=["chat.example.com", "*.example.com"],
        allowed_origins=("https://chat.example.com",),
        approval_edits=True,
        grace_period=None,
        keep_runs_for=60,
        max_live_runs=20,
        max_live_runs_per_principal=2,
        max_ended_runs=0,
        max_ended_run_bytes=1_000_000,
        max_streams=100,
        max_streams_per_principal=5,
        max_body_bytes=10_000,
    )
    assert_type(settings.allowed_hosts, Sequence[str])
    assert_type(settings.approval_edits, bool)
    assert_type(settings.grace_period, float | None)
    assert_type(settings.max_streams_per_principal, int)
    assert_type(dataclasses.replace(settings, max_live_runs=5), WebSettings)
    assert_type(ai_sdk_app(greeter, authentication=LOCAL, settings=settings), Starlette)
    WebSettings(10)  # type: ignore[call-arg, arg-type]
    WebSettings(max_live_runs="many")  # type: ignore[arg-type]
    WebSettings(grace_period="soon")  # type: ignore[arg-type]
    WebSettings(allowed_hosts=[1])  # type: ignore[list-item]
    WebSettings(max_live=3)  # type: ignore[call-arg]
    settings.max_live_runs = 3  # type: ignore[misc]
    assert_type(checked_host("::1"), str)
    checked_host(b"::1")  # type: ignore[arg-type]


def check_the_door_takes_a_backend_request_user_or_nobody_by_name(mounted: bool) -> None:
    tokens = BearerTokenAuth({"token-of-ada-kept-secret": "ada"})
    chosen: Authentication = "request.user" if mounted else tokens
    assert_type(
        agui_app(
            greeter,
            authentication=chosen,
            settings=WebSettings(allowed_origins=["https://chat.example.com"]),
        ),
        Starlette,
    )
    assert_type(ai_sdk_app(greeter, authentication=tokens), Starlette)
    assert_type(ai_sdk_app(greeter, authentication=NoAuthentication()), Starlette)
    nobody: Authentication = NoAuthentication()
    assert_type(nobody, Authentication)
    assert_type(
        web_chat_app(greeter, page="index.html", authentication=tokens, settings=WebSettings()),
        Starlette,
    )
    agui_app(greeter, authentication="user")  # type: ignore[arg-type]
    agui_app(greeter, authentication=LOCAL, allowed_origins=["x"])  # type: ignore[call-arg]
    agui_app(greeter, authentication=LOCAL, max_live_runs=3)  # type: ignore[call-arg]
    agui_app(greeter, authentication=LOCAL, settings={"max_live_runs": 3})  # type: ignore[arg-type]
    BearerTokenAuth(["token"])  # type: ignore[arg-type]
    NoAuthentication("localhost")  # type: ignore[call-arg]


def check_the_approval_flow_type_is_public(in_stream: bool) -> None:
    """``approval_flow=``'s type is importable from each app's module, to type a choice."""
    flow: AGUIApprovalFlow = "in_stream" if in_stream else "protocol"
    assert_type(agui_app(greeter, authentication=LOCAL, approval_flow=flow), Starlette)
    same: AISDKApprovalFlow = flow
    assert_type(ai_sdk_app(greeter, authentication=LOCAL, approval_flow=same), Starlette)
    assert_type(same, Literal["protocol", "in_stream"])
    wrong: AGUIApprovalFlow = "later"  # type: ignore[assignment]
    assert_type(wrong, AGUIApprovalFlow)


def check_the_serving_tells_its_own_stop() -> None:
    """``server_stop()``: the event of the current request's server (``None`` outside one)."""
    stop = server_stop()
    assert_type(stop, asyncio.Event | None)
    server_stop(greeter)  # type: ignore[call-arg]


async def check_a_told_results_tokens_are_a_generator_to_close(
    result: MessagePromise[Message],
) -> None:
    """``ToldResult.tokens()`` is an async generator: a reader that stops early closes it."""
    told = ToldResult(result, error_texts=False)
    async with contextlib.aclosing(told.tokens()) as tokens:
        assert_type(tokens, AsyncGenerator[str, None])


def check_wrong_arguments_are_refused() -> None:
    agui_app("not an agent")  # type: ignore[arg-type]
    agui_app(greeter, arguments=chat_of)  # type: ignore[arg-type]
    ai_sdk_app(greeter, arguments=thread_of)  # type: ignore[arg-type]
    agui_app(greeter, 0)  # type: ignore[call-arg, arg-type]
    agui_app(greeter, inputs=["messages"])  # type: ignore[list-item]
    agui_app(greeter, approval_flow="later")  # type: ignore[arg-type]
    web_chat_app(greeter)  # type: ignore[call-arg]


def test_web_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
