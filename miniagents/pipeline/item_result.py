"""``ItemResult``: what a pipeline made of one item (``pipeline`` and ``ray_pipeline``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from miniagents.messages import MessageTuple
from miniagents.messages.sequence import MessageType

__all__ = ["ItemResult"]

T = TypeVar("T", bound=MessageType)


@dataclass(frozen=True)
class ItemResult(Generic[T]):
    """What the agents made of one item: its replies, or the error that stopped them.

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
    replies: MessageTuple
    error: BaseException | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None

    def get(self) -> MessageTuple:
        """The replies, or raise the item's error."""
        if self.error is not None:
            raise self.error
        return self.replies
