"""``ItemResult``: what a pipeline made of one item (``pipeline``, ``map_agent``, Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic

from typing_extensions import TypeVar

from miniagents.messages import Message, MessageTuple
from miniagents.messages.sequence import MessageType

__all__ = ["ItemResult"]

T = TypeVar("T", bound=MessageType)
ReplyT_co = TypeVar("ReplyT_co", bound=Message, default=Message, covariant=True)


@dataclass(frozen=True)
class ItemResult(Generic[T, ReplyT_co]):
    """What the agents made of one item: its replies, or the error that stopped them.

    ``ItemResult[T]`` is ``ItemResult[T, Message]``: the second parameter is the class of
    the last agent's reply messages (``LLMReply[OpenAIMessage]`` for an OpenAI agent).

    Attributes:
        index: The item's position in the input (from 0).
        item: The item itself (the object you gave, not a copy).
        replies: The last agent's replies, complete (empty if the item failed).
        error: The error the item failed with (the agent's own, with its type), or ``None``.
        attempts: How many times the item was tried (more than 1 after a retry, or, on
            Ray, after a worker died).
    """

    index: int
    item: T
    replies: MessageTuple[ReplyT_co] = field(default_factory=MessageTuple)
    error: BaseException | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None

    def get(self) -> MessageTuple[ReplyT_co]:
        """The replies, or raise the item's error."""
        if self.error is not None:
            raise self.error
        return self.replies
