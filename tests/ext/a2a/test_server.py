"""``a2a_app`` driven by the official Python ``a2a-sdk`` client, over real HTTP under uvicorn.

The card, the tokens streamed as artifact chunks as they are produced (each event read
before the next token is released), tools' and sub-agents' streams kept apart, blocking and
immediate sends, tasks read, cancelled and followed again after a cut (nothing lost, nothing
twice), approvals asked as ``TASK_STATE_INPUT_REQUIRED`` and decided by the next message,
an agent's failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import httpx2
import pytest
from a2a.client.card_resolver import parse_agent_card
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskNotCancelableError,
    TaskState,
    UnsupportedOperationError,
)
from a2a.utils.errors import InvalidParamsError
from a2a.utils.proto_utils import validate_proto_required_fields
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette
from starlette.routing import Mount

from miniagents import InteractionContext, Message, MessagePromise, MiniAgents, miniagent
from miniagents.ext.a2a import A2ASkill, a2a_app
from miniagents.ext.a2a.server import CARD_MAX_AGE
from miniagents.ext.llm.messages import LLMMessage
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.llm.structured import structured
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import NoAuthentication, WebSettings
from miniagents.ext.web.settings import LOCAL_HOSTS
from miniagents.testing import FakeLLMServer, manual_time
from tests.ext.a2a.rpc import (
    all_of,
    call,
    decision,
    kind,
    rpc,
    sdk_client,
    send_params,
    user_message,
)
from tests.ext.web.serving import (
    approving,
    delete_file,
    deleted,
    gated,
    nothing_deleted,  # noqa: F401
    queued_poet,
    served,
    until,
    weather,
    with_writer,
)

WORKING = TaskState.TASK_STATE_WORKING


def text_of(event: StreamResponse) -> str:
    return "".join(part.text for part in event.artifact_update.artifact.parts)


def ours(metadata: Any) -> dict[str, Any]:
    found: dict[str, Any] = MessageToDict(metadata).get("miniagents", {})
    return found


async def test_the_card_names_the_agent_its_skills_its_url_and_that_it_streams() -> None:
    skill = A2ASkill("search", "Search", "Finds sources.", tags=("search",), examples=("Rivers",))
    researcher = offline_agent.fork(alias="RESEARCHER", reply="Found.", token_delay=0)
    app = a2a_app(
        researcher,
        authentication=NoAuthentication(),
        name="Researcher",
        description="Finds things.",
        skills=[skill],
        version="2.1",
    )
    async with served(app) as web:
        response = await web.get("/.well-known/agent-card.json")
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"  # (the door's)
        card = parse_agent_card(response.json())
    validate_proto_required_fields(card)  # (raises for a field A2A requires)
    assert (card.name, card.description, card.version) == ("Researcher", "Finds things.", "2.1")
    assert card.capabilities.streaming
    assert not card.capabilities.push_notifications
    [interface] = card.supported_interfaces
    assert (interface.url, interface.protocol_binding) == (f"{web.base_url}/", "JSONRPC")
    assert interface.protocol_version == "1.0"
    [only] = card.skills
    assert (only.id, only.name, list(only.tags), list(only.examples)) == (
        "search",
        "Search",
        ["search"],
        ["Rivers"],
    )
    assert list(card.default_input_modes) == ["text/plain", "application/json"]


async def test_the_card_says_how_long_to_keep_it_and_a_client_that_has_it_gets_a_304() -> None:
    """Spec §8.6: ``Cache-Control`` with ``max-age``, an ``ETag``, a ``Last-Modified``."""
    app = a2a_app(
        offline_agent.fork(alias="POET", reply="Hi.", token_delay=0),
        authentication=NoAuthentication(),
        settings=WebSettings(allowed_hosts=[*LOCAL_HOSTS, "agents.example"]),
    )
    async with served(app) as web:
        first = await web.get("/.well-known/agent-card.json")
        again = await web.get("/.well-known/agent-card.json")
        tag = first.headers["etag"]
        cached = await web.get(
            "/.well-known/agent-card.json", headers={"if-none-match": f'"old", {tag}'}
        )
        stale = await web.get("/.well-known/agent-card.json", headers={"if-none-match": '"old"'})
        elsewhere = await web.get(  # (another URL of the app: another card, another tag)
            "/.well-known/agent-card.json", headers={"host": "agents.example"}
        )
    assert first.headers["cache-control"] == f"public, max-age={CARD_MAX_AGE}"
    assert (tag.startswith('"'), again.headers["etag"]) == (True, tag)
    assert first.headers["last-modified"].endswith(" GMT")
    assert (cached.status_code, cached.content, cached.headers["etag"]) == (304, b"", tag)
    assert (stale.status_code, stale.json()) == (200, first.json())
    assert elsewhere.headers["etag"] != tag
    assert elsewhere.json()["supportedInterfaces"][0]["url"] == "http://agents.example/"


async def test_a_mounted_app_names_its_mount_in_the_card_and_is_called_there() -> None:
    researcher = offline_agent.fork(alias="RESEARCHER", reply="Found it.", token_delay=0)
    outer = Starlette(
        routes=[
            Mount("/agents/researcher", app=a2a_app(researcher, authentication=NoAuthentication()))
        ]
    )
    async with served(outer) as web:
        url = f"{web.base_url}/agents/researcher/"
        async with sdk_client(url) as client:
            events = [event async for event in client.send_message(user_message("Rivers?"))]
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert "".join(text_of(event) for event in events if kind(event) == "chunk") == "Found it."


async def test_each_token_is_an_artifact_chunk_sent_as_soon_as_it_is_produced() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    async with (
        served(a2a_app(gated(tokens), authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url)) as client,
    ):
        events = aiter(client.send_message(user_message("Hi there")))
        task = (await anext(events)).task
        assert task.status.state == TaskState.TASK_STATE_SUBMITTED
        assert [part.text for part in task.history[0].parts] == ["Hi there"]
        assert (await anext(events)).status_update.status.state == WORKING
        opened = await anext(events)
        assert kind(opened) == "first"
        assert ours(opened.artifact_update.artifact.metadata) == {
            "kind": "text",
            "role": "assistant",
        }
        for token in ["Hel", "lo ", "there."]:
            tokens.put_nowait(token)  # the next token exists only once this one was read
            event = await anext(events)
            assert (kind(event), text_of(event)) == ("chunk", token)
            assert event.artifact_update.task_id == task.id
        tokens.put_nowait(None)
        rest = [event async for event in events]
    assert [kind(event) for event in rest] == ["last", "status TASK_STATE_COMPLETED"]
    assert ours(rest[0].artifact_update.artifact.metadata) == {"done": True}


async def test_a_tools_and_a_sub_agents_streams_stay_apart_and_live() -> None:
    poem: asyncio.Queue[str | None] = asyncio.Queue()
    calls = [CallTool("weather", {"city": "Paris"}), CallTool("POET", {"subject": "rivers"})]
    agent = offline_agent.fork(
        alias="ASSISTANT",
        tools=[weather, queued_poet(poem)],
        reply=one_per_call(calls, "Both done."),
        token_delay=0,
    )
    async with (
        served(a2a_app(agent, authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url)) as client,
    ):
        events = aiter(client.send_message(user_message("Weather and a poem")))
        seen: list[StreamResponse] = []
        while not (
            kind(event := await anext(events)) == "first"
            and ours(event.artifact_update.artifact.metadata).get("toolName") == "POET"
            and ours(event.artifact_update.artifact.metadata).get("kind") == "tool-result"
        ):
            seen.append(event)
        poet_result = event.artifact_update.artifact.artifact_id
        seen.append(event)
        for token in ["Streams ", "flow."]:
            poem.put_nowait(token)  # the sub-agent's token reaches the client before the next
            chunk = await anext(events)
            assert chunk.artifact_update.artifact.artifact_id == poet_result
            assert text_of(chunk) == token
            seen.append(chunk)
        poem.put_nowait(None)
        seen += [event async for event in events]
    firsts = [
        ours(event.artifact_update.artifact.metadata) for event in seen if kind(event) == "first"
    ]
    assert [(one["kind"], one.get("toolName")) for one in firsts] == [
        ("tool-call", "weather"),
        ("tool-call", "POET"),
        ("tool-result", "weather"),
        ("tool-result", "POET"),
        ("text", None),
    ]  # (the model's round of two calls, then their results, then its answer)
    assert firsts[0]["toolCallId"] == firsts[2]["toolCallId"] != firsts[1]["toolCallId"]
    assert firsts[1]["toolCallId"] == firsts[3]["toolCallId"]
    by_artifact: dict[str, str] = {}
    for event in seen:
        if event.WhichOneof("payload") == "artifact_update":
            artifact = event.artifact_update.artifact.artifact_id
            by_artifact[artifact] = by_artifact.get(artifact, "") + text_of(event)
    assert sorted(by_artifact.values()) == sorted(
        [
            '{"city": "Paris"}',
            "Sunny in Paris",
            '{"subject": "rivers"}',
            "Streams flow.",
            "Both done.",
        ]
    )
    lasts = [ours(e.artifact_update.artifact.metadata) for e in seen if kind(e) == "last"]
    assert lasts[0] == {"done": True, "arguments": {"city": "Paris"}}
    assert lasts[2] == {"done": True, "isError": False, "denied": False}
    assert kind(seen[-1]) == "status TASK_STATE_COMPLETED"


async def test_a_blocking_send_answers_the_completed_task_with_its_whole_texts_and_usage() -> None:
    agent = offline_agent.fork(alias="RESEARCHER", reply="Rivers are long.", token_delay=0)
    async with (
        served(a2a_app(agent, authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url), streaming=False) as client,  # (SendMessage)
    ):
        sent = user_message("Rivers?")
        sent.configuration.history_length = 0
        [answer] = [event async for event in client.send_message(sent)]
        task = answer.task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert not task.history  # (historyLength 0)
        [artifact] = task.artifacts
        assert [part.text for part in artifact.parts] == ["Rivers are long."]
        async with MiniAgents():  # the same agent, here: the usage it reports
            [local] = await agent.inquire("Rivers?")
        assert isinstance(local, LLMMessage)
        assert local.usage is not None
        expected = {
            "inputTokens": local.usage.input_tokens,
            "outputTokens": local.usage.output_tokens,
        }
        assert ours(task.metadata)["usage"] == expected
        assert ours(artifact.metadata)["usage"] == expected
        again = await client.get_task(GetTaskRequest(id=task.id))
    assert again.artifacts == task.artifacts
    assert [part.text for part in again.history[0].parts] == ["Rivers?"]
    assert ours(again.artifacts[0].metadata)["model"] == "offline"


async def test_a_completed_tasks_usage_counts_the_agents_called_as_tools(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task's usage has the call of ``WRITER``, an agent tool, beside its caller's, as the
    web apps count a reply (was: only what the reply's texts said, its caller's answer's: 25
    in, 5 out); each text's own usage stays its own."""
    app = a2a_app(with_writer(fake_llm, monkeypatch), authentication=NoAuthentication())
    async with served(app) as web, sdk_client(str(web.base_url), streaming=False) as client:
        [answer] = [event async for event in client.send_message(user_message("Rivers?"))]
    task = answer.task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    usage = ours(task.metadata)["usage"]
    assert usage.pop("costUsd") > 0
    assert usage == {"inputTokens": 55, "outputTokens": 12}
    said = [ours(artifact.metadata).get("usage") for artifact in task.artifacts]
    assert [
        (found["inputTokens"], found["outputTokens"]) for found in said if found is not None
    ] == [(25, 5)]  # (the caller's answer: its tool loop's)


class _Answer(Message):
    city: str


async def test_a_structured_answer_of_a_plain_message_type_reports_its_usage_and_model() -> None:
    # its metadata are extra fields of the output type, not an LLMMessage's own fields
    model = offline_agent.fork(alias="GEO", reply='{"city": "Oslo"}', token_delay=0)
    async with (
        served(a2a_app(structured(model, _Answer), authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url), streaming=False) as client,
    ):
        [answer] = [event async for event in client.send_message(user_message("Where?"))]
    task = answer.task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    [artifact] = task.artifacts
    assert [part.text for part in artifact.parts] == ['{"city": "Oslo"}']
    about = ours(artifact.metadata)
    assert (about["model"], about["finishReason"]) == ("offline", "stop")
    assert about["usage"]["outputTokens"] > 0
    assert ours(task.metadata)["usage"] == about["usage"]


async def test_a_send_that_returns_at_once_leaves_the_task_working_and_get_task_follows_it() -> (
    None
):
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = a2a_app(gated(tokens), authentication=NoAuthentication())
    async with served(app) as web, sdk_client(str(web.base_url), streaming=False) as client:
        sent = user_message("Hi")
        sent.configuration.return_immediately = True
        [answer] = [event async for event in client.send_message(sent)]
        task_id = answer.task.id
        assert answer.task.status.state in (TaskState.TASK_STATE_SUBMITTED, WORKING)
        tokens.put_nowait("Half ")
        job = app.state.runs.job(task_id)
        await until(lambda: len(job.current.events) >= 3)  # working, first chunk, "Half "
        halfway = await client.get_task(GetTaskRequest(id=task_id))
        assert halfway.status.state == WORKING
        assert [part.text for part in halfway.artifacts[0].parts] == ["Half "]
        tokens.put_nowait("done.")
        tokens.put_nowait(None)
        await job.asettled()
        done = await client.get_task(GetTaskRequest(id=task_id))
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    assert [part.text for part in done.artifacts[0].parts] == ["Half done."]


@miniagent
async def failing(ctx: InteractionContext) -> None:
    """Says a little, then breaks."""

    async def tokens() -> AsyncIterator[str]:
        yield "Some text. "
        raise ValueError("the agent broke")

    ctx.reply(MessagePromise.from_async_iterable(tokens()))


async def test_an_agent_that_fails_fails_its_task_with_its_class_and_a_reference() -> None:
    async with (
        served(a2a_app(failing, authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url)) as client,
    ):
        events = [event async for event in client.send_message(user_message())]
    final = events[-1].status_update
    assert final.status.state == TaskState.TASK_STATE_FAILED
    reference = ours(final.metadata)["errorReference"]
    assert ours(final.metadata) == {"errorType": "ValueError", "errorReference": reference}
    [text] = [part.text for part in final.status.message.parts]
    assert text.startswith("The agent FAILING failed with ValueError.")  # (was: no name)
    assert reference in text
    assert "the agent broke" not in text  # (its text only with WebSettings(error_texts=True))


def cancellable(started: asyncio.Event, stopped: asyncio.Event) -> Any:
    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        async def tokens() -> AsyncIterator[str]:
            yield "Starting. "
            started.set()
            try:
                await asyncio.Event().wait()  # (until cancelled)
            finally:
                stopped.set()
            yield "never"

        ctx.reply(MessagePromise.from_async_iterable(tokens()))

    return slow


async def test_cancel_task_cancels_the_agent_and_its_stream_ends_canceled() -> None:
    started, stopped = asyncio.Event(), asyncio.Event()
    app = a2a_app(cancellable(started, stopped), authentication=NoAuthentication())
    async with served(app) as web, sdk_client(str(web.base_url)) as client:
        events = aiter(client.send_message(user_message()))
        task_id = (await anext(events)).task.id
        await started.wait()
        cancelled = await client.cancel_task(CancelTaskRequest(id=task_id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        assert stopped.is_set()
        assert app.state.runs.live == 0
        rest = [kind(event) async for event in events]
        assert rest[-1] == "status TASK_STATE_CANCELED"
        with pytest.raises(TaskNotCancelableError, match="has ended"):
            await client.cancel_task(CancelTaskRequest(id=task_id))
        with pytest.raises(UnsupportedOperationError, match="nothing to follow"):
            await all_of(client.subscribe(SubscribeToTaskRequest(id=task_id)))


async def test_a_client_whose_stream_was_cut_subscribes_again_and_loses_nothing() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = a2a_app(gated(tokens), authentication=NoAuthentication())
    async with served(app) as web, sdk_client(str(web.base_url)) as client:
        events = cast(AsyncGenerator[StreamResponse], client.send_message(user_message()))
        task_id = (await anext(events)).task.id
        job = app.state.runs.job(task_id)
        for token in ["one ", "two "]:
            tokens.put_nowait(token)
        read = [await anext(events) for _ in range(4)]  # working, first, "one ", "two "
        assert [text_of(event) for event in read[2:]] == ["one ", "two "]
        await events.aclose()  # the connection is cut; the task goes on
        tokens.put_nowait("three ")  # produced while nobody follows
        await until(lambda: len(job.current.events) >= 5)
        again = aiter(client.subscribe(SubscribeToTaskRequest(id=task_id)))
        snapshot = (await anext(again)).task
        assert snapshot.status.state == WORKING
        assert [part.text for part in snapshot.artifacts[0].parts] == ["one two three "]
        tokens.put_nowait("four.")
        after = await anext(again)
        assert (kind(after), text_of(after)) == ("chunk", "four.")
        tokens.put_nowait(None)
        rest = [kind(event) async for event in again]
    assert rest == ["last", "status TASK_STATE_COMPLETED"]
    assert app.state.runs.live == 0


def approving_agent() -> Any:
    return offline_agent.fork(
        alias="ASSISTANT",
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(CallTool("delete_file", {"path": "notes.md"}), "Done."),
        token_delay=0,
    )


async def test_a_call_that_waits_for_approval_asks_for_input_and_the_next_message_decides() -> None:
    edits = WebSettings(approval_edits=True)  # (the decision edits the arguments)
    app = a2a_app(approving_agent(), authentication=NoAuthentication(), settings=edits)
    async with served(app) as web, sdk_client(str(web.base_url)) as client:
        first = [event async for event in client.send_message(user_message("Delete notes.md"))]
        asked = first[-1].status_update
        assert asked.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        task_id = asked.task_id
        data = [
            MessageToDict(part)["data"]
            for part in asked.status.message.parts
            if part.WhichOneof("content") == "data"
        ]
        [request] = [one["toolApprovalRequest"] for one in data]
        assert (request["toolName"], request["arguments"]) == ("delete_file", {"path": "notes.md"})
        assert deleted == []
        waiting = await client.get_task(GetTaskRequest(id=task_id))
        assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        unknown = decision(task_id, {"toolCallId": "nope", "approved": True})
        with pytest.raises(InvalidParamsError, match="no approval of a call 'nope'"):
            await all_of(client.send_message(unknown))
        edited = {"toolCallId": request["toolCallId"], "approved": True, "arguments": {"p": 1}}
        with pytest.raises(InvalidParamsError, match="do not fit the tool's argument schema"):
            await all_of(client.send_message(decision(task_id, edited)))
        assert deleted == []  # (nothing was decided: the call still waits)
        approve = {
            "toolCallId": request["toolCallId"],
            "approved": True,
            "arguments": {"path": "old.md"},
        }
        second = [event async for event in client.send_message(decision(task_id, approve))]
        assert kind(second[0]) == "task"
        assert second[0].task.status.state == WORKING  # (answered: it works again)
        assert kind(second[1]) == "status TASK_STATE_WORKING"
        assert kind(second[-1]) == "status TASK_STATE_COMPLETED"
        texts = "".join(text_of(event) for event in second if kind(event) == "chunk")
        assert texts == "Deleted old.mdDone."
        assert deleted == ["old.md"]
        done = await client.get_task(GetTaskRequest(id=task_id))
        with pytest.raises(UnsupportedOperationError, match="has ended"):
            await all_of(client.send_message(decision(task_id, approve)))
    history = [(message.role, message.parts[0].WhichOneof("content")) for message in done.history]
    assert history == [(1, "text"), (2, "text"), (1, "data")]  # the user, the question, the answer


async def test_a_task_resumed_after_an_approval_says_its_usage_each_call_once(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The completed task's usage has both calls, the one before the pause and the one after,
    each once (10 + 15 in, 2 + 3 out), as its answer's text says its tool loop's."""
    app = a2a_app(approving(fake_llm, monkeypatch), authentication=NoAuthentication())
    async with served(app) as web, sdk_client(str(web.base_url)) as client:
        first = [event async for event in client.send_message(user_message("Delete a.txt"))]
        asked = first[-1].status_update
        assert asked.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        [call_id] = [
            MessageToDict(part)["data"]["toolApprovalRequest"]["toolCallId"]
            for part in asked.status.message.parts
            if part.WhichOneof("content") == "data"
        ]
        approve = {"toolCallId": call_id, "approved": True}
        second = [event async for event in client.send_message(decision(asked.task_id, approve))]
    assert deleted == ["a.txt"]
    done = second[-1].status_update
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    usage = ours(done.metadata)["usage"]
    assert (usage["inputTokens"], usage["outputTokens"]) == (25, 5)
    answer = [ours(e.artifact_update.artifact.metadata) for e in second if kind(e) == "last"][-1]
    assert (answer["usage"]["inputTokens"], answer["usage"]["outputTokens"]) == (25, 5)


async def test_a_denied_call_is_the_tools_error_result_and_the_task_completes() -> None:
    app = a2a_app(approving_agent(), authentication=NoAuthentication())
    async with served(app) as web, sdk_client(str(web.base_url)) as client:
        first = [event async for event in client.send_message(user_message("Delete notes.md"))]
        task_id = first[-1].status_update.task_id
        [call] = [
            MessageToDict(part)["data"]["toolApprovalRequest"]["toolCallId"]
            for part in first[-1].status_update.status.message.parts
            if part.WhichOneof("content") == "data"
        ]
        deny = {"toolCallId": call, "approved": False, "reason": "Keep it."}
        second = [event async for event in client.send_message(decision(task_id, deny))]
    lasts = [ours(e.artifact_update.artifact.metadata) for e in second if kind(e) == "last"]
    assert lasts[0] == {"done": True, "isError": True, "denied": True}
    assert kind(second[-1]) == "status TASK_STATE_COMPLETED"
    assert deleted == []


async def test_a_message_to_a_working_task_is_refused_and_changes_nothing() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = a2a_app(gated(tokens), authentication=NoAuthentication())
    async with served(app) as web, sdk_client(str(web.base_url)) as client:
        events = client.send_message(user_message())
        task_id = (await anext(events)).task.id
        with pytest.raises(UnsupportedOperationError, match="is working"):
            await all_of(client.send_message(user_message("More", task_id=task_id)))
        tokens.put_nowait("Fine.")
        tokens.put_nowait(None)
        rest = [kind(event) async for event in events]
    assert rest[-1] == "status TASK_STATE_COMPLETED"


async def test_text_and_data_parts_are_the_agents_input_messages() -> None:
    heard: list[str] = []

    @miniagent
    async def echo(ctx: InteractionContext) -> None:
        async for message in ctx.message_promises:
            heard.append(str(await message))
        ctx.reply("ok")

    async with (
        served(a2a_app(echo, authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url)) as client,
    ):
        [_ async for _ in client.send_message(user_message("Plain text"))]
        [_ async for _ in client.send_message(user_message(data={"city": "Paris"}))]
    assert heard == ["Plain text", '{"city": "Paris"}']


async def test_an_ended_task_is_kept_keep_runs_for_seconds_then_forgotten() -> None:
    """An ended task is found keep_runs_for seconds from its job's end, then forgotten. (It
    slept on a clock that ran by itself, which jumps whenever the loop looks idle, and failed
    now and then under load. The clock now moves only where the test moves it, once the
    task's job has ended: its 60 s run from then.)"""
    app = a2a_app(
        offline_agent.fork(reply="Kept.", token_delay=0),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=60),
    )
    transport = httpx2.ASGITransport(app=app)
    with manual_time() as clock:
        async with httpx2.AsyncClient(transport=transport, base_url="http://localhost") as client:
            sent = (await call(client, rpc("SendMessage", send_params()))).json()
            task = sent["result"]["task"]
            for _ in range(1000):  # (its job ends after its answer: kept from then on)
                if app.state.runs.live == 0:
                    break
                await asyncio.sleep(0)
            assert app.state.runs.live == 0
            clock.advance(59)
            kept = (await call(client, rpc("GetTask", {"id": task["id"]}))).json()["result"]
            assert kept["artifacts"][0]["parts"] == [{"text": "Kept."}]
            waiting = asyncio.ensure_future(asyncio.sleep(2))
            await asyncio.sleep(0)  # (its timer set, 2 s on: due after the forget timer)
            clock.advance(2)
            await waiting  # (the forget timer, due first, has run)
            forgotten = (await call(client, rpc("GetTask", {"id": task["id"]}))).json()["error"]
    assert forgotten["code"] == -32001
    assert app.state.runs.kept == 0


async def test_a_burst_of_short_tasks_keeps_the_latest_max_ended_runs_only() -> None:
    app = a2a_app(
        offline_agent.fork(reply="Short.", token_delay=0),
        authentication=NoAuthentication(),
        settings=WebSettings(max_ended_runs=3),
    )
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://localhost") as client:
        ids = []
        for _ in range(12):
            answer = (await call(client, rpc("SendMessage", send_params()))).json()
            ids.append(answer["result"]["task"]["id"])
        found = [(await call(client, rpc("GetTask", {"id": one}))).json() for one in ids]
    assert [task["result"]["status"]["state"] for task in found[-3:]] == [
        "TASK_STATE_COMPLETED"
    ] * 3
    assert {task["error"]["code"] for task in found[:-3]} == {-32001}  # as if forgotten
    assert "max_ended_runs" in found[0]["error"]["message"]
    assert app.state.runs.kept == 0  # (each task's run, let go of as it ended: A2A never reads it)


async def test_a_follower_of_a_task_that_waits_for_approval_follows_it_to_its_end() -> None:
    """``SubscribeToTask`` ends where the task ends (spec §3.1.6), not where it waits."""
    app = a2a_app(approving_agent(), authentication=NoAuthentication())
    async with served(app) as web, sdk_client(str(web.base_url)) as client:
        first = await all_of(client.send_message(user_message("Delete notes.md")))
        task_id = first[-1].status_update.task_id
        following = aiter(client.subscribe(SubscribeToTaskRequest(id=task_id)))
        snapshot = await anext(following)
        assert snapshot.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert snapshot.task.status.message.parts[0].text.startswith("The call ")
        [call_id] = [
            MessageToDict(part)["data"]["toolApprovalRequest"]["toolCallId"]
            for part in snapshot.task.status.message.parts
            if part.WhichOneof("content") == "data"
        ]
        await all_of(
            client.send_message(decision(task_id, {"toolCallId": call_id, "approved": True}))
        )
        rest = [kind(event) async for event in following]
    assert rest[0] == "status TASK_STATE_WORKING"
    assert rest[-1] == "status TASK_STATE_COMPLETED"
