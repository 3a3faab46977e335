"""Static typing tests for the LLM agents: exact parameter lists, never ``MiniAgent[Any]``.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``, so a line that stops failing fails mypy too.
:func:`test_llm_types_pass_mypy` runs mypy on this file.

The exact types of the agents are the aliases of ``tests/typing/llm_agents.py``. A
parameter typed ``Any`` (even inside ``Mapping[str, Any]``) would make mypy see the whole
agent as ``MiniAgent[Any]``: these aliases would then not match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_type

import anthropic
import openai

from miniagents import Message, MessagePromise, MessageSequencePromise, MiniAgent, MiniAgents
from miniagents.ext.llm import (
    AssistantMessage,
    LLMMessage,
    LLMReply,
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    TokenUsage,
)
from miniagents.ext.llm.anthropic import anthropic_agent, create_anthropic_agent
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.llm.offline import (
    OfflineMessage,
    create_offline_agent,
    offline_agent,
)
from miniagents.ext.llm.openai import OpenAIMessage, create_openai_agent, openai_agent
from miniagents.promising.sentinels import DEFAULT
from tests.fakes.typecheck import assert_passes_mypy
from tests.typing.llm_agents import AnthropicAgent, OfflineAgent, OpenAIAgent


def check_agent_types() -> None:
    assert_type(openai_agent, OpenAIAgent)
    assert_type(anthropic_agent, AnthropicAgent)
    assert_type(offline_agent, OfflineAgent)
    assert_type(openai_agent.fork(model="gpt-4o"), OpenAIAgent)
    assert_type(openai_agent.fork(model="gpt-4o", api="responses"), OpenAIAgent)
    assert_type(create_openai_agent(model="gpt-4o", temperature=0.0), OpenAIAgent)
    assert_type(create_anthropic_agent(model="claude", max_tokens=100), AnthropicAgent)
    assert_type(create_offline_agent(reply="x", token_delay=0.0), OfflineAgent)
    assert_type(
        llm_agent_from_env(max_tokens=10).inquire(),
        MessageSequencePromise[LLMReply[AssistantMessage]],
    )


def check_calls() -> None:
    # The seeds' calls.
    assert_type(
        openai_agent.inquire("Hi", max_tokens=1000, temperature=0.0),
        MessageSequencePromise[LLMReply[OpenAIMessage]],
    )
    assert_type(
        openai_agent.inquire("Hi", stream=True),
        MessageSequencePromise[
            OpenAIMessage | LLMToolCallMessage | LLMToolApprovalRequest | LLMToolResultMessage
        ],
    )
    openai_agent.inquire("Hi", stop="END", seed=1, logit_bias={"12": -100})
    openai_agent.inquire("Hi", extra_options={"user": "u-1", "extra_body": {"x": 1}})
    openai_agent.inquire("Hi", async_client=openai.AsyncOpenAI(api_key="k"))
    openai_agent.inquire("Hi", api="chat_completions", reasoning_effort="low")
    anthropic_agent.inquire("Hi", top_k=5, stop_sequences=["END"], stall_timeout=None)
    anthropic_agent.inquire("Hi", async_client=anthropic.AsyncAnthropic(api_key="k"))
    openai_agent.inquire("Hi", max_retries=0, timeout=10.0)
    anthropic_agent.inquire("Hi", max_retries=5, timeout=None)
    offline_agent.inquire("Hi", reply=iter(["a", "b"]), stall_timeout=DEFAULT)
    offline_agent.inquire("Hi", reply=lambda call: call.model, max_tokens=3, temperature=0.0)
    MiniAgents(llm_stall_timeout=30.0)
    MiniAgents(llm_stall_timeout=None)
    MiniAgents(llm_parse_in_turn=True)
    MiniAgents(llm_max_turn_chars=1_000_000)


async def check_reply_types() -> None:
    """An LLM agent's replies are typed: every message is an LLMMessage, the answer its class."""
    reply = await openai_agent.fork(model="m").inquire("x")
    assert_type(reply[0].model, str | None)
    assert_type(reply[0].agent_alias, str | None)
    assert_type(reply[0].role, str)
    assert_type(reply[0].finish_reason, str | None)
    assert_type(reply[0].usage, TokenUsage | None)
    assert_type(
        reply[-1],
        OpenAIMessage | LLMToolCallMessage | LLMToolApprovalRequest | LLMToolResultMessage,
    )
    as_llm_message: LLMMessage = reply[0]
    assert_type(as_llm_message, LLMMessage)
    answer = reply[-1]
    if isinstance(answer, OpenAIMessage):  # the answer (with tools, the calls come first)
        assert_type(answer, OpenAIMessage)
    elif isinstance(answer, LLMToolCallMessage):
        assert_type(answer.arguments, Mapping[str, object])
    elif isinstance(answer, LLMToolApprovalRequest):  # a call that waits for a person
        assert_type(answer.pending, bool)
        answer.approve({"city": "Paris"})
        answer.deny("Not now.")
        answer.approve(["Paris"])  # type: ignore[arg-type]
    else:
        assert_type(answer, LLMToolResultMessage)
        assert_type(answer.is_error, bool)
    claude = create_anthropic_agent(model="claude")
    assert_type((await claude.inquire("x"))[0].usage, TokenUsage | None)
    async for promise in offline_agent.inquire("x"):
        assert_type(promise, MessagePromise[LLMReply[OfflineMessage]])
        assert_type((await promise).model, str | None)
    from_env = await llm_agent_from_env().inquire("x")
    assert_type(from_env[0].model, str | None)
    assert_type(
        from_env[0],
        AssistantMessage | LLMToolCallMessage | LLMToolApprovalRequest | LLMToolResultMessage,
    )
    # the LLM agents are agents (a MiniAgent[P, LLMReply[...]] is a MiniAgent[P, Message])
    any_agent: MiniAgent[..., Message] = openai_agent
    assert_type(any_agent, MiniAgent[..., Message])
    # fields the reply classes do not have fail
    print(reply[0].tool_name)  # type: ignore[union-attr]
    print(reply[0].temperature)  # type: ignore[union-attr]
    wrong: MiniAgent[..., OpenAIMessage] = openai_agent  # type: ignore[assignment]
    assert_type(wrong, MiniAgent[..., OpenAIMessage])


def check_misspelled_and_mistyped_arguments() -> None:
    create_openai_agent(modle="gpt-4o")  # type: ignore[call-arg]
    create_offline_agent(reply="x", token_dealy=0.2)  # type: ignore[call-arg]
    openai_agent.inquire("Hi", temprature=0.0)  # type: ignore[call-arg]
    anthropic_agent.inquire("Hi", stop=["END"])  # type: ignore[call-arg]
    offline_agent.inquire("Hi", top_k=3)  # type: ignore[call-arg]
    openai_agent.inquire("Hi", max_retries="3")  # type: ignore[arg-type]
    offline_agent.inquire("Hi", timeout=1.0)  # type: ignore[call-arg]
    openai_agent.inquire("Hi", temperature="hot")  # type: ignore[arg-type]
    anthropic_agent.inquire("Hi", max_tokens=None)  # type: ignore[arg-type]
    offline_agent.inquire("Hi", reply=42)  # type: ignore[arg-type]
    openai_agent.inquire("Hi", stall_timeout="60")  # type: ignore[arg-type]
    openai_agent.inquire("Hi", extra_options=["user"])  # type: ignore[arg-type]
    anthropic_agent.inquire("Hi", async_client=openai.AsyncOpenAI())  # type: ignore[arg-type]
    create_openai_agent("gpt-4o")  # type: ignore[call-arg]
    create_openai_agent(api="chat")  # type: ignore[arg-type]
    openai_agent.inquire("Hi", api="completions")  # type: ignore[arg-type]
    anthropic_agent.inquire("Hi", api="responses")  # type: ignore[call-arg]
    MiniAgents(llm_stall_timeout="60")  # type: ignore[arg-type]
    MiniAgents(llm_parse_in_turn="yes")  # type: ignore[arg-type]
    MiniAgents(llm_max_turn_chars=None)  # type: ignore[arg-type]


# --- The test that pytest runs --------------------------------------------------------


def test_llm_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
