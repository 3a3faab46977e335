"""Static typing tests for ``miniagents.ext.a2a``: the app, the remote agent and its replies.

The ``check_*`` functions are never called: mypy checks them (``mypy.ini`` is strict, with
``warn_unused_ignores``); each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_a2a_types_pass_mypy` runs the check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, assert_type

from a2a.types import AgentCard, SendMessageRequest
from starlette.applications import Starlette

from miniagents import InteractionContext, MessageSequencePromise, MiniAgent, miniagent
from miniagents.errors import A2AError, A2ARemoteError, A2ATaskFailedError
from miniagents.ext.a2a import (
    A2AMessage,
    A2AReply,
    A2ASkill,
    a2a_agent,
    a2a_app,
    afetch_agent_card,
)
from miniagents.ext.llm.messages import LLMReply, LLMToolCallMessage
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.ray import ray_agent
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings
from tests.fakes.typecheck import assert_passes_mypy

if TYPE_CHECKING:
    from typing import TypeAlias

    from mypy_extensions import DefaultNamedArg

    Remote: TypeAlias = MiniAgent[[DefaultNamedArg(str | None, "message")], LLMReply[A2AMessage]]


@miniagent
async def greeter(ctx: InteractionContext, name: str = "you") -> None:
    ctx.reply(f"Hello, {name}!")


def metadata_of(request: SendMessageRequest) -> Mapping[str, object]:
    return {"name": request.message.context_id}


def check_the_app_is_a_starlette_app_of_any_agent() -> None:
    assert_type(a2a_app(greeter, authentication=NoAuthentication()), Starlette)
    assert_type(
        a2a_app(
            offline_agent,
            name="Researcher",
            description="Finds things.",
            skills=[A2ASkill("search", "Search", "Finds sources.", tags=("search",))],
            version="2.0",
            url="https://agents.example/researcher/",
            arguments=metadata_of,
            authentication=BearerTokenAuth({"token": "ada"}),
            settings=WebSettings(
                allowed_origins=["https://front.example"],
                grace_period=None,
                keep_runs_for=60.0,
                max_live_runs=10,
            ),
        ),
        Starlette,
    )
    a2a_app("not an agent")  # type: ignore[arg-type]
    a2a_app(greeter, skills=["search"])  # type: ignore[list-item]
    a2a_app(greeter, grace_period=None)  # type: ignore[call-arg]


async def check_the_remote_agent_and_its_replies(card: AgentCard) -> None:
    remote = a2a_agent("http://127.0.0.1:8001", alias="RESEARCHER")
    assert_type(remote, MiniAgent[[DefaultNamedArg(str | None, "message")], LLMReply[A2AMessage]])
    assert_type(a2a_agent(await afetch_agent_card("http://127.0.0.1:8001")), "Remote")
    assert_type(a2a_agent(card, headers={"Authorization": "Bearer x"}, reconnects=0), "Remote")
    replies = remote.inquire("Why is the sky blue?", message="Answer briefly.")
    assert_type(replies, MessageSequencePromise[A2AReply])
    for reply in await replies:
        if isinstance(reply, A2AMessage):
            assert_type(reply.task_id, str | None)
            assert_type(reply.usage is None, bool)
        elif isinstance(reply, LLMToolCallMessage):
            assert_type(reply.tool_name, str)
    assert_type(ray_agent(remote), "Remote")
    remote.inquire("Hi", message=3)  # type: ignore[arg-type]
    remote.inquire("Hi", question="no such")  # type: ignore[call-arg]
    a2a_agent(8001)  # type: ignore[arg-type]


def check_the_errors_are_typed(error: A2AError) -> None:
    if isinstance(error, A2ARemoteError):
        assert_type(error.code, int)
    if isinstance(error, A2ATaskFailedError):
        assert_type(error.remote_type, str | None)
        assert_type(error.task_id, str)


def test_a2a_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
