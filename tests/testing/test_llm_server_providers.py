"""The fake LLM server's Gemini, Bedrock and OpenAI-compatible wire formats, seen from the wire.

The agents' own tests (``tests/ext/llm/test_gemini_bedrock.py``, ``test_compatible.py``)
drive these formats through the real SDKs; here the server's side is checked on its own:
the SigV4 check against AWS's published test vector, the binary event-stream framing, and
what each API refuses.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import httpx2
import pytest

from miniagents.testing import FakeLLMServer, ToolCall
from miniagents.testing._eventstream import stream_message
from miniagents.testing._gemini_wire import THOUGHT_SIGNATURE
from miniagents.testing._sigv4 import check_signature
from miniagents.testing.errors import FakeLLMServerError
from tests.fakes.fixtures import fake_llm  # noqa: F401

AWS_EXAMPLE_SECRET = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
"""The credentials of AWS's published Signature Version 4 test suite."""

GET_VANILLA = {
    "host": "example.amazonaws.com",
    "x-amz-date": "20150830T123600Z",
    "authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    ),
}
"""The request ``get-vanilla`` of AWS's test suite, signed: a GET of ``/``."""


def test_the_signature_check_agrees_with_aws_test_vector() -> None:
    assert check_signature("GET", "/", GET_VANILLA, b"", AWS_EXAMPLE_SECRET, "service") is None


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"x-amz-date": "20150830T123601Z"}, "does not match the signature"),
        ({"authorization": GET_VANILLA["authorization"].replace("5fa0", "5fa1")}, "does not match"),
        ({"authorization": "AWS4-HMAC-SHA256 Credential=nope"}, "malformed"),
        ({"authorization": ""}, "Missing Authentication Token"),
        (
            {"authorization": GET_VANILLA["authorization"].replace("AKIDEXAMPLE", "AKIDOTHER")},
            "security token included in the request is invalid",
        ),
    ],
)
def test_a_changed_request_fails_the_signature_check(change: dict[str, str], says: str) -> None:
    headers = {**GET_VANILLA, **change}
    problem = check_signature("GET", "/", headers, b"", AWS_EXAMPLE_SECRET, "service")
    assert problem is not None
    assert says in problem


def test_a_changed_body_or_path_fails_the_signature_check() -> None:
    assert check_signature("GET", "/other", GET_VANILLA, b"", AWS_EXAMPLE_SECRET, "service")
    assert check_signature("GET", "/", GET_VANILLA, b"x", AWS_EXAMPLE_SECRET, "service")


def test_a_bearer_token_is_taken() -> None:
    headers = {"authorization": "Bearer bedrock-api-key"}
    assert check_signature("POST", "/", headers, b"", {}, "bedrock") is None


def test_an_event_stream_message_is_framed_with_its_lengths_and_checksums() -> None:
    framed = stream_message("event", "contentBlockDelta", b'{"delta":{"text":"Hi"}}')
    total, headers_length, prelude_crc = struct.unpack(">III", framed[:12])
    assert total == len(framed)
    assert prelude_crc == zlib.crc32(framed[:8])
    assert struct.unpack(">I", framed[-4:])[0] == zlib.crc32(framed[:-4])
    headers = framed[12 : 12 + headers_length]
    assert b":event-type" in headers
    assert b"contentBlockDelta" in headers
    assert framed[12 + headers_length : -4] == b'{"delta":{"text":"Hi"}}'


def test_an_unsigned_bedrock_request_is_refused_as_aws_refuses_it(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    body = {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}
    response = httpx2.post(f"{fake_llm.bedrock_base_url}/model/m/converse", json=body)
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"].startswith("AccessDeniedException")
    assert response.json() == {"message": "Missing Authentication Token"}
    assert fake_llm.pending == 0
    assert fake_llm.requests[0].model == "m"


def gemini_request(server: FakeLLMServer, body: dict[str, Any]) -> httpx2.Response:
    url = f"{server.gemini_base_url}/v1beta/models/gemini-test:generateContent"
    return httpx2.post(url, json=body, headers={"x-goog-api-key": "test"})


def test_gemini_refuses_a_function_call_without_its_thought_signature(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    call = {"functionCall": {"name": "f", "args": {}}}
    answer = {"functionResponse": {"name": "f", "response": {"result": "ok"}}}
    contents = [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [call]},
        {"role": "user", "parts": [answer]},
    ]
    refused = gemini_request(fake_llm, {"contents": contents})
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "thought_signature" in refused.json()["error"]["message"]
    contents[1] = {"role": "model", "parts": [{**call, "thoughtSignature": THOUGHT_SIGNATURE}]}
    assert gemini_request(fake_llm, {"contents": contents}).status_code == 200


def test_gemini_refuses_a_function_call_turn_that_does_not_follow_the_users(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    call = {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": THOUGHT_SIGNATURE}
    answer = {"functionResponse": {"name": "f", "response": {"result": "ok"}}}
    contents = [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Let me see."}]},
        {"role": "model", "parts": [call]},
        {"role": "user", "parts": [answer]},
    ]
    refused = gemini_request(fake_llm, {"contents": contents})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "Please ensure that function call turn comes immediately after a user turn or after "
        "a function response turn."
    )
    contents[1:3] = [{"role": "model", "parts": [{"text": "Let me see."}, call]}]
    assert gemini_request(fake_llm, {"contents": contents}).status_code == 200


def test_bedrock_refuses_a_tool_use_id_aws_does_not_take(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    used = {"toolUse": {"toolUseId": "functions.f:0", "name": "f", "input": {}}}
    answered = {"toolResult": {"toolUseId": "functions.f:0", "content": [{"text": "ok"}]}}
    body = {
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [used]},
            {"role": "user", "content": [answered]},
        ],
        "toolConfig": {"tools": []},
    }
    refused = httpx2.post(
        f"{fake_llm.bedrock_base_url}/model/m/converse",
        json=body,
        headers={"authorization": "Bearer bedrock-api-key"},
    )
    assert refused.status_code == 400
    assert "toolUse.toolUseId' failed to satisfy constraint" in refused.text


def test_gemini_sends_a_call_whole_with_its_signature(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("f", {"x": 1})], usage=(4, 2), reasoning_tokens=1)
    body = gemini_request(fake_llm, {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
    candidate = body.json()["candidates"][0]
    assert candidate["content"]["parts"] == [
        {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": THOUGHT_SIGNATURE}
    ]
    assert candidate["finishReason"] == "STOP"
    usage = body.json()["usageMetadata"]
    assert (usage["candidatesTokenCount"], usage["thoughtsTokenCount"]) == (1, 1)


def test_a_compatible_servers_dialect_is_served_under_its_path(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    with httpx2.stream(
        "POST",
        f"{fake_llm.compatible_base_url('groq')}/chat/completions",
        json={**body, "stream_options": {"include_usage": True}},
    ) as refused:
        assert refused.status_code == 400  # Groq refuses stream_options
    with httpx2.stream(
        "POST", f"{fake_llm.compatible_base_url('groq')}/chat/completions", json=body
    ) as answered:
        lines = [line for line in answered.iter_lines() if line.startswith("data: {")]
    last = json.loads(lines[-1].removeprefix("data: "))
    assert last["x_groq"]["usage"]["prompt_tokens"] == 1
    assert last["choices"][0]["finish_reason"] == "stop"


def test_an_unknown_compatible_server_is_refused(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    with pytest.raises(FakeLLMServerError, match="ollama"):
        fake_llm.compatible_base_url("nope")
