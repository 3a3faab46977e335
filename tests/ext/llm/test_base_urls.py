"""Every provider's base URL is checked before any request, its error naming where it was set.

A base URL that is no http(s) URL (no such scheme, no host, a port that is no number)
reaches no server: the SDKs said so as a broken connection (``LLMConnectionError``), or
botocore as a bare ``ValueError``. Each agent now refuses it with an
``LLMConfigurationError`` that names the URL and where it was set: the environment
variable the agent made its client from, or the client given as ``async_client=``. The
OpenAI and Anthropic agents are tested in ``test_llm_providers.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from google import genai

from miniagents import MiniAgent, MiniAgents
from miniagents.ext.llm.bedrock import bedrock_agent
from miniagents.ext.llm.compatible import (
    SERVERS,
    azure_openai_agent,
    groq_agent,
    ollama_agent,
)
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.gemini import gemini_agent
from miniagents.testing import AWS_TEST_CREDENTIALS

BAD = "htp:/localhost::99"
GIVEN = (
    "the base_url= of the client given as async_client= (or, if it was made without one, "
    "{} in the environment, which the SDK then reads)"
)


@dataclass(frozen=True)
class Case:
    """An agent with a malformed base URL, and what its error must name."""

    agent: MiniAgent[..., Any]
    named: str  # the agent, as the error names it
    source: str  # where the URL was set, as the error says it
    url: str = BAD  # the URL as the error quotes it
    environment: dict[str, str] = field(default_factory=dict)
    client: Callable[[], object] | None = None


CASES = {
    "ollama-base-url": Case(
        ollama_agent,
        "ollama_agent",
        "OLLAMA_BASE_URL in the environment",
        environment={"OLLAMA_BASE_URL": BAD},
    ),
    # issue 62, item 3: OLLAMA_HOST is made a URL; its bad port is the variable's fault
    "ollama-host": Case(
        ollama_agent,
        "ollama_agent",
        "OLLAMA_HOST in the environment",
        url="http://localhost::99/v1",
        environment={"OLLAMA_HOST": "localhost::99"},
    ),
    "ollama-client": Case(
        ollama_agent,
        "ollama_agent",
        GIVEN.format("OPENAI_BASE_URL"),
        url=f"{BAD}/",  # (the SDK ends it with a slash)
        client=lambda: openai.AsyncOpenAI(base_url=BAD, api_key="test"),
    ),
    "groq": Case(
        groq_agent,
        "groq_agent",
        "GROQ_BASE_URL in the environment",
        environment={"GROQ_BASE_URL": BAD, "GROQ_API_KEY": "test"},
    ),
    "azure": Case(
        azure_openai_agent,
        "azure_agent",
        "AZURE_OPENAI_ENDPOINT in the environment",
        environment={"AZURE_OPENAI_ENDPOINT": BAD, "AZURE_OPENAI_API_KEY": "test"},
    ),
    # issue 62, item 3: it read "LLMConnectionError: The connection to Gemini broke"
    "gemini": Case(
        gemini_agent,
        "gemini_agent",
        "GOOGLE_GEMINI_BASE_URL in the environment",
        environment={"GOOGLE_GEMINI_BASE_URL": BAD, "GEMINI_API_KEY": "test"},
    ),
    "gemini-client": Case(
        gemini_agent,
        "gemini_agent",
        GIVEN.format("GOOGLE_GEMINI_BASE_URL"),
        client=lambda: genai.Client(api_key="test", http_options={"base_url": BAD}),
    ),
    # it was botocore's ValueError("Invalid endpoint: ..."), no MiniAgentsError at all
    "bedrock": Case(
        bedrock_agent,
        "bedrock_agent",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME in the environment",
        environment={"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": BAD},
    ),
    "bedrock-any-service": Case(
        bedrock_agent,
        "bedrock_agent",
        "AWS_ENDPOINT_URL in the environment",
        url="ftp://localhost/",
        environment={"AWS_ENDPOINT_URL": "ftp://localhost/"},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
async def test_a_malformed_base_url_is_a_configuration_error_naming_where_it_was_set(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    for known in SERVERS.values():
        monkeypatch.delenv(known.base_url_variable, raising=False)
    for name in (
        "OLLAMA_HOST",
        "OPENAI_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_VERTEX_BASE_URL",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_API_KEY",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_TEST_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_TEST_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_REGION", AWS_TEST_CREDENTIALS["region_name"])
    for name, value in case.environment.items():
        monkeypatch.setenv(name, value)
    options: dict[str, Any] = {"model": "m"}
    if case.client is not None:
        options["async_client"] = case.client()
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await case.agent.inquire("hi", **options)
    assert str(raised.value) == (
        f"The base URL of {case.named}, {case.url!r}, is not an http(s) URL (http:// or "
        "https://, a host, a port if any, then the path, e.g. https://api.example.com/v1), "
        f"so no request could reach it: fix it where it was set, {case.source}."
    )
