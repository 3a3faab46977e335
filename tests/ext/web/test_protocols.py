"""What both protocol apps do alike, tested over both: bad input, refused resumes, the run limit.

Each test runs once per protocol (``agui_app`` and ``ai_sdk_app``) under a real uvicorn
server on 127.0.0.1; a :class:`Protocol` says how each one spells a run's input, its resume
URL and its codes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from miniagents import InteractionContext, Message, miniagent
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.ext.web import NoAuthentication, WebSettings, agui_app, ai_sdk_app, web_chat_app
from miniagents.ext.web.settings import DEFAULT_MAX_BODY_VALUES, DEFAULT_MAX_ID_CHARS
from miniagents.frozen.errors import HashKeyError
from tests.ext.web.serving import (
    AGUI,
    AI_SDK,
    PROTOCOLS,
    Protocol,
    SSEReader,
    agui_input,
    chat_request,
    gated,
    get_events,
    post_events,
    served,
    until,
)


def bad_inputs() -> list[Any]:
    cases: list[Any] = []
    for protocol in PROTOCOLS:
        valid = json.dumps(protocol.body("c"))[:-1].encode()  # (a body it runs, but for...)
        common = [
            (b'{"id": "c", "runId": ', 400, "invalid_json", "not valid JSON"),
            # ...a number JSON has not, which Python's json reads
            (valid + b', "state": {"x": NaN}}', 400, "invalid_json", "NaN is not a JSON"),
            (valid + b', "state": -Infinity}', 400, "invalid_json", "Infinity is not a JSON"),
            (valid + b', "state": [1e999]}', 400, "invalid_json", "1e999 is too large"),
            (b'{"pad": "' + b"x" * 2_000 + b'"}', 413, "body_too_large", "1000 bytes"),
            *((shape, 422, protocol.invalid_code, named) for shape, named in protocol.bad_shapes),
        ]
        cases += [pytest.param(protocol, *case, id=f"{protocol}-{case[2]}") for case in common]
    return cases


@pytest.mark.parametrize(("protocol", "content", "status", "code", "named"), bad_inputs())
async def test_bad_input_is_a_4xx_json_error_naming_the_problem_and_starts_no_run(
    protocol: Protocol, content: bytes, status: int, code: str, named: str
) -> None:
    calls: list[object] = []

    @miniagent
    async def counted(ctx: InteractionContext) -> None:
        calls.append(ctx)
        ctx.reply("ok")

    app = protocol.app(
        counted, authentication=NoAuthentication(), settings=WebSettings(max_body_bytes=1000)
    )
    async with served(app) as client:
        response = await client.post(
            "/", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == code
        assert named in error["message"]
        for key in ("c", "r"):
            nothing = await client.get(protocol.resume_path(key))
            assert nothing.status_code == protocol.no_run_status
        assert app.state.runs.live == 0
    assert calls == []


PAGE = Path(__file__).parents[3] / "examples" / "web_chat" / "index.html"


@pytest.mark.parametrize(
    ("protocol", "path"),
    [*((one, "/") for one in PROTOCOLS), (AI_SDK, "/api/chat/")],
    ids=["agui", "ai_sdk", "chat_page"],
)
async def test_an_integer_of_more_digits_than_python_converts_is_a_400_that_says_so(
    protocol: Protocol, path: str
) -> None:
    # 5,000 digits: within the body limit, past Python's int conversion limit (4,300), whose
    # own error would tell the client to call sys.set_int_max_str_digits()
    valid = json.dumps(protocol.body("c"))[:-1].encode()
    content = valid + b', "state": [-' + b"7" * 5_000 + b"]}"
    agent = offline_agent.fork(token_delay=0)
    app = (
        protocol.app(agent, authentication=NoAuthentication())
        if path == "/"
        else web_chat_app(agent, authentication=NoAuthentication(), page=PAGE)
    )
    async with served(app) as client:
        response = await client.post(
            path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert response.json()["error"]["code"] == "invalid_json"
        assert message == (
            f"The request body is not valid JSON: the number -{'7' * 39}... has 5000 digits, "
            "more than the 4300 a number may have (send a shorter number, or write it as a "
            "string)."
        )


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_json_nested_past_python_s_recursion_limit_is_a_400(protocol: Protocol) -> None:
    # 50,000 brackets: under the default body limit, deeper than json.loads can go
    deep = b'{"id": "c", "runId": "r", "state": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    async with served(
        protocol.app(offline_agent.fork(token_delay=0), authentication=NoAuthentication())
    ) as client:
        response = await client.post(
            "/", content=deep, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error"] == {
            "code": "invalid_json",
            "message": "The request body is JSON nested too deeply to be read.",
        }


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


# Too deep for a message to freeze (Python's recursion limit, 1,000), not for json.loads to
# read: before Python 3.12 json.loads counts against the same limit (its 1,000 levels less
# the request's stack), from 3.12 against the C stack's (thousands of levels)
_TOO_DEEP_TO_FREEZE = 800 if sys.version_info < (3, 12) else 2_000


def _deep_call_body() -> dict[str, Any]:
    """An AI SDK body whose history holds a tool call of arguments too deep to keep.

    (Its input is JSON in the body, under json.loads' depth; AG-UI's arguments are a JSON
    text, which the call reads: too deep, they are its ``arguments_error``, tested below.)
    """
    with pytest.raises(HashKeyError, match="nested too deeply"):  # (the premise)
        Message(arguments=json.loads(_nested(_TOO_DEEP_TO_FREEZE)))
    part = {"type": "tool-f", "toolCallId": "c1", "state": "output-available", "output": 1}
    part["input"] = json.loads(_nested(_TOO_DEEP_TO_FREEZE))
    called = {"id": "a1", "role": "assistant", "parts": [part]}
    return chat_request(messages=[*chat_request()["messages"], called])


def _agui_call_body(arguments: str) -> dict[str, Any]:
    """An AG-UI input whose history holds a call of the tool ``f`` with ``arguments``."""
    function = {"name": "f", "arguments": arguments}
    called = {
        "id": "a1",
        "role": "assistant",
        "toolCalls": [{"id": "c1", "type": "function", "function": function}],
    }
    return agui_input(messages=[*agui_input()["messages"], called])


@pytest.mark.parametrize("depth", [_TOO_DEEP_TO_FREEZE, 50_000])
async def test_a_tool_calls_arguments_too_deep_to_parse_are_its_arguments_error(
    depth: int,
) -> None:
    # (a JSON text nested too deeply to freeze, or past json.loads' depth: the call's
    # arguments_error, as for any arguments that are not JSON, where it was a 422)
    given: list[Message] = []

    @miniagent
    async def keeper(ctx: InteractionContext) -> None:
        given.extend(await ctx.message_promises)
        ctx.reply("Kept.")

    app = agui_app(keeper, authentication=NoAuthentication())
    async with served(app) as client:
        body = _agui_call_body(_nested(depth))
        response = await client.post(
            "/", content=json.dumps(body), headers={"content-type": "application/json"}
        )
    assert response.status_code == 200
    (call,) = [message for message in given if isinstance(message, ToolCallMessage)]
    assert (call.arguments, call.arguments_error) == (
        {},
        "The arguments are not valid JSON: they nest too deeply to be read.",
    )


async def test_a_tool_call_nested_too_deeply_to_keep_is_a_422_and_starts_no_run() -> None:
    protocol = AI_SDK
    app = protocol.app(offline_agent.fork(token_delay=0), authentication=NoAuthentication())
    async with served(app) as client:
        response = await client.post(
            "/",
            content=json.dumps(_deep_call_body()),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == protocol.invalid_code
        assert "nested too deeply" in error["message"]
        assert app.state.runs.live == 0


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_foreign_last_event_id_is_a_400_and_the_run_replays_unchanged(
    protocol: Protocol,
) -> None:
    async with served(
        protocol.app(
            offline_agent.fork(reply="Hi there", token_delay=0), authentication=NoAuthentication()
        )
    ) as client:
        none = await client.get(protocol.resume_path("k1"))
        assert none.status_code == protocol.no_run_status
        if none.status_code == 404:
            assert "'k1'" in none.json()["error"]["message"]
        else:
            assert none.content == b""
        _response, events = await post_events(client, protocol.body("k1"))
        assert events[-1].type == protocol.last_type
        for foreign in ("abc", "x1", str(len(events)), "-1", "1e3", "9" * 30):
            refused = await client.get(
                protocol.resume_path("k1"), headers={"last-event-id": foreign}
            )
            assert refused.status_code == 400, foreign
            error = refused.json()["error"]
            assert error["code"] == "unknown_event_id"
            assert repr(foreign) in error["message"]
        first = {"last-event-id": "0"}
        _response, replayed = await get_events(client, protocol.resume_path("k1"), first)
    assert replayed == events[1:]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_run_over_max_live_runs_is_a_503_naming_the_limit_and_starts_nothing(
    protocol: Protocol,
) -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = protocol.app(
        gated(tokens),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_runs=1, grace_period=3600),
    )
    async with served(app) as client, client.stream("POST", "/", json=protocol.body("k1")) as first:
        reader = SSEReader(first)
        await reader.take(1)  # the first run runs
        refused = await client.post("/", json=protocol.body("k2"))
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["code"] == "too_many_runs"
        assert "max_live_runs" in error["message"]
        assert "running 1 runs, its limit (max_live_runs=1" in error["message"]
        assert (await client.get(protocol.resume_path("k2"))).status_code == protocol.no_run_status
        assert app.state.runs.live == 1
        tokens.put_nowait("Done")
        tokens.put_nowait(None)
        assert (await reader.rest())[-1].type == protocol.last_type
        await until(lambda: app.state.runs.live == 0)  # ended: there is room again
        tokens.put_nowait(None)  # the second run's reply: empty
        _response, second = await post_events(client, protocol.body("k2"))
    assert second[-1].type == protocol.last_type


async def test_a_new_request_of_a_chat_replaces_its_live_run_so_the_limit_does_not_refuse_it() -> (
    None
):
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = ai_sdk_app(
        gated(tokens),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_runs=1, grace_period=3600),
    )
    async with served(app) as client, client.stream("POST", "/", json=AI_SDK.body("c1")) as first:
        reader = SSEReader(first)
        await reader.take(1)
        async with client.stream("POST", "/", json=AI_SDK.body("c1")) as second:
            assert second.status_code == 200
            old = await reader.rest()  # cancelled by the new request
            tokens.put_nowait(None)  # the new run's reply: empty
            new = await SSEReader(second).rest()
    assert [event.type for event in old[-2:]] == ["abort", "[DONE]"]
    assert new[-1].type == "[DONE]"


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_stream_ends_its_lines_with_lf_alone_as_the_official_agui_client_needs(
    protocol: Protocol,
) -> None:
    # @ag-ui/client's HttpAgent splits the events at "\n\n" only: sse-starlette's default
    # "\r\n" made it read a whole stream as one event, and fail
    async with served(
        protocol.app(
            offline_agent.fork(reply="Hi there", token_delay=0), authentication=NoAuthentication()
        )
    ) as client:
        async with client.stream("POST", "/", json=protocol.body("r1")) as response:
            first = b"".join([chunk async for chunk in response.aiter_raw()])
        async with client.stream(
            "GET", protocol.resume_path("r1"), headers={"last-event-id": "0"}
        ) as response:
            resumed = b"".join([chunk async for chunk in response.aiter_raw()])
    for body in (first, resumed):
        assert b"\r" not in body
        blocks = body.decode().split("\n\n")
        assert blocks[-1] == ""  # the last event ends with its blank line too
        assert all(block.startswith("id: ") and "\ndata: " in block for block in blocks[:-1])
    assert first.decode().count("\n\n") > 3


def values_in(value: object) -> int:
    """How many JSON values ``value`` holds, itself included, at every depth."""
    if isinstance(value, dict):
        return 1 + sum(values_in(item) for item in value.values())
    if isinstance(value, list):
        return 1 + sum(values_in(item) for item in value)
    return 1


def body_of_values(protocol: Protocol, count: int) -> dict[str, Any]:
    """A body of the protocol holding exactly ``count`` JSON values: many short messages,
    then a list of zeros to make up the count (AG-UI's ``state``; a field the AI SDK's
    request does not read)."""
    messages = [
        {"id": f"u{n}", "role": "user", "content": "hi"}
        if protocol.name == "agui"
        else {"id": f"u{n}", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
        for n in range(count // 8)
    ]
    body = (
        agui_input(messages=messages)
        if protocol.name == "agui"
        else chat_request(messages=messages)
    )
    padding = "state" if protocol.name == "agui" else "padding"
    body[padding] = []
    body[padding] = [0] * (count - values_in(body))
    assert values_in(body) == count
    return body


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_body_of_more_json_values_than_max_body_values_is_refused_before_it_is_read(
    protocol: Protocol,
) -> None:
    # (was: read whole, however many: 28,000 tiny messages in a megabyte held the server's
    # loop for over a second, serving nobody else)
    given: list[int] = []

    @miniagent
    async def counted(ctx: InteractionContext) -> None:
        given.append(len(await ctx.message_promises))
        ctx.reply("ok")

    most = WebSettings().max_body_values
    assert most == DEFAULT_MAX_BODY_VALUES == 10_000
    async with served(protocol.app(counted, authentication=NoAuthentication())) as client:
        refused = await client.post("/", json=body_of_values(protocol, most + 1))
        assert refused.status_code == 413
        error = refused.json()["error"]
        assert error["code"] == "too_many_values"
        assert f"over {most} JSON values" in error["message"]
        assert "max_body_values" in error["message"]
        assert given == []  # (no run)
        response, events = await post_events(client, body_of_values(protocol, most))
        assert response.status_code == 200
        assert events[-1].type == protocol.last_type
    assert given == [most // 8]  # (the body at the bound, read whole)


async def test_a_smaller_max_body_values_bounds_a_decision_too() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    settings = WebSettings(max_body_values=8)  # (the run's input: 8 values)
    app = agui_app(gated(tokens), authentication=NoAuthentication(), settings=settings)
    async with (
        served(app) as client,
        client.stream("POST", "/", json=agui_input("r1")) as response,
    ):
        lines = response.aiter_lines()
        await anext(lines)  # (the run is live)
        edited = {f"a{n}": n for n in range(8)}
        decision = {"approved": True, "arguments": edited}  # (12 values)
        decided = await client.post("/runs/r1/approvals/c1", json=decision)
        tokens.put_nowait(None)
        async for _ in lines:  # (to the run's end)
            pass
    assert decided.status_code == 413, decided.text
    assert decided.json()["error"]["code"] == "too_many_values"


def _with_id(field: str, value: str) -> dict[str, Any]:
    """A run's body (AG-UI's ``runId`` or ``threadId``, the AI SDK's chat ``id``) of ``value``."""
    if field == "id":
        return chat_request(value)
    return agui_input(value) if field == "runId" else agui_input("r1", thread=value)


@pytest.mark.parametrize(
    ("protocol", "field"),
    [(AGUI, "runId"), (AGUI, "threadId"), (AI_SDK, "id")],
    ids=["agui-run", "agui-thread", "ai_sdk-chat"],
)
async def test_an_id_the_client_chooses_over_max_id_chars_is_refused_and_starts_nothing(
    protocol: Protocol, field: str
) -> None:
    # (was: taken at any length the body held, kept as the run's key, a durable run's
    # workflow id, and repeated in each refusal that names the run)
    calls: list[object] = []

    @miniagent
    async def counted(ctx: InteractionContext) -> None:
        calls.append(ctx)
        ctx.reply("ok")

    settings = WebSettings(max_id_chars=12)
    app = protocol.app(counted, authentication=NoAuthentication(), settings=settings)
    long_id = "a" * 13
    async with served(app) as client:
        refused = await client.post("/", json=_with_id(field, long_id))
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == protocol.invalid_code
        assert f"{field} holds 13 characters, over the 12 an id may hold" in error["message"]
        assert "max_id_chars" in error["message"]
        assert long_id not in error["message"]  # (not repeated)
        assert (app.state.runs.live, app.state.runs.kept, calls) == (0, 0, [])
        response, events = await post_events(client, _with_id(field, "a" * 12))
        assert response.status_code == 200
        assert events[-1].type == protocol.last_type
    assert len(calls) == 1  # (an id at the bound: taken)


def test_max_id_chars_defaults_to_the_bound_a2a_app_kept_to() -> None:
    assert WebSettings().max_id_chars == DEFAULT_MAX_ID_CHARS == 256


async def test_an_unknown_id_over_max_id_chars_is_not_repeated_whole_in_its_refusal() -> None:
    # (an id only looked up, not kept, is not bounded before: each refusal that named it
    # repeated it whole, up to max_body_bytes of it)
    long_id = "x" * 12 + "TAIL"
    shown = f"'{'x' * 12}'... (of 16 characters)"
    settings = WebSettings(max_id_chars=12)
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    agui = agui_app(gated(tokens), authentication=NoAuthentication(), settings=settings)
    refusals: list[dict[str, Any]] = []
    async with served(agui) as client:
        refusals.append((await client.get(f"/runs/{long_id}")).json()["error"])
        answer = {"interruptId": long_id, "status": "resolved", "payload": {"approved": True}}
        resumed = await client.post("/", json=agui_input("r2", resume=[answer]))
        refusals.append(resumed.json()["error"])
        async with client.stream("POST", "/", json=agui_input("r1")) as response:
            lines = response.aiter_lines()
            await anext(lines)  # (the run is live)
            decided = await client.post(f"/runs/r1/approvals/{long_id}", json={"approved": True})
            refusals.append(decided.json()["error"])
            tokens.put_nowait(None)
            async for _ in lines:  # (to the run's end)
                pass
    chat = chat_request("c1")
    responded = {"type": "tool-x", "toolCallId": "t1", "state": "approval-responded"}
    responded["approval"] = {"id": long_id, "approved": True}  # type: ignore[assignment]
    chat["messages"].append({"id": "a1", "role": "assistant", "parts": [responded]})
    ai_sdk = ai_sdk_app(offline_agent, authentication=NoAuthentication(), settings=settings)
    async with served(ai_sdk) as client:
        refusals.append((await client.post("/", json=chat)).json()["error"])
    codes = [error["code"] for error in refusals]
    assert codes == ["unknown_run", "unknown_interrupt", "unknown_approval", "not_pending"]
    for error in refusals:
        assert shown in error["message"], error
        assert "TAIL" not in error["message"], error
