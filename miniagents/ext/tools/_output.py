"""What a tool's values become in its reply: text."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_core import to_json

from miniagents.messages.message import Message

__all__ = ["as_text"]


def as_text(value: object) -> str:
    """A str as it is, a message's text, anything else as JSON (``str()`` where JSON fails)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Message):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return to_json(value, fallback=str).decode("utf-8")
