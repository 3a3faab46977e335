"""``fallback_agent``: the next agent answers when a reply fails before its first token.

The OpenAI and Anthropic agents run their real SDKs against the fake provider server (one
server speaks both APIs; its script is taken in the order of the requests), with
``max_retries=0`` on the agents unless a test says otherwise, so that a failure is final
at once. The offline model stands in where no HTTP is needed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import anthropic
import openai
import pytest

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MiniAgent,
    MiniAgents,
    miniagent,
)
from miniagents.errors import AgentArgumentError
from miniagents.ext.llm import (
    LLMCall,
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    TokenUsage,
    fallback_agent,
    is_provider_failure,
    partial_outputs,
    structured,
)
from miniagents.ext.llm.anthropic import AnthropicMessage, anthropic_agent
from miniagents.ext.llm.errors import (
    LLMAuthenticationError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMRequestError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
    LLMToolRoundsError,
)
from miniagents.ext.llm.offline import CallTool, OfflineMessage, offline_agent
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from miniagents.ext.llm.usage import Budget
from miniagents.ext.tools import FunctionTool
from miniagents.testing import FAST_RETRY, FakeLLMServer, ToolCall, scripted_agent
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401

TOKENS = ["Hel", "lo", " there"]


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def clients(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> AsyncIterator[tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic]]:
    """An OpenAI and an Anthropic client of the fake server (retries: 5, unless told)."""
    async with (
        openai.AsyncOpenAI(
            base_url=fake_llm.openai_base_url, api_key="test", max_retries=5
        ) as openai_client,
        anthropic.AsyncAnthropic(
            base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=5
        ) as anthropic_client,
    ):
        yield openai_client, anthropic_client


def the_agents(
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic], retries: int = 0
) -> tuple[MiniAgent[..., Message], MiniAgent[..., Message]]:
    """The OpenAI agent (gpt-test) and the Anthropic agent (claude-test), ``retries`` each."""
    openai_client, anthropic_client = clients
    first = openai_agent.fork(model="gpt-test", async_client=openai_client, max_retries=retries)
    second = anthropic_agent.fork(
        model="claude-test", async_client=anthropic_client, max_retries=retries
    )
    return first, second


async def tokens_and_messages(
    reply: MessageSequencePromise[Message],
) -> tuple[list[str], list[Message]]:
    """Every token of every message of ``reply``, as they stream, and the messages."""
    tokens: list[str] = []
    messages: list[Message] = []
    async for promise in reply:
        async for token in promise:
            tokens.append(token)
        messages.append(await promise)
    return tokens, messages


async def read_tokens(reply: MessageSequencePromise[Message], tokens: list[str]) -> None:
    """Read the tokens of ``reply`` into ``tokens``, as they stream."""
    async for promise in reply:
        async for token in promise:
            tokens.append(token)


async def read_messages(reply: MessageSequencePromise[Message], messages: list[Message]) -> None:
    """Read the messages of ``reply`` into ``messages``, as they end."""
    async for promise in reply:
        messages.append(await promise)


# -- the first agent fails before its first token: the next one answers --------------------


@pytest.mark.parametrize("failure", ["500", "429", "529", "refused", "timeout"])
async def test_a_provider_failing_first_is_replaced_by_the_next(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
    failure: str,
) -> None:
    first, second = the_agents(clients)
    if failure == "refused":
        dead = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key="test", max_retries=5
        )
        first = first.fork(async_client=dead)
    elif failure == "timeout":  # (each reply for its model: a loaded machine may time the
        # first request out before it arrives; 1 s lets it arrive, then waits for nothing)
        fake_llm.reply(TOKENS, hang_after=0, for_model="gpt-test")  # the head, then nothing
        first = first.fork(timeout=1.0)
    else:
        fake_llm.fail(int(failure), headers=FAST_RETRY)
    fake_llm.reply(TOKENS, pause_after=1, for_model="claude-test")
    async with MiniAgents():
        reply = fallback_agent(first, second).inquire("hi")
        tokens: list[str] = []
        async for promise in reply:
            async for token in promise:
                tokens.append(token)
                if len(tokens) == 1:  # streamed: the server holds the rest back until now
                    paused = await fake_llm.wait_paused_async(len(fake_llm.requests) - 1, WAIT)
                    paused.resume()
        messages = await reply
    assert tokens == TOKENS
    assert len(messages) == 1
    answer = messages[0]
    assert isinstance(answer, AnthropicMessage)
    assert (answer.text, answer.model, answer.agent_alias) == (
        "Hello there",
        "claude-test",
        "ANTHROPIC_AGENT",
    )
    paths = [request.path for request in fake_llm.requests]
    if failure == "refused":
        assert paths == ["/v1/messages"]
    else:
        assert paths == ["/v1/chat/completions", "/v1/messages"]  # max_retries=0: one try


async def test_the_first_agent_answers_when_it_can(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    fake_llm.reply(TOKENS)
    async with MiniAgents():
        tokens, messages = await tokens_and_messages(
            fallback_agent(*the_agents(clients)).inquire("hi")
        )
    assert tokens == TOKENS
    assert [type(m) for m in messages] == [OpenAIMessage]
    assert messages[0].model == "gpt-test"  # type: ignore[attr-defined]
    assert len(fake_llm.requests) == 1


async def test_the_sdk_retries_before_the_fallback(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    first, second = the_agents(clients, retries=2)
    fake_llm.fail(503, headers=FAST_RETRY, times=3)  # the first try and 2 retries
    fake_llm.reply(TOKENS)
    async with MiniAgents():
        _, messages = await tokens_and_messages(fallback_agent(first, second).inquire("hi"))
    assert [type(m) for m in messages] == [AnthropicMessage]
    assert [request.status for request in fake_llm.requests] == [503, 503, 503, 200]


async def test_the_offline_model_as_the_last_resort(
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    down = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key="test", max_retries=0
    )
    first = openai_agent.fork(model="gpt-test", async_client=down)
    backup = offline_agent.fork(reply="Sorry, I am offline.", token_delay=0.0)
    async with MiniAgents():
        tokens, messages = await tokens_and_messages(fallback_agent(first, backup).inquire("hi"))
    await down.close()
    assert tokens == ["Sorry, ", "I ", "am ", "offline."]
    assert [type(m) for m in messages] == [OfflineMessage]
    assert messages[0].agent_alias == "OFFLINE_AGENT"  # type: ignore[attr-defined]


async def test_a_budget_given_to_the_fallback_counts_the_calls_of_every_agent() -> None:
    down = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key="test", max_retries=0
    )
    first = openai_agent.fork(model="gpt-test", async_client=down)
    backup = offline_agent.fork(reply="Sorry, I am offline.", token_delay=0.0)
    budget = Budget(max_requests=5)
    async with MiniAgents():
        await fallback_agent(first, backup).inquire("hi", budget=budget)
    await down.close()
    assert budget.usage.requests == 2  # the call that failed, then the offline one


# -- no fallback ---------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["cut", "error-event", "stalled"])
async def test_a_failure_after_the_first_token_ends_the_reply(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
    fault: str,
) -> None:
    first, second = the_agents(clients)
    faults = {"cut": {"cut_after": 1}, "error-event": {"error_event_after": 1}}
    if fault == "stalled":
        first = first.fork(timeout=0.2)
    fake_llm.reply(TOKENS, **faults.get(fault, {"hang_after": 1}))  # type: ignore[arg-type]
    fake_llm.reply(TOKENS)  # never asked for
    tokens: list[str] = []
    async with MiniAgents():
        reply = fallback_agent(first, second).inquire("hi")
        with pytest.raises(LLMError) as raised:
            await read_tokens(reply, tokens)
    assert tokens == ["Hel"]
    expected = {"cut": LLMConnectionError, "error-event": LLMResponseError}
    assert type(raised.value) is expected.get(fault, LLMTimeoutError)
    assert len(fake_llm.requests) == 1
    assert fake_llm.pending == 1


@miniagent
async def _says_then_fails(ctx: InteractionContext) -> None:
    """An agent that delivers a whole message, then fails as a provider does (e.g. a remote
    LLM agent whose call said a text before its tool call, then broke)."""
    ctx.reply("Let me check.")
    raise LLMServerError("down")


async def test_a_failure_after_a_whole_message_of_the_call_ends_the_reply() -> None:
    # (was: the message was complete, so the next agent answered after it, given "Let me
    # check." as a user's words: the reader got "Let me check." and a second, fresh start)
    calls: list[LLMCall] = []
    second = scripted_agent("It is 5.", calls=calls, model="second")
    async with MiniAgents():
        reply = fallback_agent(_says_then_fails, second).inquire("2 + 3?")
        seen: list[Message] = []
        with pytest.raises(LLMServerError, match="down"):
            await read_messages(reply, seen)
    assert [str(message) for message in seen] == ["Let me check."]
    assert calls == []  # the second agent was never asked


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, LLMRequestError), (401, LLMAuthenticationError), (404, LLMRequestError)],
)
async def test_a_refused_request_is_not_a_provider_failure(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
    status: int,
    error: type[LLMError],
) -> None:
    fake_llm.fail(status)
    fake_llm.reply(TOKENS)  # never asked for
    async with MiniAgents():
        with pytest.raises(LLMError) as raised:
            await fallback_agent(*the_agents(clients)).inquire("hi")
    assert type(raised.value) is error
    assert fake_llm.pending == 1


async def test_every_agent_failing_fails_the_reply_with_the_last_error(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    fake_llm.fail(500)
    fake_llm.fail(429)
    async with MiniAgents():
        reply = fallback_agent(*the_agents(clients)).inquire("hi")
        with pytest.raises(LLMRateLimitError) as raised:
            await reply
        with pytest.raises(LLMRateLimitError):  # the same for every consumer, replayed
            async for _ in reply:
                pass
    error = raised.value
    assert isinstance(error.__cause__, anthropic.RateLimitError)
    assert str(error).startswith("Anthropic kept refusing the request for its rate limit")
    assert len(error.__notes__) == 1
    assert error.__notes__[0].startswith(
        "OPENAI_AGENT failed first: LLMServerError: OpenAI kept failing with a server error"
    )
    assert [request.status for request in fake_llm.requests] == [500, 429]


async def test_when_decides_which_errors_fall_back(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    seen: list[BaseException] = []

    def also_refused(error: BaseException) -> bool:
        seen.append(error)
        return is_provider_failure(error) or isinstance(error, LLMRequestError)

    fake_llm.fail(400)
    fake_llm.reply(TOKENS)
    fake_llm.fail(500)
    async with MiniAgents():
        answered = await fallback_agent(*the_agents(clients), when=also_refused).inquire("hi")
        never = fallback_agent(*the_agents(clients), when=lambda error: False)
        with pytest.raises(LLMServerError):
            await never.inquire("hi")
    assert [type(m) for m in answered] == [AnthropicMessage]
    assert [type(error) for error in seen] == [LLMRequestError]
    assert fake_llm.pending == 0


def test_is_provider_failure() -> None:
    for failure in (
        LLMConnectionError,
        LLMTimeoutError,
        LLMServerError,
        LLMRateLimitError,
        LLMResponseError,
    ):
        assert is_provider_failure(failure("x"))
    for other in (
        LLMRequestError("x"),
        LLMAuthenticationError("x"),
        LLMConfigurationError("x"),
        LLMToolRoundsError("x"),
        ValueError("x"),
        asyncio.CancelledError(),
    ):
        assert not is_provider_failure(other)


# -- tool loops, arguments, structured answers -----------------------------------------------


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def test_a_tool_loop_failing_first_runs_whole_on_the_next_agent() -> None:
    first = scripted_agent(LLMServerError("down"), tools=[add], model="first")
    second = scripted_agent(CallTool("add", {"a": 2, "b": 3}), "It is 5.", tools=[add])
    async with MiniAgents():
        messages = await fallback_agent(first, second).inquire("2 + 3?")
    assert [type(m) for m in messages] == [
        LLMToolCallMessage,
        LLMToolResultMessage,
        OfflineMessage,
    ]
    assert [m.model for m in messages] == ["scripted"] * 3
    assert messages[-1].text == "It is 5."


async def test_a_tool_loop_failing_in_a_later_round_goes_on_with_the_next_agent() -> None:
    first = scripted_agent(CallTool("add", {"a": 2, "b": 3}), LLMServerError("down"), tools=[add])
    calls: list[LLMCall] = []
    second = scripted_agent("It is 5.", tools=[add], calls=calls, model="second")
    async with MiniAgents():
        messages = await fallback_agent(first, second).inquire("2 + 3?")
    assert [(type(m), m.model, str(m)) for m in messages] == [
        (LLMToolCallMessage, "scripted", '{"a": 2, "b": 3}'),
        (LLMToolResultMessage, "scripted", "5"),
        (OfflineMessage, "second", "It is 5."),
    ]
    # the second model got the conversation so far: the question, the call, its result
    [call] = calls
    assert [type(item).__name__ for item in call.messages] == [
        "PromptText",
        "LLMToolCallMessage",
        "LLMToolResultMessage",
    ]
    assert call.messages[1] == messages[0]


async def test_a_tool_loop_goes_on_with_another_provider(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    first, second = the_agents(clients)
    fake_llm.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="call_1")])  # OpenAI
    fake_llm.fail(500)  # OpenAI's second call
    fake_llm.reply(["It ", "is ", "5."])  # Anthropic, given the call and its result
    async with MiniAgents():
        reply = fallback_agent(first, second).inquire("2 + 3?", tools=[add])
        tokens, messages = await tokens_and_messages(reply)
    assert [type(m) for m in messages] == [
        LLMToolCallMessage,
        LLMToolResultMessage,
        AnthropicMessage,
    ]
    aliases = [getattr(m, "agent_alias", None) for m in messages]
    assert aliases == ["OPENAI_AGENT", "OPENAI_AGENT", "ANTHROPIC_AGENT"]
    assert tokens[-3:] == ["It ", "is ", "5."]
    anthropic_request = fake_llm.requests[2].json
    assert [message["role"] for message in anthropic_request["messages"]] == [
        "user",
        "assistant",
        "user",
    ]
    [use] = anthropic_request["messages"][1]["content"]
    [result] = anthropic_request["messages"][2]["content"]
    assert (use["type"], use["id"], use["name"], use["input"]) == (
        "tool_use",
        "call_1",
        "add",
        {"a": 2, "b": 3},
    )
    assert (result["type"], result["tool_use_id"], result["content"]) == (
        "tool_result",
        "call_1",
        "5",
    )


async def test_a_tool_loop_failing_after_a_token_of_its_round_ends_the_reply(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    first, second = the_agents(clients)
    fake_llm.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3})])
    fake_llm.reply(TOKENS, cut_after=1)  # the second round says "Hel", then breaks
    fake_llm.reply(TOKENS)  # never asked for
    async with MiniAgents():
        reply = fallback_agent(first, second).inquire("2 + 3?", tools=[add])
        seen: list[Message] = []
        with pytest.raises(LLMConnectionError):
            await read_messages(reply, seen)
        tokens: list[str] = []
        with pytest.raises(LLMConnectionError):
            await read_tokens(reply, tokens)
    assert [type(m) for m in seen] == [LLMToolCallMessage, LLMToolResultMessage]
    assert tokens[-1] == "Hel"
    assert fake_llm.pending == 1


async def test_the_arguments_go_to_the_agent_that_answers(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    fake_llm.fail(500)
    fake_llm.reply(TOKENS)
    fallback = fallback_agent(*the_agents(clients))
    async with MiniAgents():
        await fallback.fork(system="Be brief.").inquire("hi", stream=False)
        with pytest.raises(AgentArgumentError, match="model"):
            fallback.fork(model="gpt-4o")  # type: ignore[call-arg]  # (untyped code's case)
    assert fake_llm.requests[0].json["messages"][0] == {"role": "system", "content": "Be brief."}
    assert fake_llm.requests[1].json["system"] == "Be brief."
    assert "stream" not in fake_llm.requests[1].json or not fake_llm.requests[1].json["stream"]


def test_an_argument_of_its_agents_says_to_give_it_to_them_not_to_edit_a_function() -> None:
    # (was: "Check the spelling, or add a parameter 'max_retries' to the agent function", of
    # a function that is MiniAgents' own; an agent of the user's own still gets that advice)
    fallback = fallback_agent(offline_agent, offline_agent)
    with pytest.raises(AgentArgumentError) as refused:
        fallback.fork(max_retries=0)  # type: ignore[call-arg]  # (mypy refuses it too)
    said = str(refused.value)
    assert "add a parameter" not in said
    assert "only another agent takes (one this agent asks, as fallback_agent's agents" in said
    assert "bound with its fork()." in said


class Weather(Message):
    city: str
    celsius: float


async def test_a_structured_answer_falls_back_too() -> None:
    first = scripted_agent(LLMRateLimitError("busy"))
    second = scripted_agent('{"city": "Paris", "celsius": 21}')
    async with MiniAgents():
        weather = (await structured(fallback_agent(first, second), Weather).inquire("Paris?"))[0]
    assert (weather.city, weather.celsius) == ("Paris", 21.0)


@pytest.mark.parametrize("how", ["bind", "fork"])
async def test_an_output_type_bound_to_the_fallback_is_refused_as_its_replies_are_its_agents(
    how: str,
) -> None:
    first = scripted_agent('{"city": "Paris", "celsius": 21}')
    fallback = fallback_agent(first, first)
    bound = (
        fallback.bind(output_type=Weather) if how == "bind" else fallback.fork(output_type=Weather)
    )
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await bound.inquire("Paris?")
        given = await fallback.inquire("Paris?", output_type=Weather)  # for one reply: fine
    assert "output_type=Weather bound with fork() or bind()" in str(raised.value)
    assert "structured(fallback_agent(...), Weather)" in str(raised.value)
    assert isinstance(given[-1], Weather)


async def test_a_reply_without_messages_is_an_answer() -> None:
    @miniagent
    async def silent(ctx: InteractionContext) -> None:
        pass

    asked: list[str] = []

    @miniagent
    async def other(ctx: InteractionContext) -> None:
        asked.append("other")

    async with MiniAgents():
        assert await fallback_agent(silent, other).inquire("hi") == ()
    assert asked == []


# -- bad input -----------------------------------------------------------------------------


def test_fallback_agent_without_an_agent_is_refused() -> None:
    with pytest.raises(LLMConfigurationError, match=r"needs at least one agent"):
        fallback_agent()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda: fallback_agent(openai_agent, "gpt-4o"), "takes agents, not 'gpt-4o'"),  # type: ignore[arg-type]
        (lambda: fallback_agent(openai_agent, when=True), "must be a function of the error"),  # type: ignore[arg-type]
    ],
)
def test_fallback_agent_with_bad_arguments_is_refused(
    call: Callable[[], object], says: str
) -> None:
    with pytest.raises(LLMConfigurationError, match=says):
        call()


# -- the same agent again; giving up -------------------------------------------------------


async def test_the_same_agent_twice_is_a_second_try(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    first, _ = the_agents(clients)
    fake_llm.fail(500)
    fake_llm.reply(TOKENS)
    async with MiniAgents():
        messages = await fallback_agent(first, first).inquire("hi")
    assert [type(m) for m in messages] == [OpenAIMessage]
    assert [request.status for request in fake_llm.requests] == [500, 200]


async def test_giving_up_on_the_reply_stops_the_call_that_answers(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    fake_llm.fail(500)
    fake_llm.reply(TOKENS, hang_after=1)  # streams "Hel", then nothing until the client leaves
    first_token = asyncio.Event()

    async def consume(reply: MessageSequencePromise[Message]) -> None:
        async for promise in reply:
            async for _ in promise:
                first_token.set()

    async with MiniAgents():
        consumer = asyncio.create_task(consume(fallback_agent(*the_agents(clients)).inquire("hi")))
        await asyncio.wait_for(first_token.wait(), WAIT)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert await fake_llm.wait_disconnected_async(1, WAIT)  # the HTTP stream was closed


# -- calls waiting for approval --------------------------------------------------------------

refunded: list[str] = []


def refund(order_id: str) -> str:
    """Refund an order."""
    refunded.append(order_id)
    return f"Refunded {order_id}"


async def read_until_result(
    reply: MessageSequencePromise[Message],
) -> tuple[list[MessagePromise], LLMToolApprovalRequest]:
    """The promises of ``reply`` up to the first tool result, which is left unread."""
    promises: list[MessagePromise] = []
    async for promise in reply:
        promises.append(promise)
        if issubclass(promise.message_class, LLMToolResultMessage):
            break
    [request] = [await p for p in promises if issubclass(p.message_class, LLMToolApprovalRequest)]
    assert isinstance(request, LLMToolApprovalRequest)
    return promises, request


@pytest.mark.parametrize("after_a_failure", [False, True])
async def test_a_call_waiting_for_approval_passes_on_with_its_result_still_pending(
    after_a_failure: bool,
) -> None:
    refunded.clear()
    tools = [FunctionTool(refund, requires_approval=True)]
    llm = scripted_agent(CallTool("refund", {"order_id": "A-7"}), "Done.", tools=tools)
    agents = [scripted_agent(LLMServerError("down")), llm] if after_a_failure else [llm]
    async with MiniAgents():
        reply = fallback_agent(*agents).inquire("Refund A-7")
        # the result has no token until a person decides: the fallback must not wait for it
        promises, request = await asyncio.wait_for(read_until_result(reply), WAIT)
        assert [p.message_class for p in promises] == [
            LLMToolCallMessage,
            LLMToolApprovalRequest,
            LLMToolResultMessage,
        ]
        assert request.pending
        assert not promises[-1].done
        assert refunded == []
        request.approve()
        messages = await asyncio.wait_for(reply.aresolve(), WAIT)
    assert [(type(m), str(m)) for m in messages] == [
        (LLMToolCallMessage, '{"order_id": "A-7"}'),
        (LLMToolApprovalRequest, 'Approve the call of refund with {"order_id": "A-7"}?'),
        (LLMToolResultMessage, "Refunded A-7"),
        (OfflineMessage, "Done."),
    ]
    assert refunded == ["A-7"]


async def test_a_round_failing_after_an_approved_call_goes_on_with_the_next_agent() -> None:
    refunded.clear()
    tools = [FunctionTool(refund, requires_approval=True)]
    first = scripted_agent(CallTool("refund", {"order_id": "A-7"}), LLMServerError("down"))
    first = first.fork(tools=tools)
    calls: list[LLMCall] = []
    second = scripted_agent("Refunded.", tools=tools, calls=calls, model="second")
    async with MiniAgents():
        reply = fallback_agent(first, second).inquire("Refund A-7")
        _promises, request = await asyncio.wait_for(read_until_result(reply), WAIT)
        request.approve()
        messages = await asyncio.wait_for(reply.aresolve(), WAIT)
    assert [(type(m), m.model) for m in messages] == [
        (LLMToolCallMessage, "scripted"),
        (LLMToolApprovalRequest, "scripted"),
        (LLMToolResultMessage, "scripted"),
        (OfflineMessage, "second"),
    ]
    [call] = calls  # given the call and its result (the request is not the model's)
    assert [type(item).__name__ for item in call.messages] == [
        "PromptText",
        "LLMToolCallMessage",
        "LLMToolResultMessage",
    ]
    assert refunded == ["A-7"]


# -- the answer's usage counts the calls of every agent ----------------------------------------


def lookup(order_id: str) -> str:
    """Look an order up."""
    return "delivered"


def priced_agents(
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> tuple[MiniAgent[..., Message], MiniAgent[..., Message]]:
    """The OpenAI and Anthropic agents with models that have a price, no retries."""
    first, second = the_agents(clients)
    return first.fork(model="gpt-4o-mini"), second.fork(model="claude-haiku-4-5")


async def test_the_answer_after_a_fallback_counts_the_rounds_of_the_agent_that_failed(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    one = ToolCall("lookup", {"order_id": "A"}, id="c1")
    two = ToolCall("lookup", {"order_id": "B"}, id="c2")
    fake_llm.reply(tool_calls=[one], usage=(100, 20))  # OpenAI, round 1
    fake_llm.reply(["Let me ", "check B."], tool_calls=[two], usage=(150, 30))  # round 2
    fake_llm.fail(503)  # round 3: the fallback
    fake_llm.reply(["It was ", "delivered."], usage=(300, 3))  # Anthropic answers
    budget = Budget()
    async with MiniAgents():
        agent = fallback_agent(*priced_agents(clients))
        messages = await agent.inquire("Where are A and B?", tools=[lookup], budget=budget)
    assert [type(m) for m in messages] == [
        LLMToolCallMessage,
        LLMToolResultMessage,
        OpenAIMessage,
        LLMToolCallMessage,
        LLMToolResultMessage,
        AnthropicMessage,
    ]
    answer = messages[-1]
    assert isinstance(answer, AnthropicMessage)
    assert answer.usage is not None
    # every call of the reply's loop: OpenAI's two rounds and Anthropic's answer
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (550, 53)
    assert (budget.usage.input_tokens, budget.usage.output_tokens) == (550, 53)
    assert answer.usage.cost_usd == pytest.approx(budget.usage.cost_usd)
    assert budget.usage.requests == 4  # the call that failed, with no usage
    assert getattr(messages[2], "usage", None) is None  # what it said before a call: none


async def test_the_answer_after_a_fallback_leaves_out_the_calls_of_the_tools(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    first, second = priced_agents(clients)

    @miniagent
    async def helper(ctx: InteractionContext, question: str) -> None:
        """Ask a helper."""
        ctx.reply(first.inquire(question))  # an LLM call of a tool: not of the loop

    fake_llm.reply(tool_calls=[ToolCall("HELPER", {"question": "A?"})], usage=(100, 20))
    fake_llm.reply(["delivered"], usage=(50, 5))  # the helper's call
    fake_llm.fail(503)
    fake_llm.reply(["It was ", "delivered."], usage=(300, 3))
    budget = Budget()
    async with MiniAgents():
        answer = (await fallback_agent(first, second).inquire("A?", tools=[helper], budget=budget))[
            -1
        ]
    assert isinstance(answer, AnthropicMessage)
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (400, 23)
    assert (budget.usage.input_tokens, budget.usage.output_tokens) == (450, 28)


async def test_a_structured_answer_after_a_fallback_counts_the_rounds_before(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("lookup", {"order_id": "A"})], usage=(100, 20))
    fake_llm.fail(503)
    fake_llm.reply(['{"city": "Paris", ', '"celsius": 21}'], usage=(300, 3))
    weather_agent = structured(fallback_agent(*priced_agents(clients)), Weather)
    async with MiniAgents():
        reply = weather_agent.inquire("Weather?", tools=[lookup])
        [promise] = [p async for p in reply]
        partials = [p async for p in partial_outputs(promise)]
        weather = await promise
    assert (weather.city, weather.celsius) == ("Paris", 21.0)
    usage = getattr(weather, "usage", None)
    assert isinstance(usage, TokenUsage)
    assert (usage.input_tokens, usage.output_tokens) == (400, 23)
    assert (partials[-1].city, partials[-1].celsius) == ("Paris", 21.0)


async def test_the_answer_of_the_first_agent_keeps_its_own_usage(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("lookup", {"order_id": "A"})], usage=(100, 20))
    fake_llm.reply(["Delivered."], usage=(120, 2))
    async with MiniAgents():
        agent = fallback_agent(*priced_agents(clients))
        reply = agent.inquire("A?", tools=[lookup])
        promises = [p async for p in reply]
        answer = await promises[-1]
    assert isinstance(answer, OpenAIMessage)
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (220, 22)
    assert all(type(p) is MessagePromise for p in promises)  # its own, passed on as they are


async def test_giving_up_on_an_answer_that_counts_the_rounds_before_stops_its_call(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("lookup", {"order_id": "A"})], usage=(100, 20))
    fake_llm.fail(500)
    fake_llm.reply(TOKENS, hang_after=1)  # streams "Hel", then nothing until the client leaves
    first_token = asyncio.Event()

    async def consume(reply: MessageSequencePromise[Message]) -> None:
        async for promise in reply:
            async for _ in promise:
                if issubclass(promise.message_class, AnthropicMessage):
                    first_token.set()

    async with MiniAgents():
        reply = fallback_agent(*priced_agents(clients)).inquire("A?", tools=[lookup])
        consumer = asyncio.create_task(consume(reply))
        await asyncio.wait_for(first_token.wait(), WAIT)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert await fake_llm.wait_disconnected_async(2, WAIT)  # the HTTP stream was closed


async def test_a_fallback_of_fallbacks_counts_the_rounds_of_every_agent_that_failed(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    first, second = priced_agents(clients)
    fake_llm.reply(tool_calls=[ToolCall("lookup", {"order_id": "A"})], usage=(100, 20))
    fake_llm.fail(503)  # the first agent's round 2
    fake_llm.fail(503)  # the second agent, given the round before: the inner fallback fails
    fake_llm.reply(["Delivered."], usage=(300, 3))  # the outer fallback's last agent
    agent = fallback_agent(fallback_agent(first, second), first.fork(alias="LAST_RESORT"))
    async with MiniAgents():
        messages = await agent.inquire("A?", tools=[lookup])
    answer = messages[-1]
    assert isinstance(answer, OpenAIMessage)
    assert answer.agent_alias == "LAST_RESORT"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (400, 23)


async def test_a_call_id_repeated_in_a_later_round_is_made_unique_for_the_next_provider(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    # a model that numbers its calls anew each round (Ollama: call_0 every round): the
    # second round's call gets a suffix where the conversation is kept, so that Anthropic,
    # which refuses two tool_use blocks of one id, takes it after the fallback
    first, second = the_agents(clients)
    fake_llm.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="call_0")])  # OpenAI
    fake_llm.reply(tool_calls=[ToolCall("add", {"a": 5, "b": 1}, id="call_0")])  # OpenAI
    fake_llm.fail(500)  # OpenAI's third call
    fake_llm.reply(["It ", "is ", "6."])  # Anthropic, given both rounds
    async with MiniAgents():
        reply = fallback_agent(first, second).inquire("2 + 3 + 1?", tools=[add])
        messages = await reply
    ids = [
        (type(m).__name__, m.call_id)
        for m in messages
        if isinstance(m, LLMToolCallMessage | LLMToolResultMessage)
    ]
    assert ids == [
        ("LLMToolCallMessage", "call_0"),
        ("LLMToolResultMessage", "call_0"),
        ("LLMToolCallMessage", "call_0_2"),
        ("LLMToolResultMessage", "call_0_2"),
    ]
    assert str(messages[-1]) == "It is 6."
    uses, results = [], []
    for message in fake_llm.requests[3].json["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else ():
            if block["type"] == "tool_use":
                uses.append((block["id"], block["input"]))
            elif block["type"] == "tool_result":
                results.append((block["tool_use_id"], block["content"]))
    assert uses == [("call_0", {"a": 2, "b": 3}), ("call_0_2", {"a": 5, "b": 1})]
    assert results == [("call_0", "5"), ("call_0_2", "6")]
    # and OpenAI's third request, the one that failed, carried them so too
    sent = fake_llm.requests[2].json["messages"]
    called = [call["id"] for message in sent for call in message.get("tool_calls") or ()]
    answered = [message["tool_call_id"] for message in sent if message["role"] == "tool"]
    assert called == answered == ["call_0", "call_0_2"]


async def test_a_long_call_id_is_cut_to_40_characters_for_a_fallback_to_openai(
    fake_llm: FakeLLMServer,  # noqa: F811
    clients: tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic],
) -> None:
    # Anthropic's ids may be longer than the 40 characters OpenAI's API takes: the call's id
    # is cut to them where the conversation is kept (two ids of one start told apart), so
    # that OpenAI takes the conversation after the fallback
    openai_agent_, anthropic_agent_ = the_agents(clients)
    long = "toolu_" + "x" * 44
    calls = [
        ToolCall("add", {"a": 2, "b": 3}, id=long + "a"),
        ToolCall("add", {"a": 1, "b": 1}, id=long + "b"),
    ]
    fake_llm.reply(tool_calls=calls)  # Anthropic
    fake_llm.fail(500)  # Anthropic's second call
    fake_llm.reply(["5 and 2."])  # OpenAI, given the round
    async with MiniAgents():
        messages = await fallback_agent(anthropic_agent_, openai_agent_).inquire(
            "2 + 3, 1 + 1?", tools=[add]
        )
    ids = [m.call_id for m in messages if isinstance(m, LLMToolCallMessage | LLMToolResultMessage)]
    assert ids == [long[:40], long[:38] + "_2", long[:40], long[:38] + "_2"]
    assert str(messages[-1]) == "5 and 2."
    sent = fake_llm.requests[2].json["messages"]
    called = [call["id"] for message in sent for call in message.get("tool_calls") or ()]
    assert called == [long[:40], long[:38] + "_2"]


def _double(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return 2 * x


@pytest.mark.parametrize("bound", [True, False], ids=["fork", "inquire"])
async def test_max_tool_calls_goes_to_the_agent_that_answers(bound: bool) -> None:
    from miniagents.ext.llm.offline_script import ToolRule

    rules = [ToolRule(r"(?P<x>\d+) doubled", "_double"), ToolRule(r"and (?P<x>\d+)", "_double")]
    offline = offline_agent.fork(tool_rules=rules, reply="Done.", token_delay=0.0)
    fallback = fallback_agent(offline)
    async with MiniAgents():
        if bound:
            reply = fallback.fork(max_tool_calls=1).inquire("2 doubled and 3", tools=[_double])
        else:
            reply = fallback.inquire("2 doubled and 3", tools=[_double], max_tool_calls=1)
        messages = await reply
    results = [m for m in messages if isinstance(m, LLMToolResultMessage)]
    assert [r.is_error for r in results] == [False, True]
    assert results[0].text == "4"
    assert "runs at most 1 of one turn (its max_tool_calls)" in results[1].text
