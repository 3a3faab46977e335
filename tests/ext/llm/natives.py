"""The native providers under test, Gemini and Bedrock: their agents, words and environments.

Shared by ``tests/ext/llm/test_gemini_bedrock.py`` and the tests that run both providers
elsewhere (the call cache, the turn bound, the OpenTelemetry provider names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from miniagents import MiniAgent
from miniagents.ext.llm import AssistantMessage
from miniagents.ext.llm.bedrock import BedrockMessage, bedrock_agent
from miniagents.ext.llm.gemini import GeminiMessage, gemini_agent
from miniagents.testing import AWS_TEST_CREDENTIALS, FakeLLMServer


@dataclass(frozen=True)
class Native:
    """One provider under test: its agent, the words of its API, its environment."""

    name: str
    agent: MiniAgent[..., Any]
    message_class: type[AssistantMessage]
    model: str
    stop: str  # the finish reason of a normal end
    price_provider: str

    def environment(self, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point the SDK's client, made from the environment, at ``server``."""
        if self.name == "gemini":
            monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.gemini_base_url)
            monkeypatch.setenv("GEMINI_API_KEY", "test")
            monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
            monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
        else:
            monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.bedrock_base_url)
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_TEST_CREDENTIALS["aws_access_key_id"])
            monkeypatch.setenv(
                "AWS_SECRET_ACCESS_KEY", AWS_TEST_CREDENTIALS["aws_secret_access_key"]
            )
            monkeypatch.setenv("AWS_REGION", AWS_TEST_CREDENTIALS["region_name"])
            for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
            monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

    def ask(self, messages: Any, **arguments: Any) -> Any:
        if self.name == "bedrock":
            arguments.setdefault("max_retries", 0)
        return self.agent.inquire(messages, model=self.model, **arguments)


GEMINI = Native("gemini", gemini_agent, GeminiMessage, "gemini-2.5-flash", "STOP", "google")
BEDROCK = Native(
    "bedrock",
    bedrock_agent,
    BedrockMessage,
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "end_turn",
    "aws",
)
