"""What every LLM agent shares, tested with the offline model: no network, no key."""

from __future__ import annotations

import asyncio
import inspect
import pickle
import re
import sys
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from miniagents import (
    InteractionContext,
    Message,
    MiniAgent,
    MiniAgents,
    MiniAgentsError,
    miniagent,
)
from miniagents.errors import AgentArgumentError, ContextArgumentError
from miniagents.ext.llm import (
    AssistantMessage,
    Finish,
    LLMCall,
    LLMEvent,
    LLMOptions,
    SystemMessage,
    TokenUsage,
    UserMessage,
    make_llm_agent,
)
from miniagents.ext.llm._stall import StallWatch, stall_watched
from miniagents.ext.llm.anthropic import AnthropicOptions, anthropic_agent
from miniagents.ext.llm.errors import (
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMSDKMissingError,
    LLMServerError,
    LLMTimeoutError,
)
from miniagents.ext.llm.llm_logger import render_llm_log
from miniagents.ext.llm.offline import OfflineMessage, create_offline_agent, offline_agent
from miniagents.ext.llm.openai import create_openai_agent, openai_agent
from miniagents.ext.llm.prompt import prompt_of
from miniagents.ext.llm.sdk_calls import sdk_arguments
from miniagents.ext.llm.sdk_errors import translate_sdk_error
from miniagents.ext.llm.settings import LLMSettings, llm_settings
from miniagents.messages import MessageSequencePromise, MessageTuple
from miniagents.miniagents.lowlevel import with_settings
from miniagents.testing import VirtualClock


async def test_the_offline_agent_streams_a_deterministic_reply_token_by_token() -> None:
    async with MiniAgents():
        reply = offline_agent.inquire("Hello there", token_delay=0.0)
        promises = [promise async for promise in reply]
        assert len(promises) == 1
        tokens = [token async for token in promises[0]]
        message = await promises[0]
    assert len(tokens) > 5
    assert "".join(tokens) == message.text
    assert message.text is not None
    assert message.text.endswith("You said: Hello there")
    assert isinstance(message, OfflineMessage)
    assert isinstance(message, AssistantMessage)
    assert message.role == "assistant"
    assert message.model == "offline"
    assert message.agent_alias == "OFFLINE_AGENT"
    assert message.finish_reason == "stop"
    assert message.usage == TokenUsage(input_tokens=2, output_tokens=len(message.text.split()))


async def test_role_model_and_alias_are_known_before_the_first_token(
    virtual_clock: VirtualClock,
) -> None:
    async with MiniAgents():
        agent = create_offline_agent(model="m-1", token_delay=5.0, reply="slow words here")
        first = await anext(aiter(agent.inquire("hi")))
        assert dict(first.metadata) == {
            "role": "assistant",
            "model": "m-1",
            "agent_alias": "OFFLINE_AGENT",
        }
        assert virtual_clock.elapsed == 0  # no token yet: the first one comes after 5 s
        assert not first.done
        assert (await first).text == "slow words here"


async def test_the_first_token_arrives_before_the_reply_is_complete(
    virtual_clock: VirtualClock,
) -> None:
    async with MiniAgents():
        reply = offline_agent.inquire("x", reply="one two three four", token_delay=1.0)
        promise = await anext(aiter(reply))
        first = await anext(aiter(promise))
        assert first == "one "
        assert virtual_clock.elapsed == pytest.approx(1.0)  # one delay, not four
        assert not promise.done
        await reply
    assert virtual_clock.elapsed == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("agent_stream", "call_stream", "default", "streams"),
    [
        (None, None, None, True),
        (None, None, False, False),
        (False, None, True, False),
        (True, None, False, True),
        (True, False, True, False),
        (None, True, False, True),
    ],
)
async def test_streaming_is_switchable_per_agent_per_call_and_globally(
    agent_stream: bool | None, call_stream: bool | None, default: bool | None, streams: bool
) -> None:
    agent = offline_agent.fork(reply="a b c d", token_delay=0.0)
    if agent_stream is not None:
        agent = agent.fork(stream=agent_stream)
    async with MiniAgents(stream_llm_tokens_by_default=default):
        reply = (
            agent.inquire("x") if call_stream is None else agent.inquire("x", stream=call_stream)
        )
        tokens = [token async for token in await anext(aiter(reply))]
    assert tokens == (["a ", "b ", "c ", "d"] if streams else ["a b c d"])


async def test_scripted_replies_a_text_an_iterator_or_a_function() -> None:
    def reply_to(call: LLMCall) -> str:
        return f"{call.model}: {call.system} / {call.messages}"

    async with MiniAgents():
        texts = iter(["first", "second"])
        scripted = offline_agent.fork(reply=texts, token_delay=0.0)
        assert str(await scripted.inquire("a")) == "first"
        assert str(await scripted.inquire("b")) == "second"
        with pytest.raises(LLMConfigurationError, match="used up"):
            await scripted.inquire("c")
        computed = await offline_agent.inquire(
            [SystemMessage(text="sys"), "q", Message(text="a", role="assistant")],
            reply=reply_to,
            system="be brief",
            model="m",
            token_delay=0.0,
        )
    assert str(computed) == (
        "m: be brief\n\nsys / "
        "(PromptText(role='user', text='q'), PromptText(role='assistant', text='a'))"
    )


def test_the_prompt_takes_roles_from_messages_and_system_from_system_messages() -> None:
    messages = MessageTuple(
        [
            SystemMessage(text="rules"),
            UserMessage(text="hi"),
            Message(text="plain"),
            Message(text="earlier answer", role="assistant"),
        ]
    )
    system, conversation = prompt_of(messages, "first")
    assert system == "first\n\nrules"
    assert conversation == (("user", "hi"), ("user", "plain"), ("assistant", "earlier answer"))
    assert prompt_of(MessageTuple([UserMessage(text="x")]), None) == (None, (("user", "x"),))


class NarratorMessage(Message):
    """A message whose role its class works out (a property, not a field)."""

    @property
    def role(self) -> str:
        return "assistant" if self.text == "said" else "user"


def test_the_prompt_reads_a_role_defined_by_the_class_and_refuses_non_text_roles() -> None:
    messages = MessageTuple(
        [
            NarratorMessage(text="said"),
            NarratorMessage(text="asked"),
            Message(text="numbered", role=3),
            Message(text="extra", role="assistant"),
            NarratorMessage(text="said"),  # the kind of each class is worked out once
        ]
    )
    _, conversation = prompt_of(messages, None)
    assert conversation == (
        ("assistant", "said"),
        ("user", "asked"),
        ("user", "numbered"),  # a role that is not a text: a user's message
        ("assistant", "extra"),
        ("assistant", "said"),
    )


@pytest.mark.parametrize("agent", [openai_agent, anthropic_agent], ids=["openai", "anthropic"])
async def test_a_missing_model_is_a_clear_error(agent: object) -> None:
    assert agent is openai_agent or agent is anthropic_agent
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError) as raised:
            await agent.inquire("hi")
    text = str(raised.value)
    assert "needs a model" in text
    assert "fork(model=...)" in text
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"model": 123}, r"The agent OFFLINE_AGENT needs model to be a str \(the model's name\)"),
        ({"system": 123}, r"The agent OFFLINE_AGENT needs system to be a str; got 123\. Pass"),
        ({"stream": "yes"}, r"The agent OFFLINE_AGENT needs stream to be True or False; got 'yes'"),
        (
            {"extra_options": [("user", "u-1")]},
            r"The agent OFFLINE_AGENT needs extra_options to be a mapping of the SDK's",
        ),
    ],
    ids=["model", "system", "stream", "extra_options"],
)
async def test_an_argument_of_the_wrong_kind_is_refused_naming_it_and_the_fix(
    arguments: dict[str, Any], says: str
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=says) as raised:
            await offline_agent.inquire("hi", token_delay=0, **arguments)
    [name] = arguments
    assert f"Pass e.g. offline_agent.fork({name}=" in str(raised.value)
    assert raised.value.parameter == name  # (was: "", the check written by hand)


@pytest.mark.parametrize("name", ["stream_llm_tokens_by_default", "llm_parse_in_turn"])
async def test_a_context_flag_of_the_llm_agents_takes_only_a_bool(name: str) -> None:
    # (was: taken by MiniAgents(), and refused only at the first LLM call)
    with pytest.raises(
        ContextArgumentError,
        match=rf"MiniAgents\(\) needs {name} to be True or False; got 'no'\. Pass True or False",
    ) as refused:
        MiniAgents(**{name: "no"})  # type: ignore[arg-type]
    assert refused.value.parameter == name
    # (given otherwise, the LLM call's own check, the same one, refuses it as it did)
    async with with_settings(MiniAgents(), {name: "no"}):
        with pytest.raises(
            LLMConfigurationError, match=rf"MiniAgents\(\) needs {name} to be True or False"
        ):
            await offline_agent.inquire("hi", token_delay=0)


def test_create_functions_are_fork_with_arguments_bound() -> None:
    agent = create_openai_agent(model="gpt-test", temperature=0.5)
    assert agent.func is openai_agent.func
    assert agent.alias == "OPENAI_AGENT"
    assert repr(agent) == "<MiniAgent OPENAI_AGENT bound={'model': 'gpt-test', 'temperature': 0.5}>"


@pytest.fixture
def without_sdk(request: pytest.FixtureRequest) -> Iterator[str]:
    name = str(request.param)
    saved = sys.modules.get(name)
    sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        yield name
    finally:
        if saved is not None:
            sys.modules[name] = saved


@pytest.mark.parametrize("without_sdk", ["openai", "anthropic"], indirect=True)
async def test_a_missing_sdk_is_an_import_error_with_the_install_hint(without_sdk: str) -> None:
    agent = openai_agent if without_sdk == "openai" else anthropic_agent
    async with MiniAgents():
        with pytest.raises(ImportError, match=rf'pip install "miniagents\[{without_sdk}\]"'):
            await agent.inquire("hi", model="m")


async def test_the_llm_logger_writes_a_markdown_file_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with MiniAgents(llm_logger_agent=True):
        await offline_agent.inquire(
            [SystemMessage(text="be nice"), "Hello"], reply="Hi!", token_delay=0.0
        )
        await offline_agent.inquire("Again", reply="Bye!", token_delay=0.0)
    files = sorted((tmp_path / "llm_logs").glob("*_OFFLINE_AGENT.md"))
    assert len(files) == 2
    first = files[0].read_text(encoding="utf-8")
    assert first.startswith(
        "# LLM call of OFFLINE_AGENT\n\n## SYSTEM\n\nbe nice\n\n## USER\n\nHello"
    )
    assert "## RESPONSE" in first
    assert "- finish_reason: stop" in first
    assert first.rstrip().endswith("Hi!")
    assert files[1].read_text(encoding="utf-8").rstrip().endswith("Bye!")


async def test_a_logger_agent_that_cannot_take_the_call_leaves_the_call_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A logger agent without the agent_alias parameter: an error logged, the reply whole."""
    seen: list[str] = []

    @miniagent
    async def no_alias_logger(ctx: InteractionContext) -> None:
        seen.extend(str(message) for message in await ctx.message_promises)

    async with MiniAgents(llm_logger_agent=no_alias_logger):
        reply = await offline_agent.inquire("Hello", reply="Hi!", token_delay=0.0)
    assert [str(message) for message in reply] == ["Hi!"]
    assert seen == []
    [record] = [record for record in caplog.records if record.levelname == "ERROR"]
    assert record.getMessage().startswith(
        "The LLM logger agent NO_ALIAS_LOGGER could not be given the call of OFFLINE_AGENT: "
        "The agent NO_ALIAS_LOGGER got an unexpected keyword argument 'agent_alias'"
    )
    assert "async def logger(ctx, agent_alias: str)" in record.getMessage()
    caplog.clear()  # (the expected error log: see conftest)


async def test_no_log_files_without_the_logger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with MiniAgents():
        await offline_agent.inquire("Hello", token_delay=0.0)
    assert not (tmp_path / "llm_logs").exists()


def test_a_log_shows_every_prompt_message_then_the_response() -> None:
    text = render_llm_log(
        (Message(text="q", role="user"), AssistantMessage(text="a", model="m")), "AGENT"
    )
    assert text == (
        "# LLM call of AGENT\n\n## USER\n\nq\n\n## RESPONSE\n\n- role: assistant\n- model: m\n\na\n"
    )


def test_a_log_names_each_prompt_message_by_the_role_the_model_is_sent_it_with() -> None:
    # (was: a role that is no str, 3, headed its section "## 3", though the model was sent
    # the message as the user's: the log read the role with a getattr of its own)
    prompt = (
        Message(text="a", role="narrator"),
        Message(text="b"),
        Message(text="c", role=3),
        Message(text="d", role=""),
    )
    text = render_llm_log((*prompt, AssistantMessage(text="r", model="m")), "AGENT")
    headers = [line for line in text.splitlines() if line.startswith("## ")]
    assert headers == ["## NARRATOR", "## USER", "## USER", "## USER", "## RESPONSE"]


def _sdk_errors(module: object, base: type[BaseException]) -> list[type[BaseException]]:
    return [
        value
        for value in list(vars(module).values())
        if inspect.isclass(value) and issubclass(value, base)
    ]


@pytest.mark.parametrize(
    ("module", "base", "provider"),
    [(openai, openai.OpenAIError, "OpenAI"), (anthropic, anthropic.AnthropicError, "Anthropic")],
    ids=["openai", "anthropic"],
)
def test_every_sdk_error_is_translated_into_an_llm_error(
    module: object, base: type[BaseException], provider: str
) -> None:
    errors = _sdk_errors(module, base)
    assert len(errors) > 10
    for kind in errors:
        error = kind.__new__(kind)
        translated = translate_sdk_error(error, provider, base)
        assert isinstance(translated, LLMError), kind
        assert translated.__cause__ is error
        assert provider in str(translated)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("RateLimitError", LLMRateLimitError),
        ("InternalServerError", LLMServerError),
        ("APITimeoutError", LLMTimeoutError),
        ("APIConnectionError", LLMConnectionError),
    ],
)
def test_the_main_sdk_errors_get_their_own_llm_error(name: str, expected: type[LLMError]) -> None:
    for module, base in ((openai, openai.OpenAIError), (anthropic, anthropic.AnthropicError)):
        kind = getattr(module, name)
        translated = translate_sdk_error(kind.__new__(kind), "P", base)
        assert type(translated) is expected


@pytest.mark.parametrize(
    ("module", "base"),
    [(openai, openai.OpenAIError), (anthropic, anthropic.AnthropicError)],
    ids=["openai", "anthropic"],
)
def test_a_reply_refused_by_strict_validation_is_not_taken_for_an_error_event(
    module: Any, base: type[BaseException]
) -> None:
    # (its status is the reply's 200: an error event of a stream is decided where the
    # provider's reply catches it, never by its status here)
    response = httpx2.Response(200, request=httpx2.Request("POST", "http://fake/v1/x"))
    error = module.APIResponseValidationError(response=response, body={"id": 1})
    translated = translate_sdk_error(error, "P", base)
    assert type(translated) is LLMResponseError
    assert str(translated).startswith(
        "P sent a reply that the client's strict validation refused (check its base_url): "
    )
    assert translated.__cause__ is error


def test_other_errors_are_left_as_they_are() -> None:
    error = KeyError("mine")
    assert translate_sdk_error(error, "OpenAI", openai.OpenAIError) is error
    malformed = translate_sdk_error(
        __import__("json").JSONDecodeError("bad", "{", 0), "OpenAI", openai.OpenAIError
    )
    assert isinstance(malformed, LLMResponseError)


async def test_cancelling_the_consumer_stops_the_call(virtual_clock: VirtualClock) -> None:
    async with MiniAgents():
        reply = offline_agent.inquire("x", reply="many words " * 100, token_delay=1.0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 2.5)
        await asyncio.sleep(0)
        assert reply.done
    assert virtual_clock.elapsed < 5  # the context did not wait for the 200 tokens


# -- exact parameters ----------------------------------------------------------------------

AGENTS = [openai_agent, anthropic_agent, offline_agent]
AGENT_IDS = ["openai", "anthropic", "offline"]


@pytest.mark.parametrize(
    ("make", "misspelled"),
    [
        (lambda: create_openai_agent(modle="gpt-4o"), "modle"),  # type: ignore[call-arg]
        (
            lambda: create_offline_agent(reply="x", token_dealy=0.2),  # type: ignore[call-arg]
            "token_dealy",
        ),
        (lambda: anthropic_agent.fork(max_token=10), "max_token"),  # type: ignore[call-arg]
        (lambda: offline_agent.fork(temprature=0.5), "temprature"),  # type: ignore[call-arg]
    ],
    ids=["create_openai_agent", "create_offline_agent", "fork", "fork-offline"],
)
def test_a_misspelled_argument_is_an_agent_argument_error_naming_it(
    make: object, misspelled: str
) -> None:
    assert callable(make)
    with pytest.raises(AgentArgumentError, match=f"unexpected keyword argument '{misspelled}'"):
        make()


@pytest.mark.parametrize("agent", AGENTS, ids=AGENT_IDS)
async def test_a_misspelled_argument_of_a_call_is_refused_before_anything_runs(
    agent: MiniAgent[...],
) -> None:
    async with MiniAgents():
        with pytest.raises(AgentArgumentError, match="'temprature'") as raised:
            agent.inquire("hi", model="m", temprature=0.5)
        with pytest.raises(AgentArgumentError, match="by keyword"):
            agent.inquire("hi", "m")
    assert "temperature" in str(raised.value)  # the message lists what the agent takes


@pytest.mark.parametrize("agent", AGENTS, ids=AGENT_IDS)
def test_the_docstring_describes_every_parameter_in_order(agent: MiniAgent[...]) -> None:
    names = list(inspect.signature(agent.func).parameters)
    assert names[0] == "ctx"
    assert "extra_options" in names
    assert "stall_timeout" in names
    described = [
        line.split(":")[0].strip()
        for line in (agent.description or "").split("Args:\n")[1].splitlines()
        if line.startswith("    ") and not line.startswith("        ")
    ]
    assert described == names
    assert agent.description == agent.func.__doc__
    assert agent.func.__name__ == agent.alias.lower()


@pytest.mark.parametrize("agent", AGENTS, ids=AGENT_IDS)
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"temperature": 0.5}, "an argument of the agent itself: pass temperature=... instead"),
        ({"model": "m"}, "an argument of the agent itself: pass model=... instead"),
        ({"messages": []}, "makes from its input messages"),
    ],
    ids=["typed", "model", "messages"],
)
async def test_extra_options_cannot_repeat_what_the_agent_takes_or_sets(
    agent: MiniAgent[...], extra: dict[str, object], says: str
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=says):
            await agent.inquire("hi", model="m", extra_options=extra)


async def test_the_offline_reply_function_sees_the_call_options() -> None:
    seen: list[LLMCall] = []

    def reply_to(call: LLMCall) -> str:
        seen.append(call)
        return "ok"

    async with MiniAgents():
        await offline_agent.inquire(
            "hi",
            reply=reply_to,
            token_delay=0.0,
            max_tokens=10,
            temperature=0.0,
            extra_options={"seed": 7},
        )
        await offline_agent.inquire("hi", reply=reply_to, token_delay=0.0)
    assert dict(seen[0].options) == {"max_tokens": 10, "temperature": 0.0, "seed": 7}
    assert dict(seen[1].options) == {}  # options not given are not there


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_the_offline_model_cuts_its_reply_at_max_tokens(stream: bool) -> None:
    async with MiniAgents():
        reply = offline_agent.inquire(
            "x", reply="one two three four", max_tokens=2, stream=stream, token_delay=0.0
        )
        tokens = [token async for token in await anext(aiter(reply))]
        message = (await reply)[0]
    assert tokens == (["one ", "two "] if stream else ["one two "])
    assert isinstance(message, AssistantMessage)
    assert message.finish_reason == "length"
    assert message.usage == TokenUsage(input_tokens=1, output_tokens=2)


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"token_delay": "0.1"}, "needs token_delay to be a finite number of seconds"),
        ({"token_delay": -1}, "needs token_delay to be a finite number of seconds"),
        ({"temperature": "hot"}, "temperature to be a finite number of at least 0; got 'hot'"),
        ({"max_tokens": 0}, "needs max_tokens to be a whole number of at least 1; got 0"),
        ({"tool_rules": "weather"}, "needs tool_rules to be a list of ToolRule"),
        ({"model": 3}, "The agent OFFLINE_AGENT needs model to be a str"),
    ],
    ids=[
        "token_delay-text",
        "token_delay-negative",
        "temperature",
        "max_tokens",
        "tool_rules",
        "model",
    ],
)
async def test_the_offline_agents_arguments_are_checked_when_it_is_made_and_called(
    arguments: dict[str, Any], says: str
) -> None:
    with pytest.raises(LLMConfigurationError, match=says) as made:  # (was: taken, or TypeError)
        create_offline_agent(reply="x", **arguments)
    assert str(made.value).startswith(("The agent OFFLINE_AGENT needs ", "The model of"))
    with pytest.raises(LLMConfigurationError, match=says):
        offline_agent.fork(**arguments)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=says):  # (given to the call)
            await offline_agent.inquire("hi", reply="x", **arguments)
    good = create_offline_agent(reply="x", token_delay=0, temperature=0.5, max_tokens=3)
    async with MiniAgents():
        assert [str(reply) for reply in await good.inquire("hi", tool_rules=[])] == ["x"]


def _provider_agents() -> list[MiniAgent[...]]:
    from miniagents.ext.llm.bedrock import bedrock_agent
    from miniagents.ext.llm.compatible import ollama_agent
    from miniagents.ext.llm.gemini import gemini_agent

    agents: list[MiniAgent[...]] = [
        openai_agent,
        anthropic_agent,
        gemini_agent,
        bedrock_agent,
        ollama_agent,
        offline_agent,
    ]
    return agents


@pytest.mark.parametrize(
    "index", range(6), ids=["openai", "anthropic", "gemini", "bedrock", "ollama", "offline"]
)
@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("temperature", "hot", "needs temperature to be {temperature}; got 'hot'"),
        ("temperature", float("nan"), "to be {temperature}; got nan"),
        ("temperature", float("inf"), "to be {temperature}; got inf"),
        ("max_tokens", "x", "needs max_tokens to be a whole number of at least 1; got 'x'"),
        ("max_tokens", 0, "needs max_tokens to be a whole number of at least 1; got 0"),
    ],
    ids=["temperature", "temperature-nan", "temperature-inf", "max_tokens-text", "max_tokens-zero"],
)
def test_every_providers_agent_refuses_a_bad_option_where_it_is_bound(
    index: int, name: str, value: object, says: str
) -> None:
    agent = _provider_agents()[index]
    says = says.format(temperature=_TEMPERATURES[index][0])
    given: dict[str, Any] = {name: value}
    made: list[Callable[[], object]] = [
        lambda: agent.fork(**given),
        lambda: agent.bind(**given),  # (what create_*_agent is)
        lambda: agent.fork(model="m").fork(**given),
    ]
    for make in made:
        with pytest.raises(LLMConfigurationError, match=says) as refused:
            make()
        assert refused.value.parameter == name
    assert agent.fork(temperature=0.5, max_tokens=3).bound_arguments["max_tokens"] == 3


_TEMPERATURES = [
    ("a number from 0 to 2", "OpenAI"),
    ("a number from 0 to 1", "Anthropic"),
    ("a number from 0 to 2", "Gemini"),
    ("a number from 0 to 1", "Bedrock"),
    ("a finite number of at least 0", ""),  # (Ollama: its own range, not checked)
    ("a finite number of at least 0", ""),  # (the offline model takes any)
]
"""By the index of ``_provider_agents()``: the temperatures its provider's API takes."""


@pytest.mark.parametrize(
    ("index", "most"),
    [(0, 2), (1, 1), (2, 2), (3, 1)],
    ids=["openai", "anthropic", "gemini", "bedrock"],
)
def test_every_providers_agent_refuses_a_temperature_above_its_apis_range_where_it_is_bound(
    index: int, most: int
) -> None:
    agent = _provider_agents()[index]
    rule, provider = _TEMPERATURES[index]
    too_hot = most + 0.5
    says = (
        f"needs temperature to be {rule}; got {too_hot}. {provider} takes a temperature from "
        f"0 to {most}: pass e.g. {agent.alias.lower()}.fork(temperature=0.7), or None."
    )
    made: list[Callable[[], object]] = [
        lambda: agent.fork(temperature=too_hot),
        lambda: agent.bind(temperature=too_hot),
    ]
    for make in made:
        with pytest.raises(LLMConfigurationError, match=re.escape(says)) as refused:
            make()
        assert refused.value.parameter == "temperature"
    assert agent.fork(temperature=most).bound_arguments["temperature"] == most
    assert agent.fork(temperature=0).bound_arguments["temperature"] == 0


def test_the_offline_agent_takes_any_finite_temperature() -> None:
    assert offline_agent.fork(temperature=5).bound_arguments["temperature"] == 5


_COUNT = "a whole number of at least 1"
_PENALTY = "a number from -2 to 2"
_GEMINI_PENALTY = "a number from -2 up to but not including 2"


@pytest.mark.parametrize(
    ("index", "name", "value", "rule"),
    [
        (0, "max_completion_tokens", 0, _COUNT),
        (0, "max_completion_tokens", 2.5, _COUNT),
        (1, "top_k", 0, _COUNT),
        (2, "top_k", "40", _COUNT),
        (0, "presence_penalty", 2.5, _PENALTY),
        (0, "frequency_penalty", -3, _PENALTY),
        (0, "frequency_penalty", float("nan"), _PENALTY),
        (2, "presence_penalty", "high", _GEMINI_PENALTY),
        (2, "frequency_penalty", float("inf"), _GEMINI_PENALTY),
        (2, "presence_penalty", 2, _GEMINI_PENALTY),
        (2, "frequency_penalty", 2.0, _GEMINI_PENALTY),
    ],
    ids=[
        "openai-max_completion_tokens-zero",
        "openai-max_completion_tokens-float",
        "anthropic-top_k-zero",
        "gemini-top_k-text",
        "openai-presence_penalty-high",
        "openai-frequency_penalty-low",
        "openai-frequency_penalty-nan",
        "gemini-presence_penalty-text",
        "gemini-frequency_penalty-inf",
        "gemini-presence_penalty-2",
        "gemini-frequency_penalty-2",
    ],
)
def test_a_providers_agent_refuses_a_bad_option_of_its_own_where_it_is_bound(
    index: int, name: str, value: object, rule: str
) -> None:
    agent = _provider_agents()[index]
    given: dict[str, Any] = {name: value}
    with pytest.raises(LLMConfigurationError, match=f"needs {name} to be {rule}; got ") as refused:
        agent.fork(**given)
    assert refused.value.parameter == name
    good: dict[str, Any] = {name: {"top_k": 40, "max_completion_tokens": 100}.get(name, -2)}
    assert agent.fork(**good).bound_arguments[name] == good[name]


def test_openais_penalties_take_2_and_geminis_take_just_below_it() -> None:
    openai_agent_, _, gemini_agent = _provider_agents()[:3]
    for name in ("presence_penalty", "frequency_penalty"):
        top: dict[str, Any] = {name: 2}
        below: dict[str, Any] = {name: 1.99}
        assert openai_agent_.fork(**top).bound_arguments[name] == 2
        assert gemini_agent.fork(**below).bound_arguments[name] == 1.99


def test_every_sdk_providers_agent_refuses_a_bad_shared_sdk_option_where_it_is_bound() -> None:
    for agent in _provider_agents()[:5]:
        wrong: list[dict[str, Any]] = [{"top_p": 2}, {"max_retries": -1}, {"timeout": "soon"}]
        for given in wrong:
            with pytest.raises(LLMConfigurationError) as refused:
                agent.fork(**given)
            assert refused.value.parameter in given


def test_every_providers_agent_and_its_forks_pickle_with_plain_pickle() -> None:
    for agent in _provider_agents():
        fork = agent.fork(model="m", temperature=0.5)
        copied = pickle.loads(pickle.dumps(fork))
        assert type(copied) is type(fork)
        assert copied.alias == fork.alias
        assert dict(copied.bound_arguments) == {"model": "m", "temperature": 0.5}
        assert pickle.loads(pickle.dumps(agent)).alias == agent.alias


async def test_a_pickled_fork_of_the_offline_agent_answers() -> None:
    fork = pickle.loads(pickle.dumps(create_offline_agent(reply="x", token_delay=0)))
    async with MiniAgents():
        assert [str(reply) for reply in await fork.inquire("hi")] == ["x"]


async def test_the_sdk_missing_error_is_an_llm_error_and_an_import_error() -> None:
    assert issubclass(LLMSDKMissingError, LLMError)
    assert issubclass(LLMSDKMissingError, ImportError)


# -- the stall timeout -----------------------------------------------------------------------


async def test_a_stalled_reply_ends_with_an_llm_timeout_error(
    virtual_clock: VirtualClock,
) -> None:
    async with MiniAgents():
        agent = offline_agent.fork(model="slow-1", reply="a b c", token_delay=10.0)
        reply = agent.inquire("hi", stall_timeout=2.5)
        promise = await anext(aiter(reply))
        with pytest.raises(LLMTimeoutError) as raised:
            await promise
        with pytest.raises(LLMTimeoutError) as again:
            await reply
    assert again.value is raised.value
    assert virtual_clock.elapsed == pytest.approx(2.5)
    error = raised.value
    assert isinstance(error, LLMError)
    assert isinstance(error, MiniAgentsError)
    assert str(error) == (
        "The agent OFFLINE_AGENT stopped its call: the model 'slow-1' sent nothing for 2.5 "
        "seconds (its stall_timeout). Give it longer with offline_agent.fork(stall_timeout=...) "
        "or MiniAgents(llm_stall_timeout=...), or None to wait as long as it takes."
    )


async def test_the_stall_timeout_is_between_events_not_for_the_whole_reply(
    virtual_clock: VirtualClock,
) -> None:
    async with MiniAgents(llm_stall_timeout=1.5):
        message = (await offline_agent.inquire("x", reply="a b c d e f", token_delay=1.0))[0]
    assert message.text == "a b c d e f"
    assert virtual_clock.elapsed == pytest.approx(6.0)  # four times the stall timeout


@dataclass(frozen=True, kw_only=True)
class PacedOptions(LLMOptions):
    """The arguments of the paced test model.

    Attributes:
        pace: The reply: a token, or a number of seconds to wait, in order.
    """

    model: str | None = "paced"
    pace: tuple[str | float, ...] = ()


class PacedProvider:
    """A provider that streams its tokens at the times it is given (a test model)."""

    message_class = OfflineMessage

    async def reply(self, call: LLMCall, options: PacedOptions) -> AsyncIterator[LLMEvent]:
        for step in options.pace:
            if isinstance(step, str):
                yield step
            else:
                await asyncio.sleep(step)
        yield Finish("stop")

    def translate(self, error: BaseException) -> BaseException:
        return error


async def read_tokens(reply: MessageSequencePromise, tokens: list[str]) -> None:
    """Iterate the reply's messages and their tokens, keeping the tokens."""
    async for promise in reply:
        async for token in promise:
            tokens.append(token)


paced_agent = make_llm_agent(
    PacedOptions, PacedProvider(), alias="PACED_AGENT", summary="A model that takes its time."
)


async def test_a_provider_of_your_own_is_an_agent_with_exact_parameters() -> None:
    assert list(inspect.signature(paced_agent.func).parameters)[-1] == "pace"
    async with MiniAgents():
        message = (await paced_agent.inquire("x", pace=("a", 0.0, "b")))[0]
    assert type(message) is OfflineMessage
    assert message.text == "ab"
    assert message.model == "paced"
    assert message.agent_alias == "PACED_AGENT"
    assert message.finish_reason == "stop"
    with pytest.raises(AgentArgumentError, match="'paec'"):
        paced_agent.fork(paec=())


async def test_the_tokens_before_a_stall_reach_the_consumer_then_the_error(
    virtual_clock: VirtualClock,
) -> None:
    tokens: list[str] = []
    async with MiniAgents():
        reply = paced_agent.inquire("x", pace=("Hel", 1.0, "lo", 100.0, "!"), stall_timeout=5.0)
        with pytest.raises(LLMTimeoutError, match="sent nothing for 5 seconds"):
            await read_tokens(reply, tokens)
    assert tokens == ["Hel", "lo"]
    assert virtual_clock.elapsed == pytest.approx(6.0)  # the second token came at 1 s


@pytest.mark.parametrize(
    ("outer", "inner", "agent", "stalls"),
    [
        (None, None, None, False),  # no setting: the default, 60 s > the 30 s delay
        (10.0, None, None, True),  # an outer context's setting is inherited
        (10.0, 100.0, None, False),  # an inner context overrides it
        (10.0, None, 100.0, False),  # the agent's own setting wins
        (100.0, None, 10.0, True),
        (10.0, None, "none", False),  # None on the agent: no limit, whatever the context says
        (10.0, "none", None, False),  # None on the context
    ],
)
async def test_the_stall_timeout_comes_from_the_agent_else_the_contexts(
    virtual_clock: VirtualClock,
    outer: float | None,
    inner: float | str | None,
    agent: float | str | None,
    stalls: bool,
) -> None:
    def setting(value: float | str | None) -> dict[str, object]:
        return {} if value is None else {"llm_stall_timeout": None if value == "none" else value}

    slow = offline_agent.fork(reply="done", token_delay=30.0)
    if agent is not None:
        slow = slow.fork(stall_timeout=None if agent == "none" else agent)  # type: ignore[arg-type]
    async with MiniAgents(**setting(outer)), MiniAgents(**setting(inner)):  # type: ignore[arg-type]
        reply = slow.inquire("x")
        if stalls:
            with pytest.raises(LLMTimeoutError):
                await reply
        else:
            assert str(await reply) == "done"


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True, "10"])
async def test_a_stall_timeout_that_is_not_a_positive_number_is_refused(bad: object) -> None:
    async with MiniAgents():
        with pytest.raises(
            LLMConfigurationError, match="needs stall_timeout to be a positive number of seconds"
        ):
            await offline_agent.inquire("x", stall_timeout=bad, token_delay=0.0)  # type: ignore[arg-type]
    # (was: taken by MiniAgents(), and refused only at the first LLM call)
    with pytest.raises(
        ContextArgumentError,
        match=r"MiniAgents\(\) needs llm_stall_timeout to be a positive number of seconds; "
        r".* Pass e\.g\. llm_stall_timeout=60, or None",
    ) as refused:
        MiniAgents(llm_stall_timeout=bad)  # type: ignore[arg-type]
    assert refused.value.parameter == "llm_stall_timeout"
    async with with_settings(MiniAgents(), {"llm_stall_timeout": bad}):  # (the call's own check)
        with pytest.raises(LLMConfigurationError, match=r"MiniAgents\(llm_stall_timeout=\.\.\.\)"):
            await offline_agent.inquire("x", token_delay=0.0)


async def test_parsing_in_turn_is_off_unless_a_context_turns_it_on() -> None:
    assert LLMSettings().llm_parse_in_turn is False
    async with MiniAgents():
        assert llm_settings().llm_parse_in_turn is False
    async with MiniAgents(llm_parse_in_turn=True):
        assert llm_settings().llm_parse_in_turn is True
        async with MiniAgents():  # inherited
            assert llm_settings().llm_parse_in_turn is True
            replies = [
                offline_agent.inquire("x", reply=f"ok {i}", token_delay=0.0) for i in range(3)
            ]
            assert [str(await reply) for reply in replies] == ["ok 0", "ok 1", "ok 2"]
        async with MiniAgents(llm_parse_in_turn=False):
            assert llm_settings().llm_parse_in_turn is False


@pytest.mark.parametrize("bad", ["yes", 1])
def test_a_parse_in_turn_that_is_not_a_bool_is_refused(bad: object) -> None:
    with pytest.raises(
        ContextArgumentError,
        match=r"MiniAgents\(\) needs llm_parse_in_turn to be True or False; got " + repr(bad),
    ):
        MiniAgents(llm_parse_in_turn=bad)  # type: ignore[arg-type]


async def test_an_infinite_stall_timeout_means_none(virtual_clock: VirtualClock) -> None:
    # A gap of 1,000 s between tokens, far past the default 60 s, is no stall. (A longer one
    # proves no more and costs more: the deadlock watch wakes each second of the clock.)
    assert LLMSettings().llm_stall_timeout == 60.0
    async with MiniAgents(llm_stall_timeout=float("inf")):
        assert str(await offline_agent.inquire("x", reply="ok", token_delay=1e3)) == "ok"


async def test_a_cancellation_at_the_moment_of_a_stall_stays_a_cancellation(
    virtual_clock: VirtualClock,
) -> None:
    # The watch's timer and another cancellation fall due together: the task was cancelled
    # by someone else too, so it must end cancelled, not with an LLMTimeoutError.
    async def watched() -> None:
        with StallWatch(1.0, lambda: LLMTimeoutError("stalled")):
            await asyncio.sleep(10)

    loop = asyncio.get_running_loop()
    alone = asyncio.create_task(watched())
    await asyncio.sleep(0)
    with pytest.raises(LLMTimeoutError, match="stalled"):
        await alone

    task = asyncio.create_task(watched())
    await asyncio.sleep(0)  # the watch's timer is set (at the virtual time + 1)
    loop.call_at(loop.time() + 1.0, task.cancel)  # set after it: runs right after it
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_watched_stream_stalls_only_while_its_reader_waits_for_it(
    virtual_clock: VirtualClock,
) -> None:
    async def paced(*pace: str | float) -> AsyncIterator[str]:
        for step in pace:
            if isinstance(step, str):
                yield step
            else:
                await asyncio.sleep(step)

    def stalled() -> LLMTimeoutError:
        return LLMTimeoutError("stalled")

    seen: list[str] = []
    async for token in stall_watched(paced("a", 0.5, "b"), 1.0, stalled):
        seen.append(token)
        await asyncio.sleep(5.0)  # the reader's own work: not the stream's stall
    assert seen == ["a", "b"]
    assert virtual_clock.elapsed == pytest.approx(10.5)

    async def read(tokens: list[str]) -> None:  # in another task: the one the watch stops
        async for token in stall_watched(paced("a", 0.5, "b", 10.0, "c"), 1.0, stalled):
            tokens.append(token)

    tokens: list[str] = []
    with pytest.raises(LLMTimeoutError, match="stalled"):
        await asyncio.create_task(read(tokens))
    assert tokens == ["a", "b"]
    assert virtual_clock.elapsed == pytest.approx(10.5 + 1.5)


def test_a_typed_option_goes_in_extra_body_when_the_sdk_does_not_name_it() -> None:
    def lacks(*, model: str, messages: object, max_tokens: int, extra_body: object = None) -> None:
        """An SDK's create() without temperature (as anthropic 2.x's)."""

    def has(
        *,
        model: str,
        messages: object,
        max_tokens: int,
        temperature: float | None = None,
        extra_body: object = None,
    ) -> None:
        """An SDK's create() with temperature (as anthropic 0.x's)."""

    options = AnthropicOptions(temperature=0.5, extra_options={"extra_body": {"x": 1}})
    assert sdk_arguments(lacks, options, "S") == {
        "max_tokens": 4096,
        "extra_body": {"x": 1, "temperature": 0.5},
    }
    assert sdk_arguments(has, options, "S") == {
        "max_tokens": 4096,
        "temperature": 0.5,
        "extra_body": {"x": 1},
    }


@dataclass(frozen=True, kw_only=True)
class _UsersOptions(LLMOptions):
    """A user's provider's options, in a module that imports none of what LLMOptions names."""

    depth: int = 1


def test_the_init_of_a_users_options_class_has_annotations_that_resolve() -> None:
    """``typing.get_type_hints`` (``validate_call``, FastAPI...) reads the ``__init__`` a
    dataclass makes in the module of the subclass: LLMOptions' fields used to be strings
    there (``Literal[Sentinel.DEFAULT]``, ``Budget``), a ``NameError``."""
    hints = typing.get_type_hints(_UsersOptions.__init__)
    assert hints == {**typing.get_type_hints(LLMOptions), "depth": int, "return": type(None)}
