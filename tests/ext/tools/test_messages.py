"""``ToolCallMessage`` and ``ToolResultMessage``: typed, frozen messages with JSON text."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

import miniagents
from miniagents import Message, MiniAgents
from miniagents.errors import FrozenInstanceError
from miniagents.ext.tools import ToolCallMessage, ToolResultMessage
from miniagents.messages import MessageTokenAppender
from miniagents.promising import FrozenDict


def test_a_call_made_of_arguments_has_their_json_as_its_text() -> None:
    call = ToolCallMessage(tool_name="add", arguments={"a": 1, "b": [2, 3]}, call_id="c1")
    assert str(call) == '{"a": 1, "b": [2, 3]}'
    assert isinstance(call.arguments, FrozenDict)
    assert call.arguments == {"a": 1, "b": (2, 3)}
    assert (call.tool_name, call.call_id, call.role, call.arguments_error) == (
        "add",
        "c1",
        "assistant",
        None,
    )
    assert isinstance(call, Message)
    with pytest.raises(FrozenInstanceError):
        call.arguments["a"] = 2  # a FrozenDict (narrowed above), frozen all the same
    with pytest.raises(FrozenInstanceError):
        call.tool_name = "sub"  # type: ignore[misc]


def test_a_call_made_of_text_parses_its_arguments() -> None:
    call = ToolCallMessage(tool_name="add", text='{"a": 1, "b": 2}', call_id="c1")
    assert call.arguments == {"a": 1, "b": 2}
    assert call.arguments_error is None
    empty = ToolCallMessage(tool_name="now", text="", call_id="c2")
    assert (empty.arguments, empty.arguments_error) == ({}, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": 1', "The arguments are not valid JSON (Expecting ',' delimiter"),
        ("[1, 2]", "The arguments must be a JSON object, not list."),
        # each of these raised out of the message (a bare RecursionError, a pydantic
        # ValidationError) and failed the whole reply, or (NaN) gave arguments that no JSON
        # holds, which a history file then refused to store
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "The arguments are not valid JSON: they nest"),
        ('{"a": ' + "1" * 5000 + "}", "The arguments hold a number of too many digits"),
        ('{"a": NaN}', "The arguments are not valid JSON: NaN is not a JSON number."),
        ('{"a": -Infinity}', "The arguments are not valid JSON: -Infinity is not a JSON number."),
    ],
)
def test_a_call_whose_text_is_not_a_json_object_says_why(text: str, problem: str) -> None:
    call = ToolCallMessage(tool_name="add", text=text, call_id="c1")
    assert call.arguments == {}
    assert call.arguments_error is not None
    assert call.arguments_error.startswith(problem)
    assert str(call) == text  # what the model sent is kept


@pytest.mark.parametrize("innermost", ["1", "[]", "{}"])
def test_arguments_may_nest_100_levels_and_no_more(innermost: str) -> None:
    def call(levels: int) -> ToolCallMessage:  # the arguments' object is the first level
        lists = levels - (1 if innermost == "1" else 2)  # an empty [] or {} is a level too
        inside = "[" * lists + innermost + "]" * lists
        return ToolCallMessage(tool_name="add", text='{"a": ' + inside + "}", call_id="c1")

    assert call(100).arguments_error is None
    assert call(101).arguments_error == (
        "The arguments are not valid JSON: they nest too deeply to be read."
    )


async def test_a_streamed_call_parses_its_arguments_when_it_is_complete() -> None:
    async with MiniAgents():
        appender = MessageTokenAppender(
            message_class=ToolCallMessage, tool_name="weather", call_id="call_7"
        )
        for delta in ['{"ci', 'ty": "Par', 'is"}']:
            appender.append(delta)
        appender.complete()
        tokens = [token async for token in appender.promise]
        call = await appender.promise
    assert tokens == ['{"ci', 'ty": "Par', 'is"}']
    assert isinstance(call, ToolCallMessage)
    assert call.arguments == {"city": "Paris"}
    assert call.call_id == "call_7"


def test_tool_messages_round_trip_through_json_and_hash_by_content() -> None:
    call = ToolCallMessage(tool_name="add", arguments={"a": 1}, call_id="c1")
    result = ToolResultMessage(text="2", tool_name="add", call_id="c1", is_error=False)
    assert ToolCallMessage.model_validate_json(call.model_dump_json()) == call
    assert ToolResultMessage.model_validate_json(result.model_dump_json()) == result
    assert call.hash_key == ToolCallMessage(text='{"a": 1}', tool_name="add", call_id="c1").hash_key
    assert (result.role, result.is_error) == ("tool", False)
    failed = ToolResultMessage(text="no", tool_name="add", call_id="c1", is_error=True)
    assert failed != result


def test_tool_messages_need_their_fields() -> None:
    with pytest.raises(ValidationError, match="call_id"):
        ToolCallMessage(tool_name="add", arguments={})  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="tool_name"):
        ToolResultMessage(text="x", call_id="c1")  # type: ignore[call-arg]


def test_a_result_always_has_text_empty_when_none_was_given() -> None:
    # its text is a str (typed so): a result made without text, or with None (as an older
    # release stored one), has "" as its text, and str() of it is that text, not its fields
    stored = '{"text": null, "tool_name": "add", "call_id": "c1"}'
    for result in [
        ToolResultMessage(tool_name="add", call_id="c1"),
        ToolResultMessage(text=None, tool_name="add", call_id="c1"),  # type: ignore[arg-type]
        ToolResultMessage.model_validate({"text": None, "tool_name": "add", "call_id": "c1"}),
        ToolResultMessage.model_validate_json(stored),
    ]:
        assert result.text == ""
        assert str(result) == ""
        assert result == ToolResultMessage(text="", tool_name="add", call_id="c1")
    with pytest.raises(ValidationError, match="text"):
        ToolResultMessage(text=1, tool_name="add", call_id="c1")  # type: ignore[arg-type]


async def test_every_way_the_library_makes_a_result_gives_it_text() -> None:
    # a copy with text=None validates too (Frozen's model_copy), and a result streamed with
    # no token at all joins none: "" either way
    result = ToolResultMessage(text="5", tool_name="add", call_id="c1")
    assert result.model_copy(update={"text": None}).text == ""
    async with MiniAgents():
        appender = MessageTokenAppender(
            message_class=ToolResultMessage, tool_name="add", call_id="c1"
        )
        with appender:
            pass
        assert (await appender.promise).text == ""


def test_model_construct_skips_the_text_check_as_the_docstring_says() -> None:
    # pydantic's model_construct validates nothing, by design: a result so made keeps its
    # None, which the class's docstring says (with the way out); no module of the library
    # makes a result so (nor any message: every message it makes is validated)
    built = ToolResultMessage.model_construct(text=None, tool_name="add", call_id="c1")
    text: object = built.text  # (a str, to mypy: what the docstring warns of)
    assert text is None
    assert ToolResultMessage.model_validate(built.model_dump()).text == ""
    assert "model_construct" in (ToolResultMessage.__doc__ or "")
    package = Path(miniagents.__file__).parent
    calling = [
        f"{path.relative_to(package).as_posix()}:{node.lineno}"
        for path in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "model_construct"
    ]
    assert calling == []
