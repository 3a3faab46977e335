"""The tool loop with the offline model (scripted calls, tool rules), and the prompt's pairs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.llm import (
    LLMCall,
    LLMToolCallMessage,
    LLMToolResultMessage,
    LLMToolRoundsError,
    PromptText,
    TokenUsage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.llm.offline import (
    CallTool,
    OfflineMessage,
    ToolRule,
    create_offline_agent,
    offline_agent,
    one_per_call,
)
from miniagents.ext.llm.prompt import prompt_of
from miniagents.ext.tools import ToolDefinitionError
from miniagents.messages import MessageTuple
from miniagents.testing import VirtualClock
from tests.ext.tools.loop_support import add


async def slow_double(x: int) -> int:
    """Double a number, slowly."""
    await asyncio.sleep(0.5)
    return 2 * x


@miniagent
async def poet(ctx: InteractionContext, subject: str) -> None:
    """Write a line about a subject."""
    ctx.reply(offline_agent.inquire(subject, reply=f"Roses about {subject}", token_delay=0.0))


RULES = [
    ToolRule(r"(?P<a>\d+) \+ (?P<b>\d+)", "add"),
    ToolRule(r"poem about (?P<subject>\w+)", "POET"),
]


async def test_tool_rules_call_the_tools_at_once_then_the_model_answers_with_the_results() -> None:
    agent = offline_agent.fork(tools=[add, poet], tool_rules=RULES, token_delay=0.0)
    async with MiniAgents():
        reply = agent.inquire("What is 2 + 3? And a poem about cats.")
        tokens = [[token async for token in promise] async for promise in reply]
        messages = await reply
    assert [type(message) for message in messages] == [
        LLMToolCallMessage,
        LLMToolCallMessage,
        LLMToolResultMessage,
        LLMToolResultMessage,
        OfflineMessage,
    ]
    first, second = messages[:2]
    assert isinstance(first, ToolCallMessage)
    assert isinstance(second, ToolCallMessage)
    assert (first.tool_name, dict(first.arguments), first.call_id) == (
        "add",
        {"a": "2", "b": "3"},  # the pattern's groups: text, validated into the tool's ints
        "offline_call_1",
    )
    assert (second.tool_name, second.call_id) == ("POET", "offline_call_2")
    assert tokens[0] == ['{"a": ', '"2", ', '"b": ', '"3"}']  # the arguments, streamed
    assert [message.text for message in messages[2:4]] == ["5", "Roses about cats"]
    assert tokens[3] == ["Roses ", "about ", "cats"]  # the sub-agent's tokens, streamed
    assert messages[-1].text == (
        '(offline model "offline", 5 message(s) in the prompt) The tools answered:\n'
        "- add: 5\n"
        "- POET: Roses about cats"
    )


async def test_without_a_matching_rule_the_model_just_answers() -> None:
    agent = offline_agent.fork(tools=[add], tool_rules=RULES, reply="Hello!", token_delay=0.0)
    async with MiniAgents():
        messages = await agent.inquire("Hi there.")
    assert [(type(message), message.text) for message in messages] == [(OfflineMessage, "Hello!")]


async def test_a_script_of_calls_and_texts_runs_several_rounds() -> None:
    seen: list[LLMCall] = []

    def answer(call: LLMCall) -> str:
        seen.append(call)
        return "Done: " + ", ".join(str(item.text) for item in call.messages[1:])

    script: Iterator[CallTool | list[CallTool]] = iter(
        [
            CallTool("add", {"a": 1, "b": 2}),
            [CallTool("add", {"a": 3, "b": 4}), CallTool("add", {"a": 5, "b": 6})],
        ]
    )

    def reply(call: LLMCall) -> str | CallTool | list[CallTool]:
        return next(script, None) or answer(call)

    agent = offline_agent.fork(tools=[add], reply=reply, token_delay=0.0, stream=False)
    async with MiniAgents():
        messages = await agent.inquire("Add things.")
    names = [type(message).__name__ for message in messages]
    assert names == [
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "LLMToolCallMessage",
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "LLMToolResultMessage",
        "OfflineMessage",
    ]
    assert [message.call_id for message in messages[:6]] == [  # type: ignore[union-attr]
        "offline_call_1",
        "offline_call_1",
        "offline_call_2",
        "offline_call_3",
        "offline_call_2",
        "offline_call_3",
    ]
    (last_call,) = seen
    assert [type(item).__name__ for item in last_call.messages] == [
        "PromptText",
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "LLMToolCallMessage",
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "LLMToolResultMessage",
    ]
    assert [tool.name for tool in last_call.tools] == ["add"]
    assert messages[-1].text == (
        'Done: {"a": 1, "b": 2}, 3, {"a": 3, "b": 4}, {"a": 5, "b": 6}, 7, 11'
    )


async def test_the_calls_of_a_round_take_the_time_of_the_slowest(
    virtual_clock: VirtualClock,
) -> None:
    agent = offline_agent.fork(
        tools=[slow_double],
        reply=one_per_call(
            [CallTool("slow_double", {"x": 1}), CallTool("slow_double", {"x": 2})], "ok"
        ),
        token_delay=0.0,
    )
    async with MiniAgents():
        messages = await agent.inquire("Double 1 and 2.")
    assert [message.text for message in messages[2:4]] == ["2", "4"]
    assert virtual_clock.elapsed == pytest.approx(0.5)  # two tools of 0.5 s: 0.5 s, not 1 s


async def test_the_answer_counts_the_tokens_of_every_call_of_the_loop() -> None:
    agent = offline_agent.fork(
        tools=[add],
        reply=one_per_call(CallTool("add", {"a": 1, "b": 2}), "It is 3."),
        token_delay=0,
    )
    async with MiniAgents():
        *_, answer = await agent.inquire("one plus two")
    assert isinstance(answer, OfflineMessage)
    # first call: 3 words in, 4 argument pieces out; second: 3 + 4 + 1 words in, 3 out
    assert answer.usage == TokenUsage(input_tokens=3 + 8, output_tokens=4 + 3)


async def test_a_model_that_never_stops_calling_tools_is_stopped() -> None:
    agent = offline_agent.fork(tools=[add], reply=CallTool("add", {"a": 1, "b": 1}), token_delay=0)
    async with MiniAgents():
        with pytest.raises(LLMToolRoundsError, match=r"after 10 rounds of tool calls"):
            await agent.inquire("Loop.")
        with pytest.raises(LLMToolRoundsError, match=r"after 1 rounds of tool calls"):
            await agent.inquire("Loop.", max_tool_rounds=1)


async def test_each_call_of_the_loop_is_logged_with_its_tool_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    agent = offline_agent.fork(
        tools=[add],
        reply=one_per_call(CallTool("add", {"a": 1, "b": 2}), "It is 3."),
        token_delay=0,
    )
    async with MiniAgents(llm_logger_agent=True):
        await agent.inquire("one plus two")
    first, second = sorted((tmp_path / "llm_logs").iterdir())
    assert first.read_text(encoding="utf-8") == (
        "# LLM call of OFFLINE_AGENT\n\n"
        "## USER\n\none plus two\n\n"
        "## RESPONSE\n\n"
        "- role: assistant\n"
        "- model: offline\n"
        "- agent_alias: OFFLINE_AGENT\n"
        "- finish_reason: tool_calls\n"
        "- usage: input_tokens=3 output_tokens=4\n"
        '- tool_calls: (\'add {"a": 1, "b": 2}\',)\n\n\n'
    )
    assert second.read_text(encoding="utf-8").startswith(
        "# LLM call of OFFLINE_AGENT\n\n"
        "## USER\n\none plus two\n\n"
        '## ASSISTANT\n\n{"a": 1, "b": 2}\n\n'
        "## TOOL\n\n3\n\n"
        "## RESPONSE\n\n"
    )


async def test_llm_agent_from_env_passes_tools_and_rules_to_the_offline_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    agent = llm_agent_from_env(
        tools=[add], offline_tool_rules=RULES[:1], max_tool_rounds=3, token_delay=0.0
    )
    assert agent.bound_arguments["max_tool_rounds"] == 3
    async with MiniAgents():
        messages = await agent.inquire("2 + 2")
    assert [message.text for message in messages][1:] == [
        "4",
        '(offline model "offline", 3 message(s) in the prompt) The tools answered:\n- add: 4',
    ]


# -- the prompt ----------------------------------------------------------------------------

CALL_1 = ToolCallMessage(tool_name="add", arguments={"a": 1}, call_id="c1")
CALL_2 = ToolCallMessage(tool_name="add", arguments={"a": 2}, call_id="c2")
RESULT_1 = ToolResultMessage(text="1", tool_name="add", call_id="c1")
RESULT_2 = ToolResultMessage(text="2", tool_name="add", call_id="c2", is_error=True)
ORPHAN = ToolResultMessage(text="?", tool_name="add", call_id="c9")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([CALL_1, RESULT_1], [CALL_1, RESULT_1]),
        ([CALL_1, CALL_2, RESULT_2, RESULT_1], [CALL_1, CALL_2, RESULT_1, RESULT_2]),
        ([CALL_1, CALL_2, RESULT_1], [CALL_1, RESULT_1]),  # c2 was cut short
        ([ORPHAN, CALL_1, RESULT_1], [CALL_1, RESULT_1]),  # a result without its call
        ([CALL_1, "between", RESULT_1], [CALL_1, RESULT_1, "between"]),  # a late result
        ([CALL_1, RESULT_1, CALL_1, RESULT_1], [CALL_1, RESULT_1]),  # the same call twice
        ([RESULT_1, CALL_1], [CALL_1, RESULT_1]),
    ],
    ids=["pair", "reordered", "dangling-call", "orphan-result", "late", "twice", "backwards"],
)
def test_the_prompt_sends_calls_and_results_in_pairs_only(
    given: list[ToolCallMessage | ToolResultMessage | str],
    expected: list[ToolCallMessage | ToolResultMessage | str],
) -> None:
    def items(messages: list[ToolCallMessage | ToolResultMessage | str]) -> list[object]:
        return [PromptText("user", item) if isinstance(item, str) else item for item in messages]

    messages = MessageTuple(
        [UserMessage(text=item) if isinstance(item, str) else item for item in given]
    )
    assert list(prompt_of(messages, None)[1]) == items(expected)


def test_without_tools_the_prompt_has_calls_and_results_as_text() -> None:
    messages = MessageTuple([UserMessage(text="hi"), CALL_2, RESULT_2, CALL_1])
    assert prompt_of(messages, None, tools=False)[1] == (
        PromptText("user", "hi"),
        PromptText("assistant", '(I called the tool add: {"a": 2})'),
        PromptText("user", "(The tool add failed: 2)"),
    )


@pytest.mark.parametrize("reply", [["first", "second"], [CallTool("add"), 42], 42])
async def test_a_reply_that_is_neither_a_text_nor_calls_is_a_clear_error(reply: object) -> None:
    agent = offline_agent.fork(tools=[add], reply=reply, token_delay=0)  # type: ignore[arg-type]
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="which is neither a text nor a CallTool"):
            await agent.inquire("hi")


def test_a_tool_rule_or_call_given_the_tool_itself_is_refused_at_once_with_its_name() -> None:
    with pytest.raises(LLMConfigurationError, match=r"name of the tool.*\(here: 'add'\)"):
        ToolRule(r"(?P<a>\d+) \+ (?P<b>\d+)", add)  # type: ignore[arg-type]
    with pytest.raises(LLMConfigurationError, match=r"\(here: 'POET'\)"):
        CallTool(poet, {"subject": "cats"})  # type: ignore[arg-type]


def test_tools_that_cannot_be_tools_are_refused_where_they_are_bound() -> None:
    # (was: fork took them, and the first call refused them)
    def untyped(x):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
        return x

    with pytest.raises(ToolDefinitionError, match="5 cannot be a tool: a tool is a function"):
        offline_agent.fork(tools=[5])  # type: ignore[list-item]
    with pytest.raises(ToolDefinitionError, match="'x' of the tool untyped has no type annotation"):
        offline_agent.fork(tools=[untyped])
    with pytest.raises(ToolDefinitionError, match="has no type annotation"):
        create_offline_agent(tools=[add, untyped])
    with pytest.raises(LLMConfigurationError, match="must be a list of tools, not <function"):
        offline_agent.fork(tools=add)  # type: ignore[arg-type]
    offline_agent.fork(tools=[add])  # (a tool that is one is taken)
