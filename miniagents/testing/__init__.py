"""The testing kit: test your agents offline, against the real SDKs, deterministically.

:class:`FakeLLMServer` is a local fake of the OpenAI Chat Completions, OpenAI Responses and
Anthropic Messages HTTP APIs (standard library only; it runs in a thread on ``127.0.0.1``,
on a free port). Point the real SDK clients at it, script its replies, and check what they
sent::

    with FakeLLMServer() as server:
        server.reply(["Hel", "lo"])                             # a streamed text reply
        server.reply(tool_calls=[ToolCall("add", {"a": 1})])    # a tool call
        server.fail(429, headers=FAST_RETRY)                     # an HTTP error, retried
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test")
        ...
        assert server.requests[0].json["messages"][-1]["content"] == "Hi"

The three streaming wire formats are spoken, text and tool calls (streamed argument
deltas, several calls in one reply, malformed argument JSON), with the failure modes of
real services: HTTP errors, cut and reset connections, hangs, pauses the test ends, error
events, failed responses, malformed events, streams without their final event. Requests
the real APIs would refuse (a missing field, an option out of range, tool calls and
results that do not pair up, an image URL that is not one) get the same 400; the images a
request carried are in ``RecordedRequest.images``.

The modules: ``llm_server`` (:class:`FakeLLMServer`), ``errors``, and private ones for the
HTTP plumbing (``_http``), the wire formats (``_openai_wire``, ``_responses_wire`` and
``_responses_checks``, ``_anthropic_wire``, ``_wire``), the script (``_script``), the
failure modes (``_faults``) and the record (``_record``).
"""

from miniagents.testing._record import Outcome as Outcome
from miniagents.testing._record import RecordedRequest as RecordedRequest
from miniagents.testing._script import FAST_RETRY as FAST_RETRY
from miniagents.testing._script import Failure as Failure
from miniagents.testing._script import Provider as Provider
from miniagents.testing._script import Reply as Reply
from miniagents.testing._script import ToolCall as ToolCall
from miniagents.testing.errors import FakeLLMServerError as FakeLLMServerError
from miniagents.testing.errors import FakeLLMServerTimeout as FakeLLMServerTimeout
from miniagents.testing.llm_server import FakeLLMServer as FakeLLMServer

__all__ = [
    "FAST_RETRY",
    "Failure",
    "FakeLLMServer",
    "FakeLLMServerError",
    "FakeLLMServerTimeout",
    "Outcome",
    "Provider",
    "RecordedRequest",
    "Reply",
    "ToolCall",
]
