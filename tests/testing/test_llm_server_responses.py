"""The fake server's Responses API (``POST /v1/responses``), driven by the real OpenAI SDK.

These tests pin down what the SDK (openai 3.5x, ``client.responses``) makes of each reply
and failure mode of the fake: the Responses provider of ``openai_agent`` reads these events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import openai
import pytest

from miniagents.messages import ImagePart
from miniagents.testing import FAST_RETRY, FakeLLMServer, ToolCall
from tests.fakes.fixtures import fake_llm  # noqa: F401
from tests.testing.raw_json import post_json

USER = "hi there you"


@asynccontextmanager
async def client_of(server: FakeLLMServer, **options: Any) -> AsyncIterator[openai.AsyncOpenAI]:
    settings: dict[str, Any] = {"base_url": server.openai_base_url, "api_key": "test", **options}
    async with openai.AsyncOpenAI(**settings) as client:
        yield client


async def events_of(server: FakeLLMServer, **options: Any) -> tuple[list[Any], Exception | None]:
    """Stream a response; the events the SDK yields, and the error it raises, if any."""
    events: list[Any] = []
    async with client_of(server, **options) as client:
        try:
            stream = await client.responses.create(model="gpt-test", input=USER, stream=True)
            async for event in stream:
                events.append(event)
        except Exception as error:
            return events, error
    return events, None


def text_of(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


# -- successful replies --------------------------------------------------------------------


async def test_a_streamed_reply_is_the_event_sequence_of_the_api(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["Hel", "lo"], usage=(5, 2))
    events, error = await events_of(fake_llm)
    assert error is None
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(10))
    assert text_of(events) == "Hello"
    created, completed = events[0].response, events[-1].response
    assert (created.status, created.output, created.usage) == ("in_progress", [], None)
    assert completed.id == created.id
    assert completed.id.startswith("resp_")
    assert (completed.status, completed.model, completed.output_text) == (
        "completed",
        "gpt-test",
        "Hello",
    )
    assert completed.usage is not None
    assert (completed.usage.input_tokens, completed.usage.output_tokens) == (5, 2)
    assert completed.usage.total_tokens == 7
    item = events[2].item
    assert (item.type, item.role, item.status) == ("message", "assistant", "in_progress")
    assert {e.item_id for e in events[3:8]} == {item.id}

    request = fake_llm.wait_finished(0)
    assert (request.path, request.provider, request.stream) == (
        "/v1/responses",
        "openai_responses",
        True,
    )
    assert request.json == {"model": "gpt-test", "input": USER, "stream": True}
    assert (request.outcome, request.client_disconnected) == ("complete", False)


async def test_the_wire_has_an_event_line_per_event_and_no_done_marker(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["Hi"])
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{fake_llm.openai_base_url}/responses",
            json={"model": "m", "input": "hello", "stream": True},
        )
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""
    for block in blocks[:-1]:
        name, data = block.split("\n")
        assert json.loads(data.removeprefix("data: "))["type"] == name.removeprefix("event: ")
    assert "[DONE]" not in response.text


async def test_a_reply_that_is_not_streamed_is_a_response_object(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["Hel", "lo"], tool_calls=[ToolCall("add", {"a": 1}, id="c1")])
    async with client_of(fake_llm) as client:
        response = await client.responses.create(
            model="gpt-test",
            instructions="Be brief.",
            input=[{"role": "user", "content": USER}],
            max_output_tokens=20,
        )
    assert (response.object, response.status, response.instructions) == (
        "response",
        "completed",
        "Be brief.",
    )
    assert response.output_text == "Hello"
    message, call = response.output
    assert message.type == "message"
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments, call.status) == (
        "c1",
        "add",
        '{"a":1}',
        "completed",
    )
    assert response.usage is not None
    assert response.max_output_tokens == 20


async def test_tool_calls_stream_as_items_with_argument_deltas(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    calls = [ToolCall("add", {"a": 1, "b": 2}, id="c1"), ToolCall("get", {"x": "y"}, pieces=3)]
    fake_llm.reply(tool_calls=calls)
    events, error = await events_of(fake_llm)
    assert error is None
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [(item.type, item.call_id, item.name, item.arguments) for item in added] == [
        ("function_call", "c1", "add", ""),
        ("function_call", "call_fake00000002", "get", ""),
    ]
    deltas: dict[str, list[str]] = {}
    for event in events:
        if event.type == "response.function_call_arguments.delta":
            deltas.setdefault(event.item_id, []).append(event.delta)
    assert list(deltas.values()) == [['{"a":1,', '"b":2}'], ['{"x', '":"', 'y"}']]
    assert list(deltas) == [item.id for item in added]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [(e.name, e.arguments) for e in done] == [("add", '{"a":1,"b":2}'), ("get", '{"x":"y"}')]
    final = events[-1].response
    assert [item.type for item in final.output] == ["function_call", "function_call"]
    assert final.status == "completed"  # tool calls do not change the status


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("length", "max_output_tokens"),
        ("max_tokens", "max_output_tokens"),
        ("refusal", "content_filter"),
    ],
)
async def test_a_cut_reply_ends_with_response_incomplete_and_its_reason(
    fake_llm: FakeLLMServer,  # noqa: F811
    given: str,
    reason: str,
) -> None:
    fake_llm.reply(tokens=["Hel"], finish_reason=given)
    events, error = await events_of(fake_llm)
    assert error is None
    final = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.status == "incomplete"
    assert final.response.incomplete_details.reason == reason


async def test_the_sdks_stream_helper_reads_the_fake_too(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["Hel", "lo"], tool_calls=[ToolCall("add", {"a": 1}, id="c1")])
    async with (
        client_of(fake_llm) as client,
        client.responses.stream(model="gpt-test", input=USER) as stream,
    ):
        texts = [
            event.delta async for event in stream if event.type == "response.output_text.delta"
        ]
        final = await stream.get_final_response()
    assert texts == ["Hel", "lo"]
    assert final.output_text == "Hello"
    assert final.output[1].type == "function_call"


async def test_the_default_reply_echoes_the_last_user_input(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    async with client_of(fake_llm) as client:
        response = await client.responses.create(
            model="gpt-test",
            input=[
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "input_text", "text": "echo me"}]},
            ],
        )
    assert response.output_text == "echo me"


# -- failure modes -------------------------------------------------------------------------


async def test_an_error_event_is_yielded_by_the_sdk_not_raised(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["a", "b"], error_event_after=1, error_message="Boom")
    events, error = await events_of(fake_llm)
    assert error is None  # the Responses API's error event is an event like any other
    assert text_of(events) == "a"
    last = events[-1]
    assert (last.type, last.code, last.message, last.param) == (
        "error",
        "server_error",
        "Boom",
        None,
    )
    assert fake_llm.wait_finished(0).outcome == "complete"


async def test_a_failed_response_is_a_response_failed_event(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["a", "b"], failed_after=1, error_type="rate_limit_exceeded")
    events, error = await events_of(fake_llm)
    assert error is None
    assert text_of(events) == "a"
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert (failed.response.error.code, failed.response.error.message) == (
        "rate_limit_exceeded",
        "The server had an error while processing your request.",
    )

    fake_llm.reply(failed_after=0, error_message="No.")  # not streamed: status failed
    async with client_of(fake_llm) as client:
        response = await client.responses.create(model="gpt-test", input=USER)
    assert response.status == "failed"
    assert response.error is not None
    assert (response.error.code, response.error.message) == ("server_error", "No.")


async def test_a_stream_without_its_final_event_ends_silently(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["a", "b"], omit_final=True)
    events, error = await events_of(fake_llm)
    assert error is None
    assert text_of(events) == "ab"
    assert events[-1].type == "response.output_item.done"  # no response.completed


async def test_cut_malformed_and_timed_out_streams_raise(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["a", "b", "c"], cut_after=1)
    events, error = await events_of(fake_llm)
    assert text_of(events) == "a"
    assert type(error) is openai.APIConnectionError
    assert type(error.__cause__) is httpx2.RemoteProtocolError

    fake_llm.reply(tokens=["a", "b"], malformed_after=1)
    events, error = await events_of(fake_llm)
    assert text_of(events) == "a"
    assert type(error) is json.JSONDecodeError

    fake_llm.reply(tokens=["a", "b"], hang_after=1)
    events, error = await events_of(fake_llm, timeout=0.5, max_retries=0)
    assert text_of(events) == "a"
    assert type(error) is openai.APITimeoutError
    assert fake_llm.wait_disconnected(2)
    assert [fake_llm.requests[n].outcome for n in (0, 2)] == ["cut", "disconnected"]


async def test_http_errors_come_in_openais_error_body(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.fail(429, headers=FAST_RETRY)
    fake_llm.reply(tokens=["made it"])
    fake_llm.fail(401)
    async with client_of(fake_llm, max_retries=1) as client:
        response = await client.responses.create(model="gpt-test", input=USER)
        assert response.output_text == "made it"
        with pytest.raises(openai.AuthenticationError) as raised:
            await client.responses.create(model="gpt-test", input=USER)
    assert raised.value.status_code == 401
    assert raised.value.body == {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    assert [r.status for r in fake_llm.requests] == [429, 200, 401]


# -- requests the API refuses --------------------------------------------------------------

CALL = {"type": "function_call", "call_id": "c1", "name": "add", "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "call_id": "c1", "output": "2"}
PNG = "iVBORw0KGgoAAAANSUhEUg=="


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": "x"}, "Missing required parameter: 'model'."),
        ({"model": "m"}, "Missing required parameter: 'input'."),
        ({"model": "m", "input": "x", "max_tokens": 5}, "Unknown parameter: 'max_tokens'."),
        ({"model": "m", "input": "x", "stop": ["END"]}, "Unknown parameter: 'stop'."),
        (
            {"model": "m", "input": "x", "max_output_tokens": 5},
            "max_output_tokens: Input should be between 16 and 1000000, got 5",
        ),
        (
            {"model": "m", "input": [OUTPUT]},
            "No tool call found for function call output with call_id c1.",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": "x"}, CALL]},
            "No tool output found for function call c1.",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_image", "image_url": "ftp://x", "detail": "auto"}
                        ],
                    }
                ],
            },
            "Invalid 'input[0].content[0].image_url'. Expected a valid URL, or a base64-encoded "
            "data URL with an image MIME type (e.g. 'data:image/png;base64,aW1n').",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "input_image",
                                "image_url": "data:image/png;base64,!!",
                                "detail": "low",
                            }
                        ],
                    }
                ],
            },
            "Invalid 'input[0].content[0].image_url': the image data is not valid base64.",
        ),
        (
            {
                "model": "m",
                "input": [
                    {"role": "user", "content": [{"type": "input_image", "image_url": "https://x"}]}
                ],
            },
            "Missing required parameter: 'input[0].content[0].detail'.",
        ),
        (
            {"model": "m", "input": "x", "tools": [{"type": "function", "parameters": {}}]},
            "Missing required parameter: 'tools[0].name'.",
        ),
        (
            {"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}},
            "Missing required parameter: 'text.format.name'.",
        ),
    ],
)
def test_a_request_the_api_would_refuse_gets_its_400(
    fake_llm: FakeLLMServer,  # noqa: F811
    body: dict[str, Any],
    message: str,
) -> None:
    fake_llm.reply(tokens=["kept"])
    status, answer = post_json(fake_llm, "/v1/responses", body)
    assert status == 400
    assert answer["error"]["message"] == message
    assert answer["error"]["type"] == "invalid_request_error"
    assert fake_llm.pending == 1  # a refused request takes no script item


def test_calls_with_their_outputs_and_valid_images_are_taken(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    image = {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "high"}
    user = {"role": "user", "content": [{"type": "input_text", "text": "What?"}, image]}
    schema = {"type": "json_schema", "name": "Answer", "schema": {"type": "object"}}
    body = {"model": "m", "input": [user, CALL, OUTPUT], "text": {"format": schema}}
    status, answer = post_json(fake_llm, "/v1/responses", body)
    assert status == 200, answer
    assert answer["text"] == {"format": schema}
    assert fake_llm.requests[0].images == (
        ImagePart.model_validate({"data": PNG, "media_type": "image/png", "detail": "high"}),
    )
