"""The turn's bound on characters, for what a provider keeps beside its events: thinking.

A provider that keeps the thinking its model streams, to send it back with the turn's
tool calls (Anthropic's thinking blocks, Bedrock's reasoning), counts it with the text
and arguments it streams against ``MiniAgents(llm_max_turn_chars=...)``, as
:func:`turn_chars` gives it: thinking counts as text does. Past the bound it raises
:func:`too_long`'s error, which the turn knows (:func:`is_too_long`) and gives as its own
error of a turn too long (the agent's alias and the setting named), as if the text had gone
over.
"""

from __future__ import annotations

from miniagents.ext.llm.errors import LLMResponseError
from miniagents.ext.llm.settings import llm_settings

__all__ = ["is_too_long", "too_long", "turn_chars"]


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
