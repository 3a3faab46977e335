"""The tool loop of the OpenAI and Anthropic agents, over real HTTP with the real SDKs.

The fake server (``miniagents.testing``) plays the model: each test scripts its tool
calls and answers, then checks what the caller saw and what the model was sent back.
Every test runs for every provider API; concurrency is shown with events, never with timing.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from miniagents import InteractionContext, Message, MessageSequencePromise, MiniAgents, miniagent
from miniagents.errors import ArgumentError
from miniagents.ext.llm import (
    LLMMessage,
    LLMToolCallMessage,
    LLMToolResultMessage,
    LLMToolRoundsError,
    TokenUsage,
    ToolCallMessage,
    ToolResultMessage,
)
from miniagents.ext.llm.errors import LLMConfigurationError, LLMResponseError
from miniagents.ext.mcp import MCPSession
from miniagents.ext.tools import FunctionTool, ToolDefinitionError, as_tool
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.llm.providers import LLM, SDKClient
from tests.ext.mcp.server import server as mcp_server
from tests.ext.tools.loop_support import (
    add,
    ask,
    conversation,
    user,
    wire_call,
    wire_results,
    wire_turn,
)

WAIT = 5.0  # seconds: far more than anything here takes, so a hang fails instead of blocking


async def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"Sunny in {city}"


def explode() -> str:
    """A tool that fails."""
    raise ValueError("boom")


async def messages_then_error(reply: MessageSequencePromise) -> tuple[list[Message], Exception]:
    """The complete messages of a reply before the error that ends it, and that error."""
    seen: list[Message] = []

    async def read() -> None:
        async for promise in reply:
            seen.append(await promise)

    with pytest.raises(Exception) as raised:  # noqa: PT011 - the caller checks its type
        await read()
    return seen, raised.value


# -- the loop ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_a_single_call_its_result_then_the_answer(
    llm: LLM, client: SDKClient, server: FakeLLMServer, stream: bool
) -> None:
    server.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="c1")], usage=(10, 4))
    server.reply(["2 + 3 ", "= 5."], usage=(20, 3))
    async with MiniAgents():
        reply = ask(llm, client, "What is 2 + 3?", tools=[add], stream=stream)
        tokens = [[token async for token in promise] async for promise in reply]
        messages = await reply
    assert [type(message) for message in messages] == [
        LLMToolCallMessage,
        LLMToolResultMessage,
        llm.message_class,
    ]
    call, result, answer = messages
    assert isinstance(call, ToolCallMessage)
    assert (call.tool_name, dict(call.arguments), call.call_id) == ("add", {"a": 2, "b": 3}, "c1")
    # Anthropic's reply that is not streamed holds the arguments as an object: its JSON
    written = '{"a": 2, "b": 3}' if (llm.name, stream) == ("anthropic", False) else '{"a":2,"b":3}'
    assert (call.role, call.text, call.arguments_error) == ("assistant", written, None)
    # every message of the reply is an LLMMessage: the calls and results know the model too
    for message in messages:
        assert isinstance(message, LLMMessage)
        assert (message.model, message.agent_alias) == (llm.model, llm.alias)
    assert isinstance(result, ToolResultMessage)
    assert (result.tool_name, result.call_id, result.is_error, result.text) == (
        "add",
        "c1",
        False,
        "5",
    )
    assert answer.text == "2 + 3 = 5."
    assert answer.finish_reason == llm.stop  # type: ignore[attr-defined]
    usage = answer.usage  # type: ignore[attr-defined]
    assert isinstance(usage, TokenUsage)
    assert (usage.input_tokens, usage.output_tokens) == (30, 7)
    # the call's tokens are the argument deltas as the model streamed them
    assert tokens[0] == (['{"a":2,', '"b":3}'] if stream else [written])
    assert tokens[2] == (["2 + 3 ", "= 5."] if stream else ["2 + 3 = 5."])

    first, second = server.requests
    for request in (first, second):
        described = request.json["tools"]
        schema = as_tool(add).parameters
        if llm.name == "openai":
            assert described == [
                {
                    "type": "function",
                    "function": {
                        "name": "add",
                        "parameters": schema,
                        "description": "Add two numbers.",
                    },
                }
            ]
        elif llm.name == "responses":
            assert described == [
                {
                    "type": "function",
                    "name": "add",
                    "parameters": schema,
                    "strict": False,
                    "description": "Add two numbers.",
                }
            ]
        else:
            assert described == [
                {"name": "add", "input_schema": schema, "description": "Add two numbers."}
            ]
    assert conversation(llm, second) == [
        user("What is 2 + 3?"),
        wire_turn(llm, None, [wire_call(llm, "c1", "add", written, {"a": 2, "b": 3})]),
        *wire_results(llm, [("c1", "5", False)]),
    ]


async def test_the_calls_of_a_round_run_concurrently(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    # Each tool waits until the other has started: run one after the other, the first
    # would wait in vain (and fail after WAIT seconds).
    started = {"left": asyncio.Event(), "right": asyncio.Event()}

    async def meet(me: str, other: str) -> str:
        started[me].set()
        await asyncio.wait_for(started[other].wait(), WAIT)
        return f"{me} met {other}"

    async def left() -> str:
        """Meet right."""
        return await meet("left", "right")

    async def right() -> str:
        """Meet left."""
        return await meet("right", "left")

    server.reply(tool_calls=[ToolCall("left", id="c1"), ToolCall("right", id="c2")])
    server.reply(["Both met."])
    async with MiniAgents():
        messages = await ask(llm, client, "Meet.", tools=[left, right])
    results = [message for message in messages if isinstance(message, ToolResultMessage)]
    assert [(result.call_id, result.text, result.is_error) for result in results] == [
        ("c1", "left met right", False),
        ("c2", "right met left", False),
    ]
    assert [type(message) for message in messages] == [
        LLMToolCallMessage,
        LLMToolCallMessage,
        LLMToolResultMessage,
        LLMToolResultMessage,
        llm.message_class,
    ]
    calls = [wire_call(llm, f"c{n}", name, "{}", {}) for n, name in [(1, "left"), (2, "right")]]
    assert conversation(llm, server.requests[1]) == [
        user("Meet."),
        wire_turn(llm, None, calls),
        *wire_results(llm, [("c1", "left met right", False), ("c2", "right met left", False)]),
    ]


async def test_several_rounds_each_sent_back_with_the_text_said_before_the_calls(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(["Let me look."], tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")])
    server.reply(tool_calls=[ToolCall("add", {"a": 20, "b": 1}, id="c2")])
    server.reply(["Sunny, and 21."])
    async with MiniAgents():
        messages = await ask(llm, client, "Weather, and 20 + 1?", tools=[add, get_weather])
    assert [type(message) for message in messages] == [
        llm.message_class,
        LLMToolCallMessage,
        LLMToolResultMessage,
        LLMToolCallMessage,
        LLMToolResultMessage,
        llm.message_class,
    ]
    said, answer = messages[0], messages[-1]
    assert said.text == "Let me look."
    reason = llm.pick(("tool_calls", "tool_use", "completed"))
    assert said.finish_reason == reason  # type: ignore[attr-defined]
    assert said.usage is None  # type: ignore[attr-defined]  # the answer counts every call
    assert answer.text == "Sunny, and 21."
    assert [message.text for message in messages[2::2]] == ["Sunny in Paris", "21"]
    assert len(server.requests) == 3
    weather = wire_call(llm, "c1", "get_weather", '{"city":"Paris"}', {"city": "Paris"})
    adding = wire_call(llm, "c2", "add", '{"a":20,"b":1}', {"a": 20, "b": 1})
    assert conversation(llm, server.requests[2]) == [
        user("Weather, and 20 + 1?"),
        wire_turn(llm, "Let me look.", [weather]),
        *wire_results(llm, [("c1", "Sunny in Paris", False)]),
        wire_turn(llm, None, [adding]),
        *wire_results(llm, [("c2", "21", False)]),
    ]


async def test_invalid_arguments_and_tool_exceptions_go_back_to_the_model_as_errors(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(
        tool_calls=[
            ToolCall("add", {"a": "two", "b": 1}, id="c1"),
            ToolCall("explode", id="c2"),
            ToolCall("subtract", {"a": 1}, id="c3"),
        ]
    )
    server.reply(["Sorry."])
    async with MiniAgents():
        messages = await ask(llm, client, "Try.", tools=[add, explode])
    results = [message for message in messages if isinstance(message, ToolResultMessage)]
    invalid = (
        "Invalid arguments for the tool add: 'a': Input should be a valid integer, unable to "
        "parse string as an integer. Call it again with arguments that match its schema."
    )
    failed = "The tool explode failed: ValueError: boom"
    unknown = (
        "There is no tool named 'subtract'. The tools are: add, explode. Call one of them by "
        "its exact name."
    )
    expected = [("c1", invalid, True), ("c2", failed, True), ("c3", unknown, True)]
    assert [(result.call_id, result.text, result.is_error) for result in results] == expected
    sent_back = conversation(llm, server.requests[1])[2:]
    assert sent_back == wire_results(llm, expected)


async def test_what_the_model_is_told_of_its_own_names_and_keys_stays_short(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    # a prompt injection may write a name or keys of any length, and any number of keys
    long_name = "n" * 200_000
    extra = {f"{index:03}" + "k" * 5_000: 1 for index in range(40)}
    server.reply(
        tool_calls=[
            ToolCall(long_name, id="c1"),
            ToolCall("add", {"a": 1, "b": 2, **extra}, id="c2"),
        ]
    )
    server.reply(["Sorry."])
    async with MiniAgents():
        messages = await ask(llm, client, "Try.", tools=[add])
    unknown, invalid = [m for m in messages if isinstance(m, ToolResultMessage)]
    assert unknown.is_error
    assert invalid.is_error
    assert unknown.text == (
        f"There is no tool named '{'n' * 99}…'. The tools are: add. Call one of them by its "
        "exact name."
    )
    assert invalid.text.startswith("Invalid arguments for the tool add: '000kkk")
    assert invalid.text.endswith(
        "k…': Extra inputs are not permitted; and 30 more problems. Call it again with "
        "arguments that match its schema."
    )
    assert len(invalid.text) < 2_000
    assert invalid.text.count("Extra inputs are not permitted") == 10


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000, "The arguments are not valid JSON: they nest too deeply to be read."),
        ('{"a":' * 100_000, "The arguments are not valid JSON: they nest too deeply to be read."),
        ("[1, 2]", "The arguments must be a JSON object, not list."),
        ("{a: 1", "The arguments are not valid JSON (Expecting property name enclosed in "),
    ],
    ids=["deep-array", "deep-object", "not-an-object", "not-json"],
)
async def test_unreadable_arguments_are_told_back_and_the_loop_goes_on(
    llm: LLM, client: SDKClient, server: FakeLLMServer, text: str, problem: str
) -> None:
    server.reply(tool_calls=[ToolCall("add", text, id="c1")])
    server.reply(["Sorry."])
    async with MiniAgents():
        messages = await ask(llm, client, "Try.", tools=[add])
    (result,) = [m for m in messages if isinstance(m, ToolResultMessage)]
    assert result.is_error
    assert result.text.startswith(f"The call of the tool add could not be read: {problem}")
    assert len(result.text) < 300  # never the arguments quoted back
    assert messages[-1].text == "Sorry."


async def test_arguments_longer_than_a_tool_takes_are_refused_and_the_model_told(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    ran: list[int] = []

    def note(text: str) -> str:
        """Note a text."""
        ran.append(len(text))
        return "noted"

    default = FunctionTool(note)  # a million characters at most
    asked = FunctionTool(note, name="asked", requires_approval=True)
    raised = FunctionTool(note, name="raised", max_argument_chars=2_000_000)
    long = {"text": "x" * 1_000_000}  # its JSON: a few characters more than a million
    server.reply(
        tool_calls=[
            ToolCall("note", long, id="c1"),
            ToolCall("asked", long, id="c2"),
            ToolCall("raised", long, id="c3"),
        ]
    )
    server.reply(["Done."])
    async with MiniAgents():
        messages = await ask(llm, client, "Note it.", tools=[default, asked, raised])
    assert not [m for m in messages if type(m).__name__.endswith("ApprovalRequest")]
    results = [m for m in messages if isinstance(m, ToolResultMessage)]
    assert [(r.call_id, r.is_error) for r in results] == [
        ("c1", True),
        ("c2", True),
        ("c3", False),
    ]
    assert results[0].text == (
        "The call of the tool note was not run: its arguments are 1,000,011 characters long, "
        "more than the 1,000,000 the tool takes. Call it again with shorter arguments (pass "
        "less at a time). For a tool that takes long texts, its author raises the bound with "
        "max_argument_chars=..."
    )
    assert results[1].text.startswith("The call of the tool asked was not run")
    assert ran == [1_000_000]


def test_a_bound_of_arguments_that_is_not_a_whole_number_is_refused() -> None:
    with pytest.raises(ArgumentError, match="max_argument_chars"):
        FunctionTool(add, max_argument_chars=0)


async def test_a_tool_past_its_timeout_is_cancelled_and_the_model_told_the_loop_goes_on(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    # the tool awaits a future nobody resolves: its timeout (0.05 s) is the only clock
    cancelled = asyncio.Event()

    async def hang() -> str:
        """A tool that never answers."""
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    server.reply(tool_calls=[ToolCall("hang", id="c1"), ToolCall("add", {"a": 1, "b": 2}, id="c2")])
    server.reply(["It hung."])
    async with MiniAgents():
        tools = [FunctionTool(hang, timeout=0.05), add]
        messages = await asyncio.wait_for(ask(llm, client, "Try.", tools=tools), WAIT)
    assert cancelled.is_set()
    results = [message for message in messages if isinstance(message, ToolResultMessage)]
    timed_out = (
        "The tool hang did not finish within its timeout of 0.05 seconds, so its run was "
        "cancelled. Call it again with arguments that ask for less, or do without it."
    )
    expected = [("c1", timed_out, True), ("c2", "3", False)]
    assert [(result.call_id, result.text, result.is_error) for result in results] == expected
    assert conversation(llm, server.requests[1])[2:] == wire_results(llm, expected)
    assert str(messages[-1]) == "It hung."


async def test_malformed_argument_json_is_an_error_result_and_goes_back_as_no_arguments(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(tool_calls=[ToolCall("add", '{"a": 2, "b":', id="c1")])
    server.reply(["Let me try again."])
    async with MiniAgents():
        call, result, _ = await ask(llm, client, "2 + ?", tools=[add])
    assert isinstance(call, ToolCallMessage)
    assert call.text == '{"a": 2, "b":'
    assert dict(call.arguments) == {}
    assert call.arguments_error is not None
    assert call.arguments_error.startswith("The arguments are not valid JSON")
    assert isinstance(result, ToolResultMessage)
    assert result.is_error
    assert str(result.text).startswith("The call of the tool add could not be read: The arguments")
    assert conversation(llm, server.requests[1])[1] == wire_turn(
        llm, None, [wire_call(llm, "c1", "add", "{}", {})]
    )


async def test_arguments_nested_too_deeply_are_an_error_result_not_a_failed_reply(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    # a model caught in a loop of brackets failed the agent's reply with a RecursionError
    nested = '{"a": ' + "[" * 5000 + "]" * 5000 + ', "b": 1}'
    server.reply(tool_calls=[ToolCall("add", nested, id="c1")])
    server.reply(["Let me try again."])
    async with MiniAgents():
        call, result, answer = await ask(llm, client, "2 + ?", tools=[add])
    assert isinstance(call, ToolCallMessage)
    assert (call.text, dict(call.arguments)) == (nested, {})
    assert isinstance(result, ToolResultMessage)
    assert result.is_error
    assert result.text == (
        "The call of the tool add could not be read: The arguments are not valid JSON: they "
        "nest too deeply to be read. Call it again with a JSON object of arguments."
    )
    assert str(answer) == "Let me try again."


async def test_the_round_limit_ends_a_runaway_loop_with_an_error_naming_agent_and_limit(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    for number in range(1, 4):
        server.reply(tool_calls=[ToolCall("add", {"a": number, "b": 1}, id=f"c{number}")])
    server.reply(["never asked for"])
    async with MiniAgents():
        seen, error = await messages_then_error(
            ask(llm, client, "Count.", tools=[add], max_tool_rounds=2)
        )
    assert type(error) is LLMToolRoundsError
    assert str(error) == (
        f"The agent {llm.alias} stopped its tool loop: the model '{llm.model}' asked for tools "
        "again after 2 rounds of tool calls (its max_tool_rounds). Give it more with "
        f"{llm.alias.lower()}.fork(max_tool_rounds=...), or tell the model (e.g. in the system "
        "prompt) when to stop calling tools."
    )
    assert [type(message).__name__ for message in seen] == [
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "LLMToolCallMessage",  # the call of one round too many: not run
    ]
    assert len(server.requests) == 3
    assert server.pending == 1


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
async def test_a_max_tool_rounds_that_is_not_a_positive_whole_number_is_refused(
    llm: LLM, client: SDKClient, server: FakeLLMServer, bad: Any
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="to be a whole number of at least 1"):
            await ask(llm, client, "hi", tools=[add], max_tool_rounds=bad)
    assert server.requests == []


async def test_calls_past_max_tool_calls_in_one_turn_are_answered_not_run(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    ran: list[int] = []

    def double(x: int) -> int:
        """Double a number."""
        ran.append(x)
        return 2 * x

    asked = FunctionTool(double, name="asked", requires_approval=True)
    server.reply(
        tool_calls=[
            ToolCall("double", {"x": 1}, id="c1"),
            ToolCall("double", {"x": 2}, id="c2"),
            ToolCall("asked", {"x": 3}, id="c3"),
            ToolCall("double", {"x": 4}, id="c4"),
        ]
    )
    server.reply(["Done."])
    async with MiniAgents():
        messages = await ask(llm, client, "Go.", tools=[double, asked], max_tool_calls=2)
    assert not [m for m in messages if type(m).__name__.endswith("ApprovalRequest")]
    results = [m for m in messages if isinstance(m, ToolResultMessage)]
    refused = (
        "The call of the tool {} was not run: the turn made 4 tool calls, and the agent runs "
        "at most 2 of one turn (its max_tool_calls). Make fewer calls at once: call the tools "
        "that are left in the next turn."
    )
    assert [(r.call_id, r.text, r.is_error) for r in results] == [
        ("c1", "2", False),
        ("c2", "4", False),
        ("c3", refused.format("asked"), True),
        ("c4", refused.format("double"), True),
    ]
    assert sorted(ran) == [1, 2]
    assert messages[-1].text == "Done."
    sent_back = conversation(llm, server.requests[1])[2:]
    assert sent_back == wire_results(llm, [(r.call_id, r.text, r.is_error) for r in results])


async def test_an_agent_runs_at_most_a_hundred_calls_of_one_turn_by_default(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(tool_calls=[ToolCall("add", {"a": n, "b": 0}, id=f"c{n}") for n in range(101)])
    server.reply(["Done."])
    async with MiniAgents():
        messages = await ask(llm, client, "Go.", tools=[add])
    results = [m for m in messages if isinstance(m, ToolResultMessage)]
    assert [r.is_error for r in results] == [False] * 100 + [True]
    assert "runs at most 100 of one turn (its max_tool_calls)" in results[-1].text


@pytest.mark.parametrize("bad", [0, True, 2.5])
async def test_a_max_tool_calls_that_is_not_a_positive_whole_number_is_refused(
    llm: LLM, client: SDKClient, server: FakeLLMServer, bad: Any
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="max_tool_calls"):
            await ask(llm, client, "hi", tools=[add], max_tool_calls=bad)
    assert server.requests == []


async def test_a_tool_that_cannot_be_a_tool_fails_the_call_before_any_request(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    def untyped(x):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
        return x

    async with MiniAgents():
        with pytest.raises(ToolDefinitionError, match="has no type annotation"):
            await ask(llm, client, "hi", tools=[untyped])
        with pytest.raises(LLMConfigurationError, match="must be a list of tools, not <fun"):
            await ask(llm, client, "hi", tools=add)
    assert server.requests == []


async def test_a_stream_that_breaks_mid_call_fails_the_call_message(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3})], malformed_after=1)
    async with MiniAgents():
        reply = ask(llm, client, "hi", tools=[add])
        promise = await anext(aiter(reply))
        with pytest.raises(LLMResponseError):
            await promise
        with pytest.raises(LLMResponseError):
            await reply
    assert len(server.requests) == 1  # no tool ran, no round followed


# -- streaming, cancellation ---------------------------------------------------------------


def researcher_for(llm: LLM, client: SDKClient) -> Any:
    """A sub-agent tool that asks the provider's model "sub" and streams its reply."""

    @miniagent
    async def researcher(ctx: InteractionContext, question: str) -> None:
        """Research a question.

        Args:
            ctx: The interaction.
            question: The question.
        """
        ctx.reply(llm.agent.inquire(question, model="sub", async_client=client))

    return researcher


async def test_a_sub_agents_tokens_reach_the_caller_before_the_tool_has_finished(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(tool_calls=[ToolCall("RESEARCHER", {"question": "Why streams?"}, id="c1")])
    server.reply(["Because ", "they ", "flow."], for_model="sub", pause_after=2)
    server.reply(["Streams flow."], for_model=llm.model)
    async with MiniAgents():
        reply = ask(llm, client, "Why streams?", tools=[researcher_for(llm, client)])
        promises = aiter(reply)
        call = await anext(promises)
        result = await anext(promises)
        assert result.metadata["call_id"] == "c1"
        tokens = aiter(result)
        first = [await anext(tokens), await anext(tokens)]
        assert first == ["Because ", "they "]  # live: the sub-agent's model is paused
        sub = await server.wait_paused_async(1, WAIT)
        assert (sub.json["model"], sub.finished, result.done) == ("sub", False, False)
        sub.resume()
        rest = [token async for token in tokens]
        answer = await anext(promises)
        assert (await answer).text == "Streams flow."
        assert (await call).text == '{"question":"Why streams?"}'
    assert first + rest == ["Because ", "they ", "flow."]
    assert (
        conversation(llm, server.requests[2])[-1]
        == wire_results(llm, [("c1", "Because they flow.", False)])[-1]
    )


async def test_giving_up_while_tools_run_cancels_them_and_closes_the_sub_agents_stream(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def wait_forever() -> str:
        """Never answer."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    server.reply(
        tool_calls=[
            ToolCall("wait_forever", id="c1"),
            ToolCall("RESEARCHER", {"question": "why?"}, id="c2"),
        ]
    )
    server.reply(["Because"], for_model="sub", hang_after=1)
    async with MiniAgents():
        reply = ask(llm, client, "Go.", tools=[wait_forever, researcher_for(llm, client)])
        waiting = asyncio.ensure_future(reply.aresolve())
        await asyncio.wait_for(started.wait(), WAIT)
        await server.wait_requests_async(2, WAIT)  # the sub-agent's call is under way
        waiting.cancel()  # the only consumer gives up
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        await asyncio.wait_for(cancelled.wait(), WAIT)
        assert await server.wait_disconnected_async(1, WAIT)
    assert server.requests[1].json["model"] == "sub"
    assert server.requests[1].outcome == "disconnected"
    assert len(server.requests) == 2  # the model was not called again


async def test_the_tools_of_an_mcp_server_work_in_the_loop(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(tool_calls=[ToolCall("calc_add", {"a": 2, "b": 3}, id="c1")])
    server.reply(["5."])
    async with MCPSession(mcp_server, prefix="calc_") as session, MiniAgents():
        messages = await ask(llm, client, "2 + 3?", tools=[*session])
    result = messages[1]
    assert isinstance(result, ToolResultMessage)
    assert (result.tool_name, result.text, result.is_error) == ("calc_add", "5", False)
    described = server.requests[0].json["tools"]
    names = [
        tool["function"]["name"] if llm.name == "openai" else tool["name"] for tool in described
    ]
    assert "calc_add" in names


async def test_an_agent_that_passes_the_reply_on_passes_on_every_call_and_result(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    @miniagent
    async def assistant(ctx: InteractionContext) -> None:
        ctx.reply(ask(llm, client, ctx.messages, tools=[add]))

    server.reply(tool_calls=[ToolCall("add", {"a": 1, "b": 1}, id="c1")])
    server.reply(["2."])
    async with MiniAgents():
        messages = await assistant.inquire("1 + 1?")
    assert [type(message) for message in messages] == [
        LLMToolCallMessage,
        LLMToolResultMessage,
        llm.message_class,
    ]
    assert [message.text for message in messages] == ['{"a":1,"b":1}', "2", "2."]
