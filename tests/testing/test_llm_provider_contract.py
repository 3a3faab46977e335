"""The LLM provider contract: our providers (OpenAI on both APIs) pass it; broken ones fail.

The OpenAI, Anthropic, Gemini and Bedrock providers, and each OpenAI-compatible server's,
run against the fake LLM server, with the real SDKs (their clients made from the
environment, pointed at the server); the offline model is scripted by its arguments.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TypeVar, cast

import pytest

from miniagents import MessageSequencePromise
from miniagents.ext.llm import Finish, LLMCall, LLMEvent, LLMOptions, LLMProvider
from miniagents.ext.llm.anthropic import AnthropicOptions, AnthropicProvider
from miniagents.ext.llm.bedrock import BedrockOptions, BedrockProvider
from miniagents.ext.llm.compatible import SERVERS, CompatibleProvider
from miniagents.ext.llm.gemini import GeminiOptions, GeminiProvider
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.offline import OfflineMessage, OfflineOptions, OfflineProvider
from miniagents.ext.llm.openai import OpenAIOptions, OpenAIProvider
from miniagents.testing import AWS_TEST_CREDENTIALS, FakeLLMServer, LLMProviderContract
from tests.fakes.fixtures import WAIT

OptionsT = TypeVar("OptionsT", bound=LLMOptions)

# -- ours pass it ---------------------------------------------------------------------------


class FakeServerChecks(LLMProviderContract[OptionsT]):
    """The checks of a provider of an HTTP API that the fake LLM server speaks."""

    env = "OPENAI"
    model = "gpt-test"

    @pytest.fixture(autouse=True)
    def _server(self, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = fake_llm
        base_url = fake_llm.openai_base_url if self.env == "OPENAI" else fake_llm.base_url
        monkeypatch.setenv(f"{self.env}_BASE_URL", base_url)
        monkeypatch.setenv(f"{self.env}_API_KEY", "test")

    def agent_arguments(self) -> Mapping[str, object]:
        return {"model": self.model}

    def script_reply(self, tokens: Sequence[str]) -> Mapping[str, object]:
        self.server.reply(tokens)
        return {}

    def script_failure(self) -> Mapping[str, object]:
        self.server.fail(401)  # not retried by the SDKs
        return {}

    def script_hang(self) -> Mapping[str, object]:
        self.server.reply(["never sent"], hang_after=0)
        return {}

    def call_sent(self) -> Awaitable[object]:
        return asyncio.to_thread(self.server.wait_requests, 1, WAIT)

    def call_closed(self) -> Awaitable[object]:
        return asyncio.to_thread(self.server.wait_disconnected, 0, WAIT)


class TestOpenAIProvider(FakeServerChecks[OpenAIOptions]):
    def provider(self) -> LLMProvider[OpenAIOptions]:
        return OpenAIProvider()

    def options_class(self) -> type[OpenAIOptions]:
        return OpenAIOptions


class TestOpenAIResponsesProvider(TestOpenAIProvider):
    """The OpenAI provider on the Responses API (``api="responses"``)."""

    def agent_arguments(self) -> Mapping[str, object]:
        return {"model": self.model, "api": "responses"}

    def call_sent(self) -> Awaitable[object]:
        async def sent() -> None:
            requests = await asyncio.to_thread(self.server.wait_requests, 1, WAIT)
            assert {request.path for request in requests} == {"/v1/responses"}

        return sent()


class TestAnthropicProvider(FakeServerChecks[AnthropicOptions]):
    env = "ANTHROPIC"
    model = "claude-test"

    def provider(self) -> LLMProvider[AnthropicOptions]:
        return AnthropicProvider()

    def options_class(self) -> type[AnthropicOptions]:
        return AnthropicOptions


class TestGeminiProvider(FakeServerChecks[GeminiOptions]):
    model = "gemini-test"

    @pytest.fixture(autouse=True)
    def _server(self, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = fake_llm
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake_llm.gemini_base_url)
        monkeypatch.setenv("GEMINI_API_KEY", "test")
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)

    def provider(self) -> LLMProvider[GeminiOptions]:
        return GeminiProvider()

    def options_class(self) -> type[GeminiOptions]:
        return GeminiOptions


class TestBedrockProvider(FakeServerChecks[BedrockOptions]):
    model = "amazon.nova-lite-v1:0"

    @pytest.fixture(autouse=True)
    def _server(self, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = fake_llm
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake_llm.bedrock_base_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_TEST_CREDENTIALS["aws_access_key_id"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_TEST_CREDENTIALS["aws_secret_access_key"])
        monkeypatch.setenv("AWS_REGION", AWS_TEST_CREDENTIALS["region_name"])
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

    def agent_arguments(self) -> Mapping[str, object]:
        return {"model": self.model, "max_retries": 0}

    def script_failure(self) -> Mapping[str, object]:
        self.server.fail(400)  # a ValidationException: never retried
        return {}

    def provider(self) -> LLMProvider[BedrockOptions]:
        return BedrockProvider()

    def options_class(self) -> type[BedrockOptions]:
        return BedrockOptions


@pytest.mark.parametrize("server_name", list(SERVERS))
class TestCompatibleProviders(FakeServerChecks[OpenAIOptions]):
    """Each OpenAI-compatible server's provider, against its dialect of the fake server."""

    @pytest.fixture(autouse=True)
    def _server(
        self, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, server_name: str
    ) -> None:
        self.server = fake_llm
        self.server_name = server_name
        known = SERVERS[server_name]  # type: ignore[index]
        monkeypatch.setenv(known.base_url_variable, fake_llm.compatible_base_url(server_name))
        monkeypatch.setenv(known.key_variable, "test")

    def provider(self) -> LLMProvider[OpenAIOptions]:
        return CompatibleProvider(SERVERS[self.server_name])  # type: ignore[index]

    def options_class(self) -> type[OpenAIOptions]:
        return OpenAIOptions


class TestOfflineProvider(LLMProviderContract[OfflineOptions]):
    def provider(self) -> LLMProvider[OfflineOptions]:
        return OfflineProvider()

    def options_class(self) -> type[OfflineOptions]:
        return OfflineOptions

    def script_reply(self, tokens: Sequence[str]) -> Mapping[str, object]:
        return {"reply": "".join(tokens), "token_delay": 0.0}  # streamed word by word

    def script_failure(self) -> Mapping[str, object]:
        return {"reply": iter(())}  # no reply left: an LLMConfigurationError

    def script_hang(self) -> Mapping[str, object]:
        return {"token_delay": 1e9}


# -- broken ones fail it --------------------------------------------------------------------


class Scripted:
    """A provider scripted by its test: ``events`` streams a reply (see the broken ones)."""

    message_class = OfflineMessage

    def __init__(self, events: Callable[[LLMCall], AsyncIterator[LLMEvent]]) -> None:
        self.events = events

    def reply(self, call: LLMCall, options: OfflineOptions) -> AsyncIterator[LLMEvent]:
        return self.events(call)

    def translate(self, error: BaseException) -> BaseException:
        return error


async def buffered(call: LLMCall) -> AsyncIterator[LLMEvent]:
    """Gathers the whole reply into one token."""
    yield "".join(call.options.get("tokens", ()))  # type: ignore[arg-type]
    yield Finish("stop", 1, 3)


async def no_finish(call: LLMCall) -> AsyncIterator[LLMEvent]:
    for token in call.options.get("tokens", ()):  # type: ignore[attr-defined]
        yield token


async def finish_twice(call: LLMCall) -> AsyncIterator[LLMEvent]:
    yield "Streams are replayable."
    yield Finish("stop")
    yield Finish("length")


async def untranslated(call: LLMCall) -> AsyncIterator[LLMEvent]:
    if call.model:  # always: the model fails before its first event
        raise ConnectionResetError("the SDK's own error")
    yield ""


async def stubborn(call: LLMCall) -> AsyncIterator[LLMEvent]:
    """Ignores being closed: waits on, shielded."""
    if call.options.get("hang"):
        forever = asyncio.get_running_loop().create_future()
        try:
            await asyncio.shield(forever)
        except asyncio.CancelledError:
            await asyncio.shield(forever)  # never closes
    yield Finish("stop")


def checks_for(
    events: Callable[[LLMCall], AsyncIterator[LLMEvent]],
) -> LLMProviderContract[OfflineOptions]:
    """The contract's checks, on a provider that streams ``events``."""

    class Checks(LLMProviderContract[OfflineOptions]):
        wait = 1.0  # a broken provider hangs: fail soon

        def provider(self) -> LLMProvider[OfflineOptions]:
            return Scripted(events)

        def options_class(self) -> type[OfflineOptions]:
            return OfflineOptions

        def script_reply(self, tokens: Sequence[str]) -> Mapping[str, object]:
            return {"extra_options": {"tokens": list(tokens)}}

        def script_failure(self) -> Mapping[str, object]:
            return {}

        def script_hang(self) -> Mapping[str, object]:
            return {"extra_options": {"hang": True}}

    return Checks()


STREAM = "test_the_tokens_stream_as_they_come"
FINISH = "test_one_finish_comes_last_and_ends_the_reply"
FAILED = "test_a_failed_call_is_an_llm_error"
GIVE_UP = "test_giving_up_on_a_reply_closes_the_call"
STALL = "test_a_stalled_call_ends_with_an_llm_timeout_error_and_is_closed"


@pytest.mark.parametrize(
    ("events", "check", "says"),
    [
        (buffered, STREAM, "the first token is 'Streams are replayable.'"),
        (no_finish, FINISH, "the provider sent 0 Finish events"),
        (finish_twice, FINISH, "the provider sent 2 Finish events"),
        (untranslated, FAILED, "ConnectionResetError.*not an LLMError"),
        (stubborn, GIVE_UP, "the closing of the provider's reply iterator did not happen"),
        (stubborn, STALL, "the stall timeout did not happen"),
    ],
)
def test_a_broken_provider_fails_the_check_of_what_it_breaks(
    events: Callable[[LLMCall], AsyncIterator[LLMEvent]], check: str, says: str
) -> None:
    with pytest.raises(AssertionError, match=says):
        getattr(checks_for(events), check)()


def test_a_call_the_service_still_holds_open_fails_the_check() -> None:
    async def still_open() -> bool:
        return False  # as a hook says that finds the call not closed by the client

    async def hangs(call: LLMCall) -> AsyncIterator[LLMEvent]:
        await asyncio.Event().wait()  # until cancelled: the provider's side closes
        yield Finish("stop")

    checks = checks_for(hangs)
    checks.call_closed = still_open  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="the call given up on stayed open at the service"):
        checks.test_giving_up_on_a_reply_closes_the_call()


def test_a_reply_not_of_the_providers_message_class_is_named_with_its_article() -> None:
    class Retyping(Scripted):
        """Takes another message class as it replies: its reply is of the one it had."""

        def reply(self, call: LLMCall, options: OfflineOptions) -> AsyncIterator[LLMEvent]:
            self.message_class = AssistantMessage  # type: ignore[assignment]
            return super().reply(call, options)

    checks = checks_for(buffered)
    checks.provider = lambda: Retyping(buffered)  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="the reply is an OfflineMessage, not the provider's"):
        checks.test_one_finish_comes_last_and_ends_the_reply()


def test_a_call_without_a_model_fails_the_metadata_check_and_says_so() -> None:
    # (was: the check wanted the metadata's model to be the call's, so a call of no model
    # checked no model: a metadata without one passed)
    async def modelless(call: LLMCall) -> AsyncIterator[LLMEvent]:
        object.__setattr__(call, "model", None)  # as a wrapper that loses the model would
        await asyncio.Event().wait()  # sends nothing, until given up on
        yield Finish("stop")

    with pytest.raises(AssertionError, match=r"^the provider got a call whose model is None, "):
        checks_for(modelless).test_the_metadata_is_known_before_the_first_token()


def test_the_contract_has_the_checks_the_docs_name() -> None:
    checks = sorted(name for name in dir(LLMProviderContract) if name.startswith("test_"))
    assert checks == sorted(
        [
            FAILED,
            "test_a_call_without_streaming_gives_the_whole_text_as_one_token",
            STALL,
            GIVE_UP,
            FINISH,
            "test_the_metadata_is_known_before_the_first_token",
            STREAM,
        ]
    )


async def test_giving_up_leaves_no_consumer_when_the_call_never_went_out() -> None:
    """``give_up``'s consumer is cancelled on every path: where the call's sending fails,
    or the check is cancelled, too (it was left waiting on the reply until the loop ended)."""
    from miniagents.testing._checks import give_up

    waits: list[asyncio.Future[None]] = []

    class NeverResolved:
        async def aresolve(self) -> None:
            waits.append(asyncio.get_running_loop().create_future())
            await waits[-1]

    async def failing() -> None:
        await asyncio.sleep(0)  # (the consumer starts its wait first)
        raise ConnectionError("the call could not be sent")

    with pytest.raises(ConnectionError):
        await give_up(cast("MessageSequencePromise", NeverResolved()), failing())
    assert len(waits) == 1
    assert waits[0].cancelled()
