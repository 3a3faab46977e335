"""Tool calls and results in histories: kept in ``ChatHistoryMD`` as their classes, carried
into the next prompt, resumed from the file, and never sent without each other."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from miniagents import Message, MiniAgents
from miniagents.ext.history import ChatHistoryError
from miniagents.ext.history.agents import markdown_history_agent
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm import (
    LLMToolCallMessage,
    LLMToolResultMessage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from miniagents.ext.llm.openai import OpenAIMessage
from miniagents.testing import FakeLLMServer, ToolCall
from miniagents.utils import adialog_loop
from tests.ext.history.histories import scripted_user
from tests.ext.llm.providers import LLM, SDKClient
from tests.ext.tools.loop_support import (
    add,
    alternated,
    conversation,
    user,
    wire_call,
    wire_results,
    wire_turn,
)

CALL = ToolCallMessage(tool_name="add", arguments={"a": 2, "b": 3}, call_id="c1")
RESULT = ToolResultMessage(text="5", tool_name="add", call_id="c1")


class Note(Message):
    """A message class of the user's own."""

    author: str


async def test_tool_messages_round_trip_as_their_classes_in_readable_sections(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.md"
    messages = [
        UserMessage(text="What is 2 + 3?"),
        CALL,
        RESULT,
        ToolResultMessage(
            text="The tool add failed: boom", tool_name="add", call_id="c2", is_error=True
        ),
        ToolCallMessage(tool_name="add", text='{"a": 2,', call_id="c3"),  # malformed
        OpenAIMessage(text="It is 5.", model="gpt-4o-mini", finish_reason="stop"),
    ]
    await ChatHistoryMD(path).store(messages)
    loaded = await ChatHistoryMD(path).load()
    assert list(loaded) == messages
    assert [type(message) for message in loaded] == [type(message) for message in messages]
    malformed = loaded[4]
    assert isinstance(malformed, ToolCallMessage)
    assert malformed.arguments_error == messages[4].arguments_error  # type: ignore[attr-defined]
    content = path.read_text(encoding="utf-8")
    headings = [line for line in content.splitlines() if line.startswith("### ")]
    assert headings == [
        "### USER",
        "### TOOL CALL: add",
        "### TOOL RESULT: add",
        "### TOOL ERROR: add",
        "### TOOL CALL: add",
        "### ASSISTANT (gpt-4o-mini)",
    ]
    assert (
        '{"$class": "ToolCallMessage", "role": "assistant", "tool_name": "add", '
        '"arguments": {"a": 2, "b": 3}, "call_id": "c1"} -->\n### TOOL CALL: add\n\n'
        '{"a": 2, "b": 3}\n'
    ) in content
    assert '{"$class": "ToolResultMessage", "role": "tool", "tool_name": "add"' in content
    assert '{"role": "user"} -->' in content  # classes told by their role are not named


async def test_classes_are_known_by_name_only_from_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    note = Note(text="remember", author="ada")
    dollar = Message(text="odd", **{"$class": "Note", "$$x": 1})  # fields named like the key
    await ChatHistoryMD(path).store([note, dollar])
    assert '{"$class": "Note", "author": "ada"}' in path.read_text(encoding="utf-8")

    assert list(await ChatHistoryMD(path, message_classes=[Note]).load()) == [note, dollar]
    unknown, same = await ChatHistoryMD(path).load()  # Note not given: a plain Message
    assert type(unknown) is Message
    assert unknown == Message(text="remember", author="ada")
    assert same == dollar

    class Other(Message):
        pass

    Other.__name__ = "Note"
    with pytest.raises(ChatHistoryError, match="Two message classes are named Note"):
        ChatHistoryMD(path, message_classes=[Note, Other])
    with pytest.raises(ChatHistoryError, match="message_classes takes Message subclasses"):
        ChatHistoryMD(path, message_classes=[dict])  # type: ignore[list-item]


OLD_RESULT_WITHOUT_TEXT = (
    '<!-- miniagents size=140 crc32=22d726ad: {"$class": "ToolResultMessage", "role": "tool", '
    '"tool_name": "a", "call_id": "c", "is_error": false, "text": null} -->\n'
    "### TOOL RESULT: a\n\n\n"
)
"""What an older release wrote for ``ToolResultMessage(tool_name="a", call_id="c")``: its
text was ``None``, which a result's ``text`` (a ``str``) no longer is."""


async def test_a_result_stored_without_text_loads_with_empty_text(tmp_path: Path) -> None:
    # a result made by hand without text, stored before text became a str: it loads, as ""
    path = tmp_path / "chat.md"
    path.write_text(OLD_RESULT_WITHOUT_TEXT, encoding="utf-8")
    (loaded,) = await ChatHistoryMD(path).load()
    assert loaded == ToolResultMessage(text="", tool_name="a", call_id="c")
    assert isinstance(loaded, ToolResultMessage)
    assert loaded.text == ""
    await ChatHistoryMD(path).append(loaded)  # written again with its (empty) text
    assert list(await ChatHistoryMD(path).load()) == [loaded, loaded]


def test_a_result_kept_in_sql_without_text_loads_with_empty_text(tmp_path: Path) -> None:
    from miniagents.ext.dbos.history import TABLE_NAME, ChatHistorySQL

    path = tmp_path / "chats.sqlite"
    history = ChatHistorySQL("chat", database_url=f"sqlite:///{path}")
    asyncio.run(history.append(UserMessage(text="Add.")))
    fields = '{"text": null, "role": "tool", "tool_name": "add", "call_id": "c1"}'
    with closing(sqlite3.connect(path)) as connection, connection:  # closed, committed
        connection.execute(
            f"INSERT INTO {TABLE_NAME} (conversation, class_name, fields) "
            "VALUES ('chat', 'ToolResultMessage', ?)",
            (fields,),
        )
    _, loaded = asyncio.run(history.load())
    assert loaded == ToolResultMessage(text="", tool_name="add", call_id="c1")
    assert isinstance(loaded, ToolResultMessage)
    assert loaded.text == ""


async def test_a_dialog_with_tool_calls_resumes_from_its_file_with_them_in_the_prompt(
    llm: LLM, client: SDKClient, server: FakeLLMServer, tmp_path: Path
) -> None:
    path = tmp_path / "CHAT.md"
    assistant = llm.agent.fork(model=llm.model, async_client=client, tools=[add])
    history = markdown_history_agent.fork(history_md_file=path)
    server.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="c1")])
    server.reply(["It is 5."])
    async with MiniAgents():
        await adialog_loop(scripted_user(["What is 2 + 3?"]), assistant, history)
    saved = await ChatHistoryMD(path).load()
    assert [type(message) for message in saved] == [
        UserMessage,
        LLMToolCallMessage,  # with the model and the agent: what the agent replied
        LLMToolResultMessage,
        llm.message_class,
    ]

    server.reply(["9."])
    async with MiniAgents():  # a new run: the history comes from the file
        await adialog_loop(scripted_user(["And plus 4?"]), assistant, history)
    assert len(server.requests) == 3
    assert conversation(llm, server.requests[2]) == [
        user("What is 2 + 3?"),
        wire_turn(llm, None, [wire_call(llm, "c1", "add", '{"a":2,"b":3}', {"a": 2, "b": 3})]),
        *wire_results(llm, [("c1", "5", False)]),
        {"role": "assistant", "content": "It is 5."},
        user("And plus 4?"),
    ]
    assert [type(message) for message in await ChatHistoryMD(path).load()][4:] == [
        UserMessage,
        llm.message_class,
    ]


async def test_a_call_without_its_result_is_never_sent(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    # A turn cut short after its calls (no result), and a result whose call is gone.
    history: list[Any] = [
        UserMessage(text="What is 2 + 3?"),
        ToolCallMessage(tool_name="add", arguments={"a": 2, "b": 3}, call_id="c0"),
        UserMessage(text="Hello?"),
        ToolResultMessage(text="7", tool_name="add", call_id="c9"),
        # a result that came late, after other messages: it goes right after its call
        CALL,
        UserMessage(text="Still there?"),
        RESULT,
    ]
    async with MiniAgents():
        await llm.agent.inquire(history, model=llm.model, async_client=client, tools=[add])
    assert conversation(llm, server.requests[0]) == alternated(
        llm,
        [
            user("What is 2 + 3?"),
            user("Hello?"),
            wire_turn(
                llm, None, [wire_call(llm, "c1", "add", '{"a": 2, "b": 3}', {"a": 2, "b": 3})]
            ),
            *wire_results(llm, [("c1", "5", False)]),
            user("Still there?"),
        ],
    )


async def test_an_agent_without_tools_sees_earlier_calls_and_results_as_text(
    llm: LLM, client: SDKClient, server: FakeLLMServer
) -> None:
    async with MiniAgents():
        await llm.agent.inquire(
            [UserMessage(text="What is 2 + 3?"), CALL, RESULT, UserMessage(text="Thanks.")],
            model=llm.model,
            async_client=client,
        )
    request = server.requests[0]
    assert "tools" not in request.json
    assert conversation(llm, request) == alternated(
        llm,
        [
            user("What is 2 + 3?"),
            {"role": "assistant", "content": '(I called the tool add: {"a": 2, "b": 3})'},
            user("(The tool add answered: 5)"),
            user("Thanks."),
        ],
    )
