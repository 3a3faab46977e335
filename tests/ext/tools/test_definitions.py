"""Defining tools: names, descriptions and JSON schemas of functions, agents and ``Tool``s."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, cast

import pytest
from pydantic import BaseModel, Field

from miniagents import InteractionContext, miniagent
from miniagents.errors import ArgumentError, MiniAgentsError
from miniagents.ext.tools import (
    AgentTool,
    FunctionTool,
    Tool,
    ToolCallError,
    ToolDefinitionError,
    ToolError,
    ToolNameConflictError,
    ToolSet,
    as_tool,
)
from miniagents.ext.tools._docstrings import parse_docstring
from miniagents.miniagents.lowlevel import docstring_of


class Unit(Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


class Place(BaseModel):
    city: str
    country: str = "FR"


def get_weather(
    place: Place,
    unit: Unit = Unit.CELSIUS,
    days: Annotated[int, Field(ge=1, le=7, description="From the annotation.")] = 1,
    detail: Literal["short", "long"] = "short",
) -> str:
    """Get the weather forecast for a place.

    The forecast comes from a weather service.

    Args:
        place: Where to look, e.g.
            {"city": "Paris"}.
        unit: The unit of the temperatures.
        days: From the docstring (the annotation's description wins).

    Returns:
        The forecast, as text.
    """
    return f"{place.city}: sunny"


@miniagent
async def researcher(
    ctx: InteractionContext, question: str, depth: int = 1, style: str = "plain"
) -> None:
    """Research a question and report.

    Args:
        ctx: The interaction.
        question: What to research.
        depth: How many sources to read.
        style: How to write the report.
    """
    ctx.reply(f"{question} ({depth}, {style})")


def properties(tool: Tool) -> dict[str, object]:
    """The ``properties`` of a tool's schema."""
    found = tool.parameters["properties"]
    assert isinstance(found, dict)
    return found


def descriptions(tool: Tool) -> dict[str, object]:
    """The description of each property of a tool's schema (``None`` for one without)."""
    return {
        name: cast(dict[str, object], field).get("description")
        for name, field in properties(tool).items()
    }


def test_a_function_tool_is_named_described_and_typed_by_its_definition() -> None:
    tool = as_tool(get_weather)
    assert isinstance(tool, FunctionTool)
    assert tool.name == "get_weather"
    assert tool.description == (
        "Get the weather forecast for a place.\n\n"
        "The forecast comes from a weather service.\n\n"
        "Returns:\n    The forecast, as text."
    )
    assert tool.parameters == {
        "$defs": {
            "Place": {
                "properties": {
                    "city": {"type": "string"},
                    "country": {"default": "FR", "type": "string"},
                },
                "required": ["city"],
                "title": "Place",
                "type": "object",
            },
            "Unit": {"enum": ["C", "F"], "title": "Unit", "type": "string"},
        },
        "additionalProperties": False,
        "properties": {
            "place": {
                "$ref": "#/$defs/Place",
                "description": 'Where to look, e.g. {"city": "Paris"}.',
            },
            "unit": {
                "$ref": "#/$defs/Unit",
                "default": "C",
                "description": "The unit of the temperatures.",
            },
            "days": {
                "default": 1,
                "description": "From the annotation.",
                "maximum": 7,
                "minimum": 1,
                "type": "integer",
            },
            "detail": {"default": "short", "enum": ["short", "long"], "type": "string"},
        },
        "required": ["place"],
        "type": "object",
    }


def test_an_agent_tool_shows_the_parameters_after_ctx_except_the_bound_ones() -> None:
    tool = as_tool(researcher.fork(style="bullets"))
    assert isinstance(tool, AgentTool)
    assert tool.name == "RESEARCHER"
    assert tool.description == "Research a question and report."
    assert tool.parameters == {
        "additionalProperties": False,
        "properties": {
            "question": {"description": "What to research.", "type": "string"},
            "depth": {"default": 1, "description": "How many sources to read.", "type": "integer"},
        },
        "required": ["question"],
        "type": "object",
    }
    typed = as_tool(researcher.bind(question="Why?", depth=3))
    assert set(properties(typed)) == {"style"}


def test_names_and_descriptions_can_be_given_and_agents_keep_theirs() -> None:
    assert FunctionTool(get_weather, name="weather", description="Forecasts.").name == "weather"
    forked = researcher.fork(alias="web research", description="Search the web.\n\nArgs:\n  x: y")
    tool = AgentTool(forked)
    assert (tool.name, tool.description) == ("web_research", "Search the web.")
    assert AgentTool(researcher, name="R2", description="").description == ""


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("get weather", "get_weather"),
        ("météo/today", "m_t_o_today"),
        ("a.b-c_d", "a_b-c_d"),
        ("x" * 64, "x" * 64),
    ],
)
def test_names_are_made_valid_for_the_providers(given: str, expected: str) -> None:
    def tool() -> str:
        return ""

    assert FunctionTool(tool, name=given).name == expected


def test_a_long_name_keeps_its_start_and_a_hash_so_long_names_stay_distinct() -> None:
    def tool() -> str:
        return ""

    first = FunctionTool(tool, name="a" * 70 + "1").name
    second = FunctionTool(tool, name="a" * 70 + "2").name
    assert len(first) == len(second) == 64
    assert first.startswith("a" * 55 + "_")
    assert first != second
    assert first == FunctionTool(tool, name="a" * 70 + "1").name  # deterministic


def test_two_tools_of_one_name_in_a_set_are_a_clear_error() -> None:
    def search(query: str) -> str:
        return query

    with pytest.raises(ToolNameConflictError, match=r"Two tools are named 'search'.*Rename one"):
        ToolSet([search, FunctionTool(get_weather, name="search")])
    with pytest.raises(ToolNameConflictError, match="'RESEARCHER'"):
        ToolSet([researcher, researcher.fork(depth=2)])
    assert len(ToolSet([researcher, researcher.fork(alias="DEEP", depth=2)])) == 2


async def untyped(city) -> str:  # type: ignore[no-untyped-def]  # noqa: ANN001
    return str(city)


def takes_an_event(event: asyncio.Event) -> None:
    event.set()


def takes_a_callback(callback: Callable[[int], int]) -> int:
    return callback(1)


def takes_args(*cities: str) -> str:
    return ",".join(cities)


def counts() -> Any:
    yield 1


class Counter:
    def __call__(self) -> Any:
        yield 1


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        (untyped, r"The parameter 'city' of the tool untyped has no type annotation.*`city: str`"),
        (takes_an_event, r"pydantic cannot validate \(event: Event\)"),
        (takes_a_callback, r"type with no JSON schema \(callback: .*Callable"),
        (takes_args, r"extra positional arguments \(\*cities\).*`cities: list\[str\]`"),
        (counts, r"is a \(sync\) generator.*async generator"),
        (Counter(), r"The tool function Counter is a \(sync\) generator"),  # (was: run)
        (42, r"42 cannot be a tool"),
        (Place, r"cannot be a tool"),
    ],
)
def test_what_cannot_be_a_tool_is_refused_when_it_is_defined(tool: Any, message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message) as raised:
        as_tool(tool)
    assert isinstance(raised.value, (ToolError, MiniAgentsError, TypeError))


def test_an_agent_parameter_of_an_unsupported_type_can_be_hidden_by_binding_it() -> None:
    @miniagent
    async def waiter(ctx: InteractionContext, topic: str, ready: asyncio.Event) -> None:
        await ready.wait()

    with pytest.raises(ToolDefinitionError, match=r"\(ready: Event\).*or bind that parameter"):
        as_tool(waiter)
    assert list(properties(as_tool(waiter.fork(ready=asyncio.Event())))) == ["topic"]


def test_kwargs_are_left_out_and_unknown_arguments_are_refused() -> None:
    def flexible(query: str, **options: str) -> str:
        return query

    tool = as_tool(flexible)
    assert tool.parameters == {
        "additionalProperties": False,
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
        "type": "object",
    }


def test_any_parameter_name_works_even_one_pydantic_reserves() -> None:
    def odd(json: str, _private: int = 0, model_config: bool = False) -> str:
        return json

    tool = as_tool(odd)
    assert list(properties(tool)) == ["json", "_private", "model_config"]
    assert tool.validate({"json": "x", "_private": 2}) == {
        "json": "x",
        "_private": 2,
        "model_config": False,
    }


def test_partials_async_generators_and_callable_objects_are_function_tools() -> None:
    async def ticker(prefix: str, count: int) -> AsyncIterator[str]:
        """Count aloud."""
        for index in range(count):
            yield f"{prefix}{index}"

    class Doubler:
        def __call__(self, value: float) -> float:
            return value * 2

    partial = functools.partial(ticker, "#")
    assert as_tool(partial).parameters["required"] == ["count"]
    assert as_tool(partial).name == "ticker"
    assert as_tool(ticker).description == "Count aloud."
    # a callable object runs as a tool, but mypy cannot tell one from a class (which is no
    # tool), so ToolLike accepts functions only: the bound `Doubler().__call__` types well
    assert properties(as_tool(Doubler())) == {"value": {"type": "number"}}  # type: ignore[call-overload]


def test_a_partial_is_described_by_its_function_not_by_functools() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    tool = as_tool(functools.partial(functools.partial(add), b=1))
    # (was: "partial(func, *args, **keywords) - new function with partial application...")
    assert (tool.name, tool.description) == ("add", "Add two numbers.")


async def test_a_partials_bound_keywords_are_left_out_of_the_schema_and_kept_fixed() -> None:
    def send(to: str, text: str, *, urgent: bool = False) -> str:
        return f"{to}:{text}:{urgent}"

    tool = as_tool(functools.partial(send, to="ops", urgent=True))
    # (was: "to" and "urgent" in the schema, with the bound values as defaults, which the
    # model could override)
    assert properties(tool) == {"text": {"type": "string"}}
    with pytest.raises(ToolCallError):
        tool.validate({"text": "hi", "to": "everyone"})
    replies = [piece async for piece in tool.run(tool.validate({"text": "hi"}))]
    assert replies == ["ops:hi:True"]


def test_a_callable_object_is_described_by_its_call_method_else_by_its_class() -> None:
    class Converter:
        """Holds the exchange rates."""

        def __call__(self, amount: float) -> float:
            """Convert euros to dollars.

            Args:
                amount: The euros.
            """
            return amount * 1.1

    class Doubler:
        """Doubles numbers."""

        def __call__(self, value: float) -> float:
            return value * 2

    converter = as_tool(Converter())  # type: ignore[call-overload]
    # (was: "Holds the exchange rates.", and no description of the argument)
    assert converter.description == "Convert euros to dollars."
    assert properties(converter) == {"amount": {"type": "number", "description": "The euros."}}
    assert as_tool(Doubler()).description == "Doubles numbers."  # type: ignore[call-overload]


class Weather(BaseModel):
    city: str


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({"parameters": Weather}, r"The parameters of the tool clock must be a JSON schema as a"),
        ({"parameters": '{"type": "object"}'}, r"a JSON schema as a dict, not '\{"),
        ({"description": None}, r"The description of the tool clock must be a str, not None\."),
    ],
)
def test_an_explicit_tools_schema_or_description_of_the_wrong_kind_is_refused(
    given: dict[str, Any], refused: str
) -> None:
    class Clock(Tool):
        async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
            yield "12:00"

    # (was: TypeError: 'ModelMetaclass' object is not iterable; ValueError: dictionary
    # update sequence element #0 has length 1; 2 is required; None taken as the description)
    with pytest.raises(ToolDefinitionError, match=refused):
        Clock(name="clock", **given)


def test_an_explicit_tool_keeps_its_own_schema_and_a_set_looks_tools_up_by_name() -> None:
    class Clock(Tool):
        async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
            yield "12:00"

    clock = Clock(name="clock.now", description="The time.")
    assert as_tool(clock) is clock
    assert clock.parameters == {"type": "object", "properties": {}}
    schema = {"type": "object", "properties": {"tz": {"type": "string"}}}
    zoned = Clock(name="zoned", parameters=schema)
    assert zoned.parameters == schema
    tools = ToolSet([clock, zoned, get_weather])
    assert [tool.name for tool in tools] == ["clock_now", "zoned", "get_weather"]
    assert tools["zoned"] is zoned
    assert "clock_now" in tools
    assert "clock.now" not in tools
    assert repr(tools) == "<ToolSet ['clock_now', 'zoned', 'get_weather']>"
    assert repr(clock) == "<Clock clock_now>"


def test_a_tool_without_a_name_is_refused() -> None:
    def tool() -> str:
        return ""

    with pytest.raises(ToolDefinitionError, match="empty name"):
        FunctionTool(tool, name="")


def test_unresolvable_annotations_are_a_definition_error() -> None:
    def later(value: NotDefinedAnywhere) -> str:  # type: ignore[name-defined]  # noqa: F821
        return str(value)

    with pytest.raises(ToolDefinitionError, match="cannot be resolved"):
        as_tool(later)


def test_a_google_docstring_is_split_into_its_description_and_arguments() -> None:
    doc = parse_docstring(
        "Summary.\n\nBody.\n\nArgs:\n    a (int): First,\n        wrapped.\n"
        "    *args: Extra.\n    **kwargs: More.\n\nRaises:\n    ValueError: when bad.\n"
        "\nKeyword Arguments:\n    b: Second.\n"
    )
    assert doc.description == "Summary.\n\nBody.\n\nRaises:\n    ValueError: when bad."
    assert doc.arguments == {
        "a": "First, wrapped.",
        "args": "Extra.",
        "kwargs": "More.",
        "b": "Second.",
    }
    assert parse_docstring(None).description == ""
    assert parse_docstring("Just this.").arguments == {}


def test_an_other_parameters_section_describes_its_arguments_too() -> None:
    # (was: "Other Parameters:" was left in the description, and its arguments undescribed)
    def search(query: str, limit: int = 10, strict: bool = False) -> str:
        """Search the notes.

        Args:
            query: What to look for.

        Other Parameters:
            limit: The most notes to return.
            strict: Match whole words only.

        Returns:
            The notes found.
        """
        return query

    tool = as_tool(search)
    assert tool.description == "Search the notes.\n\nReturns:\n    The notes found."
    assert descriptions(tool) == {
        "query": "What to look for.",
        "limit": "The most notes to return.",
        "strict": "Match whole words only.",
    }


def test_type_hints_come_from_the_callable_itself_not_from_any_func_attribute() -> None:
    # (was: getattr(func, "func", func): an object with a .func attribute was described by
    # the hints of that attribute, not by its own __call__)
    def other(unrelated: int) -> int:
        return unrelated

    class Handler:
        func = staticmethod(other)

        def __call__(self, text: str) -> str:
            return text

    assert properties(FunctionTool(Handler())) == {"text": {"type": "string"}}

    # a partial (of a partial) is still read through, to the function it calls
    def add(a: int, b: float) -> float:
        return a + b

    nested = functools.partial(functools.partial(add), 1)
    assert properties(FunctionTool(nested)) == {"b": {"type": "number"}}


def test_an_agent_tool_reads_its_arguments_from_a_partials_or_a_call_methods_docstring() -> None:
    # (was: inspect.getdoc(agent.func): a partial's was functools.partial's own docstring,
    # and a class-based agent's its class's, so their arguments had no descriptions)
    async def greet(ctx: InteractionContext, name: str, loud: bool = False) -> None:
        """Greet someone.

        Args:
            name: Whom to greet.
            loud: Shout it.
        """
        ctx.reply(name)

    class Greeter:
        """Greets people."""

        async def __call__(self, ctx: InteractionContext, name: str) -> None:
            """Greet someone.

            Args:
                name: Whom to greet.
            """
            ctx.reply(name)

    of_partial = AgentTool(miniagent(functools.partial(greet, loud=True)))
    assert descriptions(of_partial) == {"name": "Whom to greet."}
    assert descriptions(AgentTool(miniagent(Greeter()))) == {"name": "Whom to greet."}
    assert descriptions(AgentTool(miniagent(greet))) == {
        "name": "Whom to greet.",
        "loud": "Shout it.",
    }
    # a partial's keywords are fixed, as fork's are: not the model's to change
    with pytest.raises(ToolCallError):
        of_partial.validate({"name": "Ada", "loud": False})


def test_a_callable_object_is_described_by_one_rule_as_an_agent_and_as_a_tool() -> None:
    # (was: an agent took its class's docstring, a tool its __call__'s: the agent of an
    # object whose __call__ alone had one had no description, and the tool of that agent
    # was described by the class while its arguments came from the __call__)
    class Greeter:
        """Keeps the greetings."""

        async def __call__(self, ctx: InteractionContext, name: str) -> None:
            """Greet someone.

            Args:
                name: Whom to greet.
            """
            ctx.reply(name)

    class Quiet:
        async def __call__(self, ctx: InteractionContext, name: str) -> None:
            """Say a name."""
            ctx.reply(name)

    class Plain:
        """Says a name."""

        async def __call__(self, ctx: InteractionContext, name: str) -> None:
            ctx.reply(name)

    # (the function tool of such an object: see the test of a callable object above)
    for agent, said in [
        (miniagent(Greeter()), "Greet someone."),
        (miniagent(Quiet()), "Say a name."),
        (miniagent(Plain()), "Says a name."),
    ]:
        assert parse_docstring(agent.description).description == said
        assert AgentTool(agent).description == said


class _Base:
    """A base for many agents, not a description of any."""

    async def __call__(self, ctx: InteractionContext, name: str) -> None:
        """The base's call, overridden by each agent."""


class _Undocumented(_Base):
    async def __call__(self, ctx: InteractionContext, name: str) -> None:
        ctx.reply(name)


class _Described(_Base):
    """Says a name."""

    async def __call__(self, ctx: InteractionContext, name: str) -> None:
        ctx.reply(name)


class _Inheriting(_Base):
    pass  # (its call is the base's: described by that call's own docstring)


def test_a_callable_object_is_never_described_by_a_base_classs_docstring() -> None:
    # (was: inspect.getdoc's rule, a class without a docstring took its nearest base's, and
    # a __call__ without one the docstring of the __call__ it overrides: the model read text
    # written for another class as the agent's or the tool's description; the classes are
    # the module's, as a user's are, for getdoc finds a base's method by its qualified name)
    undocumented = miniagent(_Undocumented())
    assert undocumented.description is None
    assert AgentTool(undocumented).description == ""
    assert miniagent(_Described()).description == "Says a name."
    assert miniagent(_Inheriting()).description == "The base's call, overridden by each agent."
    assert docstring_of(_Undocumented) is None  # (a class's own docstring: none)
    assert docstring_of(_Described) == "Says a name."


class _Speaker:
    """Speaks."""

    async def speak(self, ctx: InteractionContext, name: str) -> None:
        """The base's way to speak, overridden by each speaker."""

    def shout(self, text: str) -> str:
        """Shout a text, the base's way.

        Args:
            text: What the base shouts.
        """
        return text.upper()


class _PlainSpeaker(_Speaker):
    async def speak(self, ctx: InteractionContext, name: str) -> None:
        ctx.reply(name)

    def shout(self, text: str) -> str:
        return text


def test_a_method_is_never_described_by_the_docstring_of_the_method_it_overrides() -> None:
    # (was: inspect.getdoc(method): a bound method without a docstring took the overridden
    # base method's, so the model read the base's purpose (and its Args:) as the agent's or
    # the tool's description)
    plain = _PlainSpeaker()
    assert docstring_of(plain.shout) is None
    assert docstring_of(plain.speak) is None
    assert miniagent(plain.speak).description is None
    assert AgentTool(miniagent(plain.speak)).description == ""
    tool = FunctionTool(plain.shout)
    assert tool.description == ""
    assert (
        "description"
        not in cast(dict[str, dict[str, object]], tool.parameters["properties"])["text"]
    )
    assert miniagent(_Undocumented().__call__).description is None
    # (a method's own docstring is still its description)
    assert miniagent(_Speaker().speak).description == (
        "The base's way to speak, overridden by each speaker."
    )
    assert FunctionTool(_Speaker().shout).description == "Shout a text, the base's way."


@dataclass
class _DataAgent:
    greeting: str
    times: int = 1

    async def __call__(self, ctx: InteractionContext, name: str) -> None:
        ctx.reply(f"{self.greeting}, {name}" * self.times)


@dataclass
class _DescribedDataAgent:
    """Greets someone."""

    greeting: str

    async def __call__(self, ctx: InteractionContext, name: str) -> None:
        ctx.reply(f"{self.greeting}, {name}")


def test_a_dataclass_is_not_described_by_the_signature_dataclass_writes_for_it() -> None:
    # (was: @dataclass writes "_DataAgent(greeting: str, times: int = 1)" into the __doc__
    # of a class without one, and that signature became the agent's and its tool's
    # description)
    assert str(_DataAgent.__doc__).startswith("_DataAgent(greeting: ")  # (what it wrote)
    agent = miniagent(_DataAgent("Hello"))
    assert agent.description is None
    assert AgentTool(agent).description == ""
    assert docstring_of(_DataAgent) is None
    assert docstring_of(_DataAgent("Hello")) is None
    # (a docstring of the user's own still describes it)
    assert miniagent(_DescribedDataAgent("Hi")).description == "Greets someone."


def test_an_argument_whose_type_holds_parentheses_keeps_its_own_description() -> None:
    # "b (tuple(int, int)): ..." was not read as an entry: b's text went to a, b had none
    def move(a: str, b: tuple[int, int], c: int = 0) -> str:
        """Move a piece.

        Args:
            a (str): The piece.
            b (tuple(int, int)): Where to, as (row, column).
            c (Optional(Dict(str, int))): How fast.
        """
        return a

    properties = cast(dict[str, dict[str, object]], as_tool(move).parameters["properties"])
    assert properties["a"]["description"] == "The piece."
    assert properties["b"]["description"] == "Where to, as (row, column)."
    assert properties["c"]["description"] == "How fast."


def test_an_agent_shows_its_bound_arguments_read_only() -> None:
    forked = researcher.fork(style="bullets").bind(question="Why?")
    assert forked.bound_arguments == {"style": "bullets", "question": "Why?"}
    assert researcher.bound_arguments == {}
    with pytest.raises(TypeError):
        forked.bound_arguments["style"] = "plain"  # type: ignore[index]


@pytest.mark.parametrize("rule", ["no", 1, None, "yes"])
def test_requires_approval_that_is_neither_a_bool_nor_a_predicate_is_refused(rule: object) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    refused = r"The tool add needs requires_approval to be True or False; got "
    with pytest.raises(ArgumentError, match=refused):
        FunctionTool(add, requires_approval=rule)  # type: ignore[arg-type]
    assert FunctionTool(add, requires_approval=lambda arguments: True).needs_approval({"a": 1})
