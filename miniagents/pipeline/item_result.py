"""``ItemResult``: what a pipeline made of one item (``pipeline``, ``map_agent``, Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
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

    def __post_init__(self) -> None:
        """Keep the error's traceback as it is now, for :meth:`get` to raise it with each time."""
        # (not a field: a traceback can be neither compared, copied by asdict nor pickled)
        error = self.error
        object.__setattr__(self, "_traceback", None if error is None else error.__traceback__)

    def __getstate__(self) -> dict[str, object]:
        """The fields, for pickle and copy (a traceback cannot be pickled)."""
        return {name: value for name, value in self.__dict__.items() if name != "_traceback"}

    def __setstate__(self, state: dict[str, object]) -> None:
        """Restore the fields; the error's traceback is what it has now (none, unpickled)."""
        self.__dict__.update(state)
        self.__post_init__()

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None

    def get(self) -> MessageTuple[ReplyT_co]:
        """The replies, or raise the item's error.

        The error is raised with the traceback it had when the result was made, each time
        (as ``asyncio.Future.result()`` does): a ``get()`` in a loop of retries or reports
        does not make it grow by the frames of every call before. Its ``__cause__`` (the
        ``raise ... from`` of the agent) is kept.

        Raises:
            BaseException: the item's error, with its own type.
        """
        error = self.error
        if error is not None:
            traceback: TracebackType | None = self.__dict__["_traceback"]
            raise error.with_traceback(traceback)
        return self.replies
