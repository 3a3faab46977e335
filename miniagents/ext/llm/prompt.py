"""The prompt of an LLM call: a system prompt and the conversation, from input messages.

The conversation is a tuple of :data:`PromptItem`: a :class:`PromptText` (the pair
``role``, ``text``, with the message's ``images``) for each ordinary message and, for an
agent with tools, the
``ToolCallMessage`` s and ``ToolResultMessage`` s of earlier turns as they are (a
provider translates them by their class)::

    input:   user "Weather?" | call c1 get_weather | result c1 "Sunny" | assistant "Sunny."
    prompt:  PromptText(user, "Weather?") | ToolCallMessage(c1) | ToolResultMessage(c1)
             | PromptText(assistant, "Sunny.")

**Calls and results always come in pairs**, each call's result right after the run of
calls it belongs to, whatever order they came in: the APIs refuse anything else. A call
without a result (from a turn cut short before its tools answered, e.g. by Ctrl+C) is
left out, and so is a result without its call: the model sees neither. For an agent
without tools, calls and results become text (``PromptText``), since the APIs refuse tool
messages in a request without tools.

**Images** (``message.images``) go with user messages only, as the APIs take them: a
system, assistant or other message that carries images is refused with an
``LLMConfigurationError`` (before any request) rather than sent without them.
"""

from __future__ import annotations

import json
from typing import Final, TypeAlias

from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.messages.image import ImagePart, images_of
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple
from miniagents.promising.errors import FrozenInstanceError

__all__ = ["PromptItem", "PromptText", "arguments_json", "arguments_object", "prompt_of"]


class PromptText(tuple[str, str]):
    """A message of the conversation: the pair of its role and its text, and its images.

    A pair, so ``role, text = item`` and ``item[1]`` work; ``images`` (those of a user
    message, see :class:`~miniagents.messages.image.ImagePart`) rides along, outside the
    pair. Immutable; equal to another ``PromptText`` when the pairs and the images are,
    and to a plain ``(role, text)`` tuple when the pairs are.

    Example:
        >>> role, text = PromptText("user", "Hi")
        >>> (role, text)
        ('user', 'Hi')
    """

    images: Final[tuple[ImagePart, ...]] = ()
    """The images of the message (a user message's; none for other roles). (An item
    without images has no state of its own: it reads this default.)"""

    def __new__(cls, role: str, text: str, images: tuple[ImagePart, ...] = ()) -> PromptText:
        """Make the pair ``(role, text)``, with ``images``."""
        item = tuple.__new__(cls, (role, text))
        if images:
            item.__dict__["images"] = tuple(images)  # (its __setattr__ refuses)
        return item

    @property
    def role(self) -> str:
        """The role: ``user``, ``assistant``, ..."""
        return self[0]

    @property
    def text(self) -> str:
        """The text."""
        return self[1]

    def __setattr__(self, name: str, value: object) -> None:
        """Refuse: a prompt item is immutable."""
        raise FrozenInstanceError(
            f"A PromptText is immutable: it cannot set {name!r}. Build a new one instead, "
            "e.g. PromptText(role, text, images)."
        )

    def __delattr__(self, name: str) -> None:
        """Refuse: a prompt item is immutable."""
        raise FrozenInstanceError(f"A PromptText is immutable: it cannot delete {name!r}.")

    def __eq__(self, other: object) -> bool:
        """The same pair (and, for another ``PromptText``, the same images)."""
        if isinstance(other, PromptText) and self.images != other.images:
            return False
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        """Not :meth:`__eq__`."""
        return not self == other

    __hash__ = tuple.__hash__  # equal items have equal pairs, hence equal hashes

    def __reduce__(self) -> tuple[type[PromptText], tuple[str, str, tuple[ImagePart, ...]]]:
        """Pickle the pair and the images."""
        return (PromptText, (self[0], self[1], self.images))

    def __repr__(self) -> str:
        """The role and the text, and the images if there are any."""
        images = f", images={self.images!r}" if self.images else ""
        return f"PromptText(role={self[0]!r}, text={self[1]!r}{images})"


PromptItem: TypeAlias = "PromptText | ToolCallMessage | ToolResultMessage"
"""An item of ``LLMCall.messages``: a text turn, a tool call, or a tool result."""


def prompt_of(
    messages: MessageTuple, system: str | None, *, tools: bool = True
) -> tuple[str | None, tuple[PromptItem, ...]]:
    """Split input messages into a system prompt and the conversation.

    Each message's ``role`` field (``user`` when it has none) gives its role; the texts of
    system messages, after ``system``, make the system prompt.

    Args:
        messages: The input messages.
        system: The agent's system prompt, if any.
        tools: Whether the call has tools: tool calls and results are kept as they are
            (in pairs), else they become text.
    """
    system_parts = [system] if system else []
    conversation: list[PromptItem] = []
    calls = False  # whether there are tool calls or results (else nothing to pair)
    for message in messages:
        kind = _KINDS.get(type(message)) or _kind_of(type(message))
        if kind == _CALL_OR_RESULT:
            conversation.append(message)  # type: ignore[arg-type]  # (its kind says so)
            calls = True
            continue
        if kind == _APPROVAL:
            continue  # the call and its result tell the model everything
        if kind == _ROLE_FIELD:  # a field, or an extra one: read where pydantic keeps it
            values = message.__dict__
            role = values.get("role")  # (no miss raised for none)
            extra = message.__pydantic_extra__
            if role is None and extra:
                role = extra.get("role")
            images: tuple[ImagePart, ...] = images_of(message)  # (what the property reads)
        else:  # defined in the class body (e.g. a property): read as an attribute
            role = getattr(message, "role", None)
            images = message.images
        if not isinstance(role, str):
            role = "user"
        if images and role != "user":
            raise LLMConfigurationError(
                f"A message of role {role!r} carries {len(images)} image(s), but the LLM "
                "APIs take images in user messages only: put them in a user message "
                "(e.g. UserMessage(text=..., images=[...]))."
            )
        if role == "system":
            system_parts.append(str(message))
        elif images:
            conversation.append(PromptText(role, message.text or "", images))
        else:
            conversation.append(PromptText(role, str(message)))
    system_prompt = ("\n\n".join(system_parts) or None) if system_parts else None
    if not calls:  # texts only: they stay as they are
        return system_prompt, tuple(conversation)
    paired = _paired(conversation)
    if not tools:
        paired = [_as_text(item) for item in paired]
    return system_prompt, tuple(paired)


_CALL_OR_RESULT, _APPROVAL, _ROLE_ATTRIBUTE, _ROLE_FIELD = 1, 2, 3, 4
"""The kinds of input message, for the prompt: a tool call or result (kept as it is), an
approval request (left out), a message whose role and images are read as attributes (its
class body defines ``role``, e.g. as a property, or ``images`` of its own), one whose role
and images are fields (or extra ones)."""

_KINDS: dict[type[Message], int] = {}
"""The kind of each message class (worked out once per class)."""


def _kind_of(kind: type[Message]) -> int:
    """The kind of the messages of class ``kind`` (kept in ``_KINDS``)."""
    if issubclass(kind, (ToolCallMessage, ToolResultMessage)):
        found = _CALL_OR_RESULT
    elif issubclass(kind, ToolApprovalRequest):
        found = _APPROVAL
    elif any("role" in vars(base) for base in kind.__mro__) or any(
        "images" in vars(base) for base in kind.__mro__[: kind.__mro__.index(Message)]
    ):  # (a class of its own ``images`` too: it is read as the class says)
        found = _ROLE_ATTRIBUTE
    else:
        found = _ROLE_FIELD
    _KINDS[kind] = found
    return found


def _paired(items: list[PromptItem]) -> list[PromptItem]:
    """Each run of calls followed by their results; unpaired calls and results left out."""
    results: dict[str, ToolResultMessage] = {}
    for item in items:
        if isinstance(item, ToolResultMessage):
            results.setdefault(item.call_id, item)
    paired: list[PromptItem] = []
    calls: list[ToolCallMessage] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, ToolCallMessage):
            if item.call_id in results and item.call_id not in seen:
                seen.add(item.call_id)
                calls.append(item)
            continue
        _flush(calls, results, paired)
        if isinstance(item, PromptText):
            paired.append(item)
    _flush(calls, results, paired)
    return paired


def _flush(
    calls: list[ToolCallMessage], results: dict[str, ToolResultMessage], into: list[PromptItem]
) -> None:
    """A run of calls ended: put them, then their results, into ``into``."""
    into += [*calls, *(results[call.call_id] for call in calls)]
    calls.clear()


def _as_text(item: PromptItem) -> PromptText:
    if isinstance(item, ToolCallMessage):
        return PromptText("assistant", f"(I called the tool {item.tool_name}: {item.text})")
    if isinstance(item, ToolResultMessage):
        outcome = "failed" if item.is_error else "answered"
        return PromptText("user", f"(The tool {item.tool_name} {outcome}: {item.text})")
    return item


def arguments_json(call: ToolCallMessage) -> str:
    """The arguments of ``call`` as JSON text, to send back to the model.

    The text the model wrote when it was a JSON object; else (malformed JSON, which the
    call's error result explains to the model) the parsed arguments, ``{}``.
    """
    text = call.text or ""
    if call.arguments_error is None and text.strip():
        return text
    return json.dumps(arguments_object(call), ensure_ascii=False)


def arguments_object(call: ToolCallMessage) -> dict[str, object]:
    """The arguments of ``call`` as plain JSON values (dicts and lists, not frozen ones)."""
    plain: dict[str, object] = json.loads(json.dumps(call.arguments, default=str))
    return plain
