"""The mistakes a newcomer makes following the docs, each met with an error that names the fix.

Each test writes what a user new to MiniAgents writes (a slight variation of a docs page's
snippet, with the mistake) and checks that the library says what was wrong and what to do,
where it was written, instead of failing later or giving a silently wrong result.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.errors import (
    AgentDefinitionError,
    ChainDefinitionError,
    LLMConfigurationError,
    MessageArgumentError,
    MessageTypeError,
    StreamCancelledError,
    ToolDefinitionError,
)
from miniagents.ext.llm import (
    AssistantMessage,
    LLMCall,
    SystemMessage,
    UserMessage,
    structured,
)
from miniagents.ext.llm.offline import CallTool, create_offline_agent, offline_agent, one_per_call
from miniagents.ext.tools import ToolSet
from miniagents.promising.sentinels import AWAIT
from miniagents.utils import achain_loop, adialog_loop


def test_a_tool_whose_default_is_not_of_its_type_is_refused_where_it_is_defined() -> None:
    def add(a: int, b: int = "zero") -> int:  # type: ignore[assignment]
        """Add two numbers."""
        return a + b

    with pytest.raises(
        ToolDefinitionError, match=r"'b' of the tool add is typed int, but its default, 'zero'"
    ):
        ToolSet([add])


def test_a_tool_whose_default_is_none_for_a_plain_type_is_told_to_make_it_optional() -> None:
    def lookup(query: str, limit: int = None) -> str:  # type: ignore[assignment]  # noqa: RUF013
        """Look a query up."""
        return query

    with pytest.raises(ToolDefinitionError, match=r"declare it `limit: int \| None = None`"):
        ToolSet([lookup])


def test_a_tools_defaults_of_their_types_are_taken() -> None:
    def convert(amount: float = 1, unit: str = "C", limit: int | None = None) -> str:
        """Convert an amount."""
        return f"{amount} {unit} {limit}"

    (tool,) = ToolSet([convert])
    assert tool.parameters["properties"] == {
        "amount": {"default": 1, "type": "number"},
        "unit": {"default": "C", "type": "string"},
        "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
    }


@pytest.mark.parametrize("kind", [UserMessage, SystemMessage, AssistantMessage])
def test_a_role_message_given_content_and_no_text_is_refused(kind: type[Message]) -> None:
    # OpenAI's chat shape: the system prompt was dropped (a blank text) and the user's
    # text became the message's JSON, silently
    with pytest.raises(MessageTypeError, match=rf"write {kind.__name__}\(text=\.\.\.\)"):
        kind(content="Be brief.")


async def test_role_messages_with_text_reach_the_model_as_before() -> None:
    llm = create_offline_agent(token_delay=0)
    async with MiniAgents():
        reply = await llm.inquire(
            [SystemMessage(text="Be brief."), UserMessage(text="Hi", content="a note")]  # type: ignore[call-arg]
        )
    assert str(reply[0]).endswith("You said: Hi")


@miniagent
async def _count(ctx: InteractionContext, up_to: int) -> None:
    for number in range(up_to):
        ctx.reply(str(number))


async def test_an_agents_argument_given_as_its_input_is_told_to_go_by_name() -> None:
    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"go by name \(e\.g\. inquire\(up_to=10\)\)"):
            _count.inquire(10)  # type: ignore[arg-type, call-arg]


async def test_a_generator_function_given_uncalled_as_input_is_told_to_be_called() -> None:
    async def numbers() -> AsyncIterator[str]:
        yield "1"

    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"call it, inquire\(numbers\(\)\)"):
            _count.inquire(numbers, up_to=1)  # type: ignore[arg-type]
        assert len(await _count.inquire(numbers(), up_to=2)) == 2


async def test_an_async_reply_function_of_the_offline_model_is_told_to_be_a_plain_def() -> None:
    async def answer(call: LLMCall) -> str:
        return "Hi"

    llm = create_offline_agent(reply=answer, token_delay=0)  # type: ignore[arg-type]
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=r"answer, is async .* make it a plain def"):
            await llm.inquire("Bob")


class _Archive:
    def lookup(self, query: str) -> str:
        """Look a query up."""
        return query.upper()


def test_a_method_taken_from_its_class_as_a_tool_is_told_to_be_an_instances() -> None:
    with pytest.raises(ToolDefinitionError, match=r"tools=\[_Archive\(\.\.\.\)\.lookup\]"):
        ToolSet([_Archive.lookup])
    (tool,) = ToolSet([_Archive().lookup])
    assert tool.parameters["required"] == ["query"]


def test_a_tools_name_given_for_the_tool_is_told_to_give_the_function() -> None:
    with pytest.raises(ToolDefinitionError, match=r"not its name: tools=\[add\]"):
        ToolSet(["add"])  # type: ignore[list-item]


def test_a_call_of_an_async_tool_given_for_the_tool_is_told_to_drop_the_parentheses() -> None:
    async def search(query: str) -> str:
        """Search the archive."""
        return query

    called = search("x")
    with pytest.raises(ToolDefinitionError, match=r"not a call of it: without the parentheses"):
        ToolSet([called])  # type: ignore[list-item]
    assert inspect.getcoroutinestate(called) == inspect.CORO_CLOSED  # never to run, nor warn


def test_miniagent_on_a_method_in_its_class_is_told_how_to_make_an_instances_agent() -> None:
    with pytest.raises(AgentDefinitionError, match=r"`self\.answer = miniagent\(self\._answer\)`"):

        class _Bot:
            @miniagent  # type: ignore[arg-type]
            async def answer(self, ctx: InteractionContext) -> None:
                ctx.reply("hi")


async def test_an_instances_method_made_an_agent_replies() -> None:
    class _Bot:
        def __init__(self) -> None:
            self.answer = miniagent(self._answer)

        async def _answer(self, ctx: InteractionContext) -> None:
            ctx.reply("hi")

    async with MiniAgents():
        assert str(await _Bot().answer.inquire("x")) == "hi"


def test_a_tool_calls_arguments_given_as_json_text_are_refused_where_written() -> None:
    with pytest.raises(LLMConfigurationError, match=r"as a dict by name.*json\.loads"):
        CallTool("add", '{"a": 2, "b": 3}')  # type: ignore[arg-type]


async def test_one_per_call_given_one_list_is_told_to_take_each_reply_as_an_argument() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    script = one_per_call([CallTool("add", {"a": 2, "b": 3}), "5."])  # type: ignore[list-item]
    calculator = offline_agent.fork(tools=[add], reply=script, token_delay=0)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=r"one_per_call\(first, second, \.\.\.\)"):
            await calculator.inquire("What is 2 + 3?")


async def test_the_getting_started_page_warns_that_a_reply_is_no_str_as_it_behaves() -> None:
    # a silent wrong result the core keeps (a Message is a pydantic model): the page says so
    page = (Path(__file__).parent.parent / "docs" / "getting-started.md").read_text()
    assert '`replies[0] == "yes"` is always `False`' in " ".join(page.split())
    llm = create_offline_agent(reply="yes", token_delay=0)
    async with MiniAgents():
        replies = await llm.inquire("Well?")
    assert replies[0] != "yes"
    assert replies[0].text == "yes"
    assert str(replies[0]) == "yes"
    assert ("text", "yes") in list(replies[0])


def test_an_agent_function_without_miniagent_as_a_tool_is_told_to_decorate_it() -> None:
    async def helper(ctx: InteractionContext, query: str) -> None:
        """Help with a query."""
        ctx.reply(query)

    with pytest.raises(ToolDefinitionError, match=r"decorate it with @miniagent"):
        ToolSet([helper])
    (tool,) = ToolSet([miniagent(helper)])
    assert tool.parameters["required"] == ["query"]


async def test_a_reply_read_after_its_context_exited_with_an_error_is_told_why() -> None:
    # not "cancel() was called on it... asyncio.shield the wait": the exit cancelled it
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        ctx.reply("started")
        await never

    reply = None
    try:
        async with MiniAgents():
            reply = slow.inquire("Hi")
            raise KeyError("oops")
    except KeyError:
        pass
    assert reply is not None
    with pytest.raises(StreamCancelledError) as caught:
        await reply
    assert "context exited with an error (KeyError)" in str(caught.value)
    assert "Read the replies inside the async with MiniAgents(): block" in str(caught.value)
    assert "shield" not in str(caught.value)


async def test_a_reply_of_none_is_told_to_be_left_out_in_the_users_words() -> None:
    @miniagent
    async def quiet(ctx: InteractionContext) -> None:
        ctx.reply(None)  # type: ignore[arg-type]

    async with MiniAgents():
        with pytest.raises(MessageTypeError) as caught:
            await quiet.inquire("Hi")
    assert "Got None where messages were expected" in str(caught.value)
    assert "Leave the reply out" in str(caught.value)
    assert "NoneType" not in str(caught.value)


async def test_a_reply_of_another_type_names_it_with_its_article() -> None:
    @miniagent
    async def counting(ctx: InteractionContext) -> None:
        ctx.reply(5)  # type: ignore[arg-type]

    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"Got an int \(5\) where messages were"):
            await counting.inquire("Hi")


async def test_a_plain_function_given_to_adialog_loop_is_told_to_be_decorated() -> None:
    async def user(ctx: InteractionContext) -> None:
        ctx.reply("exit")

    llm = create_offline_agent(token_delay=0)
    async with MiniAgents():
        with pytest.raises(ChainDefinitionError) as caught:
            await adialog_loop(user, llm)  # type: ignore[arg-type]
        with pytest.raises(ChainDefinitionError, match=r"function user, not an agent: decorate"):
            await achain_loop([user, AWAIT, llm])  # type: ignore[list-item]
    assert str(caught.value).startswith("The user_agent of adialog_loop() is the function user")
    assert "decorate it with @miniagent" in str(caught.value)
    assert "or pass miniagent(user)" in str(caught.value)


async def test_a_plain_pydantic_model_as_output_type_is_told_to_derive_from_message() -> None:
    class Weather(BaseModel):
        city: str

    llm = create_offline_agent(token_delay=0)
    derive = r"Weather is a plain pydantic model: derive it from Message instead of BaseModel"
    with pytest.raises(LLMConfigurationError, match=derive):
        structured(llm, Weather)  # type: ignore[type-var]
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=r"`class Weather\(Message\): \.\.\.`"):
            await llm.inquire("Weather in Oslo?", output_type=Weather)  # type: ignore[arg-type]


def test_a_message_given_its_text_positionally_is_told_to_name_it() -> None:
    with pytest.raises(MessageArgumentError, match=r"write Message\(text='hi'\)") as caught:
        Message("hi")  # type: ignore[call-arg]
    assert isinstance(caught.value, TypeError)
    with pytest.raises(MessageArgumentError, match=r"keywords only, but got 2 positional"):
        Message("hi", "there")  # type: ignore[call-arg]
    assert Message(text="hi").text == "hi"


def test_the_streams_page_says_that_areply_without_await_replies_but_does_not_wait() -> None:
    page = (Path(__file__).parent.parent / "docs" / "streams.md").read_text()
    assert "Mind the `await`: `ctx.areply(...)` alone replies (the call itself replies)" in (
        " ".join(page.split())
    )
