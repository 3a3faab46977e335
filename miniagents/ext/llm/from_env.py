"""``llm_agent_from_env``: the LLM agent your environment has a key for, else the offline one.

For demos, examples and tools that should run anywhere: with ``OPENAI_API_KEY`` set they
ask OpenAI, with ``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN`` set (and no OpenAI key)
they ask Anthropic, and with none of them they use the offline model, which needs no
network.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from miniagents.ext.llm.anthropic import _key_in_environment, anthropic_agent
from miniagents.ext.llm.messages import AssistantMessage, LLMReply
from miniagents.ext.llm.offline import Script, ToolRule, offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.provider import DEFAULT_MAX_TOOL_ROUNDS
from miniagents.ext.tools.tool_like import ToolLike
from miniagents.miniagents.agent import MiniAgent
from miniagents.promising.sentinels import DEFAULT, Sentinel

__all__ = ["DEFAULT_ANTHROPIC_MODEL", "DEFAULT_OPENAI_MODEL", "llm_agent_from_env"]

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
"""The OpenAI model when ``OPENAI_MODEL`` is not set."""

DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"
"""The Anthropic model when ``ANTHROPIC_MODEL`` is not set."""


def llm_agent_from_env(
    *,
    system: str | None = None,
    offline_reply: Script | None = None,
    token_delay: float = 0.02,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stall_timeout: float | Literal[Sentinel.DEFAULT] | None = DEFAULT,
    tools: Sequence[ToolLike] | None = None,
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
    offline_tool_rules: Sequence[ToolRule] | None = None,
) -> MiniAgent[..., LLMReply[AssistantMessage]]:
    """An LLM agent chosen by the environment, with arguments bound.

    Its replies are typed like every LLM agent's (``LLMReply``): ``reply[0].model`` needs
    no cast.

    - ``OPENAI_API_KEY`` set: ``openai_agent``, model ``OPENAI_MODEL`` (default
      :data:`DEFAULT_OPENAI_MODEL`);
    - else ``ANTHROPIC_API_KEY`` set, or ``ANTHROPIC_AUTH_TOKEN`` (a bearer token, which
      the Anthropic SDK takes instead of a key): ``anthropic_agent``, model
      ``ANTHROPIC_MODEL`` (default :data:`DEFAULT_ANTHROPIC_MODEL`);
    - else ``offline_agent``, replying with ``offline_reply`` (see
      :mod:`miniagents.ext.llm.offline`) after ``token_delay`` seconds per token.

    Args:
        system: The system prompt.
        offline_reply: The offline model's reply (a text, texts, or a function of the call).
        token_delay: The offline model's delay before each token.
        max_tokens: The most tokens a reply may have (default: the agent's).
        temperature: The sampling temperature (default: the model's; the offline model
            takes it but does not depend on it).
        stall_timeout: Seconds to wait for each next event of a reply (default: the
            ``MiniAgents`` context's; ``None``: no limit).
        tools: What the model may call (agents, typed functions, ``Tool`` objects).
        max_tool_rounds: The most rounds of tool calls in one reply.
        offline_tool_rules: The offline model's tool calls (see ``ToolRule``): a real
            model decides for itself.
    """
    given: dict[str, Any] = {"system": system}  # only what was given, for a clear repr
    if max_tokens is not None:
        given["max_tokens"] = max_tokens
    if temperature is not None:
        given["temperature"] = temperature
    if stall_timeout is not DEFAULT:
        given["stall_timeout"] = stall_timeout
    if tools:
        given["tools"] = tools
    if max_tool_rounds != DEFAULT_MAX_TOOL_ROUNDS:
        given["max_tool_rounds"] = max_tool_rounds
    if os.environ.get("OPENAI_API_KEY"):
        model = os.environ.get("OPENAI_MODEL") or DEFAULT_OPENAI_MODEL
        return openai_agent.fork(model=model, **given)
    if _key_in_environment():  # an API key or a bearer token, as the SDK takes them
        model = os.environ.get("ANTHROPIC_MODEL") or DEFAULT_ANTHROPIC_MODEL
        return anthropic_agent.fork(model=model, **given)
    if offline_tool_rules:
        given["tool_rules"] = offline_tool_rules
    return offline_agent.fork(reply=offline_reply, token_delay=token_delay, **given)
