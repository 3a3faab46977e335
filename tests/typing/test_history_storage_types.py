"""Static typing tests for ``miniagents.ext.history.storage``: the stores' building blocks.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_history_storage_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from typing import assert_type

from miniagents import Message
from miniagents.ext.history.storage import (
    BUILT_IN_MESSAGE_CLASSES,
    MessageClassRegistry,
    SerialWorker,
)
from tests.fakes.typecheck import assert_passes_mypy


class Note(Message):
    topic: str


def _count() -> int:
    return 1


async def check_storage() -> None:
    assert_type(BUILT_IN_MESSAGE_CLASSES, tuple[type[Message], ...])
    registry = MessageClassRegistry([Note], built_in=BUILT_IN_MESSAGE_CLASSES, store="a file")
    assert_type(registry.by_name, dict[str, type[Message]])
    worker = SerialWorker()
    assert_type(await worker.arun(_count), int)
    assert_type(await worker.arun(lambda: "text"), str)


async def check_storage_errors() -> None:
    MessageClassRegistry([int])  # type: ignore[list-item]
    MessageClassRegistry([Note], [Note], "a file")  # type: ignore[call-arg]
    await SerialWorker().arun(_count())  # type: ignore[arg-type]


def test_history_storage_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
