"""The realtime link contract (``miniagents.testing.RealtimeLinkContract``), run against the
built-in OpenAI and Gemini links over the fake server's two realtime APIs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence

import pytest

from miniagents.ext.realtime.gemini import GeminiLiveOptions, GeminiLiveProvider
from miniagents.ext.realtime.openai import OpenAIRealtimeOptions, OpenAIRealtimeProvider
from miniagents.ext.realtime.provider import (
    RealtimeEvent,
    RealtimeLink,
    ReplyStarted,
    SessionSetup,
    ToolCalled,
)
from miniagents.messages import ImagePart
from miniagents.testing import (
    ContractViolationError,
    FakeLLMServer,
    RealtimeLinkContract,
    ToolCall,
    tone,
)
from tests.ext.realtime.kit import APIS, Api, ScriptedLink

CALL = ("lookup", json.dumps({"city": "Oslo"}))


class _FakeServersLink(RealtimeLinkContract):
    """A built-in link over the fake server (``api``: which of its realtime APIs)."""

    api: Api
    server: FakeLLMServer

    @pytest.fixture(autouse=True)
    def _served(self) -> Iterator[None]:
        with FakeLLMServer() as server:
            self.server = server
            yield
        assert not server.errors, f"the fake LLM server failed: {server.errors!r}"

    def script_reply(self, text: str) -> None:
        self.server.speak([text])

    def script_call(self, name: str, arguments: Mapping[str, object], held: bool) -> None:
        calls = [ToolCall(name, dict(arguments), id="call_1")]
        if held:
            self.server.speak(
                ["Let me ", "check."], tool_calls=calls, calls_first=True, pause_after=1
            )
        else:
            self.server.speak(["Checking."], tool_calls=calls)

    def script_failure(self, message: str) -> None:
        self.server.speak([], error=message)

    async def acut_short(self, link: RealtimeLink) -> None:
        rate = self.api.format.rate
        for chunk in [tone(100, 440.0, rate)] * 3 + [bytes(self.api.format.size_of(100))] * 6:
            await link.asend_audio(chunk)


class TestOpenAIRealtimeLink(_FakeServersLink):
    api = APIS[0]

    async def aconnect(self, setup: SessionSetup) -> RealtimeLink:
        options = OpenAIRealtimeOptions(async_client=self.api.client(self.server))
        return await OpenAIRealtimeProvider().aconnect(setup, options)


class TestGeminiLiveLink(_FakeServersLink):
    api = APIS[1]

    async def aconnect(self, setup: SessionSetup) -> RealtimeLink:
        options = GeminiLiveOptions(async_client=self.api.client(self.server))
        return await GeminiLiveProvider().aconnect(setup, options)


class _CallFirstLink(ScriptedLink):
    """A defective link: it says the model's call before the reply that makes it."""

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        return None

    async def arespond(self) -> None:
        return None

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        yield ToolCalled("call_1", *CALL)
        yield ReplyStarted("r1")
        await self.closed.wait()


class _CallFirstContract(RealtimeLinkContract):
    async def aconnect(self, setup: SessionSetup) -> RealtimeLink:
        return _CallFirstLink()

    def script_reply(self, text: str) -> None:
        return None

    def script_call(self, name: str, arguments: Mapping[str, object], held: bool) -> None:
        return None

    async def acut_short(self, link: RealtimeLink) -> None:
        return None

    def script_failure(self, message: str) -> None:
        return None


def test_a_link_that_calls_outside_a_reply_fails_the_contract() -> None:
    with pytest.raises(ContractViolationError, match="before its reply's ReplyStarted"):
        _CallFirstContract().test_a_tool_call_comes_inside_its_reply()


class _NeverOpensContract(_CallFirstContract):
    open_wait = 0.1

    async def aconnect(self, setup: SessionSetup) -> RealtimeLink:
        await asyncio.Event().wait()  # (an API that never answers the opening)
        raise AssertionError("unreachable")


def test_a_link_that_never_opens_fails_the_contract_in_time() -> None:
    # (was: the opening had no bound: the check waited for ever)
    with pytest.raises(ContractViolationError, match="the link's opening did not happen within"):
        _NeverOpensContract().test_a_replys_events_come_between_its_start_and_end()
