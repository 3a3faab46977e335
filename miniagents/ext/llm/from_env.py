"""``llm_agent_from_env``: the LLM agent your environment has a key for, else the offline one.

For demos, examples and tools that should run anywhere: with ``OPENAI_API_KEY`` set they
ask OpenAI, with ``ANTHROPIC_API_KEY`` set (and no OpenAI key) they ask Anthropic, and
with neither they use the offline model, which needs no network.
"""

from __future__ import annotations

import os
from typing import Any

from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.offline import Script, offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.miniagents.agent import MiniAgent

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
    **kwargs: Any,
) -> MiniAgent[...]:
    """An LLM agent chosen by the environment, with arguments bound.

    - ``OPENAI_API_KEY`` set: ``openai_agent``, model ``OPENAI_MODEL`` (default
      :data:`DEFAULT_OPENAI_MODEL`);
    - else ``ANTHROPIC_API_KEY`` set: ``anthropic_agent``, model ``ANTHROPIC_MODEL``
      (default :data:`DEFAULT_ANTHROPIC_MODEL`);
    - else ``offline_agent``, replying with ``offline_reply`` (see
      :mod:`miniagents.ext.llm.offline`) after ``token_delay`` seconds per token.

    Args:
        system: The system prompt.
        offline_reply: The offline model's reply (a text, texts, or a function of the call).
        token_delay: The offline model's delay before each token.
        **kwargs: For the OpenAI or Anthropic agent (``max_tokens``, ...); the offline
            model ignores them.
    """
    if os.environ.get("OPENAI_API_KEY"):
        model = os.environ.get("OPENAI_MODEL") or DEFAULT_OPENAI_MODEL
        return openai_agent.fork(model=model, system=system, **kwargs)
    if os.environ.get("ANTHROPIC_API_KEY"):
        model = os.environ.get("ANTHROPIC_MODEL") or DEFAULT_ANTHROPIC_MODEL
        return anthropic_agent.fork(model=model, system=system, **kwargs)
    return offline_agent.fork(system=system, reply=offline_reply, token_delay=token_delay)
