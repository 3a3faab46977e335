"""Structured output with the offline model, the schema it is asked for, and misuse.

No network: the offline model answers with its script (a JSON text) or, unscripted, with a
sample of the schema.
"""

from __future__ import annotations

import datetime
import json
import uuid
from ipaddress import IPv4Address
from typing import Annotated, Literal

import pytest
from pydantic import AnyUrl, Field

from miniagents import Message, MessagePromise, MiniAgents
from miniagents.errors import AgentArgumentError
from miniagents.ext.llm import LLMCall, LLMMessage, LLMToolCallMessage, LLMToolResultMessage
from miniagents.ext.llm.errors import LLMConfigurationError, LLMOutputValidationError
from miniagents.ext.llm.offline import (
    CallTool,
    RepliesByTurn,
    offline_agent,
    one_per_call,
)
from miniagents.ext.llm.structured import partial_outputs, structured


class Weather(Message):
    city: str
    celsius: float


class Trip(Message):
    """A trip: where, how, and the weather there."""

    destination: str
    transport: Literal["train", "plane"]
    nights: int = Field(ge=1)
    weather: Weather | None = None
    tags: tuple[str, ...] = ()


def fast(**options: object) -> dict[str, object]:
    return {"token_delay": 0, **options}


async def test_unscripted_the_offline_model_answers_a_sample_of_the_schema() -> None:
    async with MiniAgents():
        (trip,) = await structured(offline_agent.fork(token_delay=0), Trip).inquire("Trip?")
    assert isinstance(trip, Trip)
    assert trip.destination == "offline"
    assert trip.transport == "train"  # the first choice
    assert trip.weather == Weather(city="offline", celsius=0.0)
    assert trip.nights == 1  # the least the schema allows
    assert json.loads(str(trip))["tags"] == []


class Event(Message):
    day: datetime.date
    starts: datetime.datetime
    at: datetime.time
    lasts: datetime.timedelta
    page: AnyUrl
    id: uuid.UUID
    host: IPv4Address


class Score(Message):
    probability: float = Field(gt=0, lt=1)
    tenths: float = Field(ge=0.5, le=0.9, multiple_of=0.1)
    below: float = Field(lt=-2)
    stars: int = Field(gt=5, le=10)
    even: int = Field(gt=5, multiple_of=4)
    debt: int = Field(lt=0)


class Tagged(Message):
    tags: tuple[str, ...] = Field(min_length=1)
    code: str = Field(min_length=10, max_length=12)
    initials: str = Field(max_length=2)
    pair: tuple[int, str]
    scores: tuple[Annotated[int, Field(ge=3)], ...] = Field(min_length=2, max_length=3)


@pytest.mark.parametrize("output_type", [Event, Score, Tagged])
async def test_the_sample_of_a_schema_follows_its_formats_bounds_and_lengths(
    output_type: type[Message],
) -> None:
    async with MiniAgents():
        (answer,) = await structured(offline_agent.fork(token_delay=0), output_type).inquire("?")
    assert isinstance(answer, output_type)  # it validated at the first try
    if isinstance(answer, Score):
        assert json.loads(str(answer)) == {
            "probability": 0.5,  # strictly inside both bounds: halfway
            "tenths": 0.5,
            "below": -3.0,
            "stars": 6,
            "even": 8,
            "debt": -1,
        }
    elif isinstance(answer, Tagged):
        assert (answer.tags, answer.code, answer.initials) == (("offline",), "offlineeee", "of")


async def test_a_scripted_json_answer_streams_partials_then_the_answer() -> None:
    script = '{"city": "Paris", "celsius": 21.5}'
    agent = structured(offline_agent.fork(token_delay=0, reply=script), Weather)
    async with MiniAgents():
        reply = agent.inquire("Weather in Paris?")
        promise = await anext(aiter(reply))
        partials = [partial async for partial in partial_outputs(promise, Weather)]
        weather = await promise
    assert [(p.city, p.celsius) for p in partials] == [("Paris", 21.5)]
    assert isinstance(weather, Weather)
    assert str(weather) == script


async def test_a_scripted_invalid_answer_is_retried_then_fails() -> None:
    bad = '{"city": 5}'
    good = '{"city": "Rome", "celsius": 30}'
    async with MiniAgents():
        retried = structured(
            offline_agent.fork(token_delay=0, reply=one_per_call(bad, good)), Weather
        )
        (weather,) = await retried.inquire("Weather?")
        assert isinstance(weather, Weather)
        assert weather.city == "Rome"
        failing = structured(
            offline_agent.fork(token_delay=0, reply=bad), Weather, output_retries=1
        )
        with pytest.raises(LLMOutputValidationError) as raised:
            await failing.inquire("Weather?")
    assert {error["loc"] for error in raised.value.errors} == {("city",), ("celsius",)}


@pytest.mark.parametrize("where", ["fork", "structured"])
async def test_output_retries_are_taken_from_the_agent_or_from_structured(where: str) -> None:
    bad = '{"city": 5}'
    answers = one_per_call(bad, bad, bad, '{"city": "Rome", "celsius": 30}')
    if where == "fork":
        retried = structured(
            offline_agent.fork(token_delay=0, reply=answers, output_retries=3), Weather
        )
    else:
        retried = structured(
            offline_agent.fork(token_delay=0, reply=answers), Weather, output_retries=3
        )
    async with MiniAgents():
        (weather,) = await retried.inquire("Weather?")  # the fourth answer: three retries
    assert isinstance(weather, Weather)
    assert weather.city == "Rome"


async def test_output_retries_given_to_structured_win_over_the_agent_s() -> None:
    agent = offline_agent.fork(token_delay=0, reply='{"city": 5}', output_retries=3)
    async with MiniAgents():
        with pytest.raises(LLMOutputValidationError, match="answered 1 time"):
            await structured(agent, Weather, output_retries=0).inquire("Weather?")


async def test_the_offline_model_sees_the_output_format_and_the_retry_prompt() -> None:
    calls = []

    def reply(call: object) -> str:
        calls.append(call)
        return '{"city": "Oslo"}' if len(calls) == 1 else '{"city": "Oslo", "celsius": -3}'

    agent = structured(offline_agent.fork(token_delay=0, reply=reply), Weather)
    async with MiniAgents():
        (weather,) = await agent.inquire("Weather in Oslo?")
    assert isinstance(weather, Weather)
    assert weather.celsius == -3
    first, second = calls
    assert first.output_format.name == "Weather"  # type: ignore[attr-defined]
    assert first.output_format.strict  # type: ignore[attr-defined]
    said, feedback = second.messages[-2:]  # type: ignore[attr-defined]
    assert (said.role, said.text) == ("assistant", '{"city": "Oslo"}')
    assert feedback.role == "user"
    assert "celsius: Field required" in feedback.text


class _Forecast(LLMMessage):
    """A forecast whose reply metadata (``model``, ``usage``, ...) is typed."""

    city: str
    days: tuple[Weather, ...] = ()


async def test_an_llm_message_output_type_is_not_asked_for_its_metadata_but_gets_it() -> None:
    # subclassing LLMMessage types the metadata for mypy; the model writes only the fields
    calls: list[LLMCall] = []

    def reply(call: LLMCall) -> str:
        calls.append(call)
        return '{"city": "Oslo", "days": [{"city": "Oslo", "celsius": -3}]}'

    agent = structured(offline_agent.fork(token_delay=0, reply=reply, alias="SKY"), _Forecast)
    async with MiniAgents():
        (forecast,) = await agent.inquire("Forecast for Oslo?")
    assert calls[0].output_format is not None
    schema = json.loads(json.dumps(calls[0].output_format.schema))
    assert list(schema["properties"]) == ["city", "days"]
    assert schema["required"] == ["city", "days"]
    assert list(schema["$defs"]) == ["Weather"]  # not TokenUsage: usage is no field to write
    metadata = (forecast.role, forecast.model, forecast.agent_alias, forecast.finish_reason)
    assert metadata == ("assistant", "offline", "SKY", "stop")
    assert forecast.usage is not None
    assert forecast.usage.output_tokens
    assert forecast.days == (Weather(city="Oslo", celsius=-3),)
    async with MiniAgents():  # unscripted: a sample of the schema, without the metadata
        (sample,) = await structured(offline_agent.fork(token_delay=0), _Forecast).inquire("?")
    assert json.loads(str(sample)) == {"city": "offline", "days": []}
    assert sample.model == "offline"


async def test_partials_of_an_llm_message_output_type_stream() -> None:
    answer = '{"city": "Oslo", "days": []}'
    agent = structured(offline_agent.fork(token_delay=0, reply=answer), _Forecast)
    async with MiniAgents():
        async for promise in agent.inquire("Forecast for Oslo?"):
            partials = [partial.city async for partial in partial_outputs(promise)]
            assert partials[-1] == "Oslo"
            assert (await promise).model == "offline"


async def test_with_tools_structured_replies_the_answer_and_fork_the_whole_reply() -> None:
    def temperature(city: str) -> float:
        """The temperature in a city."""
        return 21.5

    def script() -> RepliesByTurn:
        call = CallTool("temperature", {"city": "Paris"})
        return one_per_call(call, '{"city": "Paris", "celsius": 21.5}')

    async with MiniAgents():
        agent = offline_agent.fork(token_delay=0, tools=[temperature])
        answered = await structured(agent.fork(reply=script()), Weather).inquire("Weather?")
        whole = await agent.inquire("Weather?", output_type=Weather, reply=script())
    assert [type(message) for message in answered] == [Weather]
    assert [type(message) for message in whole] == [
        LLMToolCallMessage,
        LLMToolResultMessage,
        Weather,
    ]
    assert answered[0] == whole[-1]


async def test_output_type_given_to_inquire_works_without_structured() -> None:
    agent = offline_agent.fork(token_delay=0, reply='{"city": "A", "celsius": 1}')
    async with MiniAgents():
        (weather,) = await agent.inquire("x", output_type=Weather)
    assert isinstance(weather, Weather)


@pytest.mark.parametrize("how", ["fork", "bind"])
async def test_an_output_type_bound_to_the_agent_is_refused_for_structured(how: str) -> None:
    # bound, mypy would type the agent's replies as OfflineMessages, not Weathers
    if how == "fork":
        agent = offline_agent.fork(token_delay=0, output_type=Weather)
    else:
        agent = offline_agent.bind(token_delay=0, output_type=Weather)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await agent.inquire("x")
        (weather,) = await structured(offline_agent.fork(token_delay=0), Weather).inquire("x")
    assert "output_type=Weather bound with fork() or bind()" in str(raised.value)
    assert "structured(offline_agent.fork(...), Weather)" in str(raised.value)
    assert isinstance(weather, Weather)


@pytest.mark.parametrize("how", ["fork", "bind"])
def test_a_structured_agents_fork_or_bind_refuses_another_output_type_at_once(how: str) -> None:
    # it was bound, and refused only at the first call of the fork
    weather_agent = structured(offline_agent.fork(token_delay=0), Weather)
    with pytest.raises(LLMConfigurationError) as raised:
        getattr(weather_agent, how)(output_type=Trip)
    assert f"its {how}() takes no output_type" in str(raised.value)
    assert "structured(agent, OtherType)" in str(raised.value)
    assert weather_agent.fork(alias="WEATHER").alias == "WEATHER"  # the rest as before


@pytest.mark.parametrize("given", [int, Message, "Weather", [Weather], {"city": str}])
async def test_an_output_type_that_is_not_a_message_type_with_fields_is_refused(
    given: object,
) -> None:
    with pytest.raises(LLMConfigurationError, match=r"output_type|declares no fields"):
        structured(offline_agent, given)  # type: ignore[arg-type]
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError):
            await offline_agent.inquire("x", output_type=given)  # type: ignore[arg-type]


class _OwnText(Message):
    text: str
    score: int


async def test_an_output_type_that_redeclares_text_is_refused() -> None:
    # the answer's text is its JSON: the model's "text" would be lost
    with pytest.raises(LLMConfigurationError, match=r"_OwnText declares its own field 'text'"):
        structured(offline_agent, _OwnText)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="`answer: str`"):
            await offline_agent.inquire("x", output_type=_OwnText)


@pytest.mark.parametrize("retries", [-1, 1.5, True])
async def test_output_retries_must_be_a_whole_number(retries: object) -> None:
    agent = offline_agent.fork(token_delay=0)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="output_retries"):
            await agent.inquire("x", output_type=Weather, output_retries=retries)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["output_retries", "max_tool_rounds"])
async def test_a_count_refused_names_where_it_was_given(name: str) -> None:
    # (was: a value given to inquire was refused with "Set it with offline_agent.fork(...)")
    agent = offline_agent.fork(token_delay=0)
    async with MiniAgents():
        per_call = rf"offline_agent\.inquire\(\.\.\., {name}="
        with pytest.raises(LLMConfigurationError, match=per_call):
            await agent.inquire("x", output_type=Weather, **{name: -1})  # type: ignore[arg-type]
        with pytest.raises(LLMConfigurationError, match=rf"offline_agent\.fork\({name}="):
            await agent.fork(**{name: -1}).inquire("x", output_type=Weather)  # type: ignore[arg-type]


@pytest.mark.parametrize("retries", [-1, 1.5, True, "2"])
def test_output_retries_given_to_structured_are_refused_at_once_naming_it(retries: object) -> None:
    # (was: accepted, then at the first call "Set it with offline_agent.fork(...)")
    refused = r"^structured needs output_retries to be a whole number of at least 0; got "
    with pytest.raises(LLMConfigurationError, match=refused):
        structured(offline_agent, Weather, output_retries=retries)  # type: ignore[arg-type]


async def test_a_structured_agent_takes_no_other_output_type() -> None:
    class Other(Message):
        name: str

    agent = structured(offline_agent.fork(token_delay=0), Weather)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="answers with a Weather"):
            await agent.inquire("x", output_type=Other)


async def test_a_structured_agent_forks_with_the_agents_arguments_and_refuses_others() -> None:
    """What its typed ``fork`` takes (the agent's fork's keywords) is what it takes at run time."""
    agent = structured(offline_agent.fork(token_delay=0), Weather)
    forked = agent.fork(reply='{"city": "Oslo", "celsius": -3}', alias="OSLO", max_concurrency=1)
    assert forked.alias == "OSLO"
    async with MiniAgents():
        (answer,) = await forked.inquire("Weather?")
        assert (answer.city, answer.celsius) == ("Oslo", -3.0)
    with pytest.raises(AgentArgumentError, match="temprature"):
        agent.fork(temprature=0.2)  # type: ignore[call-arg]


def test_structured_needs_an_llm_agent() -> None:
    from miniagents import miniagent

    @miniagent
    async def plain(ctx: object) -> None:
        pass

    with pytest.raises(AgentArgumentError, match=r"takes an LLM agent.*make_llm_agent") as caught:
        structured(plain, Weather)
    assert "add a parameter" not in str(caught.value)


def test_structured_refuses_what_is_not_an_agent_with_a_sentence() -> None:
    def answer(question: str) -> str:
        return question

    with pytest.raises(AgentArgumentError, match=r"structured takes an LLM agent, not <function"):
        structured(answer, Weather)  # type: ignore[type-var]


async def test_partials_of_a_ready_message_come_from_its_text() -> None:
    promise = MessagePromise.of_message(
        Weather(text='{"city": "Nice", "celsius": 25}', city="Nice", celsius=25)
    )
    async with MiniAgents():
        partials = [p async for p in partial_outputs(promise, Weather)]
    assert [(p.city, p.celsius) for p in partials] == [("Nice", 25.0)]


async def test_partials_of_a_message_of_another_type_are_refused() -> None:
    with pytest.raises(LLMConfigurationError, match="not a Weather"):
        partial_outputs(MessagePromise.of_text("hi"), Weather)


async def test_partials_of_an_unstructured_answer_are_refused_not_an_empty_stream() -> None:
    # (was: partial_outputs(promise) of a text answer yielded nothing, raising nothing)
    async with MiniAgents():
        reply = offline_agent.fork(token_delay=0, reply="Sunny.").inquire("Weather?")
        promise = await anext(aiter(reply))
        with pytest.raises(
            LLMConfigurationError, match=r"^This message is an OfflineMessage, an LLM agent's reply"
        ):  # (was: "a OfflineMessage")
            partial_outputs(promise)
        with pytest.raises(LLMConfigurationError, match="not a structured answer"):
            partial_outputs(promise, type(await promise))


async def test_partials_of_a_message_not_its_promise_or_of_no_message_type_are_refused() -> None:
    weather = Weather(text='{"city": "Nice", "celsius": 25}', city="Nice", celsius=25)
    with pytest.raises(LLMConfigurationError, match=r"not Weather\(text="):
        partial_outputs(weather)  # type: ignore[call-overload]
    promise = MessagePromise.of_message(weather)
    with pytest.raises(LLMConfigurationError, match=r"as output_type, not \[<class"):
        partial_outputs(promise, [Weather])  # type: ignore[call-overload]


async def test_no_partial_is_parsed_until_someone_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    from miniagents.ext.llm._output_schema import PartialParser

    parsed: list[str] = []
    feed = PartialParser.feed

    def counting(self: PartialParser, token: str) -> Message | None:
        parsed.append(token)
        return feed(self, token)

    monkeypatch.setattr(PartialParser, "feed", counting)
    script = '{"city": "Paris", "celsius": 21.5}'
    agent = structured(offline_agent.fork(token_delay=0, reply=script), Weather)
    async with MiniAgents():
        reply = agent.inquire("Weather?")
        (weather,) = await reply
        assert parsed == []  # nobody asked for partials: the JSON was validated once only
        promise = await anext(aiter(reply))
        partials = [partial async for partial in partial_outputs(promise)]
    assert partials[-1] == Weather(text=script, city="Paris", celsius=21.5)
    assert "".join(parsed) == script  # parsed from the answer's text, once asked
    assert weather.city == "Paris"
