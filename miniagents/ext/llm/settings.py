"""``LLMSettings``: the settings of the LLM agents that a ``MiniAgents`` context holds.

They are given as ``MiniAgents(stream_llm_tokens_by_default=..., llm_logger_agent=...,
llm_stall_timeout=..., llm_parse_in_turn=..., llm_max_turn_chars=...)``; an inner context
inherits those it does not set. LLM agents read them with :func:`llm_settings` (the section of
:mod:`miniagents.miniagents.lowlevel`'s extension settings that belongs to this package).
"""

from __future__ import annotations

from dataclasses import dataclass

from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.lowlevel import extension_settings

__all__ = ["DEFAULT_MAX_TURN_CHARS", "LLMSettings", "llm_settings"]

DEFAULT_MAX_TURN_CHARS = 10_000_000
"""The default ``llm_max_turn_chars``: ten million characters, about 2.5 million tokens.

Models cap one turn's output far below (about 128,000 tokens at most today, some 500,000
characters), so only a stream that does not end (a broken provider or proxy) reaches it.
"""


@dataclass(frozen=True)
class LLMSettings:
    """The LLM agents' settings of a context (the field names are ``MiniAgents``' arguments).

    Attributes:
        stream_llm_tokens_by_default: Whether LLM agents stream token by token when neither
            the agent nor the call says.
        llm_logger_agent: ``True`` to write every LLM prompt and response as a markdown file
            in ``llm_logs/``, an agent to send them to, or ``False``: no logging.
        llm_stall_timeout: Seconds an LLM agent waits for the next event of a reply, unless
            the agent sets its own ``stall_timeout``; ``None`` waits as long as it takes.
        llm_parse_in_turn: Whether replies that arrive together are parsed one call at a
            time, as the raw SDK parses them (``True``: memory as the raw SDK's), rather
            than each call up to its first token at once (``False``, the default: first
            tokens sooner, up to three times the raw SDK's memory in a burst).
        llm_max_turn_chars: Characters one call of the model may send (its text, refusal,
            tool calls' arguments and the model's thinking or reasoning, together) before the
            agent stops the call with an ``LLMResponseError``: a bound on what a broken
            provider or proxy that streams without end makes the reply keep (the stall
            timeout does not stop a stream whose pieces keep coming). The default,
            ``DEFAULT_MAX_TURN_CHARS``, is far above what any model writes in one turn.
    """

    stream_llm_tokens_by_default: bool = True
    llm_logger_agent: bool | MiniAgent[...] = False
    llm_stall_timeout: float | None = 60.0
    llm_parse_in_turn: bool = False
    llm_max_turn_chars: int = DEFAULT_MAX_TURN_CHARS


def llm_settings() -> LLMSettings:
    """The LLM settings of the current ``MiniAgents`` context (the defaults outside any)."""
    return extension_settings(LLMSettings)
