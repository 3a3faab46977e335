"""``make_llm_agent``: one options instance per agent and arguments, reused by its calls."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ParamSpec

import pytest

from miniagents import MiniAgents
from miniagents.ext.llm import LLMCall, LLMEvent, LLMOptions, make_llm_agent
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.offline import OfflineMessage
from miniagents.ext.llm.provider import Finish, call_option
from miniagents.messages import Message

P = ParamSpec("P")


@dataclass(frozen=True, kw_only=True)
class EchoOptions(LLMOptions):
    """The arguments of the test model.

    Attributes:
        temperature: A call option.
    """

    model: str | None = "echo"
    temperature: float | None = call_option(None)


@dataclass(frozen=True, kw_only=True)
class FreshOptions(LLMOptions):
    """Options with a field made fresh for each instance.

    Attributes:
        notes: A list of its own per instance.
    """

    model: str | None = "echo"
    notes: list[str] = field(default_factory=list)


class EchoProvider:
    """Replies with its call options; keeps every options instance it was given."""

    message_class = OfflineMessage

    def __init__(self) -> None:
        self.seen: list[LLMOptions] = []
        self.calls: list[LLMCall] = []

    async def reply(self, call: LLMCall, options: LLMOptions) -> AsyncIterator[LLMEvent]:
        self.seen.append(options)
        self.calls.append(call)
        yield repr(sorted(call.options.items()))
        yield Finish("stop")

    def translate(self, error: BaseException) -> BaseException:
        return error


async def test_calls_with_the_same_arguments_share_one_options_instance() -> None:
    provider = EchoProvider()
    agent = make_llm_agent(EchoOptions, provider, alias="ECHO", summary="Echo.")
    hot = agent.fork(temperature=0.5)
    async with MiniAgents():
        first = await hot.inquire("x")
        second = await hot.inquire("y")
        other = await agent.inquire("z", temperature=0.5)  # another agent: its own
    assert [str(first[0]), str(second[0]), str(other[0])] == ["[('temperature', 0.5)]"] * 3
    assert provider.seen[0] is provider.seen[1]
    assert provider.seen[2] is not provider.seen[0]
    assert provider.seen[2] == provider.seen[0]


async def test_an_argument_that_is_another_object_makes_other_options() -> None:
    provider = EchoProvider()
    agent = make_llm_agent(EchoOptions, provider, alias="ECHO", summary="Echo.")
    async with MiniAgents():
        for value in (1, 1.0, 1, True, 2.5):  # equal values that are other objects too
            await agent.inquire("x", temperature=value)
    given = [options.call_options()["temperature"] for options in provider.seen]
    assert given == [1, 1.0, 1, True, 2.5]
    assert [type(value) for value in given] == [
        int,
        float,
        int,
        bool,
        float,
    ]
    assert len({id(options) for options in provider.seen}) == 5  # each a change from the last


async def test_options_with_a_default_factory_are_made_for_each_call() -> None:
    provider = EchoProvider()
    agent = make_llm_agent(FreshOptions, provider, alias="FRESH", summary="Fresh.")
    async with MiniAgents():
        await agent.inquire("x")
        await agent.inquire("y")
    first, second = provider.seen
    assert isinstance(first, FreshOptions)
    assert isinstance(second, FreshOptions)
    assert first is not second
    assert first.notes is not second.notes


async def test_a_bound_output_type_is_refused_on_every_call() -> None:
    provider = EchoProvider()
    agent = make_llm_agent(EchoOptions, provider, alias="ECHO", summary="Echo.")
    bound = agent.fork(output_type=Message)
    async with MiniAgents():
        for _ in range(2):
            with pytest.raises(LLMConfigurationError, match="output_type=Message bound"):
                await bound.inquire("x")
    assert provider.seen == []


async def test_options_that_served_calls_pickle_as_their_fields() -> None:
    provider = EchoProvider()
    agent = make_llm_agent(EchoOptions, provider, alias="ECHO", summary="Echo.")
    async with MiniAgents():
        await agent.inquire("x", temperature=0.25)
    options = provider.seen[0]
    assert options.call_options() == {"temperature": 0.25}
    copied = pickle.loads(pickle.dumps(options))
    assert copied == options
    assert vars(copied) == {item: getattr(options, item) for item in vars(copied)}
    assert set(vars(copied)) == set(vars(EchoOptions()))  # what was worked out is left out


async def test_the_call_options_returned_are_the_callers_to_change() -> None:
    options = EchoOptions(temperature=0.5, extra_options=None)
    given = options.call_options()
    given["temperature"] = 9.0
    given["top_p"] = 0.1
    assert options.call_options() == {"temperature": 0.5}
    assert options.typed_call_options() == {"temperature": 0.5}


def test_a_call_made_for_a_request_is_the_dataclass_s_own() -> None:
    from miniagents.ext.llm.prompt import PromptText
    from miniagents.ext.llm.provider import OutputFormat, _new_call

    values = (
        "m",
        True,
        "Be brief.",
        (PromptText("user", "Hi"),),
        {"temperature": 0.5},
        (),
        OutputFormat("Weather", {"type": "object"}),
    )
    made, usual = _new_call(*values), LLMCall(*values)
    assert type(made) is LLMCall
    assert made == usual
    # every field set, each the same object (a field added must be set too); no __dict__
    slots = LLMCall.__slots__
    assert [getattr(made, name) for name in slots] == [getattr(usual, name) for name in slots]
    assert all(getattr(made, name) is getattr(usual, name) for name in slots)
    assert not hasattr(made, "__dict__")
    assert pickle.loads(pickle.dumps(made)) == usual


class OptionsChangingProvider(EchoProvider):
    """Adds to the options of each call it is given (a provider may: they are its own)."""

    async def reply(self, call: LLMCall, options: LLMOptions) -> AsyncIterator[LLMEvent]:
        self.calls.append(call)
        yield repr(sorted(call.options.items()))
        call.options["seen"] = True  # type: ignore[index]
        yield Finish("stop")


async def test_each_call_gets_call_options_of_its_own() -> None:
    provider = OptionsChangingProvider()
    agent = make_llm_agent(EchoOptions, provider, alias="ECHO", summary="Echo.")
    hot = agent.fork(temperature=0.5)
    async with MiniAgents():
        first = await hot.inquire("x")
        second = await hot.inquire("y")
    assert [str(first[0]), str(second[0])] == ["[('temperature', 0.5)]"] * 2
    assert provider.calls[0].options is not provider.calls[1].options


async def test_options_serving_calls_in_other_contexts_follow_their_settings() -> None:
    provider = EchoProvider()
    agent = make_llm_agent(EchoOptions, provider, alias="ECHO", summary="Echo.")
    async with MiniAgents():
        await agent.inquire("x")
    async with MiniAgents(stream_llm_tokens_by_default=False):
        await agent.inquire("y")
        async with MiniAgents(stream_llm_tokens_by_default=True):
            await agent.inquire("z")
        await agent.inquire("w")
    assert provider.seen[0] is provider.seen[3]  # one options instance, four settings read
    assert [call.stream for call in provider.calls] == [True, False, True, False]


async def test_an_agent_without_a_model_is_refused_on_every_call() -> None:
    provider = EchoProvider()
    agent = make_llm_agent(EchoOptions, provider, alias="ECHO", summary="Echo.").fork(model=None)
    async with MiniAgents():
        for _ in range(2):
            with pytest.raises(LLMConfigurationError, match="needs a model"):
                await agent.inquire("x")
    assert provider.seen == []


def test_the_options_every_llm_agent_takes_are_the_fields_of_llm_options() -> None:
    # AnyLLMAgent types inquire, bind and as_operator by them: they must not drift
    import dataclasses
    import typing

    from miniagents.ext.llm.llm_agent import LLMAgentOptions

    # (compared resolved: the fields' types are resolved at import, the TypedDict's as written)
    fields = {option.name: option.type for option in dataclasses.fields(LLMOptions)}
    assert not any(isinstance(kind, str) for kind in fields.values()), fields
    assert typing.get_type_hints(LLMAgentOptions) == fields
    assert not LLMAgentOptions.__required_keys__  # each may be left out


def test_the_fork_arguments_are_the_keywords_of_miniagent_fork() -> None:
    # every class of agents types its fork with them (TypedFork): they must not drift
    import dataclasses
    import inspect

    from miniagents import MiniAgent
    from miniagents.ext.llm import ForkArguments

    fields = {
        option.name: (option.type, option.default) for option in dataclasses.fields(ForkArguments)
    }
    keywords = {
        name: (parameter.annotation, parameter.default)
        for name, parameter in inspect.signature(MiniAgent.fork).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert fields == keywords


async def test_a_typed_fork_outside_type_checking_is_miniagent_fork() -> None:
    from miniagents.ext.llm import AnyLLMAgent, ForkArguments, LLMAgent, TypedFork

    @dataclass(frozen=True, kw_only=True)
    class EchoFork(EchoOptions, ForkArguments):
        """What the echo agents' fork takes."""

    class EchoAgent(LLMAgent[P, OfflineMessage], AnyLLMAgent[OfflineMessage]):
        __slots__ = ()
        fork = TypedFork(EchoFork)  # type: ignore[assignment]  # (narrower: see TypedFork)

    agent = EchoAgent.of(EchoOptions, EchoProvider(), alias="ECHO", summary="Echo.")
    assert isinstance(EchoAgent.fork, TypedFork)
    hot = agent.fork(alias="HOT", temperature=0.5)
    assert type(hot) is EchoAgent
    assert (hot.alias, hot.bound_arguments) == ("HOT", {"temperature": 0.5})
    async with MiniAgents():
        reply = await hot.inquire("x")
    assert str(reply[0]) == "[('temperature', 0.5)]"


def test_every_provider_agent_and_its_forks_are_any_llm_agents_of_its_own_class() -> None:
    from miniagents.ext.dbos import durable
    from miniagents.ext.llm.anthropic import AnthropicAgent, anthropic_agent
    from miniagents.ext.llm.bedrock import BedrockAgent, bedrock_agent
    from miniagents.ext.llm.compatible import CompatibleAgent, groq_agent, ollama_agent
    from miniagents.ext.llm.gemini import GeminiAgent, gemini_agent
    from miniagents.ext.llm.llm_agent import AnyLLMAgent, LLMAgent
    from miniagents.ext.llm.offline import OfflineAgent, offline_agent
    from miniagents.ext.llm.openai import OpenAIAgent, openai_agent
    from miniagents.testing import scripted_agent

    classes = [
        (openai_agent, OpenAIAgent),
        (anthropic_agent, AnthropicAgent),
        (gemini_agent, GeminiAgent),
        (bedrock_agent, BedrockAgent),
        (ollama_agent, CompatibleAgent),
        (groq_agent, CompatibleAgent),
        (offline_agent, OfflineAgent),
        (scripted_agent("Hi"), OfflineAgent),
    ]
    for agent, kind in classes:
        for made in (agent, agent.fork(model="m"), agent.bind(model="m")):
            assert type(made) is kind
            assert isinstance(made, AnyLLMAgent)
            assert isinstance(made, LLMAgent)
    fork = gemini_agent.fork(alias=f"GEMINI_{id(classes)}")
    assert type(durable(fork)) is GeminiAgent  # (its durable twin too)
    echo = make_llm_agent(EchoOptions, EchoProvider(), alias="ECHO", summary="Echo.")
    assert type(echo) is LLMAgent
    assert type(echo.fork(temperature=0.5)) is LLMAgent


class _RoleLessMessage(Message):
    """A reply class with no ``role`` field (not an ``AssistantMessage``)."""


class _RoleLessProvider(EchoProvider):
    message_class = _RoleLessMessage  # type: ignore[assignment]


class _SetUpFailed(Exception):
    """The error a patched set-up step raises."""


def _add(a: int) -> int:
    """Give the number back.

    Args:
        a: A number.
    """
    return a


_BOTH = (False, True)
_SET_UP_STEPS = [  # (module, name, with tools and a structured answer): the plan, the round
    *[("_call", step, False) for step in ("llm_settings", "_plan", "_role_of", "prompt_of")],
    *[("_call", step, True) for step in ("tool_set_of", "output_format_of", "Answer")],
    *[("_call", "_new_call", tools) for tools in _BOTH],
    *[
        ("_turn", step, tools)
        for step in ("TurnCount", "recorder_events", "added_usage")
        for tools in _BOTH
    ],
]


@pytest.mark.parametrize(("module", "step", "tools"), _SET_UP_STEPS)
async def test_an_error_in_a_calls_set_up_fails_its_reply_and_the_context_exits(
    module: str, step: str, tools: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    def failing(*args: object, **kwargs: object) -> object:
        raise _SetUpFailed(step)

    monkeypatch.setattr(importlib.import_module(f"miniagents.ext.llm.{module}"), step, failing)
    agent = make_llm_agent(EchoOptions, EchoProvider(), alias="ECHO", summary="Echo.")
    options: dict[str, Any] = {"tools": [_add], "output_type": FreshMessage} if tools else {}
    async with MiniAgents():  # (a message left open: the exit would raise DeadlockError)
        with pytest.raises(_SetUpFailed, match=step):
            await agent.inquire("x", **options)


@pytest.mark.parametrize("step", ["TurnCount", "recorder_events", "added_usage"])
async def test_a_turn_fails_the_messages_it_opened_whatever_ends_its_stream(
    step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the turn owns its messages: an error of its set-up or of its end fails the text
    # message it opened, whoever called its stream (here an agent that swallows the error)
    from miniagents import MessagePromise, miniagent
    from miniagents.ext.llm import _turn as turn_module
    from miniagents.ext.llm._metered import Metered
    from miniagents.ext.llm.errors import LLMTimeoutError

    def failing(*args: object, **kwargs: object) -> object:
        raise _SetUpFailed(step)

    monkeypatch.setattr(turn_module, step, failing)
    opened: list[MessagePromise] = []

    @miniagent
    async def caller(ctx: Any) -> None:
        turn = turn_module.Turn(ctx, OfflineMessage, {"role": "assistant", "model": "echo"})
        opened.append(turn.open_text().promise)
        options = EchoOptions()
        call = LLMCall(model="echo", stream=True, system=None, messages=())
        metered = Metered(EchoProvider(), "CALLER", options)
        with pytest.raises(_SetUpFailed):
            await turn.stream(None, metered, call, options, None, LLMTimeoutError, 100)

    async with MiniAgents():  # (a message left open: reading it would never end)
        with pytest.raises(_SetUpFailed, match=step):
            await caller.inquire()  # (its one message, failed)
        with pytest.raises(_SetUpFailed, match=step):
            await opened[0]


async def test_a_provider_whose_messages_have_no_role_fails_the_reply_it_starts() -> None:
    from miniagents.ext.llm.llm_agent import LLMAgent

    made = make_llm_agent(EchoOptions, EchoProvider(), alias="ECHO", summary="Echo.")
    function: Any = made.func  # (an LLM agent's function, of the role-less provider here)
    function = type(function)(EchoOptions, _RoleLessProvider(), "ECHO", "Echo.")
    agent: LLMAgent[..., Any] = LLMAgent(function, alias="ECHO")  # (make_llm_agent refuses it)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await agent.inquire("x")
    assert str(raised.value) == (
        "The agent ECHO's provider replies with _RoleLessMessage, which has no role field: an "
        "LLM agent's replies are AssistantMessage (from miniagents.ext.llm) or a subclass of "
        "it. Give the provider such a message_class, and make the agent with "
        "make_llm_agent(...), which checks it."
    )


class FreshMessage(Message):
    """A structured answer."""

    n: int = 0
