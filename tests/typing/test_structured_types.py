"""Static typing tests for structured output: the answer and its partials, typed, no cast.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), and :func:`test_structured_types_pass_mypy` runs it on this file.
``assert_type`` pins each inferred type; each line that must be rejected carries a precise
``# type: ignore[code]``.

``structured(agent, Weather)`` is a ``StructuredAgent[type of agent, Weather]`` (a
``MiniAgent[..., Weather]`` whose methods take the agent's arguments, kept); its replies are
``Weather`` s, a list of them made from agents of two providers is a list of
``StructuredAgent[AnyLLMAgent[AssistantMessage], Weather]`` (it was ``list[object]``), and
:func:`partial_outputs` of one of them is a ``PartialOutputs[Weather]``: an async iterable,
an ``Observable[Weather]`` and an awaitable of ``Weather``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_type

from reactivex import Observable

from miniagents import Message, MessagePromise, MessageSequencePromise, MessageType, MiniAgent
from miniagents.ext.llm import (
    AnyLLMAgent,
    AssistantMessage,
    LLMMessage,
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    StructuredAgent,
    TokenUsage,
)
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.from_env import FromEnvAgent, llm_agent_from_env
from miniagents.ext.llm.offline import OfflineMessage, offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.structured import (
    PartialOutputs,
    partial_outputs,
    structured,
)
from miniagents.miniagents.agent import AgentCall
from tests.fakes.typecheck import assert_passes_mypy


class Weather(Message):
    city: str
    celsius: float


async def check_the_answer_is_typed() -> None:
    weather_agent = structured(openai_agent.fork(model="gpt-4o-mini"), Weather)
    assert_type(weather_agent.inquire("Paris?"), MessageSequencePromise[Weather])
    weather = (await weather_agent.inquire("Paris?"))[0]
    assert_type(weather, Weather)
    assert_type(weather.celsius, float)
    assert_type(weather.city, str)
    forked = weather_agent.fork(max_concurrency=2)
    assert_type((await forked.inquire("Oslo?"))[0], Weather)
    other = structured(anthropic_agent, Weather, output_retries=2)
    assert_type((await other.inquire("Rome?", model="claude-haiku-4-5"))[0].celsius, float)


class Forecast(LLMMessage):
    city: str


async def check_an_llm_message_output_type_has_its_metadata_typed() -> None:
    # extending LLMMessage types the reply's metadata: no getattr (the model writes `city`)
    forecast = (await structured(offline_agent, Forecast).inquire("Oslo?"))[0]
    assert_type(forecast.city, str)
    assert_type(forecast.model, str | None)
    assert_type(forecast.usage, TokenUsage | None)
    assert_type(forecast.finish_reason, str | None)


async def check_a_bound_output_type_is_not_the_way() -> None:
    # fork(output_type=...) would keep the provider's reply type (it is refused at run time);
    # structured() is the typed way, on a forked agent too
    forked = offline_agent.fork(output_type=Weather)
    assert_type(
        (await forked.inquire("Paris?"))[0],
        OfflineMessage | LLMToolCallMessage | LLMToolApprovalRequest | LLMToolResultMessage,
    )
    weather_agent = structured(offline_agent.fork(token_delay=0.0), Weather)
    assert_type((await weather_agent.inquire("Paris?"))[0], Weather)
    assert_type((await weather_agent.fork(model="m").inquire("Oslo?"))[0].celsius, float)


async def check_the_agents_arguments_are_kept() -> None:
    weather_agent = structured(offline_agent, Weather)
    weather_agent.inquire("Paris?", token_delay=0.0, model="offline")
    weather_agent.inquire("Paris?", token_dealy=0.0)  # type: ignore[call-arg]
    weather_agent.inquire("Paris?", token_delay="fast")  # type: ignore[arg-type]


async def check_agents_of_two_providers_join_to_a_typed_list() -> None:
    # each was a MiniAgent[P, Weather] of its provider's P, and mypy joins two instances of a
    # class whose ParamSpec arguments differ to object: the list was a list[object]
    agents = [structured(openai_agent, Weather), structured(anthropic_agent.fork(), Weather)]
    assert_type(agents, list[StructuredAgent[AnyLLMAgent[AssistantMessage], Weather]])
    for agent in agents:
        replies = agent.inquire("Paris?", system="Be brief.", model="m", output_retries=2)
        assert_type(replies, MessageSequencePromise[Weather])
        assert_type((await replies)[0].celsius, float)
        assert_type(
            agent.bind(stream=False), StructuredAgent[AnyLLMAgent[AssistantMessage], Weather]
        )
        assert_type(agent.initiate_inquiry(budget=None), AgentCall[Weather])
        assert_type(
            agent.as_operator(max_tool_rounds=2),
            Callable[[Observable[MessageType]], Observable[Weather]],
        )
        as_mini: MiniAgent[..., Weather] = agent
        print(as_mini)
        # the arguments every LLM agent takes, no provider's own
        agent.inquire("Paris?", seed=1)  # type: ignore[call-arg]
        agent.inquire("Paris?", systen="x")  # type: ignore[call-arg]
        agent.inquire("Paris?", system=1)  # type: ignore[arg-type]
        agent.bind(max_tokens=10)  # type: ignore[call-arg]
        agent.initiate_inquiry(stream="yes")  # type: ignore[arg-type]
        agent.as_operator(top_k=1)  # type: ignore[call-arg]
    a_tuple = (structured(offline_agent, Weather), structured(openai_agent, Weather))
    for agent in a_tuple:
        assert_type((await agent.inquire("Oslo?"))[0], Weather)


async def check_one_agent_keeps_its_provider_s_arguments() -> None:
    weather_agent = structured(openai_agent, Weather)
    weather_agent.inquire("Paris?", seed=1, temperature=0.0)
    bound = weather_agent.bind(seed=1)
    bound.inquire("Paris?", seed=2)
    bound.bind(seed="one")  # type: ignore[arg-type]
    # bind keeps the agent asked in the type: bound agents of two providers still join
    both = [bound, structured(anthropic_agent, Weather).bind(top_k=1)]
    assert_type(both, list[StructuredAgent[AnyLLMAgent[AssistantMessage], Weather]])
    weather_agent.initiate_inquiry(top_p=0.5)
    weather_agent.as_operator(reasoning_effort="low")
    weather_agent.initiate_inquiry(top_k=1)  # type: ignore[call-arg]
    weather_agent.as_operator(seed="one")  # type: ignore[arg-type]
    as_mini: MiniAgent[..., Weather] = weather_agent
    print(as_mini)


async def check_fork_takes_the_agents_fork_arguments() -> None:
    # fork was MiniAgent's, **kwargs: object: a misspelled or mistyped argument passed mypy
    # and failed at run time; it takes what the agent's own fork takes now, and gives the
    # same type
    weather_agent = structured(openai_agent.fork(model="gpt-4o-mini"), Weather)
    forked = weather_agent.fork(temperature=0.2, seed=1, alias="WEATHER", max_concurrency=2)
    weather_agent = forked  # (of the same type)
    assert_type((await forked.fork(system="x").inquire("Oslo?"))[0], Weather)
    weather_agent.fork(temprature=0.2)  # type: ignore[call-arg]
    weather_agent.fork(seed="one")  # type: ignore[arg-type]
    weather_agent.fork(alias=1)  # type: ignore[arg-type]
    weather_agent.fork(top_k=1)  # type: ignore[call-arg]  # (Anthropic's, not OpenAI's)
    # agents of two providers joined: the arguments every LLM agent's fork takes
    for agent in [structured(openai_agent, Weather), structured(anthropic_agent, Weather)]:
        joined = agent.fork(system="Be brief.", model="m", description="Weather.")
        assert_type(joined, StructuredAgent[AnyLLMAgent[AssistantMessage], Weather])
        agent.fork(seed=1)  # type: ignore[call-arg]
    # the environment's agent: its options, not the model it picks
    from_env = structured(llm_agent_from_env(), Weather)
    assert_type(from_env.fork(max_tokens=10), StructuredAgent[FromEnvAgent, Weather])
    from_env.fork(model="m")  # type: ignore[call-arg]


async def check_wrong_field_types_fail() -> None:
    weather = (await structured(offline_agent, Weather).inquire("Paris?"))[0]
    name: str = weather.celsius  # type: ignore[assignment]
    weather.celsius.upper()  # type: ignore[attr-defined]
    print(weather.humidity)  # type: ignore[attr-defined]
    print(name)
    Weather(text="{}", city="Paris", celsius="hot")  # type: ignore[arg-type]
    structured(offline_agent, int)  # type: ignore[type-var]


async def check_partials_are_typed() -> None:
    reply = structured(offline_agent, Weather).inquire("Paris?")
    async for promise in reply:
        assert_type(promise, MessagePromise[Weather])
        partials = partial_outputs(promise)
        assert_type(partials, PartialOutputs[Weather])
        async for partial in partials:
            assert_type(partial, Weather)
            assert_type(partial.celsius, float)
        assert_type(partials.as_observable(), Observable[Weather])
        assert_type(await partials, Weather)


async def check_partials_of_an_untyped_promise_take_the_type() -> None:
    reply = offline_agent.inquire("Paris?", output_type=Weather)
    async for promise in reply:
        assert_type(partial_outputs(promise, Weather), PartialOutputs[Weather])
        not_typed = partial_outputs(promise)
        assert_type(
            not_typed,
            PartialOutputs[
                OfflineMessage | LLMToolCallMessage | LLMToolApprovalRequest | LLMToolResultMessage
            ],
        )
        print((await not_typed).celsius)  # type: ignore[union-attr]


async def check_a_structured_fork_with_an_output_type_types_as_the_same_agent() -> None:
    # mypy cannot refuse it: the arguments are the agent's fork's, and it takes an output_type
    # (an overload typing it NoReturn turned every other mistake into a `call-overload` error
    # listing the whole signature); it raises at the fork now, not at the fork's first call
    weather_agent = structured(openai_agent, Weather)
    weather_agent = weather_agent.fork(output_type=Forecast)
    assert_type((await weather_agent.inquire("Oslo?"))[0], Weather)


# --- The test that pytest runs --------------------------------------------------------


def test_structured_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
