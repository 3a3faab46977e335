"""``llm_logger_agent``: writes each LLM prompt and response as a markdown file.

``MiniAgents(llm_logger_agent=True)`` sends every LLM call here; each call becomes a
time-stamped file in ``llm_logs/`` (in the current directory), written once the response
is complete.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from miniagents.ext.roles import role_of
from miniagents.messages.message import Message
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import miniagent

__all__ = ["llm_logger_agent", "render_llm_log"]


def render_llm_log(messages: tuple[Message, ...], agent_alias: str) -> str:
    """The markdown of one call: a section per prompt message, then the response.

    A message's images follow its text: by URL (``![image](https://...)``), or by media
    type and size for bytes.
    """
    *prompt, response = messages
    lines = [f"# LLM call of {agent_alias}", ""]
    for message in prompt:
        role = role_of(message) or "user"  # (as the prompt reads it; a blank one: the user's)
        lines += [f"## {role.upper()}", "", str(message), ""]
        for image in message.images:
            shown = image.url or f"(image: {image.media_type}, {len(image.data or b'')} bytes)"
            lines += [f"![image]({shown})" if image.url else shown, ""]
    lines += ["## RESPONSE", ""]
    metadata = {name: value for name, value in response if name != "text" and value is not None}
    for name, value in metadata.items():
        lines.append(f"- {name}: {value}")
    lines += ["", str(response), ""]
    return "\n".join(lines)


@miniagent(alias="LLM_LOGGER_AGENT")
async def llm_logger_agent(
    ctx: InteractionContext, agent_alias: str = "LLM", log_folder: str = "llm_logs"
) -> None:
    """Write the prompt and response it gets (the response last) to a markdown file."""
    messages = await ctx.messages
    if not messages:
        return
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    path = Path(log_folder) / f"{stamp}_{agent_alias}.md"
    text = render_llm_log(tuple(messages), agent_alias)
    await asyncio.to_thread(_write, path, text)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
