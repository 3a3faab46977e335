"""The offline model: an LLM agent with the same interface that needs no network and no key.

For demos and for your own tests. It streams a scripted reply (a string, or a function of
the prompt) or, by default, a deterministic reply built from the prompt, token by token
with a configurable delay.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.llm_agent import make_llm_agent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.provider import Finish, LLMCall, LLMEvent, LLMOptions, call_option

__all__ = [
    "OfflineMessage",
    "OfflineOptions",
    "OfflineProvider",
    "Script",
    "create_offline_agent",
    "offline_agent",
    "offline_reply",
]

Script = str | Iterator[str] | Callable[[LLMCall], str]
"""A reply: a text; an iterator of texts (one per call, e.g. ``iter([...])`` bound with
``fork``); or a function of the call."""


class OfflineMessage(AssistantMessage):
    """A reply of the offline model."""


def offline_reply(call: LLMCall) -> str:
    """The default reply: deterministic, and it shows what the model was asked."""
    last = call.messages[-1][1] if call.messages else ""
    shown = last if len(last) <= 200 else last[:200] + "..."
    return (
        f'(offline model "{call.model}", {len(call.messages)} message(s) in the prompt) '
        f"You said: {shown}"
    )


@dataclass(frozen=True, kw_only=True)
class OfflineOptions(LLMOptions):
    """The arguments of ``offline_agent``: those of every LLM agent, and its own.

    Attributes:
        model: A name for the model, shown in the reply's metadata.
        system: A system prompt (part of the call the reply function sees).
        stall_timeout: Seconds to wait for each next token (default: the context's
            ``MiniAgents(llm_stall_timeout=...)``, 60 seconds unless set; ``None``: no
            limit). A ``token_delay`` longer than it ends the reply with an
            ``LLMTimeoutError``, which lets you test how your code handles one.
        extra_options: Anything else; a reply function sees it in ``call.options``.
        reply: The reply: a text, an iterator of texts (one per call), or a function of
            the ``LLMCall``; by default a deterministic reply built from the prompt.
        token_delay: Seconds to wait before each token.
        max_tokens: The most tokens (words) the reply may have: a longer one is cut, with
            the finish reason "length".
        temperature: Taken, so the offline agent can stand in for another, and shown to a
            reply function in ``call.options``; the reply does not depend on it.
    """

    model: str | None = "offline"
    reply: Script | None = None
    token_delay: float = 0.02
    max_tokens: int | None = call_option(None)
    temperature: float | None = call_option(None)


class OfflineProvider:
    """Streams the offline model's replies (see ``LLMProvider``)."""

    message_class = OfflineMessage

    async def reply(self, call: LLMCall, options: OfflineOptions) -> AsyncIterator[LLMEvent]:
        """Stream the reply word by word (or as one token), then one ``Finish``."""
        text = _text(options.reply, call)
        words = re.findall(r"\S+\s*|\s+", text)
        reason = "stop"
        if options.max_tokens is not None and len(words) > options.max_tokens:
            words, reason = words[: options.max_tokens], "length"
            text = "".join(words)
        for token in words if call.stream else [text]:
            if options.token_delay:
                await asyncio.sleep(options.token_delay)
            yield token
        prompt_words = sum(len(said.split()) for _, said in call.messages)
        yield Finish(reason, prompt_words, len(text.split()))

    def translate(self, error: BaseException) -> BaseException:
        """Errors of the offline model are already what they should be."""
        return error


def _text(script: Script | None, call: LLMCall) -> str:
    if script is None:
        return offline_reply(call)
    if isinstance(script, str):
        return script
    if isinstance(script, Iterator):
        try:
            return next(script)
        except StopIteration:
            raise LLMConfigurationError(
                "The offline agent has used up its scripted replies. Give it more, "
                "e.g. fork(reply=iter([...])) with one text per call."
            ) from None
    return script(call)


offline_agent = make_llm_agent(
    OfflineOptions,
    OfflineProvider(),
    alias="OFFLINE_AGENT",
    summary="An offline LLM stand-in: same interface as the OpenAI and Anthropic agents.",
)
"""An offline LLM stand-in, for demos and tests: no network, no key."""

create_offline_agent = offline_agent.bind
"""An offline agent with arguments bound: ``offline_agent.fork(...)``, with the arguments typed."""
