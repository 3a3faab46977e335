"""A reference A2A server built with the official ``a2a-sdk``, for ``a2a_agent`` to call.

:func:`sdk_app` is the SDK's own JSON-RPC routes and card route over its default request
handler and in-memory task store, with an ``AgentExecutor`` that plays what the test says
(:data:`Play`: it publishes a task's events with the SDK's ``TaskUpdater``); the executor
notes the tasks that were cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
    Task,
    TaskState,
    TaskStatus,
)
from starlette.applications import Starlette
from starlette.types import ASGIApp

Play = Callable[[RequestContext, TaskUpdater], Awaitable[None]]
"""What the executor does for a task: publish its events (the task itself is published first).

The updater's ``event_queue`` is where a play publishes anything else (a direct message)."""


class PlayedExecutor(AgentExecutor):
    """Plays ``play`` for each task; notes the ids of the tasks cancelled.

    ``task_first=False``: the task is not published first (``play`` may answer with a
    message instead, or publish the task itself).
    """

    def __init__(self, play: Play, *, task_first: bool = True) -> None:
        self.play = play
        self.task_first = task_first
        self.cancelled: list[str] = []
        self.cancelled_event = asyncio.Event()
        self.started: list[str] = []

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None
        assert context.context_id is not None
        self.started.append(context.task_id)
        if context.current_task is None and self.task_first:
            await event_queue.enqueue_event(
                Task(
                    id=context.task_id,
                    context_id=context.context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[context.message] if context.message is not None else [],
                )
            )
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await self.play(context, updater)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None
        assert context.context_id is not None
        self.cancelled.append(context.task_id)
        self.cancelled_event.set()
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def sdk_card(url: str, *, name: str = "SDK Agent", streaming: bool = True) -> AgentCard:
    """The card of the SDK server at ``url``."""
    return AgentCard(
        name=name,
        description="An agent served by the official A2A SDK.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=streaming),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="answer", name="Answer", description="Answers.", tags=["answer"])],
    )


def sdk_app(executor: PlayedExecutor, *, streaming: bool = True) -> Callable[[str], ASGIApp]:
    """The SDK's app of ``executor``, made for its URL (see ``tests.ext.a2a.rpc.serving``)."""

    def make(url: str) -> ASGIApp:
        card = sdk_card(url, streaming=streaming)
        handler = DefaultRequestHandler(executor, InMemoryTaskStore(), card)
        routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/")]
        return Starlette(routes=routes)

    return make


def text(value: str) -> list[Part]:
    """The parts of one text."""
    return [Part(text=value)]
