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

The realtime APIs are spoken too, over WebSocket (OpenAI Realtime; Gemini Live, in TLS:
``server.tls_context``): ``server.speak(...)`` scripts the model's spoken replies (audio,
transcript, tool calls, usage as :class:`LiveUsage`, faults), the fake hears the user's
audio (server VAD: a tone is speech, quiet ends the turn) and answers, and
``server.realtime_sessions`` holds what each session got and did (:class:`LiveRecord`);
:func:`tone` makes audio that the fake hears as speech.

:func:`thinking_signature` is the signature the fake gives an Anthropic ``thinking`` block
(a provider must send it back unchanged), and :data:`HANG_GUARD` the kit's bound on a wait,
in seconds: a guard against a hang that a test's own waits can share.

The batch APIs are spoken too (OpenAI's files and batches, Anthropic's Message Batches,
Gemini's Batch API):
``server.batches`` (:class:`FakeBatches`) runs each batch's requests through the same
script, and lets a test hold, release, expire, fail or cancel batches.

The three streaming wire formats are spoken, text and tool calls (streamed argument
deltas, several calls in one reply, malformed argument JSON), with the failure modes of
real services: HTTP errors, cut and reset connections, hangs, pauses the test ends, error
events, failed responses, malformed events, streams without their final event. Requests
the real APIs would refuse (a missing field, an option out of range, tool calls and
results that do not pair up, an image URL that is not one) get the same 400; the images a
request carried are in ``RecordedRequest.images``.

:func:`scripted_agent` and :func:`function_agent` are real LLM agents (the offline model
with a script) whose replies a test writes: one per call of the model, or what a function
of the call returns::

    agent = scripted_agent(CallTool("add", {"a": 2, "b": 3}), "2 + 3 = 5.", tools=[add])

:func:`run_with_virtual_time`, :func:`virtual_time` and :func:`manual_time` run asyncio
code on a :class:`VirtualClock`, which jumps to the next timer when the loop is idle (or
stands still until the test moves it): sleeps, timeouts and stalls at once, in order.

:class:`ChatHistoryContract`, :class:`LLMProviderContract` and :class:`RealtimeLinkContract`
are the checks every chat history, every LLM provider and every realtime link must pass:
extend one in a test class of yours, and pytest runs them on your own.

The modules: ``llm_server`` (:class:`FakeLLMServer`), ``errors``, and private ones for the
HTTP plumbing (``_http``), the wire formats (``_openai_wire``, ``_responses_wire`` and
``_responses_checks``, ``_anthropic_wire``, ``_wire``), the batch APIs (``_batches``,
``_openai_batch_wire``, ``_anthropic_batch_wire``), the script (``_script``), the
failure modes (``_faults``) and the record (``_record``). The rest of the kit:
``scripted_model``, ``virtual_time`` (with the private ``_idle``: what the loop's clock
needs), ``chat_history_contract``, ``llm_provider_contract`` (with the private
``_provider_hooks``, ``_spy`` and ``_checks``), ``realtime_link_contract``, and
``pytest_llm_cache``, a pytest plugin that makes a test suite replay its recorded calls of
models.
"""

from miniagents.testing._anthropic_wire import thinking_signature as thinking_signature
from miniagents.testing._batches import BatchRequest as BatchRequest
from miniagents.testing._batches import FakeBatch as FakeBatch
from miniagents.testing._batches import FakeBatches as FakeBatches
from miniagents.testing._batches import RequestResult as RequestResult
from miniagents.testing._bedrock_wire import AWS_TEST_CREDENTIALS as AWS_TEST_CREDENTIALS
from miniagents.testing._live import LiveRecord as LiveRecord
from miniagents.testing._live import LiveUsage as LiveUsage
from miniagents.testing._live import SpokenReply as SpokenReply
from miniagents.testing._live import tone as tone
from miniagents.testing._record import HANG_GUARD as HANG_GUARD
from miniagents.testing._record import Outcome as Outcome
from miniagents.testing._record import RecordedRequest as RecordedRequest
from miniagents.testing._script import FAST_RETRY as FAST_RETRY
from miniagents.testing._script import Failure as Failure
from miniagents.testing._script import Provider as Provider
from miniagents.testing._script import Reply as Reply
from miniagents.testing._script import ToolCall as ToolCall
from miniagents.testing.chat_history_contract import ChatHistoryContract as ChatHistoryContract
from miniagents.testing.chat_history_contract import ContractNote as ContractNote
from miniagents.testing.chat_history_contract import every_kind_of_message as every_kind_of_message
from miniagents.testing.errors import ContractViolationError as ContractViolationError
from miniagents.testing.errors import FakeLLMServerError as FakeLLMServerError
from miniagents.testing.errors import FakeLLMServerTimeout as FakeLLMServerTimeout
from miniagents.testing.errors import TestingKitError as TestingKitError
from miniagents.testing.errors import VirtualTimeError as VirtualTimeError
from miniagents.testing.llm_provider_contract import CONTRACT_TOKENS as CONTRACT_TOKENS
from miniagents.testing.llm_provider_contract import LLMProviderContract as LLMProviderContract
from miniagents.testing.llm_server import FakeLLMServer as FakeLLMServer
from miniagents.testing.realtime_link_contract import CONTRACT_WORDS as CONTRACT_WORDS
from miniagents.testing.realtime_link_contract import RealtimeLinkContract as RealtimeLinkContract
from miniagents.testing.scripted_model import FunctionAgentFactory as FunctionAgentFactory
from miniagents.testing.scripted_model import ScriptedAgentFactory as ScriptedAgentFactory
from miniagents.testing.scripted_model import function_agent as function_agent
from miniagents.testing.scripted_model import scripted_agent as scripted_agent
from miniagents.testing.virtual_time import VirtualClock as VirtualClock
from miniagents.testing.virtual_time import VirtualTimeLoop as VirtualTimeLoop
from miniagents.testing.virtual_time import manual_time as manual_time
from miniagents.testing.virtual_time import run_with_virtual_time as run_with_virtual_time
from miniagents.testing.virtual_time import virtual_time as virtual_time

__all__ = [
    "AWS_TEST_CREDENTIALS",
    "CONTRACT_TOKENS",
    "CONTRACT_WORDS",
    "FAST_RETRY",
    "HANG_GUARD",
    "BatchRequest",
    "ChatHistoryContract",
    "ContractNote",
    "ContractViolationError",
    "Failure",
    "FakeBatch",
    "FakeBatches",
    "FakeLLMServer",
    "FakeLLMServerError",
    "FakeLLMServerTimeout",
    "FunctionAgentFactory",
    "LLMProviderContract",
    "LiveRecord",
    "LiveUsage",
    "Outcome",
    "Provider",
    "RealtimeLinkContract",
    "RecordedRequest",
    "Reply",
    "RequestResult",
    "ScriptedAgentFactory",
    "SpokenReply",
    "TestingKitError",
    "ToolCall",
    "VirtualClock",
    "VirtualTimeError",
    "VirtualTimeLoop",
    "every_kind_of_message",
    "function_agent",
    "manual_time",
    "run_with_virtual_time",
    "scripted_agent",
    "thinking_signature",
    "tone",
    "virtual_time",
]
