"""More mistakes a newcomer makes following the docs, each met with an error that names the fix.

The pages walked here: structured output, chat history, the call cache, batch mode, evals,
the studio and extending; then the agents and streams (an agent's reply and context, its
forks). Each test writes what a user new to MiniAgents writes (a slight
variation of a page's snippet, with the mistake) and checks that the library says what was
wrong and what to do.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MiniAgents,
    miniagent,
    pipeline,
)
from miniagents.errors import (
    AgentArgumentError,
    AgentDefinitionError,
    FrozenInstanceError,
    LLMConfigurationError,
    MessageTypeError,
    NotAwaitableError,
    PipelineArgumentError,
    StreamArgumentError,
    StreamSourceError,
    SyncReadError,
    UnresolvedMessageError,
)
from miniagents.evals import Case, CaseRun, Contains, ExactMatch, aevaluate, evaluator
from miniagents.evals.errors import EvalArgumentError
from miniagents.ext.llm import (
    AssistantMessage,
    LLMCall,
    LLMOptions,
    SystemMessage,
    UserMessage,
    make_llm_agent,
)
from miniagents.ext.llm.cache import CallCache, MemoryCallStore
from miniagents.ext.llm.offline import OfflineAgent, offline_agent
from miniagents.ext.llm.provider import LLMEvent
from miniagents.ext.llm.structured import structured
from miniagents.ext.studio.app import studio_app
from miniagents.ext.studio.errors import StudioConfigurationError


async def test_an_evaluators_class_given_for_an_evaluator_is_told_to_make_one() -> None:
    agent = offline_agent.fork(token_delay=0, reply="Paris")
    evaluators: Any = [Contains]  # the class, not Contains()
    with pytest.raises(EvalArgumentError, match=r"Contains is an evaluator's class.*Contains\(\)"):
        await aevaluate(agent, [Case("Capital of France?", "Paris")], evaluators, progress=False)


@pytest.mark.parametrize("dataset", ["Capital of France?", Case("Capital of France?", "Paris")])
async def test_a_single_input_or_case_for_a_dataset_is_told_to_make_it_a_list(
    dataset: object,
) -> None:
    agent = offline_agent.fork(token_delay=0, reply="Paris")
    given: Any = dataset
    with pytest.raises(EvalArgumentError, match=r"not .*: pass e\.g\. \[Case\(input=\.\.\."):
        await aevaluate(agent, given, [Contains()], progress=False)


@pytest.mark.parametrize(("token", "shown"), [(None, "not None"), (b"x" * 20, "of type bytes")])
def test_a_studio_given_no_text_for_its_token_is_told_how_to_make_one(
    token: object, shown: str, tmp_path: Path
) -> None:
    given: Any = token
    with pytest.raises(
        StudioConfigurationError, match=rf"{shown}: .*token=secrets\.token_urlsafe\(\)"
    ):
        studio_app(tmp_path / "runs.sqlite", token=given)


@dataclass(frozen=True, kw_only=True)
class _EchoOptions(LLMOptions):
    """The options of an echo model."""


@dataclass(frozen=True, kw_only=True)
class _PlainOptions:
    """Options that do not extend LLMOptions."""

    model: str = "echo"


class _UndecoratedOptions(LLMOptions):
    """Options whose field is declared without ``@dataclass``."""

    loudness: int = 1


class _PlainReply(Message):
    """A reply class that is not an AssistantMessage."""


class _EchoProvider:
    """A provider of the extending page's shape: it echoes the last message."""

    message_class: type[AssistantMessage] = AssistantMessage

    async def reply(self, call: LLMCall, options: _EchoOptions) -> AsyncIterator[LLMEvent]:
        yield call.messages[-1].text or ""

    def translate(self, error: BaseException) -> BaseException:
        return error


class _PlainReplyProvider(_EchoProvider):
    message_class = _PlainReply  # type: ignore[assignment]


class _NoReplyProvider:
    message_class = AssistantMessage


@pytest.mark.parametrize(
    ("options", "provider", "said"),
    [
        (_PlainOptions, _EchoProvider(), r"_PlainOptions, does not extend LLMOptions: declare"),
        (_UndecoratedOptions, _EchoProvider(), r"declares loudness but is not a dataclass"),
        (_EchoOptions, _EchoProvider, r"is the class _EchoProvider.*_EchoProvider\(\)"),
        (_EchoOptions, _PlainReplyProvider(), r"_PlainReply'> for its message_class.*Assistant"),
        (_EchoOptions, _NoReplyProvider(), r"has no reply\(call, options\) method"),
    ],
)
def test_an_llm_agent_of_a_class_or_provider_not_as_the_page_says_is_refused_as_it_is_made(
    options: Any, provider: Any, said: str
) -> None:
    with pytest.raises(LLMConfigurationError, match=said):
        make_llm_agent(options, provider, alias="ECHO", summary="Echoes.")


async def test_an_llm_agent_made_as_the_page_says_answers() -> None:
    echo = make_llm_agent(_EchoOptions, _EchoProvider(), alias="ECHO", summary="Echoes.")
    async with MiniAgents():
        assert [str(message) for message in await echo.inquire("hi", model="echo")] == ["hi"]


async def test_a_cache_replays_an_offline_reply_to_another_script_unless_namespaced() -> None:
    """As the call cache's page says: the offline model's script is not in the request."""
    store = MemoryCallStore()
    first = offline_agent.fork(reply="first", token_delay=0)
    second = offline_agent.fork(reply="second", token_delay=0)
    async with MiniAgents():
        with CallCache(store).active():
            assert str((await first.inquire("Q"))[0]) == "first"
            assert str((await second.inquire("Q"))[0]) == "first"
        with CallCache(store, namespace="second").active():
            assert str((await second.inquire("Q"))[0]) == "second"


def test_an_answer_class_with_only_a_text_field_is_told_to_name_it_otherwise() -> None:
    class Answer(Message):
        text: str  # the structured output page: the answer's text is its JSON

    with pytest.raises(LLMConfigurationError, match=r"its own field 'text'.*`answer: str`"):
        structured(offline_agent, Answer)


class _City(Message):
    """A structured answer."""

    city: str


async def test_a_structured_answer_is_checked_by_its_fields_not_its_json_text() -> None:
    """As the evals page says: the model's JSON and the expected message's differ in spaces."""
    agent = structured(offline_agent.fork(reply='{"city": "Paris"}', token_delay=0), _City)

    @evaluator
    def same_city(run: CaseRun[str, _City]) -> bool:
        answer, expected = run.replies[-1], run.expected
        return isinstance(answer, _City) and expected is not None and answer.city == expected.city

    report = await aevaluate(
        agent, [Case("Where?", _City(city="Paris"))], [ExactMatch(), same_city], progress=False
    )
    [result] = report.results
    assert {name: score.passed for name, score in result.scores.items()} == {
        "exact": False,
        "same_city": True,
    }


async def test_a_structured_agent_given_its_own_type_again_is_told_to_leave_it_out() -> None:
    agent = structured(offline_agent.fork(reply='{"city": "Paris"}', token_delay=0), _City)
    given: Any = _City
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=r"leave it out: the answers are _Citys"):
            await agent.inquire("Where?", output_type=given)


# -- agents and streams ------------------------------------------------------------------


@miniagent
async def _echo(ctx: InteractionContext) -> None:
    ctx.reply(f"you said: {await ctx.message_promises}")


async def test_len_of_a_reply_is_told_to_count_the_awaited_messages() -> None:
    async with MiniAgents():
        reply: Any = _echo.inquire("hi")
        with pytest.raises(SyncReadError, match=r"has no len\(\).*`len\(await sequence\)`"):
            len(reply)
        assert reply  # (still true, as any object: bool() does not call its len())
        assert len(await reply) == 1


async def test_an_index_of_a_reply_is_told_to_await_it_or_iterate_it() -> None:
    async with MiniAgents():
        reply: Any = _echo.inquire("hi")
        with pytest.raises(SyncReadError, match=r"`async for message in sequence:`.*`messages = "):
            await reply[0]
        assert str((await reply)[0]) == "you said: hi"


async def test_awaiting_ctx_reply_is_told_it_returns_nothing_and_to_use_areply() -> None:
    @miniagent
    async def awaiting(ctx: InteractionContext) -> None:
        await ctx.reply("hi")  # type: ignore[func-returns-value,misc]

    async with MiniAgents():
        with pytest.raises(NotAwaitableError, match=r"returns None.*`await ctx\.areply\(\.\.\.\)`"):
            await awaiting.inquire()


async def test_returning_ctx_reply_still_returns_nothing() -> None:
    @miniagent
    async def returning(ctx: InteractionContext) -> None:
        return ctx.reply("hi")

    def plain(ctx: InteractionContext) -> Any:
        return ctx.reply("hi")

    async with MiniAgents():
        assert str(await returning.inquire()) == "hi"
        with pytest.raises(
            AgentDefinitionError, match=r"must return an awaitable .* returned NoneType:"
        ):
            await miniagent(plain).inquire()


def test_a_fork_given_a_positional_name_is_told_to_name_it_alias() -> None:
    @miniagent
    async def greeter(ctx: InteractionContext, name: str = "you") -> None:
        ctx.reply(f"hi {name}")

    with pytest.raises(
        AgentArgumentError,
        match=r"fork\(\) got 'bob' positionally.*`agent\.fork\(alias='bob'\)`.*\(name=\.\.\.\)",
    ):
        greeter.fork("bob")  # type: ignore[arg-type]
    with pytest.raises(AgentArgumentError, match=r"^OfflineAgent\.fork\(\) got 'bob'"):
        offline_agent.fork("bob")  # type: ignore[call-arg]
    assert greeter.fork(alias="BOB", name="bob").alias == "BOB"


async def test_awaiting_an_agent_call_is_told_to_await_its_reply_sequence() -> None:
    async with MiniAgents():
        call: Any = _echo.initiate_inquiry().send_message("hi")
        with pytest.raises(NotAwaitableError, match=r"`await call\.reply_sequence\(\)`"):
            await call
        assert str(await call.reply_sequence()) == "you said: hi"


async def test_a_field_read_from_the_input_stream_is_told_to_await_it_first() -> None:
    @miniagent
    async def reads_text(ctx: InteractionContext) -> None:
        ctx.reply(ctx.messages.text)  # type: ignore[attr-defined]

    async with MiniAgents():
        with pytest.raises(UnresolvedMessageError, match=r"`messages\[0\]\.text`") as raised:
            await reads_text.inquire("hi")
    assert (raised.value.name, isinstance(raised.value, AttributeError)) == ("text", True)
    assert not hasattr(MessageSequencePromise(["hi"]), "text")  # (an AttributeError still)


async def test_a_generator_function_replied_uncalled_is_told_to_call_it() -> None:
    async def numbers() -> AsyncIterator[str]:
        yield "1"

    @miniagent
    async def counting(ctx: InteractionContext) -> None:
        ctx.reply(numbers)  # type: ignore[arg-type]

    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"call it, ctx\.reply\(numbers\(\)\)"):
            await counting.inquire()


async def test_an_areply_whose_await_was_forgotten_still_replies() -> None:
    @miniagent
    async def forgetful(ctx: InteractionContext) -> None:
        with warnings.catch_warnings():  # (Python's "never awaited", for the wait alone)
            warnings.simplefilter("ignore", RuntimeWarning)
            ctx.areply("first")  # type: ignore[unused-coroutine]
        await ctx.areply("second")

    async with MiniAgents():
        assert [str(message) for message in await forgetful.inquire()] == ["first", "second"]


def test_content_given_to_a_plain_message_is_told_to_name_it_text() -> None:
    with pytest.raises(MessageTypeError, match=r"^Given content= and no text=, a Message .*"):
        Message(content="hi")
    with pytest.raises(MessageTypeError, match=r"write _Note\(text=\.\.\.\) instead\.$"):
        _Note(content="hi", kind="memo")  # type: ignore[call-arg]
    # (content beside text is metadata, as any extra field; a declared content is a field)
    assert Message(text="hi", content="a note").model_dump() == {"text": "hi", "content": "a note"}
    assert _Quoted(content="hi").content == "hi"


class _Note(Message):
    """A message class of a user's, with a field of its own."""

    kind: str


class _Quoted(Message):
    """A message class that declares a ``content`` field of its own."""

    content: str


def test_what_is_not_a_message_is_named_with_its_article() -> None:
    class Weather(BaseModel):
        text: int  # (a Message's text is a str)

    with pytest.raises(MessageTypeError, match=r"^Got a bytes where messages were expected; "):
        MessageSequencePromise([b"hi"])  # type: ignore[list-item]
    with pytest.raises(MessageTypeError, match=r"^The message given as a Weather \(a pydantic"):
        MessageSequencePromise([Weather(text=3)])
    with pytest.raises(MessageTypeError, match=r"^The message given as a dict has a field"):
        MessageSequencePromise([{"text": 3}])


def test_changing_a_message_in_place_names_model_copy() -> None:
    # (was: pydantic's "Instance is frozen [type=frozen_instance, ...]", naming no fix)
    message = Message(text="a", role="user")
    with pytest.raises(FrozenInstanceError) as raised:
        message.text = "b"  # type: ignore[misc]
    assert str(raised.value) == (
        "A Message is immutable: it cannot set 'text'. Make a changed copy instead, "
        "message.model_copy(update={'text': ...}) (a new Message with that field changed), "
        "or build a new Message(...)."
    )
    with pytest.raises(FrozenInstanceError, match=r"_City is immutable: it cannot delete 'city'"):
        del _City(text="x", city="Oslo").city
    with pytest.raises(FrozenInstanceError, match=re.escape("model_copy(update={'role': ...})")):
        message.role = "assistant"  # type: ignore[attr-defined]
    assert message.model_copy(update={"text": "b"}) == Message(text="b", role="user")
    assert (message.text, message.model_dump()) == ("a", {"text": "a", "role": "user"})


async def test_a_message_given_as_a_token_source_is_refused_where_it_is_given() -> None:
    # (an `__aiter__` refusing `async for token in message` made a Message an AsyncIterable:
    # as a stream's source it was taken, and failed only when read, with a misleading text)
    async with MiniAgents():
        with pytest.raises(StreamSourceError, match="needs an async iterable"):
            MessagePromise(Message(text="a"))  # type: ignore[call-overload]


def test_a_class_of_agents_given_to_pipeline_is_told_first() -> None:
    # (was: "pipeline() needs at least one agent ...; got <class ...>." and the class after)
    with pytest.raises(PipelineArgumentError) as raised:
        pipeline(OfflineAgent, ["x"])  # type: ignore[arg-type]
    assert str(raised.value).startswith(
        "pipeline() needs an agent, but OfflineAgent is a class of agents, not an agent: pass "
        "an agent object"
    )


def test_structured_tells_the_refusal_of_an_agent_that_takes_output_type() -> None:
    @miniagent
    async def answering(ctx: InteractionContext, output_type: type[Message] | None = None) -> None:
        ctx.reply("{}")

    # (was: "answering is not one (it takes no output_type)": it takes output_type, but
    # not output_retries; then "... in fork()", which the user did not call)
    with pytest.raises(AgentArgumentError, match=r"^structured\(\.\.\., output_retries=") as info:
        structured(answering, _City, output_retries=2)
    assert "fork()" not in str(info.value)
    structured(answering, _City)  # (an agent taking output_type alone is one)


@pytest.mark.parametrize("kind", [UserMessage, SystemMessage, AssistantMessage])
def test_a_role_message_read_with_content_and_no_text_is_refused(kind: type[Message]) -> None:
    # an OpenAI-shaped turn read from JSON: it would be a message without text
    with pytest.raises(MessageTypeError, match=rf"write {kind.__name__}\(text=\.\.\.\)"):
        kind.model_validate({"role": "user", "content": "Be brief."})
    assert kind.model_validate({"text": "Hi", "content": "a note"}).text == "Hi"


def test_miniagent_given_the_function_and_its_limits_keeps_them() -> None:
    async def answer(ctx: InteractionContext) -> None:
        ctx.reply("hi")

    # (was: max_concurrency and start_asap dropped, silently, when the function was given)
    agent = miniagent(answer, max_concurrency=2, start_asap=False)  # type: ignore[call-overload]
    limit = agent.concurrency_limit
    assert (agent.start_asap, limit and limit.limit) == (False, 2)


def test_messages_given_one_by_one_to_a_sequence_are_told_to_make_a_list() -> None:
    given: Any = MessageSequencePromise  # (was Python's count of positional arguments)
    with pytest.raises(StreamArgumentError, match=r"put them in a list, e\.g\. .*\['a', 'b'\]"):
        given("a", "b")


def test_content_without_text_is_refused_in_one_sentence_made_or_read() -> None:
    with pytest.raises(MessageTypeError) as made:
        Message(content="hi")
    with pytest.raises(MessageTypeError) as read:
        UserMessage.model_validate({"content": "hi"})
    shared = "content would only be a metadata field, which neither str() of the message"
    assert shared in str(made.value)
    assert shared in str(read.value)


async def test_text_looked_for_with_in_in_a_reply_is_told_to_look_in_its_text() -> None:
    async with MiniAgents():
        messages = await _echo.inquire("yes")
    message = messages[0]
    # (was: False, silently: `in` went through the fields' (name, value) pairs, or compared
    # the text with each message)
    with pytest.raises(SyncReadError, match=r"never in its text: .*`\.\.\. in message\.text`"):
        assert "yes" in message  # type: ignore[operator]  # (mypy refuses it too)
    with pytest.raises(SyncReadError, match=r"`\.\.\. in str\(messages\)`"):
        assert "yes" in messages
    assert message in messages
    assert "yes" in str(messages)
    assert "yes" in (message.text or "")
