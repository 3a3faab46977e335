"""The exact types of the LLM agents, for the static typing tests that pin them.

An LLM agent's parameters are the fields of its options class, all keyword-only with a
default: ``DefaultNamedArg(type, 'name')`` in the extended callable syntax of
``mypy_extensions``. The aliases are strings: mypy reads them; at run time they are text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

import anthropic
import openai
from mypy_extensions import DefaultNamedArg

from miniagents import Message
from miniagents.ext.llm import Budget
from miniagents.ext.llm.anthropic import AnthropicAgent as AnthropicAgentClass
from miniagents.ext.llm.offline import OfflineAgent as OfflineAgentClass
from miniagents.ext.llm.offline import Script, ToolRule
from miniagents.ext.llm.openai import OpenAIAgent as OpenAIAgentClass
from miniagents.ext.tools import ToolLike
from miniagents.promising.sentinels import Sentinel

OpenAIAgent: TypeAlias = """OpenAIAgentClass[[
    DefaultNamedArg(str | None, 'model'),
    DefaultNamedArg(bool | None, 'stream'),
    DefaultNamedArg(str | None, 'system'),
    DefaultNamedArg(float | Literal[Sentinel.DEFAULT] | None, 'stall_timeout'),
    DefaultNamedArg(Mapping[str, object] | None, 'extra_options'),
    DefaultNamedArg(Sequence[ToolLike] | None, 'tools'),
    DefaultNamedArg(int, 'max_tool_rounds'),
    DefaultNamedArg(int, 'max_tool_calls'),
    DefaultNamedArg(type[Message] | None, 'output_type'),
    DefaultNamedArg(int, 'output_retries'),
    DefaultNamedArg(Budget | None, 'budget'),
    DefaultNamedArg(openai.AsyncOpenAI | None, 'async_client'),
    DefaultNamedArg(Literal['chat_completions', 'responses'], 'api'),
    DefaultNamedArg(int | None, 'max_tokens'),
    DefaultNamedArg(int | None, 'max_completion_tokens'),
    DefaultNamedArg(float | None, 'temperature'),
    DefaultNamedArg(float | None, 'top_p'),
    DefaultNamedArg(str | Sequence[str] | None, 'stop'),
    DefaultNamedArg(int | None, 'seed'),
    DefaultNamedArg(float | None, 'presence_penalty'),
    DefaultNamedArg(float | None, 'frequency_penalty'),
    DefaultNamedArg(Mapping[str, int] | None, 'logit_bias'),
    DefaultNamedArg(str | None, 'reasoning_effort'),
    DefaultNamedArg(int | None, 'max_retries'),
    DefaultNamedArg(float | None, 'timeout'),
]]"""
"""The type of ``openai_agent`` (of its class): every parameter by name, with its type."""

AnthropicAgent: TypeAlias = """AnthropicAgentClass[[
    DefaultNamedArg(str | None, 'model'),
    DefaultNamedArg(bool | None, 'stream'),
    DefaultNamedArg(str | None, 'system'),
    DefaultNamedArg(float | Literal[Sentinel.DEFAULT] | None, 'stall_timeout'),
    DefaultNamedArg(Mapping[str, object] | None, 'extra_options'),
    DefaultNamedArg(Sequence[ToolLike] | None, 'tools'),
    DefaultNamedArg(int, 'max_tool_rounds'),
    DefaultNamedArg(int, 'max_tool_calls'),
    DefaultNamedArg(type[Message] | None, 'output_type'),
    DefaultNamedArg(int, 'output_retries'),
    DefaultNamedArg(Budget | None, 'budget'),
    DefaultNamedArg(
        anthropic.AsyncAnthropic
        | anthropic.AsyncAnthropicBedrock
        | anthropic.AsyncAnthropicVertex
        | None,
        'async_client',
    ),
    DefaultNamedArg(int, 'max_tokens'),
    DefaultNamedArg(float | None, 'temperature'),
    DefaultNamedArg(float | None, 'top_p'),
    DefaultNamedArg(int | None, 'top_k'),
    DefaultNamedArg(Sequence[str] | None, 'stop_sequences'),
    DefaultNamedArg(int | None, 'max_retries'),
    DefaultNamedArg(float | None, 'timeout'),
]]"""
"""The type of ``anthropic_agent``."""

OfflineAgent: TypeAlias = """OfflineAgentClass[[
    DefaultNamedArg(str | None, 'model'),
    DefaultNamedArg(bool | None, 'stream'),
    DefaultNamedArg(str | None, 'system'),
    DefaultNamedArg(float | Literal[Sentinel.DEFAULT] | None, 'stall_timeout'),
    DefaultNamedArg(Mapping[str, object] | None, 'extra_options'),
    DefaultNamedArg(Sequence[ToolLike] | None, 'tools'),
    DefaultNamedArg(int, 'max_tool_rounds'),
    DefaultNamedArg(int, 'max_tool_calls'),
    DefaultNamedArg(type[Message] | None, 'output_type'),
    DefaultNamedArg(int, 'output_retries'),
    DefaultNamedArg(Budget | None, 'budget'),
    DefaultNamedArg(Script | None, 'reply'),
    DefaultNamedArg(float, 'token_delay'),
    DefaultNamedArg(int | None, 'max_tokens'),
    DefaultNamedArg(float | None, 'temperature'),
    DefaultNamedArg(Sequence[ToolRule] | None, 'tool_rules'),
]]"""
"""The type of ``offline_agent``."""

# Referenced so that the names used only inside the string aliases above stay imported.
_USED_IN_ALIASES = (
    DefaultNamedArg,
    Mapping,
    Sequence,
    Literal,
    Sentinel,
    Script,
    ToolRule,
    ToolLike,
    Message,
)
