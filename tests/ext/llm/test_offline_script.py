"""``one_per_call`` and ``in_order``: the offline model's replies, by turn or by call."""

from __future__ import annotations

import pytest

from miniagents import Message, MiniAgents
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.offline import CallTool, in_order, offline_agent, one_per_call
from miniagents.ext.llm.offline_script import model_turns
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _call(*messages: PromptText | ToolCallMessage | ToolResultMessage) -> LLMCall:
    return LLMCall("offline", False, None, messages)


def test_a_turn_of_the_model_is_its_answer_its_calls_or_both() -> None:
    user, answer = PromptText("user", "2 + 3?"), PromptText("assistant", "Let me add.")
    call = ToolCallMessage(text='{"a": 2, "b": 3}', tool_name="add", call_id="c1")
    other = ToolCallMessage(text='{"a": 1, "b": 1}', tool_name="add", call_id="c2")
    result = ToolResultMessage(text="5", tool_name="add", call_id="c1")
    assert model_turns(()) == 0
    assert model_turns((user,)) == 0
    assert model_turns((user, answer, call, other, result)) == 1  # (said, then two calls)
    assert model_turns((user, call, result, call, result)) == 2
    assert model_turns((user, answer, user, answer)) == 2
    assert model_turns((answer, answer)) == 1  # (one turn of the model, in two messages)


def test_the_same_call_gets_the_same_reply_whatever_was_called_before() -> None:
    script = one_per_call(CallTool("add", {"a": 2, "b": 3}), "It is 5.")
    first = _call(PromptText("user", "2 + 3?"))
    call = ToolCallMessage(text='{"a": 2, "b": 3}', tool_name="add", call_id="c1")
    second = _call(
        PromptText("user", "2 + 3?"),
        call,
        ToolResultMessage(text="5", tool_name="add", call_id="c1"),
    )
    assert script(second) == "It is 5."  # (asked first: a recovered run's live call)
    assert script(first) == CallTool("add", {"a": 2, "b": 3})
    assert script(first) == script(first)
    assert (
        repr(script) == "one_per_call(CallTool(name='add', arguments={'a': 2, 'b': 3}), 'It is 5.')"
    )


async def test_a_tool_loop_and_a_dialog_carrying_its_history_get_the_replies_in_order() -> None:
    agent = offline_agent.fork(
        tools=[add],
        reply=one_per_call(CallTool("add", {"a": 2, "b": 3}), "It is 5."),
        token_delay=0,
    )
    chat = offline_agent.fork(reply=one_per_call("Hello!", "Goodbye!"), token_delay=0)
    async with MiniAgents():
        loop = await agent.inquire("2 + 3?")
        first = await chat.inquire("Hi")
        second = await chat.inquire(["Hi", *first, "Bye"])
        again = await chat.inquire("Hi")  # a new conversation: its first turn again
    assert [str(message) for message in loop] == ['{"a": 2, "b": 3}', "5", "It is 5."]
    assert [str(first[0]), str(second[0]), str(again[0])] == ["Hello!", "Goodbye!", "Hello!"]


async def test_a_call_past_the_last_reply_says_how_many_there_are_and_why() -> None:
    chat = offline_agent.fork(reply=one_per_call("Hello!"), token_delay=0)
    history: list[Message | str] = ["Hi", Message(text="Hello!", role="assistant"), "Again?"]
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await chat.inquire(history)
    assert str(raised.value) == (
        "The offline agent has 1 scripted reply, one per turn of the model, but this call's "
        "conversation holds 1 turn(s) of the model already, so it asks for reply 2. Give "
        "one_per_call(...) one more reply per turn (with tools, a turn is the model's calls, "
        "then its answer once the results are in)."
    )


async def test_in_order_gives_the_next_reply_at_each_call_in_the_process() -> None:
    agent = offline_agent.fork(
        tools=[add], reply=in_order(CallTool("add", {"a": 2, "b": 3}), "It is 5."), token_delay=0
    )
    async with MiniAgents():
        loop = await agent.inquire("2 + 3?")
        used_up = r"used up its scripted replies.*reply=in_order\(\.\.\.\)"
        with pytest.raises(LLMConfigurationError, match=used_up):
            await agent.inquire("Again?")  # (an iterator: the process used both up)
    assert [str(message) for message in loop] == ['{"a": 2, "b": 3}', "5", "It is 5."]
