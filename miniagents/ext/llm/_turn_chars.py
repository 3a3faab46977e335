"""The turn's bound on characters: one count per turn, shared by the turn and its provider.

A turn keeps at most ``MiniAgents(llm_max_turn_chars=...)`` characters, whatever their
kind. The turn makes one :class:`TurnCount` per call and shares it with its provider
(:data:`TURN_COUNT`, set while the call streams): the turn adds the text, refusals and
tool calls' arguments it takes, and the provider adds what it reads but does not give the
turn, found with :func:`count_reasoning`: the thinking it keeps, to send it back with the
turn's tool calls (Anthropic's thinking blocks, Bedrock's reasoning: a
:class:`KeptThoughts` each), and the reasoning
it drops (Chat Completions' ``reasoning_content``, the Responses API's reasoning summary,
Gemini's thought parts). Each piece counts once, in the order it came, toward the one
bound: a stream of reasoning without end ends (each piece, a sign of life, moves the stall
watch's deadline, so nothing else would end it).

Past the bound the count raises :func:`too_long`'s error, which the turn knows
(:func:`is_too_long`) and gives as its own error of a turn too long (the agent's alias and
the setting named), as if the text had gone over.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Generic, TypeVar

from miniagents.ext.llm.errors import LLMResponseError
from miniagents.ext.llm.prompt import thoughts_json
from miniagents.ext.llm.settings import llm_settings

__all__ = [
    "TURN_COUNT",
    "KeptThoughts",
    "TurnCount",
    "count_reasoning",
    "is_too_long",
    "too_long",
]

_B = TypeVar("_B")


class _TurnTooLong(LLMResponseError):
    """A provider kept more characters in one turn than ``llm_max_turn_chars`` allows.

    The turn catches it and raises its own ``LLMResponseError`` in its place.
    """


def too_long(max_chars: int) -> LLMResponseError:
    """The error of a provider that kept more than ``max_chars`` characters in one turn."""
    return _TurnTooLong(
        f"The model sent more than {max_chars:,} characters in one turn (its thinking, "
        "text and tool calls' arguments together), the bound "
        "MiniAgents(llm_max_turn_chars=...) sets on what a reply keeps in memory; raise the "
        "bound if the model really writes that much."
    )


def is_too_long(error: BaseException) -> bool:
    """Whether ``error`` is :func:`too_long`'s (the turn then raises its own in its place)."""
    return isinstance(error, _TurnTooLong)


class TurnCount:
    """The characters of one turn, against its bound, counted by the turn and its provider.

    Args:
        most: The bound (``MiniAgents(llm_max_turn_chars=...)``).

    Attributes:
        most: The bound.
        left: The characters the turn may still send (the turn's loop takes a token's off
            itself, with no call per token, and stops the call below 0).
    """

    __slots__ = ("left", "most")

    def __init__(self, most: int) -> None:
        self.most = self.left = most

    def spend(self, chars: int) -> None:
        """Count ``chars`` more characters of the turn; past its bound, raise ``too_long()``."""
        self.left -= chars
        if self.left < 0:
            raise too_long(self.most)


TURN_COUNT: ContextVar[TurnCount | None] = ContextVar("miniagents_turn_count", default=None)
"""The count of the turn whose call streams here (set by the turn around its call)."""


def count_reasoning(counted: TurnCount | None, chars: int) -> TurnCount:
    """``counted`` with ``chars`` characters of reasoning more (the turn's count, at the first).

    A provider keeps ``None`` until its first piece of reasoning or thinking, which takes
    the count of the turn that streams the call (:data:`TURN_COUNT`), so that a reply
    without any costs nothing more; outside a turn (a provider read by itself), a count of
    its own bounds the reasoning.

    Raises:
        LLMResponseError: ``too_long()``'s, past the turn's bound.
    """
    if counted is None:
        counted = TURN_COUNT.get()
        if counted is None:
            counted = TurnCount(llm_settings().llm_max_turn_chars)
    counted.spend(chars)
    return counted


class KeptThoughts(ABC, Generic[_B]):
    """The thought blocks of a streamed reply, kept to go back with its calls.

    A provider's subclass keeps its API's blocks (Anthropic's thinking blocks, Bedrock's
    reasoning), each by its index in the reply. They count toward the turn's characters
    (``MiniAgents(llm_max_turn_chars=...)``) with the text and arguments of the reply, in
    the turn's count (:func:`count_reasoning`): a model, or a proxy, that thinks without
    end does not fill the memory.

    Attributes:
        blocks: Each block, by its index.
        since_call: The blocks since the last call (:meth:`taken` takes them).
        counted: The turn's count, from the first thought on (``None`` before it).
    """

    __slots__ = ("blocks", "counted", "since_call")

    def __init__(self) -> None:
        self.blocks: dict[int, _B] = {}
        self.since_call: list[_B] = []
        self.counted: TurnCount | None = None

    def spend(self, chars: int) -> None:
        """Count ``chars`` characters of thought toward the turn's bound.

        Raises:
            LLMResponseError: ``too_long()``'s, past the turn's bound.
        """
        self.counted = count_reasoning(self.counted, chars)

    def taken(self) -> str | None:
        """The blocks since the last call, as a call's ``thought_signature`` (``None``: none)."""
        signature = thoughts_json([self.kept(block) for block in self.since_call])
        self.since_call = []
        return signature

    @abstractmethod
    def kept(self, block: _B) -> Mapping[str, object]:
        """``block`` as a call keeps it (JSON, sent back with the call as it is)."""
