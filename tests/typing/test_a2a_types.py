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
from miniagents.errors import (
    A2AError,
    A2ARemoteError,
    A2ATaskFailedError,
    A2ATaskRejectedError,
    InputRequestError,
)
from miniagents.ext.a2a import (
    A2AAuthRequest,
    A2AData,
    A2AFile,
    A2AInputRequest,
    A2AMessage,
    A2APushNotifications,
    A2AReply,
    A2ASkill,
    a2a_agent,
    a2a_app,
    afetch_agent_card,
)
from miniagents.ext.a2a.messages import JSONValue
from miniagents.ext.a2a.push import signature_valid
from miniagents.ext.a2a.server import AnswerAs
from miniagents.ext.input_requests import AuthRequest, InputRequest, request_input
from miniagents.ext.llm.messages import LLMToolCallMessage
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.ray import ray_agent
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings
from miniagents.messages.image import ImagePart
from miniagents.messages.sequence import MessageTuple
from tests.fakes.typecheck import assert_passes_mypy

if TYPE_CHECKING:
    from typing import TypeAlias

    from mypy_extensions import DefaultNamedArg

    Remote: TypeAlias = MiniAgent[[DefaultNamedArg(str | None, "message")], A2AReply]


@miniagent
async def greeter(ctx: InteractionContext, name: str = "you") -> None:
    ctx.reply(f"Hello, {name}!")


def metadata_of(request: SendMessageRequest) -> Mapping[str, object]:
    return {"name": request.message.context_id}


def answer_as_of(request: SendMessageRequest) -> AnswerAs:
    return "message" if request.message.message_id.startswith("direct") else "task"


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
            authentication=BearerTokenAuth({"token-of-ada-kept-secret": "ada"}),
            settings=WebSettings(
                allowed_origins=["https://front.example"],
                grace_period=None,
                keep_runs_for=60.0,
                max_live_runs=10,
            ),
        ),
        Starlette,
    )
    assert_type(
        a2a_app(
            greeter,
            input_modes=("text/plain", "image/*"),
            answer_as="message",
            push_notifications=A2APushNotifications(
                allowed_urls=["https://hooks.example/a2a/"], signing_secret="s3cr3t"
            ),
        ),
        Starlette,
    )
    assert_type(a2a_app(greeter, answer_as=answer_as_of), Starlette)
    a2a_app(greeter, answer_as="stream")  # type: ignore[arg-type]
    a2a_app(greeter, push_notifications=["https://hooks.example/"])  # type: ignore[arg-type]
    a2a_app("not an agent")  # type: ignore[arg-type]
    a2a_app(greeter, skills=["search"])  # type: ignore[list-item]
    a2a_app(greeter, grace_period=None)  # type: ignore[call-arg]


async def check_the_remote_agent_and_its_replies(card: AgentCard) -> None:
    remote = a2a_agent("http://127.0.0.1:8001", alias="RESEARCHER")
    assert_type(remote, MiniAgent[[DefaultNamedArg(str | None, "message")], A2AReply])
    assert_type(a2a_agent(card, questions="raise"), "Remote")
    a2a_agent(card, questions="never")  # type: ignore[arg-type]
    assert_type(a2a_agent(await afetch_agent_card("http://127.0.0.1:8001")), "Remote")
    assert_type(a2a_agent(card, headers={"Authorization": "Bearer x"}, reconnects=0), "Remote")
    replies = remote.inquire("Why is the sky blue?", message="Answer briefly.")
    assert_type(replies, MessageSequencePromise[A2AReply])
    for reply in await replies:
        if isinstance(reply, A2AMessage):
            assert_type(reply.task_id, str | None)
            assert_type(reply.usage is None, bool)
            assert_type(reply.images, tuple[ImagePart, ...])
        elif isinstance(reply, A2AFile):
            assert_type(reply.data, bytes | None)
            assert_type(reply.url, str | None)
            assert_type(reply.filename, str | None)
            assert_type(reply.media_type, str | None)
        elif isinstance(reply, A2AData):
            assert_type(reply.data, JSONValue)
            assert_type(reply.artifact_id, str | None)
        elif isinstance(reply, A2AAuthRequest):
            assert_type(reply.task_id, str | None)
            reply.answer("token", A2AData(data={"scope": "read"}))
        elif isinstance(reply, A2AInputRequest):
            assert_type(reply.pending, bool)
            reply.answer("Paris")
            reply.answer(3)  # type: ignore[arg-type]
        elif isinstance(reply, LLMToolCallMessage):
            assert_type(reply.tool_name, str)
    A2AFile(data="not bytes")  # type: ignore[arg-type]
    A2AData(data={"ok": [1, 2.5, None, "x"]})
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
    if isinstance(error, A2ATaskRejectedError):
        assert_type(error.state, str)


async def check_an_agent_asks_its_caller(ctx: InteractionContext) -> None:
    question = request_input("Which city?")
    assert_type(question, InputRequest)
    assert_type(request_input("Sign in.", request_class=AuthRequest), AuthRequest)
    assert_type(request_input("?", request_class=A2AInputRequest), A2AInputRequest)
    ctx.reply(question)
    assert_type(await question.aanswer(), MessageTuple)
    request_input(3)  # type: ignore[arg-type]
    request_input("?", request_class=str)  # type: ignore[type-var]


def check_a_webhook_signature(body: bytes, header: str) -> None:
    assert_type(signature_valid("secret", header, body), bool)
    assert_type(InputRequestError("x"), InputRequestError)
    A2APushNotifications(allowed_urls=["https://hooks.example/"], attempts="3")  # type: ignore[arg-type]


def test_a2a_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
