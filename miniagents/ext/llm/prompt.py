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

**Any conversation, in the form each API takes.** The input of an LLM agent may be any
messages, from any agents: another provider's reply (its calls and results too), two
messages of one role in a row, a conversation that starts with the model's turn, roles an
API does not know. Each provider builds its request from :func:`turns_for`, given its
API's :class:`ConversationRules`: the one place where a conversation is made what the API
takes (roles mapped, turns made to alternate, the model's opening turn made the user's,
blank texts left out, call ids another API would refuse replaced)::

    input:     assistant "A poem." (another agent's reply, as this one's input)
    Bedrock:   user ["A poem."]                      (a conversation starts with the user)

    input:     user "Hi" | user "Look:" + image | critic "Too long." | assistant "Ok."
               | assistant "Shorter:" | call c1 | result c1 | user "Thanks"
    Anthropic: user ["Hi", "Look:", image, "Too long."] | assistant ["Ok.", "Shorter:",
               tool_use c1] | user [tool_result c1, "Thanks"]
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.roles import role_of
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.messages.image import ImagePart, images_of
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple
from miniagents.promising.errors import FrozenInstanceError

__all__ = [
    "ConversationRules",
    "PromptItem",
    "PromptText",
    "Turn",
    "arguments_json",
    "arguments_object",
    "kept_thoughts",
    "prompt_of",
    "put_thoughts",
    "thoughts_json",
    "turns_for",
]


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


PromptItem: TypeAlias = PromptText | ToolCallMessage | ToolResultMessage
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
            if not isinstance(role, str):  # (role_of's rule, read where pydantic keeps it)
                role = "user"
            images: tuple[ImagePart, ...] = images_of(message)  # (what the property reads)
        else:  # defined in the class body (e.g. a property): read as an attribute
            role = role_of(message)
            images = message.images
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


def _as_text(item: PromptItem, *, told: bool = False) -> PromptText:
    """A call or result as text; ``told``: any item as the user's (what the agent is told)."""
    if isinstance(item, ToolCallMessage):
        if told:
            return PromptText("user", f"(A call of the tool {item.tool_name}: {item.text})")
        return PromptText("assistant", f"(I called the tool {item.tool_name}: {item.text})")
    if isinstance(item, ToolResultMessage):
        outcome = "failed" if item.is_error else "answered"
        return PromptText("user", f"(The tool {item.tool_name} {outcome}: {item.text})")
    if told and item.role != "user":
        return PromptText("user", item.text, item.images)
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


def thoughts_json(thought: Sequence[Mapping[str, object]]) -> str | None:
    """What a call keeps (as its ``thought_signature``) of the thought blocks before it.

    The blocks as compact JSON (Anthropic's thinking blocks, Converse's reasoning blocks),
    to be sent back first with the call; ``None`` if there are none.
    """
    return json.dumps(thought, separators=(",", ":"), ensure_ascii=False) if thought else None


def kept_thoughts(item: PromptItem) -> list[object]:
    """The thought blocks a call's message keeps (see :func:`thoughts_json`), if any.

    A message that is not a call, or a call whose signature is not a non-empty JSON list
    (Gemini's is base64), keeps none; the caller checks that the blocks are its API's.
    """
    kept = getattr(item, "thought_signature", None) if isinstance(item, ToolCallMessage) else None
    if not isinstance(kept, str):
        return []
    try:
        blocks = json.loads(kept)
    except ValueError:
        return []
    return blocks if isinstance(blocks, list) else []


def put_thoughts(blocks: list[Any], thoughts: list[Any], *, called: bool) -> None:
    """Add a call's kept thought blocks to its turn's ``blocks``, where the APIs want them.

    Those of the turn's first call (``called``: whether the turn has had a call yet) go
    first of all, before the turn's text; a later call's, just before it.
    """
    if thoughts and not called:
        blocks[:0] = thoughts
    else:
        blocks += thoughts


# -- the conversation each API takes ------------------------------------------------------


@dataclass(frozen=True)
class ConversationRules:
    """What an API takes of a conversation: :func:`turns_for` makes any conversation so.

    Attributes:
        roles: The roles of text messages the API takes as they are (``None``: any); a
            message of another role is the user's (``model``, Gemini's word, the
            assistant's).
        alternate: Whether the turns must alternate between the user and the assistant,
            the user's first (Anthropic, Bedrock, Gemini, the chat templates of many local
            models): messages of one side in a row make one turn, and the model's turns
            before the first user message (another agent's reply given as this one's
            input) become the user's text.
        skip_blank: Whether a blank text (no images) is left out (the APIs that refuse an
            empty text block, or an empty message).
        trim_last: Whether the conversation's last text, if the assistant's turn ends
            with it, goes without its trailing whitespace (Claude's APIs, Anthropic's and
            Bedrock's, refuse a final assistant text that ends with whitespace); a text
            that trims to nothing (no images) is left out, and so is a turn left empty.
    """

    roles: frozenset[str] | None = frozenset({"user", "assistant"})
    alternate: bool = True
    skip_blank: bool = True
    trim_last: bool = False


@dataclass(frozen=True)
class Turn:
    """A turn of a conversation made for an API (see :func:`turns_for`).

    Attributes:
        role: Whose turn: ``user`` or ``assistant`` (or a role the API takes as it is,
            e.g. OpenAI's ``developer``).
        items: What it holds, in order: the assistant's texts and its tool calls, or the
            results of the calls before it (first) and the user's texts. Each text has the
            turn's role.
    """

    role: str
    items: tuple[PromptItem, ...]


_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
"""A call id every API takes: OpenAI's Chat Completions takes 40 characters at most,
Anthropic and Bedrock letters, digits, ``_`` and ``-`` only."""


def turns_for(messages: Sequence[PromptItem], rules: ConversationRules) -> tuple[Turn, ...]:
    """The conversation ``messages`` (``LLMCall.messages``) as the turns an API takes.

    Every provider builds its request from these, so that any messages, from any agents,
    make a request its API takes (see the module): each text's role is one the API takes
    (``rules.roles``); a call id another API made that this one would refuse is replaced
    by one made of it (the same for the call and its result); with ``rules.alternate``,
    the turns alternate from the user's, the model's opening turns becoming the user's
    text; with ``rules.skip_blank``, blank texts are left out; with ``rules.trim_last``,
    a last assistant text ends with no whitespace. Calls still come each run with its
    results, as :func:`prompt_of` made them.

    Args:
        messages: The conversation.
        rules: What the API takes.

    Returns:
        The turns, in order: consecutive items of one side make one turn.
    """
    if len(messages) == 1:  # the usual prompt, one user message: a turn of its own
        only = messages[0]
        if isinstance(only, PromptText) and only.role == "user" and (only.text or only.images):
            return (Turn("user", (only,)),)
    items = [made for item in messages if (made := _for_api(item, rules)) is not None]
    if rules.alternate:
        opening = next(
            (
                index
                for index, item in enumerate(items)
                if isinstance(item, PromptText) and item.role == "user"
            ),
            len(items),
        )
        # the model's turns (its calls' results too) before the user's first words: another
        # agent's, given as this one's input
        items[:opening] = [_as_text(item, told=True) for item in items[:opening]]
    turns: list[Turn] = []
    side = ""
    run: list[PromptItem] = []
    for item in items:
        this = _side(item)
        if this != side and run:
            turns.append(Turn(side, tuple(run)))
            run = []
        side = this
        run.append(item)
    if run:
        turns.append(Turn(side, tuple(run)))
    if rules.trim_last and turns:
        turns[-1:] = _trimmed(turns[-1])
    return tuple(turns)


def _trimmed(turn: Turn) -> list[Turn]:
    """The last turn, its last text without trailing whitespace if it is the assistant's.

    A text that trims to nothing (no images) is left out (the one before it is the last
    then), and a turn left empty too.
    """
    if turn.role != "assistant":
        return [turn]
    items = list(turn.items)
    while items and isinstance(last := items[-1], PromptText):
        text = last.text.rstrip()
        if text or last.images:
            items[-1] = last if text == last.text else PromptText(last.role, text, last.images)
            break
        items.pop()
    if items == list(turn.items):
        return [turn]
    return [Turn(turn.role, tuple(items))] if items else []


def _for_api(item: PromptItem, rules: ConversationRules) -> PromptItem | None:
    """The item with a role and an id the API takes (``None``: left out)."""
    if isinstance(item, PromptText):
        if rules.skip_blank and not item.images and not item.text.strip():
            return None
        role = item.role
        if rules.roles is not None and role not in rules.roles:
            role = "assistant" if role == "model" and "assistant" in rules.roles else "user"
            return PromptText(role, item.text, item.images)
        return item
    if _SAFE_ID.fullmatch(item.call_id):
        return item
    digest = hashlib.sha256(item.call_id.encode("utf-8", "surrogatepass")).hexdigest()
    return item.model_copy(update={"call_id": f"call_{digest[:32]}"})


def _side(item: PromptItem) -> str:
    """Whose turn the item belongs to: the assistant's (its texts, its calls) or another's."""
    if isinstance(item, ToolCallMessage):
        return "assistant"
    if isinstance(item, ToolResultMessage):
        return "user"
    return item.role
