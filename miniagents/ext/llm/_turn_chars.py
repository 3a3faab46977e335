"""The turn's bound on characters, for what a provider keeps beside its events: thinking.

A provider that keeps the thinking its model streams, to send it back with the turn's
tool calls (Anthropic's thinking blocks, Bedrock's reasoning), counts it with the text
and arguments it streams against ``MiniAgents(llm_max_turn_chars=...)``, as
:func:`turn_chars` gives it: thinking counts as text does. Past the bound it raises
:func:`too_long`'s error, which the turn knows (:func:`is_too_long`) and gives as its own
error of a turn too long (the agent's alias and the setting named), as if the text had gone
over.

A provider whose model streams reasoning it does not keep (Chat Completions'
``reasoning_content``, the Responses API's reasoning, Gemini's thought parts) counts it
too, with a :class:`TurnCount` made at its first piece of reasoning: each piece is a sign
of life that moves the stall watch's deadline, so a stream of reasoning without end would
otherwise never end. From then on its text, refusal and arguments count with it (the turn
counts them as well, from the start): a reply with no reasoning costs nothing more per
token.
"""

from __future__ import annotations

from miniagents.ext.llm.errors import LLMResponseError
from miniagents.ext.llm.settings import llm_settings

__all__ = ["TurnCount", "count_reasoning", "is_too_long", "too_long", "turn_chars"]


class _TurnTooLong(LLMResponseError):
    """A provider kept more characters in one turn than ``llm_max_turn_chars`` allows.

    The turn catches it and raises its own ``LLMResponseError`` in its place.
    """


def turn_chars() -> int:
    """The characters one turn may send and keep (``MiniAgents(llm_max_turn_chars=...)``)."""
    return llm_settings().llm_max_turn_chars


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
    """The characters a provider counts of one turn, against its bound (:func:`turn_chars`).

    Attributes:
        most: The bound (``MiniAgents(llm_max_turn_chars=...)``), read when it was made.
        left: The characters the turn may still send (a provider's loop may take them off
            itself, per token, then raise :func:`too_long`'s error below 0).
    """

    __slots__ = ("left", "most")

    def __init__(self) -> None:
        self.most = self.left = turn_chars()

    def spend(self, chars: int) -> None:
        """Count ``chars`` more characters of the turn; past its bound, raise ``too_long()``."""
        self.left -= chars
        if self.left < 0:
            raise too_long(self.most)


def count_reasoning(counted: TurnCount | None, chars: int) -> TurnCount:
    """``counted`` with ``chars`` characters of reasoning more (a new count, at the first).

    Raises:
        LLMResponseError: ``too_long()``'s, past the turn's bound.
    """
    if counted is None:
        counted = TurnCount()
    counted.spend(chars)
    return counted
