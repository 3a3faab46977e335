"""``scripted_agent`` and ``function_agent``: real LLM agents that reply from a script."""

from __future__ import annotations

import asyncio

import pytest

from miniagents import MiniAgents
from miniagents.ext.llm import (
    AssistantMessage,
    LLMCall,
    LLMToolCallMessage,
    LLMToolResultMessage,
    PromptText,
    SystemMessage,
    ToolResultMessage,
)
from miniagents.ext.llm.errors import LLMConfigurationError, LLMRateLimitError, LLMTimeoutError
from miniagents.ext.llm.offline import CallTool, OfflineMessage
from miniagents.testing import VirtualClock, function_agent, scripted_agent
from tests.ext.tools.loop_support import add


async def test_a_scripted_agent_replies_one_scripted_text_per_call() -> None:
    agent = scripted_agent("Hello there!", "Second call.")
    async with MiniAgents():
        first = await agent.inquire("hi")
        promise = await anext(aiter(agent.inquire("again")))
        tokens = [token async for token in promise]
    assert [str(message) for message in first] == ["Hello there!"]
    assert tokens == ["Second ", "call."]  # streamed word by word
    message = first[0]
    assert isinstance(message, OfflineMessage)
    assert isinstance(message, AssistantMessage)
    assert (message.role, message.model, message.agent_alias) == (
        "assistant",
        "scripted",
        "SCRIPTED_AGENT",
    )
    assert message.finish_reason == "stop"


async def test_a_scripted_turn_with_tools_runs_them_and_records_every_call() -> None:
    calls: list[LLMCall] = []
    agent = scripted_agent(
        CallTool("add", {"a": 2, "b": 3}),
        [CallTool("add", {"a": 1, "b": 1}), CallTool("add", {"a": 10, "b": 20})],
        "2 + 3 = 5.",
        tools=[add],
        calls=calls,
    )
    async with MiniAgents():
        messages = await agent.inquire("What is 2 + 3?", system="Use the tools.")
    assert [type(message) for message in messages] == [
        LLMToolCallMessage,
        LLMToolResultMessage,
        LLMToolCallMessage,
        LLMToolCallMessage,
        LLMToolResultMessage,
        LLMToolResultMessage,
        OfflineMessage,
    ]
    assert [str(message) for message in messages if isinstance(message, ToolResultMessage)] == [
        "5",
        "2",
        "30",
    ]
    assert str(messages[-1]) == "2 + 3 = 5."
    assert len(calls) == 3  # the model was called three times: two rounds of calls, the answer
    assert all(call.system == "Use the tools." for call in calls)
    assert [tool.name for tool in calls[0].tools] == ["add"]
    assert calls[0].messages == (PromptText("user", "What is 2 + 3?"),)
    last = calls[-1].messages
    assert [type(item).__name__ for item in last] == [
        "PromptText",
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "LLMToolCallMessage",
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "LLMToolResultMessage",
    ]


async def test_the_replies_are_shared_by_the_forks_and_a_call_too_many_is_a_clear_error() -> None:
    agent = scripted_agent("one", "two")
    async with MiniAgents():
        assert str(await agent.inquire("a")) == "one"
        assert str(await agent.fork(alias="OTHER").inquire("b")) == "two"
        with pytest.raises(LLMConfigurationError) as raised:
            await agent.inquire("c")
    assert str(raised.value) == (
        "The scripted agent was called for the 3rd time, but its script has 2 replies. Give "
        "scripted_agent(...) one reply per call of the model: with tools, a turn is its "
        "calls, then its answer once the results are in."
    )


def test_a_reply_that_is_no_reply_is_refused_when_the_agent_is_made() -> None:
    # (was: taken, and refused only at the call it answered)
    for odd in (42, ["text in a list"], None):
        with pytest.raises(LLMConfigurationError) as refused:
            scripted_agent("fine", odd)  # type: ignore[arg-type]
        assert str(refused.value).startswith(
            f"The 2nd reply given to scripted_agent(...) is {odd!r}, which is neither a text"
        )
        assert "Give one of those per call of the model." in str(refused.value)


async def test_a_call_too_many_is_counted_in_a_sentence_with_no_article_to_get_wrong() -> None:
    """It wrote "called a 8th time" (and "a 11th", "a 18th"): "for the 8th time" now."""
    agent = scripted_agent(*["reply"] * 7)
    async with MiniAgents():
        for _ in range(7):
            await agent.inquire("a")
        with pytest.raises(
            LLMConfigurationError,
            match=r"^The scripted agent was called for the 8th time, but its script has 7 ",
        ):
            await agent.inquire("b")


async def test_a_scripted_tool_call_needs_the_agent_to_have_tools() -> None:
    one_plus_two = CallTool("add", {"a": 1, "b": 2})
    agent = scripted_agent(one_plus_two, one_plus_two, "3")
    replied: list[str] = []

    async def ask_without_tools() -> None:
        async for promise in agent.inquire("1 + 2?"):
            replied.append(str(await promise))

    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await ask_without_tools()
        with_tools = await agent.inquire("1 + 2?", tools=[add])  # the script goes on
    assert replied == []  # no empty message before the error
    assert str(raised.value) == (
        "The 1st reply of the scripted agent calls 'add', but the agent has no tools (a model "
        "calls only the tools it is given). Give it the tools: scripted_agent(..., "
        "tools=[...]), or tools= of fork(...) or inquire(...)."
    )
    assert [str(message) for message in with_tools] == ['{"a": 1, "b": 2}', "3", "3"]


async def test_a_scripted_error_is_the_models_error() -> None:
    limited = LLMRateLimitError("Slow down.")
    agent = scripted_agent(limited, "Better now.")
    async with MiniAgents():
        with pytest.raises(LLMRateLimitError) as raised:
            await agent.inquire("hi")
        assert str(await agent.inquire("hi again")) == "Better now."
    assert raised.value is limited


async def test_a_scripted_agent_takes_the_offline_agents_arguments(
    virtual_clock: VirtualClock,
) -> None:
    agent = scripted_agent("a slow reply", model="my-model").fork(token_delay=2.0)
    async with MiniAgents():
        with pytest.raises(LLMTimeoutError):
            await agent.inquire("hi", stall_timeout=1.0)
    assert virtual_clock.elapsed == 1.0


async def test_a_scripted_agent_takes_no_time(virtual_clock: VirtualClock) -> None:
    async with MiniAgents():
        await scripted_agent("many words " * 50).inquire("hi")
    assert virtual_clock.elapsed == 0


async def test_a_function_agent_replies_with_what_its_function_returns_for_the_call() -> None:
    def echo(call: LLMCall) -> str:
        said = call.messages[-1].text or ""
        return f"{call.system}: {said.upper()} ({call.options.get('temperature')})"

    agent = function_agent(echo, model="echo-1")
    async with MiniAgents():
        message = (await agent.inquire([SystemMessage(text="Loud"), "hi"], temperature=0.5))[0]
    assert str(message) == "Loud: HI (0.5)"
    assert isinstance(message, AssistantMessage)
    assert message.model == "echo-1"


async def test_a_function_agent_calls_tools_until_its_function_answers() -> None:
    def model(call: LLMCall) -> CallTool | str:
        results = [item for item in call.messages if isinstance(item, ToolResultMessage)]
        if not results:
            return CallTool("add", {"a": 20, "b": 22})
        return f"The answer is {results[-1].text}."

    agent = function_agent(model, tools=[add])
    async with MiniAgents():
        messages = await agent.inquire("What is 20 + 22?")
    assert str(messages[-1]) == "The answer is 42."


async def test_what_a_function_raises_is_the_models_error() -> None:
    def broken(call: LLMCall) -> str:
        raise KeyError("no reply")

    async with MiniAgents():
        with pytest.raises(KeyError, match="no reply"):
            await function_agent(broken).inquire("hi")


async def test_function_agent_refuses_what_is_not_a_function() -> None:
    with pytest.raises(LLMConfigurationError, match=r"use scripted_agent\(\.\.\.\)"):
        function_agent("Hello")  # type: ignore[arg-type]


def two_arguments(call: LLMCall, more: str) -> str:
    return more


@pytest.mark.parametrize(
    ("reply", "takes"),
    [(lambda: "hi", "()"), (two_arguments, "(call: 'LLMCall', more: 'str')")],
    ids=["none", "two"],
)
async def test_function_agent_refuses_a_function_that_does_not_take_the_call(
    reply: object, takes: str
) -> None:
    with pytest.raises(LLMConfigurationError) as raised:  # when it is made (was: a bare
        function_agent(reply)  # type: ignore[arg-type]  # TypeError when it was called)
    said = str(raised.value)
    assert said.startswith(
        "function_agent() calls its function with one argument, the call (an LLMCall: the "
        "messages, the tools, the options), but "
    )
    assert said.endswith(
        f' takes {takes}. Make it take the call, e.g. function_agent(lambda call: "hi") or '
        "def reply(call: LLMCall) -> str."
    )


async def test_function_agent_takes_a_function_whose_signature_cannot_be_read_or_has_more() -> None:
    def with_a_default(call: LLMCall, prefix: str = "Said: ") -> str:
        return prefix + (call.messages[-1].text or "")

    async with MiniAgents():
        said = [await function_agent(reply).inquire("hi") for reply in (with_a_default, str)]
    assert [str(m) for m in said[0]] == ["Said: hi"]
    assert str(said[1][0]).startswith("LLMCall(")  # (str: a builtin with no signature to read)


class AsyncReply:
    async def __call__(self, call: LLMCall) -> str:
        return "hi"


async def async_reply(call: LLMCall) -> str:
    return "hi"


@pytest.mark.parametrize("reply", [async_reply, AsyncReply()], ids=["async-def", "async-call"])
async def test_function_agent_refuses_an_async_function_naming_the_fix(reply: object) -> None:
    with pytest.raises(LLMConfigurationError) as raised:  # when it is made: never called
        function_agent(reply)  # type: ignore[arg-type]

    assert "takes a plain function of the call, but " in str(raised.value)
    assert "is async (an async def). Make it a plain def that returns the reply; for an " in str(
        raised.value
    )
    assert "write one with @miniagent." in str(raised.value)


async def test_a_scripted_agent_runs_its_tools_concurrently(virtual_clock: VirtualClock) -> None:
    async def slow_add(a: int, b: int) -> int:
        """Add two numbers, slowly."""
        await asyncio.sleep(3)
        return a + b

    calls = [CallTool("slow_add", {"a": n, "b": n}) for n in range(3)]
    agent = scripted_agent(calls, "done", tools=[slow_add])
    async with MiniAgents():
        assert str((await agent.inquire("go"))[-1]) == "done"
    assert virtual_clock.elapsed == 3  # three calls of 3 s at once


async def test_a_scripted_refusal_fails_the_reply_and_is_not_retried() -> None:
    from miniagents import Message
    from miniagents.ext.llm.errors import LLMRefusalError
    from miniagents.ext.llm.offline import Refuse
    from miniagents.ext.llm.structured import structured

    class Verdict(Message):
        guilty: bool

    calls: list[LLMCall] = []
    agent = scripted_agent(Refuse("I won't judge that."), '{"guilty": false}', calls=calls)
    async with MiniAgents():
        with pytest.raises(LLMRefusalError) as raised:
            await structured(agent, Verdict).inquire("Guilty?")
    assert raised.value.text == "I won't judge that."
    assert len(calls) == 1  # the second reply was never asked for
