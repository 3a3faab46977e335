"""Self-development: agents read this repository's source and draft documentation for it.

Run it with ``python examples/self_dev/self_dev.py [PACKAGE_DIR] [OUTPUT.md]`` (by default
the ``miniagents/ext`` folder of this repository, and ``MODULES.md`` in the current
folder). A reader agent reads each module; a documenter agent per module, all running in
parallel, asks the LLM for a short description; an editor gathers the drafts, in order,
into one markdown document, which streams to the console and to the output file.

With no API key the offline model stands in: its "draft" is the module's own docstring
summary, so the example runs anywhere. With ``OPENAI_API_KEY`` (or ``ANTHROPIC_API_KEY`` or
``ANTHROPIC_AUTH_TOKEN``) set, a real model writes the drafts.
"""

from __future__ import annotations

import ast
import asyncio
import sys
from pathlib import Path

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.ext.llm import LLMCall, SystemMessage, UserMessage
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.misc_agents import console_output_agent, file_output_agent

REPOSITORY = Path(__file__).resolve().parents[2]
INSTRUCTIONS = (
    "You document a Python library. Given one module's source, write two or three "
    "sentences for its users: what the module is for and its main names. No preamble."
)


class SourceFile(Message):
    """A module's source, with its path in the repository."""

    path: str


def offline_draft(call: LLMCall) -> str:
    """What the offline model drafts: the summary line of the module's docstring."""
    tree = ast.parse(call.messages[-1].text or "")
    docstring = ast.get_docstring(tree) or "This module has no docstring yet."
    return docstring.split("\n\n")[0].replace("\n", " ")


llm = llm_agent_from_env(
    system=INSTRUCTIONS, max_tokens=300, offline_reply=offline_draft, token_delay=0.0
)


@miniagent
async def reader(ctx: InteractionContext, folder: str = "miniagents/ext") -> None:
    """Replies with the source of every module in ``folder``, one message per file."""
    root = REPOSITORY / folder
    for path in sorted(root.glob("*.py")):
        if not path.name.startswith("_"):  # public modules only
            text = path.read_text(encoding="utf-8")
            ctx.reply(SourceFile(text=text, path=str(path.relative_to(REPOSITORY))))


@miniagent
async def documenter(ctx: InteractionContext) -> None:
    """Drafts the documentation of the module it gets (one LLM call)."""
    source = (await ctx.messages)[0]
    ctx.reply(llm.inquire([SystemMessage(text=INSTRUCTIONS), UserMessage(text=str(source))]))


@miniagent
async def editor(ctx: InteractionContext, folder: str = "miniagents/ext") -> None:
    """Starts a documenter per module at once, and replies with one markdown document."""
    sections = []
    async for source in reader.inquire(folder=folder):
        source_file = await source
        path = source_file.path if isinstance(source_file, SourceFile) else "?"
        sections.append((path, documenter.inquire(source_file)))  # all run in parallel
    document = [f"# The modules of `{folder}`\n"]
    for path, draft in sections:
        document.append(f"## `{path}`\n\n{await draft}\n")
    ctx.reply("\n".join(document))


async def main(folder: str, output: str) -> None:
    """Draft the documentation of ``folder``; print it and write it to ``output``."""
    async with MiniAgents():
        document = editor.inquire(folder=folder)
        written = file_output_agent.inquire(document, file=output)
        await console_output_agent.inquire(written)
    print(f"(written to {output})")


if __name__ == "__main__":
    folder = sys.argv[1] if len(sys.argv) > 1 else "miniagents/ext"
    asyncio.run(main(folder, sys.argv[2] if len(sys.argv) > 2 else "MODULES.md"))
