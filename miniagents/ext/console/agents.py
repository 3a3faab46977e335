"""Console agents: talk with the user at a terminal, print messages as they stream.

- :data:`console_user_agent` prints its input (the assistant's replies) token by token,
  then reads the user's next message and replies with it (with a ``chat_history``, it
  stores both and replies with the whole conversation). A reply that fails with an LLM
  error (a wrong API key, no network, ...) is shown as one line, ``ERROR: <message>`` on
  stderr, and the user goes on.
- :data:`console_input_agent` reads one message from the user.
- :data:`console_output_agent` prints its input token by token and passes it on.
- :data:`create_console_user_agent` binds the console user agent's arguments, typed.

The user ends a dialog with the end of input (Ctrl+D), Ctrl+C, or by typing ``exit``:
``console_user_agent`` and ``console_input_agent`` then raise ``InputEndedError`` (an
``EOFError``) or ``KeyboardInterrupt``, which ends ``adialog_loop`` and ``achain_loop``
cleanly. On a terminal, with prompt_toolkit installed (``pip install "miniagents[console]"``),
a message may span lines: Enter sends it, Alt+Enter (or Esc, Enter) starts a new line.
"""

from __future__ import annotations

from miniagents.arguments import refused_argument
from miniagents.ext.console._terminal import (
    ask_approval,
    print_error,
    print_message,
    print_messages,
    read_user_text,
)
from miniagents.ext.history.base import ChatHistory
from miniagents.ext.llm.errors import LLMError
from miniagents.ext.llm.messages import UserMessage
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import miniagent
from miniagents.root_error import ArgumentError

__all__ = [
    "console_input_agent",
    "console_output_agent",
    "console_user_agent",
    "create_console_user_agent",
]


@miniagent(alias="USER_AGENT")
async def console_user_agent(
    ctx: InteractionContext,
    /,
    prompt: str = "USER: ",
    label: str = "ASSISTANT: ",
    chat_history: ChatHistory | None = None,
) -> None:
    """The user at the console: prints what it gets, then replies with what the user types.

    Args:
        ctx: The interaction.
        prompt: Printed before the user types.
        label: Printed before each incoming message.
        chat_history: If given, each incoming message is stored in it once complete, then
            the user's message, and the reply is the whole history (for a model to read).

    An incoming message that fails with an ``LLMError`` (a refused API key, no network,
    a rate limit, ...) is not stored: its error is shown in one line (``ERROR: ...``, on
    stderr), and the user types the next message as usual (or leaves). Other errors are
    raised: they are bugs to see in full.

    Raises:
        InputEndedError: when the input ends or the user types ``exit`` (an ``EOFError``:
            it ends a dialog loop).
        ChatHistoryOptionError: if ``chat_history`` is not a ``ChatHistory`` (e.g. a path),
            before anything is read.
        ArgumentError: if ``prompt`` or ``label`` is not a ``str``, before anything is read.
    """
    _check_texts("console_user_agent", prompt=prompt, label=label)
    if chat_history is not None:
        ChatHistory.check_argument(
            chat_history, taken_by="console_user_agent", bind="create_console_user_agent"
        )
    try:
        async for message in ctx.message_promises:
            await print_message(message, label)
            await ask_approval(message)
            if chat_history is not None:
                await chat_history.append(await message)
    except LLMError as error:
        print_error(error)
    user_message = UserMessage(text=await read_user_text(prompt))
    if chat_history is None:
        ctx.reply(user_message)
    else:
        ctx.reply(await chat_history.store([user_message]))


@miniagent(alias="CONSOLE_INPUT_AGENT")
async def console_input_agent(ctx: InteractionContext, /, prompt: str = "USER: ") -> None:
    """Reads the user's next message once its input is complete, and replies with it.

    Raises:
        InputEndedError: when the input ends or the user types ``exit`` (an ``EOFError``:
            it ends a dialog loop).
        ArgumentError: if ``prompt`` is not a ``str``.
    """
    _check_texts("console_input_agent", prompt=prompt)
    await ctx.messages
    ctx.reply(UserMessage(text=await read_user_text(prompt)))


@miniagent(alias="CONSOLE_OUTPUT_AGENT")
async def console_output_agent(ctx: InteractionContext, /, label: str = "") -> None:
    """Prints each incoming message token by token (after ``label``) and replies with it.

    Raises:
        ArgumentError: if ``label`` is not a ``str``.
    """
    _check_texts("console_output_agent", label=label)
    ctx.reply(ctx.messages)
    await print_messages(ctx.messages, label)


def _check_texts(owner: str, **texts: object) -> None:
    """Refuse a prompt or a label that is not a ``str`` (``None`` would print nothing)."""
    for name, value in texts.items():
        if not isinstance(value, str):
            raise refused_argument(
                value,
                name,
                "a str",
                owner=owner,
                fix=f'Bind one, e.g. {owner}.fork({name}="> ").',
                error=ArgumentError,
            )


create_console_user_agent = console_user_agent.bind
"""The console user agent with arguments bound (``prompt``, ``label``, ``chat_history``).

The same as ``console_user_agent.fork(...)``, with the arguments typed. With a
``chat_history``, the agent stores the incoming messages and the user's messages in it,
and replies with the whole history.
"""
