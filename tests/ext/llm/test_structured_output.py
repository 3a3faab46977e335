"""Structured output against the fake server: OpenAI Chat Completions and Responses, Anthropic.

The real SDK clients talk to ``miniagents.testing`` on a local port. Each test runs for
the three APIs: the schema goes in the API's own field (``response_format`` /
``text.format`` / ``output_config.format``), the answer is the output type, validated; an
answer that does not validate goes back to the model; partial objects stream before the
answer ends.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import openai
import pytest
from pydantic import Field, field_validator

from miniagents import Message, MessagePromise, MessageSequencePromise, MiniAgents
from miniagents.ext.llm import LLMToolCallMessage, LLMToolResultMessage, TokenUsage
from miniagents.ext.llm.errors import LLMOutputValidationError
from miniagents.ext.llm.structured import partial_outputs, structured
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.llm.providers import LLM, SDKClient

WAIT = 5.0


class Weather(Message):
    """The weather in a city."""

    city: str
    celsius: float = Field(description="The temperature, in degrees Celsius.")


class Forecast(Message):
    """A forecast: a city and the temperatures of the next days."""

    city: str
    days: tuple[Weather, ...]
    note: str | None = None

    @field_validator("days")
    @classmethod
    def _not_empty(cls, days: tuple[Weather, ...]) -> tuple[Weather, ...]:
        if not days:
            raise ValueError("a forecast needs at least one day")
        return days


VALID = ['{"city": "Pa', 'ris", "cel', 'sius": 21', ".5}"]


async def collect(reply: MessageSequencePromise, into: list[MessagePromise]) -> None:
    async for promise in reply:
        into.append(promise)


def weather_agent(llm: LLM, client: SDKClient, **options: Any) -> Any:
    return structured(llm.agent.fork(model=llm.model, async_client=client), Weather, **options)


async def test_a_valid_answer_is_the_output_type_with_its_fields_and_metadata(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(VALID, usage=(7, 4))
    async with MiniAgents():
        messages = await weather_agent(llm, client).inquire("Weather in Paris?")
    assert len(messages) == 1
    weather = messages[0]
    assert isinstance(weather, Weather)
    assert (weather.city, weather.celsius) == ("Paris", 21.5)
    assert str(weather) == "".join(VALID)
    assert weather.model_extra is not None
    assert weather.model_extra["role"] == "assistant"
    assert weather.model_extra["model"] == llm.model
    assert weather.model_extra["finish_reason"] == llm.stop
    usage = weather.model_extra["usage"]
    assert isinstance(usage, TokenUsage)
    assert (usage.input_tokens, usage.output_tokens) == (7, 4)


async def test_the_schema_goes_in_the_apis_own_field_strict(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(VALID)
    async with MiniAgents():
        await weather_agent(llm, client).inquire("Weather in Paris?")
    body = server.requests[0].json
    asked = server.requests[0].output_format
    assert asked is not None
    if llm.name == "openai":
        assert body["response_format"]["type"] == "json_schema"
        assert asked["name"] == "Weather"
        assert body["response_format"]["json_schema"]["description"] == "The weather in a city."
    elif llm.name == "responses":
        assert body["text"]["format"]["type"] == "json_schema"
        assert asked["name"] == "Weather"
        assert body["text"]["format"]["description"] == "The weather in a city."
    else:
        assert body["output_config"]["format"]["type"] == "json_schema"
    assert asked["strict"] is True
    schema = asked["schema"]
    assert set(schema["properties"]) == {"city", "celsius"}  # not ``text``: that is the JSON
    assert schema["required"] == ["city", "celsius"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["celsius"]["description"] == "The temperature, in degrees Celsius."


async def test_nested_types_are_strict_all_the_way_down(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    answer = {"city": "Paris", "days": [{"city": "Paris", "celsius": 20}], "note": None}
    server.reply([json.dumps(answer)])
    agent = structured(llm.agent.fork(model=llm.model, async_client=client), Forecast)
    async with MiniAgents():
        (forecast,) = await agent.inquire("Forecast for Paris?")
    assert isinstance(forecast, Forecast)
    assert forecast.days == (Weather(city="Paris", celsius=20.0),)
    asked = server.requests[0].output_format
    assert asked is not None
    assert asked["strict"] is True  # the server checked every object


async def test_a_non_streamed_call_gives_the_same_answer(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(VALID)
    async with MiniAgents():
        (weather,) = await weather_agent(llm, client).inquire("Weather?", stream=False)
    assert isinstance(weather, Weather)
    assert weather.celsius == 21.5
    assert not server.requests[0].stream


async def test_an_invalid_answer_goes_back_to_the_model_with_its_errors(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(['{"city": "Paris", "celsius": "warm"}'])
    server.reply(VALID)
    async with MiniAgents():
        messages = await weather_agent(llm, client).inquire("Weather in Paris?")
    assert [type(message) for message in messages] == [Weather]
    assert isinstance(messages[0], Weather)
    assert messages[0].celsius == 21.5
    assert len(server.requests) == 2
    retried = server.requests[1].json
    retry = retried["input"] if llm.name == "responses" else retried["messages"]
    assert retry[-2]["role"] == "assistant"
    assert "warm" in json.dumps(retry[-2]["content"])
    assert retry[-1]["role"] == "user"
    feedback = json.dumps(retry[-1]["content"])
    assert "not a valid Weather" in feedback
    assert "celsius" in feedback


async def test_retries_used_up_fail_the_reply_with_the_validation_errors(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(['{"city": "Paris"}'], times=3)
    async with MiniAgents():
        reply = weather_agent(llm, client, output_retries=2).inquire("Weather?")
        with pytest.raises(LLMOutputValidationError) as raised:
            await reply
    assert len(server.requests) == 3  # the first try and two retries
    error = raised.value
    assert [(item["type"], item["loc"]) for item in error.errors] == [("missing", ("celsius",))]
    assert error.text == '{"city": "Paris"}'
    assert f"{llm.alias} gave up" in str(error)
    assert "output_retries" in str(error)


async def test_no_retries_fails_at_the_first_invalid_answer_and_its_message_too(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(["not JSON at all"])
    async with MiniAgents():
        reply = weather_agent(llm, client, output_retries=0).inquire("Weather?")
        promises: list[MessagePromise] = []
        with pytest.raises(LLMOutputValidationError) as raised:
            await collect(reply, promises)
        assert raised.value.errors[0]["type"] == "json_invalid"
        (promise,) = promises  # the answer was in the reply from its first token
        with pytest.raises(LLMOutputValidationError):
            await promise
        with pytest.raises(LLMOutputValidationError):
            await partial_outputs(promise, Weather)
    assert len(server.requests) == 1


async def test_an_answer_cut_off_by_max_tokens_is_not_retried_and_says_to_give_more_room(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    """Its JSON is cut short by the token limit: a retry under the same limit would be cut
    too (and paid for), and making the type simpler is not the fix: max_tokens is."""
    server.reply(['{"city": "Pa', 'ris", "cel'], finish_reason="length", times=2)
    async with MiniAgents():
        agent = weather_agent(llm, client, output_retries=1)
        reply = agent.inquire("Weather?", max_tokens=20)
        with pytest.raises(LLMOutputValidationError) as raised:
            await reply
    assert len(server.requests) == 1
    error = raised.value
    assert error.text == '{"city": "Paris", "cel'
    assert error.errors[0]["type"] == "json_invalid"
    assert str(error).startswith(
        f"The agent {llm.alias} gave up on its structured answer: the model {llm.model!r} "
        f"reached its max_tokens (finish reason {llm.length!r}) while it wrote it, so its "
        "JSON is cut short"
    )
    assert str(error).endswith(
        f"Give it more room with {llm.alias.lower()}.fork(max_tokens=...), or leave max_tokens out."
    )


async def test_partial_objects_arrive_before_the_answer_ends(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    tokens = ['{"city": "Paris", ', '"celsius": 21', ".5", "}"]
    server.reply(tokens, pause_after=2)
    async with MiniAgents():
        reply = weather_agent(llm, client).inquire("Weather?")
        promise = await anext(aiter(reply))
        partials = partial_outputs(promise, Weather)
        seen = aiter(partials)
        first = await asyncio.wait_for(anext(seen), WAIT)
        assert isinstance(first, Weather)
        assert (first.city, first.celsius) == ("Paris", 21.0)
        assert str(first) == "".join(tokens[:2])
        record = await server.wait_paused_async(0, WAIT)
        assert not promise.done  # the model is still writing: the answer has not ended
        record.resume()
        rest = [partial async for partial in seen]
        weather = await promise
    assert [(partial.city, partial.celsius) for partial in rest] == [("Paris", 21.5)]
    assert isinstance(weather, Weather)
    assert weather.celsius == 21.5
    assert await partials is weather  # awaited, the partials give the answer


async def test_partials_of_a_refused_try_come_before_those_of_the_retry(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    server.reply(['{"city": "Lyon", ', '"celsius": 999}'])
    server.reply(VALID)
    agent = structured(
        llm.agent.fork(model=llm.model, async_client=client), _Bounded, output_retries=1
    )
    async with MiniAgents():
        reply = agent.inquire("Weather?")
        promise = await anext(aiter(reply))
        observed: list[Message] = []
        done = asyncio.get_running_loop().create_future()
        partials = partial_outputs(promise, _Bounded).as_observable()
        partials.subscribe(observed.append, done.set_exception, lambda: done.set_result(None))
        await asyncio.wait_for(done, WAIT)
        answer = await promise
    # the refused try had no partial that validates (999 is out of range); the retry's
    # partials grow to the answer
    assert [(p.city, p.celsius) for p in observed] == [  # type: ignore[attr-defined]
        ("Paris", 21.0),
        ("Paris", 21.5),
    ]
    assert isinstance(answer, _Bounded)
    assert answer.celsius == 21.5


class _Bounded(Message):
    city: str
    celsius: float = Field(le=60)


async def test_the_server_refuses_a_schema_that_is_not_strict(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    body: dict[str, Any] = {"model": llm.model, "messages": [{"role": "user", "content": "x"}]}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    if llm.name == "openai":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "A", "schema": schema, "strict": True},
        }
        create: Any = client.chat.completions.create  # type: ignore[union-attr]
    elif llm.name == "responses":
        body["input"] = body.pop("messages")
        body["text"] = {
            "format": {"type": "json_schema", "name": "A", "schema": schema, "strict": True}
        }
        create = client.responses.create  # type: ignore[union-attr]
    else:
        body["max_tokens"] = 10
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        create = client.messages.create  # type: ignore[union-attr]
    errors = (openai.BadRequestError, anthropic.BadRequestError)
    with pytest.raises(errors, match="'additionalProperties' is required"):
        await create(**body)


@pytest.mark.parametrize("how", ["structured", "output_type"])
async def test_a_consumer_giving_up_on_the_answer_closes_the_connection(
    llm: LLM, client: SDKClient, server: FakeLLMServer, how: str
) -> None:
    server.reply(['{"city": "Paris", ', '"celsius": 21', ".5}"], hang_after=2)
    agent = llm.agent.fork(model=llm.model, async_client=client)
    async with MiniAgents():
        reply: MessageSequencePromise[Message]
        if how == "structured":
            reply = structured(agent, Weather).inquire("Weather?")
        else:
            reply = agent.inquire("Weather?", output_type=Weather)
        promise = await anext(aiter(reply))
        waiting = asyncio.ensure_future(promise.aresolve())
        partial = await asyncio.wait_for(anext(aiter(partial_outputs(promise, Weather))), WAIT)
        assert partial.celsius == 21.0  # the model is writing the answer (then hangs)
        waiting.cancel()  # its only consumer gives up
        assert await server.wait_disconnected_async(0, WAIT)
    assert server.requests[0].outcome == "disconnected"


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_what_the_model_says_before_a_tool_call_is_in_the_reply(
    llm: LLM, client: SDKClient, server: FakeLLMServer, stream: bool
) -> None:
    def temperature(city: str) -> float:
        """The temperature in a city."""
        return 21.5

    said = ["Let me ", "check the ", "weather."]
    server.reply(said, tool_calls=[ToolCall("temperature", {"city": "Paris"})])
    server.reply(VALID)
    server.reply(said, tool_calls=[ToolCall("temperature", {"city": "Paris"})])
    server.reply(VALID)
    agent = llm.agent.fork(model=llm.model, async_client=client, tools=[temperature], stream=stream)
    async with MiniAgents():
        whole = await agent.inquire("Weather in Paris?", output_type=Weather)
        answered = await structured(agent, Weather).inquire("Weather in Paris?")
    assert [type(message) for message in whole] == [
        llm.message_class,
        LLMToolCallMessage,
        LLMToolResultMessage,
        Weather,
    ]
    said_message = whole[0]
    assert isinstance(said_message, llm.message_class)
    assert str(said_message) == "Let me check the weather."
    assert said_message.finish_reason == llm.pick(("tool_calls", "tool_use", "completed"))
    assert isinstance(whole[-1], Weather)
    assert whole[-1].celsius == 21.5
    assert [type(message) for message in answered] == [Weather]  # the answer only
    retold = json.dumps(server.requests[1].json)
    assert "Let me check the weather." in retold  # the model sees what it said, as before


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_what_the_model_says_before_a_tool_call_of_a_text_answer_is_told_to_it_again(
    llm: LLM, client: SDKClient, server: FakeLLMServer, stream: bool
) -> None:
    # the twin of the test above without an output type: the turn keeps no copy of a plain
    # call's tokens, and reads what the model said back from its text message
    def temperature(city: str) -> float:
        """The temperature in a city."""
        return 21.5

    server.reply(
        ["Let me ", "check the ", "weather."],
        tool_calls=[ToolCall("temperature", {"city": "Paris"})],
    )
    server.reply(["It is ", "21.5 degrees."])
    agent = llm.agent.fork(model=llm.model, async_client=client, tools=[temperature], stream=stream)
    async with MiniAgents():
        whole = await agent.inquire("Weather in Paris?")
    assert [type(message) for message in whole] == [
        llm.message_class,
        LLMToolCallMessage,
        LLMToolResultMessage,
        llm.message_class,
    ]
    assert str(whole[0]) == "Let me check the weather."
    assert str(whole[-1]) == "It is 21.5 degrees."
    retold = json.dumps(server.requests[1].json)
    assert "Let me check the weather." in retold


def test_an_anthropic_sdk_without_output_config_gets_it_in_the_body() -> None:
    from miniagents.ext.llm._output_schema import output_format_of
    from miniagents.ext.llm.anthropic import _ask_output_format

    async def older_create(*, model: str, messages: object, extra_body: object = None) -> None:
        """An SDK method of before structured outputs."""

    async def newer_create(*, model: str, output_config: object = None) -> None:
        """An SDK method that takes output_config."""

    output = output_format_of(Weather)
    wanted = {"format": {"type": "json_schema", "schema": dict(output.schema)}}
    older: dict[str, object] = {"extra_body": {"x": 1}}
    _ask_output_format(older_create, older, output)
    assert older == {"extra_body": {"x": 1, "output_config": wanted}}
    newer: dict[str, object] = {"output_config": {"effort": "low"}}
    _ask_output_format(newer_create, newer, output)
    assert newer == {"output_config": {"effort": "low", **wanted}}
