"""Each provider's ``gen_ai.provider.name``, as the OpenTelemetry GenAI conventions name it.

The real SDKs over real HTTP against :class:`~miniagents.testing.FakeLLMServer`, the spans
and metrics read from the OpenTelemetry SDK's in-memory exporter and reader. The names
are the conventions' well-known values (``gcp.gemini`` for the Gemini Developer API,
``gcp.vertex_ai`` for Vertex AI, ``aws.bedrock``, ``groq``, ``deepseek``,
``azure.ai.openai``), and the server's own name for a server they do not list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from miniagents import MiniAgent, MiniAgents
from miniagents.ext.llm.compatible import SERVERS, ServerName, compatible_agent
from miniagents.ext.llm.gemini import gemini_agent
from miniagents.testing import FakeLLMServer
from tests.ext.llm.natives import BEDROCK, GEMINI
from tests.fakes.fixtures import fake_llm  # noqa: F401
from tests.fakes.tracing import Traces, traces  # noqa: F401

COMPATIBLE_NAMES: dict[ServerName, str] = {
    "ollama": "ollama",
    "vllm": "vllm",
    "lm_studio": "lm_studio",
    "openrouter": "openrouter",
    "groq": "groq",  # the conventions' own
    "deepseek": "deepseek",  # the conventions' own
    "together": "together_ai",
    "fireworks": "fireworks_ai",
    "azure": "azure.ai.openai",  # the conventions' own (az.ai.openai is its old name)
}
"""The name of each OpenAI-compatible server in traces."""


async def _traced_call(
    traces: Traces,  # noqa: F811
    server: FakeLLMServer,
    agent: MiniAgent[..., Any],
    model: str,
    **arguments: Any,
) -> str:
    """Call ``agent`` once; the ``gen_ai.provider.name`` of its span, checked everywhere.

    The agent's ``invoke_agent`` span and the operation's duration metric name the same
    provider.
    """
    server.reply(["Hi"], usage=(3, 1))
    async with MiniAgents():
        assert str((await agent.inquire("Hello", model=model, **arguments))[0]) == "Hi"
    chat = dict(traces.one(f"chat {model}").attributes or {})
    name = chat["gen_ai.provider.name"]
    assert isinstance(name, str)
    (interaction,) = [span for span in traces.spans() if span.name.startswith("invoke_agent")]
    assert (interaction.attributes or {})["gen_ai.provider.name"] == name
    durations = traces.points("gen_ai.client.operation.duration")
    assert {(point.attributes or {})["gen_ai.provider.name"] for point in durations} == {name}
    return name


async def test_the_gemini_developer_api_is_gcp_gemini(
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    GEMINI.environment(fake_llm, monkeypatch)
    assert await _traced_call(traces, fake_llm, gemini_agent, GEMINI.model) == "gcp.gemini"


def _vertex_client(server: FakeLLMServer) -> Any:
    """A ``genai.Client`` of Vertex AI (express mode: an API key) for the fake server."""
    import httpx2
    from google import genai

    options = genai.types.HttpOptions(
        base_url=server.gemini_base_url,
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    return genai.Client(vertexai=True, api_key="test", http_options=options)


@pytest.mark.parametrize(
    "given", [lambda client: client, lambda client: client.aio], ids=["client", "aio"]
)
async def test_a_vertex_ai_client_is_gcp_vertex_ai(
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
    given: Callable[[Any], Any],
) -> None:
    client = _vertex_client(fake_llm)
    try:
        name = await _traced_call(
            traces, fake_llm, gemini_agent, GEMINI.model, async_client=given(client)
        )
    finally:
        await client.aio.aclose()
    assert name == "gcp.vertex_ai"
    assert fake_llm.requests[0].path.startswith("/v1beta1/publishers/google/models/")


async def test_vertex_ai_from_the_environment_is_gcp_vertex_ai(
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GOOGLE_GENAI_USE_ENTERPRISE", raising=False)
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_API_KEY", "test")  # Vertex AI's express mode
    # (the SDK of today reads GOOGLE_GEMINI_BASE_URL when Vertex AI is chosen by the
    # environment, not by its vertexai= argument: both point at the fake server)
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", fake_llm.gemini_base_url)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake_llm.gemini_base_url)
    name = await _traced_call(traces, fake_llm, gemini_agent, GEMINI.model)
    assert name == "gcp.vertex_ai"
    assert fake_llm.requests[0].path.startswith("/v1beta1/publishers/google/models/")


async def test_bedrock_is_aws_bedrock(
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    BEDROCK.environment(fake_llm, monkeypatch)
    name = await _traced_call(traces, fake_llm, BEDROCK.agent, BEDROCK.model, max_retries=0)
    assert name == "aws.bedrock"


@pytest.mark.parametrize("server", list(SERVERS))
async def test_each_compatible_server_has_its_own_name(
    fake_llm: FakeLLMServer,  # noqa: F811
    traces: Traces,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    server: ServerName,
) -> None:
    known = SERVERS[server]
    monkeypatch.setenv(known.base_url_variable, fake_llm.compatible_base_url(server))
    monkeypatch.setenv(known.key_variable, "test-key")
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    name = await _traced_call(traces, fake_llm, compatible_agent(server), "some-model")
    assert name == COMPATIBLE_NAMES[server]
    assert set(COMPATIBLE_NAMES) == set(SERVERS)  # every server named here
