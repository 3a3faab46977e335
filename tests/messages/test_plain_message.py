"""``Message(text=<a str>)`` is built without pydantic's validation: the same message regardless.

A plain ``Message`` of a ``str`` alone gets its state directly in ``Message.__init__``;
everything else (metadata, other values, subclasses) is validated by pydantic as before.
Each test compares the direct build with pydantic's (``model_validate``, which never calls
``__init__``).
"""

from __future__ import annotations

import copy
import pickle
import warnings
from typing import Any

import pydantic
import pytest
from pydantic import model_validator

from miniagents.messages import Message
from miniagents.promising.errors import FrozenInstanceError


class Typed(Message):
    """A subclass: always validated."""

    turn: int = 0


def _validated(**data: object) -> Message:
    return Message.model_validate(data)


@pytest.mark.parametrize("text", ["hello", "", "ünïcode " * 50])
def test_a_plain_message_is_the_message_pydantic_builds(text: str) -> None:
    direct, validated = Message(text=text), _validated(text=text)
    assert direct == validated
    assert hash(direct) == hash(validated)
    assert direct.hash_key == validated.hash_key
    assert direct.model_fields_set == validated.model_fields_set == {"text"}
    assert direct.model_extra == validated.model_extra == {}
    assert direct.model_dump() == validated.model_dump() == {"text": text}
    assert direct.model_dump_json() == validated.model_dump_json()
    assert repr(direct) == repr(validated)
    assert str(direct) == text
    assert direct.__getstate__() == validated.__getstate__()


def test_a_plain_message_is_frozen() -> None:
    message = Message(text="fixed")
    with pytest.raises(FrozenInstanceError):
        message.text = "changed"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        message.role = "user"  # type: ignore[attr-defined]
    assert message.text == "fixed"


def test_copies_and_pickles_of_a_plain_message_are_separate_and_equal() -> None:
    message = Message(text="a")
    updated = message.model_copy(update={"text": "b", "role": "user"})
    assert updated == _validated(text="b", role="user")
    assert message == _validated(text="a")  # the original is untouched
    assert message.model_fields_set == {"text"}
    assert message.model_extra == {}
    assert copy.deepcopy(message) == message
    assert copy.copy(message) == message
    assert pickle.loads(pickle.dumps(message)) == message


def test_two_plain_messages_share_no_state() -> None:
    one, two = Message(text="same"), Message(text="same")
    assert one == two
    assert one.__dict__ is not two.__dict__
    assert one.model_fields_set is not two.model_fields_set
    assert one.model_extra is not two.model_extra


def test_a_dict_passed_as_keywords_is_not_kept() -> None:
    data: dict[str, Any] = {"text": "kept apart"}
    message = Message(**data)
    data["text"] = "changed"
    assert message.text == "kept apart"


def test_everything_else_is_validated_by_pydantic() -> None:
    with pytest.raises(pydantic.ValidationError):
        Message(text=123)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        Typed(text="a", turn="not a number")  # type: ignore[arg-type]
    assert Typed(text="a") == Typed.model_validate({"text": "a"})
    assert Typed(text="a").model_fields_set == {"text"}
    meta: dict[str, Any] = {"tags": ["x", "y"]}
    assert Message(text="a", **meta).model_extra == {"tags": ("x", "y")}  # frozen
    assert Message().text is None
    assert Message(text=None).model_fields_set == {"text"}

    class Text(str):
        """A str subclass: validated (pydantic decides what it becomes)."""

    assert Message(text=Text("sub")) == _validated(text=Text("sub"))


def test_a_nested_container_in_metadata_stays_frozen() -> None:
    meta: dict[str, Any] = {"scores": {"a": 1}}
    message = Message(text="a", **meta)
    with pytest.raises(FrozenInstanceError):
        message.model_extra["scores"]["b"] = 2  # type: ignore[index]


def test_messages_inside_other_models_are_built_by_pydantic_as_before() -> None:
    class Holder(pydantic.BaseModel):
        message: Message

    assert not Message.__pydantic_custom_init__
    assert not Typed.__pydantic_custom_init__
    held = Holder.model_validate({"message": {"text": "inner"}})
    assert held.message == Message(text="inner")


def test_a_validator_that_returns_another_object_is_warned_about() -> None:
    class Replacing(Message):
        @model_validator(mode="after")
        def _replace(self) -> Replacing:
            return Replacing.model_construct(text="other")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Replacing(text="a")
    assert [type(warning.message) for warning in caught] == [UserWarning]
    assert "returned another object" in str(caught[0].message)


def test_a_field_without_a_slot_of_its_own_is_written_with_object_setattr() -> None:
    from miniagents.messages.message import _writer  # (a pydantic without the slot)

    message = Message(text="a")
    _writer("_written_by_name")(message, 1)
    assert message.__dict__["_written_by_name"] == 1
