"""The class of each message of a ``ChatHistoryMD`` file: recorded by name, read back safely.

A section's header records the class in a ``"$class"`` field when the role alone would not
give it back (``UserMessage``, ``AssistantMessage`` and ``SystemMessage`` of their own
roles, and plain ``Message`` s of other roles, record nothing: files read as they always
did). The name is looked up in a registry, never imported: the built-in message classes,
and those the ``ChatHistoryMD`` was given. An unknown name gives a plain ``Message`` with
all the section's fields. A message field whose name starts with ``$`` is written with one
more ``$`` in front (and read back without it), so it is never taken for the class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from miniagents.ext.history.storage import MessageClassRegistry
from miniagents.ext.llm.messages import AssistantMessage, SystemMessage, UserMessage
from miniagents.messages.message import Message

CLASS_FIELD = "$class"

_BY_ROLE: dict[str, type[Message]] = {
    "user": UserMessage,
    "assistant": AssistantMessage,
    "system": SystemMessage,
}


def _by_role(role: object) -> type[Message]:
    return _BY_ROLE.get(role, Message) if isinstance(role, str) else Message


class MessageClasses(MessageClassRegistry):
    """The message classes a history file may name, by class name.

    Args:
        extra: The classes given to the ``ChatHistoryMD`` (beside the built-in ones).

    Raises:
        ChatHistoryOptionError: for something that is not a ``Message`` subclass, or two classes
            of one name.
    """

    def __init__(self, extra: Iterable[type[Message]] = ()) -> None:
        super().__init__(extra, store="a history file")

    def header_fields(self, message: Message, fields: Mapping[str, object]) -> dict[str, object]:
        """The fields to write: the class first when it is needed, ``$`` names escaped."""
        escaped = {("$" + name if name.startswith("$") else name): v for name, v in fields.items()}
        cls = type(message)
        if cls is _by_role(fields.get("role")):
            return escaped
        return {CLASS_FIELD: cls.__name__, **escaped}

    def class_of(self, fields: Mapping[str, object]) -> tuple[type[Message], dict[str, object]]:
        """The class a section's fields name (by role if none), and the message's fields."""
        name = fields.get(CLASS_FIELD)
        own = {
            (key[1:] if key.startswith("$$") else key): value
            for key, value in fields.items()
            if key != CLASS_FIELD
        }
        if name is None:
            return _by_role(own.get("role")), own
        cls = self.by_name.get(name) if isinstance(name, str) else None
        return (Message if cls is None else cls), own
