"""The OpenAI-compatible servers by name, over real HTTP, against the fake server's dialects.

The real ``openai`` SDK (``AsyncOpenAI``, and ``AsyncAzureOpenAI`` for Azure) talks to the
fake server, which speaks each server's dialect of Chat Completions, quirks included
(``miniagents.testing._compatible_wire``): each agent gets its base URL and key from the
environment, handles its quirks, and refuses before the request a call its server
cannot serve.
"""

from __future__ import annotations

import re
from typing import Literal

import pytest

from miniagents import Message, MiniAgents
from miniagents.ext.llm import (
    ImagePart,
    LLMRefusalError,
    LLMToolCallMessage,
    LLMToolResultMessage,
    UserMessage,
    structured,
)
from miniagents.ext.llm.compatible import (
    DEFAULT_AZURE_API_VERSION,
    SERVERS,
    CompatibleMessage,
    ServerName,
    azure_openai_agent,
    compatible_agent,
    deepseek_agent,
    groq_agent,
    lm_studio_agent,
    ollama_agent,
    openrouter_agent,
)
from miniagents.ext.llm.errors import LLMAuthenticationError, LLMConfigurationError
from miniagents.testing import FakeLLMServer, ToolCall
from tests.fakes.fixtures import fake_llm  # noqa: F401
from tests.messages.images import WHOLE_PNG


@pytest.fixture
def server(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> FakeLLMServer:
    """The fake server, every known server's base URL and key pointed at its dialect."""
    for name, known in SERVERS.items():
        monkeypatch.setenv(known.base_url_variable, fake_llm.compatible_base_url(name))
        monkeypatch.setenv(known.key_variable, "test-key")
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    return fake_llm


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


@pytest.mark.parametrize("name", list(SERVERS))
async def test_each_server_streams_from_its_own_base_url_with_its_key(
    server: FakeLLMServer, name: ServerName
) -> None:
    server.reply(["Hel", "lo"], usage=(6, 2))
    async with MiniAgents():
        reply = compatible_agent(name).inquire("Hi", model="some-model")
        tokens = [token async for promise in reply async for token in promise]
        message = (await reply)[0]
    assert tokens == ["Hel", "lo"]
    assert type(message) is CompatibleMessage
    assert message.agent_alias == (
        "AZURE_OPENAI_AGENT" if name == "azure" else f"{name.upper()}_AGENT"
    )
    request = server.requests[0]
    if name == "azure":
        assert request.path.startswith(
            f"/openai/deployments/some-model/chat/completions?api-version={DEFAULT_AZURE_API_VERSION}"
        )
        assert request.headers["api-key"] == "test-key"
    else:
        assert request.path == f"/{name}/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer test-key"
    if name == "lm_studio":  # it ignores stream_options: no usage in the stream
        assert message.usage is not None
        assert message.usage.input_tokens is None
    else:
        assert message.usage is not None
        assert (message.usage.input_tokens, message.usage.output_tokens) == (6, 2)


async def test_groq_is_not_sent_stream_options_and_its_usage_comes_from_x_groq(
    server: FakeLLMServer,
) -> None:
    server.reply(["Hi"], usage=(9, 1))
    async with MiniAgents():
        message = (await groq_agent.inquire("Hi", model="llama-3.3-70b-versatile"))[0]
    assert "stream_options" not in server.requests[0].json
    assert message.usage is not None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 1)
    assert message.usage.cost_usd is not None  # Groq's prices


async def test_groq_refuses_logit_bias_before_the_request(server: FakeLLMServer) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="Groq does not take logit_bias"):
            await groq_agent.inquire("Hi", model="m", logit_bias={"1": 5})
    assert server.requests == []


@pytest.mark.parametrize("name", ["ollama", "vllm", "lm_studio"])
def test_a_local_servers_agent_takes_a_temperature_above_2(name: ServerName) -> None:
    agent = compatible_agent(name)
    assert agent.fork(temperature=3.5).bound_arguments["temperature"] == 3.5
    assert agent.bind(temperature=3.5).bound_arguments["temperature"] == 3.5
    with pytest.raises(LLMConfigurationError, match="a finite number of at least 0; got -1"):
        agent.fork(temperature=-1)


@pytest.mark.parametrize("name", ["ollama", "vllm", "lm_studio"])
async def test_a_local_server_is_sent_a_temperature_above_2(
    server: FakeLLMServer, name: ServerName
) -> None:
    # the fake's dialects refused a temperature above 2 for every server: a 400 here
    server.reply("Hot.")
    async with MiniAgents():
        reply = await compatible_agent(name).fork(temperature=3.5).inquire("Hi", model="m")
    assert reply[0].text == "Hot."
    assert server.requests[0].json["temperature"] == 3.5


async def test_a_hosted_server_refuses_a_temperature_above_its_range(
    server: FakeLLMServer,
) -> None:
    says = (
        "GROQ_AGENT needs temperature to be a number from 0 to 2; got 2.5. Groq takes a "
        "temperature from 0 to 2: pass e.g. groq_agent.fork(temperature=0.7), or None."
    )
    with pytest.raises(LLMConfigurationError, match=re.escape(says)):
        groq_agent.fork(temperature=2.5)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=re.escape(says)):
            await groq_agent.inquire("Hi", model="m", temperature=2.5)
    assert server.requests == []
    assert groq_agent.fork(temperature=2).bound_arguments["temperature"] == 2


async def test_deepseeks_cache_hits_are_the_cached_tokens(server: FakeLLMServer) -> None:
    server.reply(["Hi"], usage=(100, 1), cached_tokens=64)
    async with MiniAgents():
        message = (await deepseek_agent.inquire("Hi", model="deepseek-chat"))[0]
    assert message.usage is not None
    assert message.usage.cached_input_tokens == 64


async def test_openrouters_comments_are_skipped_and_its_usage_read(server: FakeLLMServer) -> None:
    server.reply(["Hel", "lo"], usage=(4, 2))
    async with MiniAgents():
        message = (await openrouter_agent.inquire("Hi", model="openai/gpt-4o-mini"))[0]
    assert str(message) == "Hello"
    assert message.usage is not None
    assert message.usage.output_tokens == 2


@pytest.mark.parametrize(
    ("ids", "told"),
    [((None, None), None), (("call_0", "call_0"), ["call_0", "call_0_2"])],
    ids=["own-ids", "one-id"],
)
async def test_ollamas_parallel_calls_at_one_index_are_told_apart_by_ids_or_places(
    server: FakeLLMServer, ids: tuple[str | None, str | None], told: list[str] | None
) -> None:
    """Ollama sends a reply's calls whole in one chunk, each at index 0: calls of their own
    ids are told apart by them, calls of one id (a model that writes ``call_0`` for each) by
    their places in the chunk, the second renamed."""
    server.reply(
        tool_calls=[
            ToolCall("get_weather", {"city": "Paris"}, id=ids[0]),
            ToolCall("get_weather", {"city": "Rome"}, id=ids[1]),
        ]
    )
    server.reply(["Both sunny."])
    async with MiniAgents():
        messages = await ollama_agent.inquire("Weather?", model="llama3.2", tools=[get_weather])
    calls = [m for m in messages if isinstance(m, LLMToolCallMessage)]
    results = [m for m in messages if isinstance(m, LLMToolResultMessage)]
    assert [dict(call.arguments) for call in calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert [str(result) for result in results] == ["Sunny in Paris.", "Sunny in Rome."]
    assert str(messages[-1]) == "Both sunny."
    assert server.requests[1].status == 200  # both calls answered, as the server checks
    if told is not None:
        assert [call.call_id for call in calls] == told
        assert [result.call_id for result in results] == told


@pytest.mark.parametrize("agent", [ollama_agent, lm_studio_agent], ids=["ollama", "lm_studio"])
async def test_an_image_url_is_refused_where_only_bytes_are_taken(
    server: FakeLLMServer, agent: object
) -> None:
    image = ImagePart(url="https://example.com/cat.png")
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="bytes only"):
            await agent.inquire(UserMessage(text="What?", images=(image,)), model="m")  # type: ignore[attr-defined]
        reply = await ollama_agent.inquire(
            UserMessage(text="What?", images=(ImagePart(data=WHOLE_PNG, media_type="image/png"),)),
            model="llava",
        )
    assert str(reply[0])  # the bytes went through
    assert len(server.requests) == 1


async def test_deepseek_refuses_images_and_a_json_schema_before_the_request(
    server: FakeLLMServer,
) -> None:
    class Weather(Message):
        city: str

    image = ImagePart(data=WHOLE_PNG, media_type="image/png")
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="take no images"):
            await deepseek_agent.inquire(UserMessage(text="What?", images=(image,)), model="m")
        with pytest.raises(LLMConfigurationError, match="JSON schema"):
            await structured(deepseek_agent, Weather).inquire("Weather?", model="m")
    assert server.requests == []


async def test_the_responses_api_is_refused_where_the_server_has_none(
    server: FakeLLMServer,
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="does not serve the Responses API"):
            await groq_agent.inquire("Hi", model="m", api="responses")
    assert server.requests == []


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
@pytest.mark.parametrize("api", ["chat_completions", "responses"])
async def test_a_content_filter_stop_is_a_refusal(
    server: FakeLLMServer, api: Literal["chat_completions", "responses"], stream: bool
) -> None:
    # the Responses API says so with an incomplete response, its reason "content_filter":
    # on main, Azure's agent with api="responses" gave the cut text as its answer
    server.reply(["I won't"], finish_reason="content_filter")
    async with MiniAgents():
        with pytest.raises(LLMRefusalError, match="I won't"):
            await azure_openai_agent.inquire(
                "Something bad", model="gpt-4o", api=api, stream=stream
            )
    assert server.requests[0].path.startswith(
        "/openai/responses" if api == "responses" else "/openai/deployments/gpt-4o/chat"
    )


async def test_azures_content_filter_refusing_the_prompt_is_a_refusal(
    server: FakeLLMServer,
) -> None:
    body = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure's content "
            "management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
        }
    }
    server.fail(400, body=body)
    async with MiniAgents():
        with pytest.raises(LLMRefusalError, match="content filter"):
            await azure_openai_agent.inquire("Something bad", model="gpt-4o", max_retries=0)


@pytest.mark.parametrize("name", ["openrouter", "groq", "deepseek", "together", "fireworks"])
async def test_a_hosted_server_without_its_key_is_an_authentication_error(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, name: ServerName
) -> None:
    monkeypatch.delenv(SERVERS[name].key_variable)
    async with MiniAgents():
        with pytest.raises(LLMAuthenticationError, match=SERVERS[name].key_variable):
            await compatible_agent(name).inquire("Hi", model="m")
    assert server.requests == []


async def test_a_local_server_needs_no_key_and_ollama_reads_ollama_host(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OLLAMA_API_KEY")
    monkeypatch.delenv("OLLAMA_BASE_URL")
    monkeypatch.setenv("OLLAMA_HOST", server.base_url.removeprefix("http://") + "/ollama")
    async with MiniAgents():
        assert str((await ollama_agent.inquire("Hi there", model="llama3.2"))[0]) == "Hi there"
    assert server.requests[0].path == "/ollama/v1/chat/completions"
    assert server.requests[0].headers["authorization"] == "Bearer ollama"


async def test_azure_without_an_endpoint_names_the_variable(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT")
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
            await azure_openai_agent.inquire("Hi", model="gpt-4o")


def test_an_unknown_server_name_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(LLMConfigurationError, match="ollama, vllm"):
        compatible_agent("nope")  # type: ignore[arg-type]


async def test_lm_studio_is_asked_for_the_usage_it_does_not_send(
    server: FakeLLMServer,
) -> None:
    server.reply(["Hi"], usage=(3, 1))
    async with MiniAgents():
        message = (await lm_studio_agent.inquire("Hi", model="m"))[0]
    assert server.requests[0].json["stream_options"] == {"include_usage": True}
    assert message.usage is not None
    assert message.usage.input_tokens is None
    assert str(message) == "Hi"
