"""The tokens a reply's texts said their model calls used, summed per model, for the encoders.

An LLM agent's answer says the usage of every call of its model in the reply (its tool
loop's), and a structured answer (``structured(agent, Weather)``) carries it as an extra
field; the other messages say none. A protocol's encoder notes each text of the reply as it
ends (:meth:`ReplyUsage.note`) and writes what was noted where its protocol puts usage.
What an agent called as a tool used is not in its caller's reply, so it is not counted.
"""

from __future__ import annotations

from miniagents.ext.llm.messages import LLMMessage, TokenUsage
from miniagents.messages.message import Message

__all__ = ["ReplyUsage"]


def _usage_said(message: Message | None) -> tuple[TokenUsage, str | None] | None:
    """The usage ``message`` says, with its model (``None``: it says none)."""
    if isinstance(message, LLMMessage):
        usage, model = message.usage, message.model
    else:
        extra = (message.model_extra or {}) if message is not None else {}
        usage, model = extra.get("usage"), extra.get("model")
    if not isinstance(usage, TokenUsage):
        return None
    return usage, model if isinstance(model, str) else None


class ReplyUsage:
    """The usage the texts of a reply said so far, summed per model (in the order first said)."""

    __slots__ = ("_by_model",)

    def __init__(self) -> None:
        self._by_model: dict[str | None, TokenUsage] = {}

    def note(self, message: Message | None) -> None:
        """Add the usage that ``message`` (a text of the reply, ended) says, if any."""
        said = _usage_said(message)
        if said is not None:
            usage, model = said
            earlier = self._by_model.get(model)
            self._by_model[model] = usage if earlier is None else _sum(earlier, usage)

    def by_model(self) -> dict[str | None, TokenUsage]:
        """The usage noted, per model (``None``: texts that named no model)."""
        return dict(self._by_model)

    def total(self) -> TokenUsage | None:
        """The usage noted, all models summed (``None``: none was noted)."""
        found = list(self._by_model.values())
        if not found:
            return None
        total = found[0]
        for usage in found[1:]:
            total = _sum(total, usage)
        return total

    def clear(self) -> None:
        """Forget what was noted (a protocol that counts each run apart starts anew)."""
        self._by_model.clear()


def _sum(first: TokenUsage, second: TokenUsage) -> TokenUsage:
    """The two usages summed, field by field (a count neither knows stays unknown)."""
    fields: dict[str, object] = {}
    for name in TokenUsage.model_fields:
        values = [
            value for value in (getattr(first, name), getattr(second, name)) if value is not None
        ]
        if values:
            fields[name] = sum(values)
    return TokenUsage.model_validate(fields)
