"""Static typing tests for chat history and the console and history agents.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``, so a line that stops failing fails mypy too.
:func:`test_chat_history_types_pass_mypy` runs mypy on this file, so that a regression in
these types also fails the test suite.

Covered: :class:`~miniagents.ext.history.ChatHistory` (``load``, ``append``, ``store``)
and its two implementations, ``InMemoryChatHistory`` and ``ChatHistoryMD`` (with its
keyword-only ``on_torn_section``, ``"drop"`` or ``"raise"``), ``role_of`` (a loaded
message's role, a ``str``), and the chat history errors;
the agents of ``miniagents.ext.history.agents`` and ``miniagents.ext.misc_agents`` (their
parameters are the ``ParamSpec`` of ``MiniAgent``, spelled with ``Arg`` / ``DefaultArg``
of ``mypy_extensions`` as in ``test_agent_types.py``); ``create_console_user_agent``; and
the dialog loop they go in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TypeAlias, assert_type

from mypy_extensions import DefaultArg

from miniagents import Message, MessagePromise, MessageSequencePromise, MessageTuple, MiniAgent
from miniagents.errors import MiniAgentsError
from miniagents.ext.console.agents import console_user_agent as reexported_user_agent
from miniagents.ext.console.agents import create_console_user_agent
from miniagents.ext.history import (
    ChatHistory,
    ChatHistoryError,
    InMemoryChatHistory,
    MalformedChatHistoryError,
    TornChatHistoryError,
    role_of,
)
from miniagents.ext.history.agents import (
    history_agent,
    in_memory_history_agent,
    markdown_history_agent,
)
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.messages import AssistantMessage, LLMReply, UserMessage
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from miniagents.ext.misc_agents import (
    console_input_agent,
    console_output_agent,
    console_user_agent,
    file_output_agent,
)
from miniagents.promising.sentinels import AWAIT
from miniagents.utils import achain_loop, adialog_loop
from tests.fakes.typecheck import assert_passes_mypy

HistoryAgent: TypeAlias = "MiniAgent[[DefaultArg(ChatHistory | None, 'chat_history')]]"
"""``history_agent``: ``async def (ctx, /, chat_history: ChatHistory | None = None)``."""

InMemoryHistoryAgent: TypeAlias = (
    "MiniAgent[[DefaultArg(InMemoryChatHistory | None, 'chat_history')]]"
)
"""``in_memory_history_agent``: its ``chat_history`` must be an ``InMemoryChatHistory``."""

MarkdownHistoryAgent: TypeAlias = (
    "MiniAgent[[DefaultArg(str | os.PathLike[str], 'history_md_file')]]"
)
"""``markdown_history_agent``: ``history_md_file: str | os.PathLike[str] = "CHAT.md"``."""

ConsoleUserAgent: TypeAlias = (
    "MiniAgent[[DefaultArg(str, 'prompt'), DefaultArg(str, 'label'), "
    "DefaultArg(ChatHistory | None, 'chat_history')]]"
)
"""``console_user_agent``: ``prompt``, ``label`` and ``chat_history``, all with defaults."""

FileOutputAgent: TypeAlias = (
    "MiniAgent[[DefaultArg(str | os.PathLike[str] | None, 'file'), DefaultArg(bool, 'append')]]"
)
"""``file_output_agent``: ``file`` (bound with ``fork``) and ``append``."""

# Referenced so that the name used only inside the string aliases above stays imported.
_EXTENDED_CALLABLE_SYNTAX = DefaultArg


class ListHistory(ChatHistory):
    """A chat history of one's own, as the docstring of ``ChatHistory`` shows it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def load(self) -> MessageTuple:
        return MessageTuple(self.messages)

    async def append(self, message: Message) -> None:
        self.messages.append(message)


class LoadOnlyHistory(ChatHistory):
    """Implements ``load`` but not ``append``: still abstract."""

    async def load(self) -> MessageTuple:
        return MessageTuple()


# Known gaps, left out of the checks below (the static types differ from the runtime):
# - Arguments bound by ``fork(...)`` are not checked by mypy (as for every agent):
#   ``markdown_history_agent.fork(history_md_file=3)`` type-checks but fails when called.


# --- ChatHistory and its implementations ----------------------------------------------


async def check_chat_history(history: ChatHistory, message: Message) -> None:
    assert_type(await history.load(), MessageTuple)
    assert_type(await history.append(message), None)
    assert_type(await history.append(UserMessage(text="Hi")), None)
    assert_type(await history.append(AssistantMessage(text="Hello", model="m")), None)
    assert_type(await history.store([message, UserMessage(text="Hi")]), MessageTuple)
    assert_type(await history.store(()), MessageTuple)
    assert_type(await history.store(m for m in [message]), MessageTuple)
    assert_type(history.check_message(object()), Message)
    for loaded in await history.load():
        assert_type(loaded, Message)
    # A loaded history is a MessageTuple, so it is a reply or an input for agents.
    assert_type(
        openai_agent.inquire(await history.load()),
        MessageSequencePromise[LLMReply[OpenAIMessage]],
    )


async def check_a_history_messages_role(history: ChatHistory, message: Message) -> None:
    # A loaded message is a Message (its role an extra field of plain ones): role_of reads it
    # as a str, with no getattr.
    for loaded in await history.load():
        assert_type(role_of(loaded), str)
        if role_of(loaded) == "assistant":
            assert_type(role_of(loaded).upper(), str)
    assert_type(role_of(UserMessage(text="Hi")), str)
    assert_type(role_of(AssistantMessage(text="Hello", model="m")), str)
    message.role  # type: ignore[attr-defined]  # noqa: B018  # (a Message's type names no role)
    role_of("text")  # type: ignore[arg-type]
    role_of(MessagePromise.of_text("Hi"))  # type: ignore[arg-type]


async def check_chat_history_errors(history: ChatHistory) -> None:
    await history.append("text")  # type: ignore[arg-type]
    await history.append(None)  # type: ignore[arg-type]
    await history.store(["text"])  # type: ignore[list-item]
    await history.store("text")  # type: ignore[arg-type]
    ChatHistory()  # type: ignore[abstract]
    LoadOnlyHistory()  # type: ignore[abstract]
    wrong: list[Message] = await history.load()  # type: ignore[assignment]
    assert_type(wrong, list[Message])
    history.load()  # type: ignore[unused-coroutine]


async def check_own_history() -> None:
    history = ListHistory()
    assert_type(history, ListHistory)
    as_base: ChatHistory = history
    assert_type(await as_base.load(), MessageTuple)
    assert_type(await history.store([UserMessage(text="Hi")]), MessageTuple)


async def check_in_memory_history() -> None:
    assert_type(InMemoryChatHistory(), InMemoryChatHistory)
    history = InMemoryChatHistory([UserMessage(text="Hi"), Message(text="Hello")])
    assert_type(history, InMemoryChatHistory)
    assert_type(len(history), int)
    as_base: ChatHistory = history
    assert_type(await as_base.load(), MessageTuple)
    assert_type(await history.load(), MessageTuple)
    assert_type(await history.append(UserMessage(text="Hi")), None)
    assert_type(await history.store([UserMessage(text="Hi")]), MessageTuple)


def check_in_memory_history_errors() -> None:
    InMemoryChatHistory(["text"])  # type: ignore[list-item]
    InMemoryChatHistory("text")  # type: ignore[arg-type]


async def check_markdown_history() -> None:
    history = ChatHistoryMD("CHAT.md")
    assert_type(history, ChatHistoryMD)
    assert_type(history.path, Path)
    assert_type(ChatHistoryMD(Path("CHAT.md")), ChatHistoryMD)
    path_like: os.PathLike[str] = Path("CHAT.md")
    assert_type(ChatHistoryMD(path_like).path, Path)
    as_base: ChatHistory = history
    assert_type(await as_base.load(), MessageTuple)
    assert_type(await history.load(), MessageTuple)
    assert_type(await history.append(UserMessage(text="Hi")), None)
    assert_type(await history.store([UserMessage(text="Hi")]), MessageTuple)
    strict = ChatHistoryMD("CHAT.md", on_torn_section="raise")
    assert_type(strict, ChatHistoryMD)
    assert_type(ChatHistoryMD(Path("CHAT.md"), on_torn_section="drop"), ChatHistoryMD)
    assert_type(strict.on_torn_section, Literal["drop", "raise"])


def check_markdown_history_errors() -> None:
    ChatHistoryMD(3)  # type: ignore[arg-type]
    ChatHistoryMD(b"CHAT.md")  # type: ignore[arg-type]
    ChatHistoryMD()  # type: ignore[call-arg]
    wrong: str = ChatHistoryMD("CHAT.md").path  # type: ignore[assignment]
    assert_type(wrong, str)
    ChatHistoryMD("CHAT.md", on_torn_section="ignore")  # type: ignore[arg-type]
    ChatHistoryMD("CHAT.md", on_torn_section=True)  # type: ignore[arg-type]
    ChatHistoryMD("CHAT.md", "raise")  # type: ignore[call-arg]


def check_chat_history_error_types() -> None:
    error: ChatHistoryError = MalformedChatHistoryError("CHAT.md, line 1: not a history")
    as_value_error: ValueError = MalformedChatHistoryError("CHAT.md, line 1: not a history")
    as_root: MiniAgentsError = ChatHistoryError("cannot read CHAT.md")
    torn: MalformedChatHistoryError = TornChatHistoryError("CHAT.md, line 6: cut short")
    torn_as_value_error: ValueError = TornChatHistoryError("CHAT.md, line 6: cut short")
    assert_type(error, ChatHistoryError)
    assert_type(as_value_error, ValueError)
    assert_type(as_root, MiniAgentsError)
    assert_type(torn, MalformedChatHistoryError)
    assert_type(torn_as_value_error, ValueError)
    not_torn: TornChatHistoryError = MalformedChatHistoryError("x")  # type: ignore[assignment]
    assert_type(not_torn, TornChatHistoryError)


# --- The history agents ---------------------------------------------------------------


def check_history_agent_types() -> None:
    assert_type(history_agent, HistoryAgent)
    assert_type(in_memory_history_agent, InMemoryHistoryAgent)
    assert_type(markdown_history_agent, MarkdownHistoryAgent)
    assert_type(history_agent.fork(chat_history=InMemoryChatHistory()), HistoryAgent)
    assert_type(markdown_history_agent.fork(history_md_file="chat.md"), MarkdownHistoryAgent)
    assert_type(in_memory_history_agent.fork(alias="MEMORY"), InMemoryHistoryAgent)


def check_history_agent_inquire(message: MessagePromise) -> None:
    assert_type(history_agent.inquire(message, chat_history=ListHistory()), MessageSequencePromise)
    assert_type(history_agent.inquire(chat_history=ChatHistoryMD("a.md")), MessageSequencePromise)
    assert_type(history_agent.inquire(chat_history=None), MessageSequencePromise)
    assert_type(in_memory_history_agent.inquire("Hi"), MessageSequencePromise)
    assert_type(
        in_memory_history_agent.inquire("Hi", chat_history=InMemoryChatHistory()),
        MessageSequencePromise,
    )
    assert_type(markdown_history_agent.inquire("Hi"), MessageSequencePromise)
    assert_type(
        markdown_history_agent.inquire("Hi", history_md_file=Path("a.md")),
        MessageSequencePromise,
    )


def check_history_agent_errors() -> None:
    history_agent.inquire(chat_history="CHAT.md")  # type: ignore[arg-type]
    history_agent.inquire(history=InMemoryChatHistory())  # type: ignore[call-arg]
    in_memory_history_agent.inquire(chat_history=ChatHistoryMD("a.md"))  # type: ignore[arg-type]
    markdown_history_agent.inquire(history_md_file=3)  # type: ignore[arg-type]
    markdown_history_agent.inquire(file="a.md")  # type: ignore[call-arg]
    wrong: HistoryAgent = markdown_history_agent  # type: ignore[assignment]
    assert_type(wrong, HistoryAgent)


# --- The console and file agents ------------------------------------------------------


def check_console_agent_types() -> None:
    assert_type(console_user_agent, ConsoleUserAgent)
    assert_type(reexported_user_agent, ConsoleUserAgent)
    assert_type(console_input_agent, MiniAgent[[DefaultArg(str, "prompt")]])
    assert_type(console_output_agent, MiniAgent[[DefaultArg(str, "label")]])
    assert_type(file_output_agent, FileOutputAgent)
    assert_type(console_user_agent.fork(prompt="> "), ConsoleUserAgent)
    assert_type(file_output_agent.fork(file="answer.md"), FileOutputAgent)


def check_console_agent_inquire() -> None:
    assert_type(console_user_agent.inquire(), MessageSequencePromise)
    assert_type(
        console_user_agent.inquire("Hello", prompt="> ", label="AI: "), MessageSequencePromise
    )
    assert_type(
        console_user_agent.inquire(chat_history=InMemoryChatHistory()), MessageSequencePromise
    )
    assert_type(console_input_agent.inquire(prompt="> "), MessageSequencePromise)
    assert_type(console_output_agent.inquire("Hello", label="AI: "), MessageSequencePromise)
    assert_type(file_output_agent.inquire("Hello", file=Path("a.md")), MessageSequencePromise)
    assert_type(
        file_output_agent.inquire("Hello", file="a.md", append=True), MessageSequencePromise
    )


def check_console_agent_errors() -> None:
    console_user_agent.inquire(prompt=1)  # type: ignore[arg-type]
    console_user_agent.inquire(chat_history="CHAT.md")  # type: ignore[arg-type]
    console_user_agent.inquire(history=InMemoryChatHistory())  # type: ignore[call-arg]
    console_input_agent.inquire(label="AI: ")  # type: ignore[call-arg]
    console_output_agent.inquire(label=1)  # type: ignore[arg-type]
    file_output_agent.inquire(file=3)  # type: ignore[arg-type]
    file_output_agent.inquire(file="a.md", append="yes")  # type: ignore[arg-type]


def check_create_console_user_agent() -> None:
    assert_type(create_console_user_agent(), ConsoleUserAgent)
    assert_type(create_console_user_agent(chat_history=ChatHistoryMD("CHAT.md")), ConsoleUserAgent)
    assert_type(create_console_user_agent("> ", "AI: ", InMemoryChatHistory()), ConsoleUserAgent)
    assert_type(create_console_user_agent(prompt="> ", label="AI: "), ConsoleUserAgent)


def check_create_console_user_agent_errors() -> None:
    create_console_user_agent(chat_history="CHAT.md")  # type: ignore[arg-type]
    create_console_user_agent(prompt=1)  # type: ignore[arg-type]
    create_console_user_agent(history_md_file="CHAT.md")  # type: ignore[call-arg]


# --- In the loops, as the seed drafts use them ----------------------------------------


async def check_dialog_loops() -> None:
    assistant = openai_agent.fork(model="gpt-4o-2024-05-13")
    assert_type(await adialog_loop(console_user_agent, assistant), None)
    await adialog_loop(
        user_agent=console_user_agent,
        assistant_agent=openai_agent.fork(model="gpt-3.5-turbo"),
        history_agent=markdown_history_agent.fork(history_md_file="chat_history.md"),
    )
    await adialog_loop(
        user_agent=create_console_user_agent(chat_history=ChatHistoryMD("CHAT.md")),
        assistant_agent=assistant,
        history_agent=in_memory_history_agent,
    )
    await adialog_loop(console_input_agent, assistant, history_agent=history_agent)
    await achain_loop([console_input_agent, AWAIT, assistant, console_output_agent])


async def check_dialog_loop_errors() -> None:
    assistant = openai_agent.fork(model="gpt-4o-2024-05-13")
    await adialog_loop(console_user_agent, assistant, ChatHistoryMD("a.md"))  # type: ignore[arg-type]
    await adialog_loop(create_console_user_agent, assistant)  # type: ignore[arg-type]


# --- The test that pytest runs --------------------------------------------------------


def test_chat_history_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
