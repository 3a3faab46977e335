"""Static typing tests for the extra (undeclared) fields of a message, as the messages page says.

At run time any message takes extra keyword arguments; mypy writes a ``Message`` subclass's
``__init__`` from its declared fields alone (``dataclass_transform``), so it refuses them
there. The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), ``assert_type`` pins the inferred types and each line that must
be rejected carries a precise ``# type: ignore[code]``, so a change of either side (mypy
accepting an extra keyword, or refusing a form the page recommends) fails
:func:`test_message_extra_types_pass_mypy`. The other tests run the same forms.
"""

from __future__ import annotations

from typing import Any, assert_type

from miniagents.messages import Message
from tests.fakes.typecheck import assert_passes_mypy


class Note(Message):
    """A subclass with a declared field."""

    author: str


class MoodNote(Note):
    """The extra field declared."""

    mood: str = ""


class Bare(Message):
    """A subclass that declares no field."""


def check_what_a_subclass_takes() -> None:
    Note(text="Hi", author="ada", mood="glad")  # type: ignore[call-arg]  # runs, all the same
    Bare(text="Hi", mood="glad")  # type: ignore[call-arg]  # no declared field: the same
    assert_type(MoodNote(text="Hi", author="ada", mood="glad").mood, str)
    validated = Note.model_validate({"text": "Hi", "author": "ada", "mood": "glad"})
    assert_type(validated, Note)
    assert_type(Bare.model_validate({"mood": "glad"}), Bare)
    assert_type(validated.model_extra, dict[str, Any] | None)
    print(validated.mood)  # type: ignore[attr-defined]  # an extra field is no attribute


def check_what_the_base_class_takes() -> None:
    plain = Message(text="Hi", author="ada", mood="glad")
    assert_type(plain, Message)
    assert_type(Message(mood=1, tags=("a",)), Message)
    print(plain.mood)  # type: ignore[attr-defined]  # read it from model_extra


# --- The tests that pytest runs ---------------------------------------------------------


def test_the_forms_mypy_refuses_run() -> None:
    # what a type checker refuses is no error at run time: the field is an extra one
    note = Note(text="Hi", author="ada", mood="glad")  # type: ignore[call-arg]
    assert note.model_extra == {"mood": "glad"}
    assert Bare(text="Hi", mood="glad").model_extra == {"mood": "glad"}  # type: ignore[call-arg]
    assert Note.model_validate({"text": "Hi", "author": "ada", "mood": "glad"}) == note


def test_the_forms_mypy_accepts_run() -> None:
    declared = MoodNote(text="Hi", author="ada", mood="glad")
    assert (declared.mood, declared.model_extra) == ("glad", {})
    plain = Message(text="Hi", author="ada", mood="glad")
    assert plain.model_extra == {"author": "ada", "mood": "glad"}


def test_message_extra_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
