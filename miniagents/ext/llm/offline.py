"""The offline model: an LLM agent with the same interface that needs no network and no key.

For demos and for your own tests. It streams a scripted reply (a string, or a function of
the prompt) or, by default, a deterministic reply built from the prompt, token by token
with a configurable delay.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.llm_common import Finish, LLMCall, run_llm_agent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.miniagents.agent import miniagent
from miniagents.miniagents.interaction import InteractionContext

__all__ = ["OfflineMessage", "create_offline_agent", "offline_agent", "offline_reply"]

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


class _OfflineProvider:
    message_class = OfflineMessage

    def __init__(self, script: Script | None, token_delay: float) -> None:
        self.script = script
        self.token_delay = token_delay

    def reply(self, call: LLMCall, client: object | None) -> AsyncIterator[str | Finish]:
        return self._reply(call)

    def _text(self, call: LLMCall) -> str:
        script = self.script
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

    async def _reply(self, call: LLMCall) -> AsyncIterator[str | Finish]:
        text = self._text(call)
        tokens = re.findall(r"\S+\s*|\s+", text) if call.stream else [text]
        for token in tokens:
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            yield token
        words = sum(len(text.split()) for _, text in call.messages)
        yield Finish("stop", words, len(text.split()))

    def translate(self, error: BaseException) -> BaseException:
        return error


@miniagent(alias="OFFLINE_AGENT")
async def offline_agent(
    ctx: InteractionContext,
    /,
    model: str = "offline",
    stream: bool | None = None,
    system: str | None = None,
    reply: Script | None = None,
    token_delay: float = 0.02,
    **kwargs: Any,
) -> None:
    """An offline LLM stand-in: same interface as the OpenAI and Anthropic agents.

    Args:
        ctx: The interaction.
        model: A name for the model, shown in the reply's metadata.
        stream: Stream word by word (default: the ``MiniAgents`` setting, on).
        system: A system prompt (part of the call the reply function sees).
        reply: The reply: a text, an iterator of texts (one per call), or a function of
            the ``LLMCall``; by default a deterministic reply built from the prompt.
        token_delay: Seconds to wait before each token.
        **kwargs: Accepted and ignored (``max_tokens``, ``temperature``, ...), so the
            offline agent can stand in for a real one.
    """
    await run_llm_agent(
        ctx,
        _OfflineProvider(reply, token_delay),
        model=model,
        stream=stream,
        system=system,
        client=None,
        options=kwargs,
    )


create_offline_agent = offline_agent.bind
"""An offline agent with arguments bound: ``offline_agent.fork(...)``, with the arguments typed."""
