"""Tests for ``Message``: an immutable message with optional text and metadata."""

from __future__ import annotations

import inspect
import json
import pickle
import subprocess
import sys
from collections.abc import Awaitable
from typing import Any

import pydantic
import pytest

import miniagents
from miniagents.messages import Message
from miniagents.promising import Frozen, FrozenDict
from miniagents.promising.errors import FrozenInstanceError
from tests.subprocesses import ROOT, python_env


class CustomMessage(Message):
    custom_field: str


class OtherMessage(Message):
    custom_field: str


def extra(model: pydantic.BaseModel, name: str) -> Any:
    """Read an extra (metadata) field of a message in a way that type checks."""
    assert model.model_extra is not None
    return model.model_extra[name]


def test_message_is_reexported_and_is_frozen() -> None:
    assert miniagents.Message is Message
    assert issubclass(Message, Frozen)
    assert isinstance(Message(text="hi"), Frozen)


def test_text_is_optional() -> None:
    assert Message().text is None
    assert Message(text=None).text is None
    assert Message(text="Hello").text == "Hello"
    assert Message(text="").text == ""


def test_text_must_be_a_string() -> None:
    with pytest.raises(pydantic.ValidationError, match="text"):
        Message(text=42)  # type: ignore[arg-type]


def test_text_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Message("Hello")  # type: ignore[call-arg]


def test_extra_metadata_fields() -> None:
    message = Message(text="Hello", role="user", turn=3)

    assert message.text == "Hello"
    assert message.model_extra == {"role": "user", "turn": 3}
    assert getattr(message, "role") == "user"  # noqa: B009 - metadata is not typed
    assert message.model_dump() == {"text": "Hello", "role": "user", "turn": 3}


def test_metadata_is_frozen() -> None:
    message = Message(text="Hello", tags=["a", "b"], meta={"k": [1]}, ids={1, 2})

    assert extra(message, "tags") == ("a", "b")
    assert type(extra(message, "meta")) is FrozenDict
    assert extra(message, "meta")["k"] == (1,)
    assert extra(message, "ids") == frozenset({1, 2})
    with pytest.raises(FrozenInstanceError):
        extra(message, "meta")["k"] = (2,)


def test_str_is_the_text() -> None:
    assert str(Message(text="Hello")) == "Hello"
    assert str(Message(text="Hello", role="user")) == "Hello"
    assert str(Message(text="")) == ""
    assert f"{Message(text='Hi')}!" == "Hi!"


def test_str_without_text_is_json_without_text() -> None:
    message = Message(role="tool", result={"value": [1, 2]})

    rendered = str(message)

    assert json.loads(rendered) == {"role": "tool", "result": {"value": [1, 2]}}
    assert "text" not in json.loads(rendered)
    assert rendered == '{"role":"tool","result":{"value":[1,2]}}'


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_str_without_text_shows_what_json_cannot_hold_by_its_repr() -> None:
    message = Message(role="tool", payload=b"\x89PNG\r\n", thing=Opaque(), when=(1, 2))

    assert json.loads(str(message)) == {
        "role": "tool",
        "payload": "b'\\x89PNG\\r\\n'",
        "thing": "<opaque>",
        "when": [1, 2],  # what JSON can hold is written as JSON, as without the others
    }


def test_str_of_an_empty_message_is_empty_json() -> None:
    assert str(Message()) == "{}"
    assert str(Message(text=None)) == "{}"


def test_custom_message_like_the_readme(capsys: pytest.CaptureFixture[str]) -> None:
    message = CustomMessage(text="Hello", custom_field="Custom Value")
    print(message.text)  # Output: Hello
    print(message.custom_field)  # Output: Custom Value

    assert capsys.readouterr().out == "Hello\nCustom Value\n"


def test_custom_message_fields() -> None:
    # mypy synthesizes __init__ of a subclass from its declared fields only, so metadata
    # goes in through a dict in typed code.
    metadata: dict[str, Any] = {"role": "user"}
    message = CustomMessage(text="Hello", custom_field="Custom Value", **metadata)

    assert message.custom_field == "Custom Value"
    assert message.model_extra == {"role": "user"}
    assert str(message) == "Hello"
    assert message.model_dump() == {
        "text": "Hello",
        "custom_field": "Custom Value",
        "role": "user",
    }
    assert str(CustomMessage(custom_field="only")) == '{"custom_field":"only"}'


def test_custom_message_requires_its_declared_field() -> None:
    with pytest.raises(pydantic.ValidationError, match="custom_field"):
        CustomMessage(text="Hello")  # type: ignore[call-arg]


def test_message_is_immutable() -> None:
    metadata: dict[str, Any] = {"role": "user"}
    message = CustomMessage(text="Hello", custom_field="Custom Value", **metadata)

    for name in ["text", "custom_field", "role", "brand_new"]:
        with pytest.raises(FrozenInstanceError, match="immutable"):
            setattr(message, name, "changed")

    assert message.text == "Hello"
    assert message.custom_field == "Custom Value"
    assert getattr(message, "role") == "user"  # noqa: B009
    assert not hasattr(message, "brand_new")


def test_equal_by_content() -> None:
    assert Message(text="Hello", role="user") == Message(role="user", text="Hello")
    assert Message(text="Hello", tags=["a"]) == Message(text="Hello", tags=("a",))
    assert Message(text="Hello") != Message(text="Bye")
    assert Message(text="Hello") != Message(text="Hello", role="user")
    assert Message() == Message(text=None)


def test_equal_only_within_the_same_class() -> None:
    custom = CustomMessage(text="Hello", custom_field="x")

    assert custom == CustomMessage(text="Hello", custom_field="x")
    assert custom != OtherMessage(text="Hello", custom_field="x")
    assert Message(text="Hello") != Frozen(text="Hello")
    assert custom.hash_key != OtherMessage(text="Hello", custom_field="x").hash_key


def test_hashable_and_usable_in_sets_and_as_keys() -> None:
    first = Message(text="Hello", meta={"k": [1]})
    same = Message(text="Hello", meta={"k": [1]})
    other = Message(text="Bye")

    assert hash(first) == hash(same)
    assert len({first, same, other}) == 2
    replies = {first: "hi back"}
    assert replies[same] == "hi back"
    assert first.hash_key == same.hash_key
    assert first.hash_key != other.hash_key


def test_messages_nest_inside_messages() -> None:
    inner = Message(text="inner")
    outer = Message(text="outer", reply_to=inner, history=[inner])

    assert extra(outer, "reply_to") is inner
    assert extra(outer, "history") == (inner,)
    assert outer.model_dump(mode="json") == {
        "text": "outer",
        "reply_to": {"text": "inner"},
        "history": [{"text": "inner"}],
    }
    assert isinstance(hash(outer), int)


def test_json_round_trip() -> None:
    metadata: dict[str, Any] = {"tags": ["a"]}
    message = CustomMessage(text="Hello", custom_field="x", **metadata)

    restored = CustomMessage.model_validate_json(message.model_dump_json())

    assert restored == message
    assert restored.hash_key == message.hash_key


def test_private_attributes_never_change_a_message_identity() -> None:
    message = Message(text="Hello", role="user")
    key, hashed = message.hash_key, hash(message)
    twin = Message(text="Hello", role="user")
    setattr(twin, "_seen_by", "an agent")  # noqa: B010 - mypy knows no such attribute

    assert twin == message
    assert hash(twin) == hashed
    assert twin.hash_key == key
    assert str(twin) == "Hello"
    assert twin.model_dump() == {"text": "Hello", "role": "user"}


def test_model_copy_with_update_validates_and_freezes() -> None:
    message = CustomMessage(text="Hello", custom_field="x")

    updated = message.model_copy(update={"text": "Bye", "tags": ["a"]})

    assert type(updated) is CustomMessage
    assert updated == CustomMessage.model_validate(
        {"text": "Bye", "custom_field": "x", "tags": ("a",)}
    )
    assert message.text == "Hello"
    with pytest.raises(pydantic.ValidationError, match="custom_field"):
        message.model_copy(update={"custom_field": 42})


PICKLED = [
    Message(text="Hello"),
    Message(text="Hello", role="user", meta={"k": [1, {"deep": {2}}]}, raw=b"\xff"),
    CustomMessage(text="Hello", custom_field="x"),
    Message(
        text="outer", reply_to=Message(text="inner"), history=[CustomMessage(custom_field="c")]
    ),
]


@pytest.mark.parametrize("message", PICKLED, ids=lambda message: type(message).__name__)
def test_a_pickle_round_trip_gives_an_equal_message_of_the_same_class(message: Message) -> None:
    restored = pickle.loads(pickle.dumps(message))

    assert type(restored) is type(message)
    assert restored == message
    assert restored.hash_key == message.hash_key
    assert restored.model_dump() == message.model_dump()
    with pytest.raises(FrozenInstanceError, match="immutable"):
        restored.text = "changed"  # type: ignore[misc]


_UNPICKLE_PROGRAM = """
import pickle, sys
from tests.messages.test_message import PICKLED

restored = pickle.loads(sys.stdin.buffer.read())
assert [type(message) for message in restored] == [type(message) for message in PICKLED]
assert restored == PICKLED
assert [hash(m) for m in restored] == [hash(m) for m in PICKLED]  # computed here, not carried
print(" ".join(message.hash_key for message in restored))
"""


def test_messages_pickled_in_one_process_are_equal_in_another() -> None:
    # As Ray moves them between workers: another process, another hash seed.
    done = subprocess.run(
        [sys.executable, "-c", _UNPICKLE_PROGRAM],
        cwd=ROOT,
        env=python_env(PYTHONHASHSEED="7"),
        input=pickle.dumps(PICKLED),
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == [message.hash_key for message in PICKLED]


def test_a_message_is_a_value_not_an_awaitable() -> None:
    # Code that awaits whatever is awaitable (a sync tool's result in FunctionTool, a
    # sync agent function's in MiniAgent, anyio's portal) must take a message as it is:
    # so Message has no __await__, and `await message` stays Python's own TypeError.
    message = CustomMessage(text="Hi", custom_field="x")
    assert not inspect.isawaitable(message)
    assert not isinstance(message, Awaitable)
