"""Chat history: ``InMemoryChatHistory``, ``ChatHistoryMD`` and the history agents.

The markdown file is the part a person reads and a later process resumes from, so most
tests here look at the file itself: what a fresh ``ChatHistoryMD`` loads back, that an
append only ever adds bytes at the end, that a malformed file is reported by file and line
and left untouched, and that a dialog killed mid-reply leaves every complete message
readable. The dialogs run in subprocesses, with the user's messages on a pipe.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from miniagents import (
    Message,
    MessageTuple,
    MiniAgents,
    MiniAgentsError,
)
from miniagents.errors import MessageTypeError
from miniagents.ext.a2a.messages import (
    A2AAuthRequest,
    A2AData,
    A2AFile,
    A2AInputRequest,
    A2AMessage,
)
from miniagents.ext.history import (
    ChatHistory,
    ChatHistoryError,
    ChatHistoryOptionError,
    InMemoryChatHistory,
    MalformedChatHistoryError,
    role_of,
)
from miniagents.ext.history.agents import (
    history_agent,
    in_memory_history_agent,
    markdown_history_agent,
)
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.history.storage import built_in_message_classes
from miniagents.ext.llm.bedrock import BedrockMessage
from miniagents.ext.llm.compatible import CompatibleMessage
from miniagents.ext.llm.gemini import GeminiMessage
from miniagents.ext.llm.messages import (
    AssistantMessage,
    LLMMessage,
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    SystemMessage,
    TokenUsage,
    UserMessage,
)
from miniagents.ext.llm.offline import OfflineMessage, offline_agent
from miniagents.ext.llm.prompt import prompt_of
from miniagents.ext.realtime.pieces import HandoffResult
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.utils import adialog_loop
from tests.ext.history.histories import TRICKY_TEXTS, scripted_user
from tests.history_calls import every_call
from tests.subprocesses import ProcessGroups, run_python

REPO = Path(__file__).resolve().parents[3]

USER_SECTION = '<!-- miniagents: {"role": "user"} -->\n### USER\n\nhello\n\n'
"""A valid section of five lines, as ``ChatHistoryMD`` writes it."""

OLD_MTIME_NS = 1_000_000_000 * 1_000_000_000
"""A modification time far in the past (2001), to see whether a file was touched."""


def offline_text(count: int, said: str) -> str:
    """The offline model's default reply to a prompt of ``count`` messages."""
    return f'(offline model "offline", {count} message(s) in the prompt) You said: {said}'


def summary(messages: Iterable[Message]) -> list[tuple[str, str | None]]:
    """Each message's class name and text, to compare histories at a glance."""
    return [(type(message).__name__, message.text) for message in messages]


def roles_and_texts(messages: Iterable[Message]) -> list[tuple[object, str | None]]:
    return [(getattr(message, "role", None), message.text) for message in messages]


def run_script(cwd: Path, name: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return run_python([name], cwd, stdin=stdin, timeout=60)


def load_fresh(path: Path) -> MessageTuple:
    """The messages a new ``ChatHistoryMD`` (as in a new process) reads from ``path``."""
    return asyncio.run(ChatHistoryMD(path).load())


# --- InMemoryChatHistory and the ChatHistory base ---------------------------------------


async def test_in_memory_history_keeps_messages_in_order() -> None:
    system = SystemMessage(text="Be brief.")
    history = InMemoryChatHistory([system])
    assert await history.load() == (system,)
    assert len(history) == 1

    first = UserMessage(text="one")
    await history.append(first)
    second = AssistantMessage(text="two", model="m")
    third = UserMessage(text="three")
    stored = await history.store([second, third])

    assert isinstance(stored, MessageTuple)
    assert stored == (system, first, second, third)
    assert await history.load() == stored
    assert len(history) == 4
    assert repr(history) == "<InMemoryChatHistory with 4 message(s)>"
    assert await history.store([]) == stored


@pytest.mark.parametrize("make", [InMemoryChatHistory, lambda: ChatHistoryMD("chat.md")])
async def test_a_reply_not_yet_awaited_is_refused_saying_to_await_it(
    make: Callable[[], ChatHistory], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (was: "Pass a list, e.g. store([message])" for a reply, and "Wrap text in a message
    # first" for a message promise: advice that fails again)
    monkeypatch.chdir(tmp_path)
    history = make()
    async with MiniAgents():
        reply = offline_agent.inquire("Hi", token_delay=0)
        [promise] = [piece async for piece in offline_agent.inquire("Hi", token_delay=0)]
        with pytest.raises(MessageTypeError, match=re.escape("first, e.g. store(await reply)")):
            await history.store(reply)  # type: ignore[arg-type]
        with pytest.raises(MessageTypeError, match=re.escape("store(await reply) for an agent")):
            await history.append(reply)  # type: ignore[arg-type]
        with pytest.raises(MessageTypeError, match=re.escape("e.g. append(await promise).")):
            await history.append(promise)  # type: ignore[arg-type]
        with pytest.raises(MessageTypeError, match=re.escape("e.g. store([await promise]).")):
            await history.store([promise])  # type: ignore[list-item]
        assert await history.load() == ()
        assert len(await history.store(await reply)) == 1


@pytest.mark.parametrize("make", [InMemoryChatHistory, lambda: ChatHistoryMD("chat.md")])
async def test_store_refuses_one_message_or_a_text_and_appends_nothing_of_a_wrong_list(
    make: Callable[[], ChatHistory], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    history = make()
    name = type(history).__name__
    first = UserMessage(text="one")
    # one message (pydantic iterates a model as its fields), a text (as its characters)
    for wrong, given in [(first, "a UserMessage"), ("hello", "a str"), (5, "an int")]:
        with pytest.raises(MessageTypeError) as refused:
            await history.store(wrong)  # type: ignore[arg-type]
        assert str(refused.value).startswith(
            f"{name}.store() takes an iterable of Messages (e.g. a list), but got {given}."
        )
        assert "store([message])" in str(refused.value)
    with pytest.raises(
        MessageTypeError, match=rf"^{name}\.store\(\) takes a Message, but got a str \('two'\)"
    ):
        await history.store([first, "two"])  # type: ignore[list-item]
    assert await history.load() == (), "a wrong message is refused before any is appended"
    assert await history.store([first]) == (first,)


async def test_in_memory_history_copies_its_initial_messages() -> None:
    initial: list[Message] = [UserMessage(text="a")]
    history = InMemoryChatHistory(initial)
    initial.append(UserMessage(text="b"))
    await history.append(UserMessage(text="c"))
    assert summary(await history.load()) == [("UserMessage", "a"), ("UserMessage", "c")]
    assert len(initial) == 2
    loaded = await history.load()
    await history.append(UserMessage(text="d"))
    assert len(loaded) == 2, "a loaded tuple is a snapshot, not a view"


async def test_in_memory_history_starts_empty() -> None:
    history = InMemoryChatHistory()
    assert await history.load() == ()
    assert len(history) == 0
    assert repr(history) == "<InMemoryChatHistory with 0 message(s)>"


@pytest.mark.parametrize("value", ["hello", {"text": "hello"}, None, 42])
async def test_append_refuses_what_is_not_a_message(value: object) -> None:
    history = InMemoryChatHistory()
    with pytest.raises(TypeError) as caught:
        await history.append(cast(Any, value))
    message = str(caught.value)
    assert "InMemoryChatHistory.append() takes a Message" in message
    assert type(value).__name__ in message
    assert 'UserMessage(text="...")' in message
    assert await history.load() == ()


def test_in_memory_history_refuses_to_start_with_what_is_not_a_message() -> None:
    with pytest.raises(TypeError, match=r"InMemoryChatHistory\(\) takes a Message.* str"):
        InMemoryChatHistory(cast(Any, [SystemMessage(text="Be brief."), "hello"]))


@pytest.mark.parametrize("messages", [None, SystemMessage(text="Be brief."), 3])
def test_in_memory_history_refuses_to_start_with_what_is_not_a_list_of_messages(
    messages: object,
) -> None:
    # (was: TypeError: 'NoneType' object is not iterable, and for a message alone, its
    # fields taken for messages: "takes a Message, but got a value of type tuple")
    with pytest.raises(TypeError, match=r"InMemoryChatHistory\(\) takes an iterable of messages"):
        InMemoryChatHistory(cast(Any, messages))


@pytest.mark.parametrize("classes", [UserMessage, None, "UserMessage"])
def test_a_history_file_refuses_message_classes_that_are_not_a_list(
    tmp_path: Path, classes: object
) -> None:
    # (was: TypeError: '_FrozenMeta' object is not iterable, for a class alone)
    with pytest.raises(
        ChatHistoryOptionError, match=r"a list of Message subclasses.*\[MyMessage\]"
    ):
        ChatHistoryMD(tmp_path / "chat.md", message_classes=cast(Any, classes))


async def test_markdown_append_refuses_what_is_not_a_message(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    with pytest.raises(TypeError, match=r"ChatHistoryMD\.append\(\) takes a Message.* str"):
        await history.append(cast(Any, "hello"))
    assert not path.exists()
    assert await history.load() == ()


def test_check_message_gives_back_the_message_itself() -> None:
    message = UserMessage(text="x")
    assert InMemoryChatHistory().check_message(message) is message


def test_chat_history_is_abstract() -> None:
    with pytest.raises(TypeError):
        cast(Any, ChatHistory)()


def test_chat_history_errors_fit_the_error_hierarchy() -> None:
    assert issubclass(ChatHistoryError, MiniAgentsError)
    assert issubclass(MalformedChatHistoryError, ChatHistoryError)
    assert issubclass(MalformedChatHistoryError, ValueError)
    assert not issubclass(ChatHistoryError, ValueError)


class ListHistory(ChatHistory):
    """The docstring's example: a user's own history, counting the calls it gets."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.appends = 0

    async def load(self) -> MessageTuple:
        return MessageTuple(self.messages)

    async def append(self, message: Message) -> None:
        self.appends += 1
        self.messages.append(message)


async def test_own_chat_history_subclass_works_with_history_agent() -> None:
    history = ListHistory()
    assert await history.store([SystemMessage(text="sys")]) == (SystemMessage(text="sys"),)
    async with MiniAgents():
        agent = history_agent.fork(chat_history=history)
        first = await agent.inquire(UserMessage(text="one"))
        second = await agent.inquire([UserMessage(text="two"), UserMessage(text="three")])
    assert summary(first) == [("SystemMessage", "sys"), ("UserMessage", "one")]
    assert summary(second) == [
        ("SystemMessage", "sys"),
        ("UserMessage", "one"),
        ("UserMessage", "two"),
        ("UserMessage", "three"),
    ]
    assert history.appends == 4
    assert tuple(history.messages) == second


# --- ChatHistoryMD: round trips and the file format ------------------------------------


async def test_markdown_file_has_the_documented_format(tmp_path: Path) -> None:
    path = tmp_path / "CHAT.md"
    history = ChatHistoryMD(path)
    await history.append(UserMessage(text="What is a replayable stream?"))
    await history.append(
        AssistantMessage(text="A stream that keeps what it carried.", model="gpt-4o-mini")
    )
    content = path.read_bytes()
    assert content.decode("utf-8") == (
        '<!-- miniagents size=60 crc32=d1780ad7: {"role": "user"} -->\n'
        "### USER\n"
        "\n"
        "What is a replayable stream?\n"
        "\n"
        "<!-- miniagents size=116 crc32=4eff3411: "
        '{"role": "assistant", "model": "gpt-4o-mini"} -->\n'
        "### ASSISTANT (gpt-4o-mini)\n"
        "\n"
        "A stream that keeps what it carried.\n"
        "\n"
    )
    # as documented: the size and CRC-32 of the bytes from the "{" of the fields to the
    # line break that ends the text
    headers = list(re.finditer(rb"<!-- miniagents size=(\d+) crc32=([0-9a-f]{8}): ", content))
    assert len(headers) == 2
    for match, end in zip(headers, [headers[1].start(), len(content)], strict=True):
        checked = content[match.end() : end - 1]  # the blank line after the text is not in it
        assert checked.startswith(b"{")
        assert checked.endswith((b"carried.\n", b"stream?\n"))
        assert int(match[1]) == len(checked)
        assert int(match[2], 16) == zlib.crc32(checked)
    assert repr(ChatHistoryMD("CHAT.md")) == "ChatHistoryMD('CHAT.md')"


@pytest.mark.parametrize("text", TRICKY_TEXTS.values(), ids=TRICKY_TEXTS.keys())
async def test_markdown_round_trips_any_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    messages = [
        UserMessage(text=text),
        AssistantMessage(text=text, model="gpt-4o", finish_reason="stop"),
        Message(text=text, note=text),
        UserMessage(text="after"),
    ]
    for message in messages:
        await history.append(message)
    assert list(await history.load()) == messages
    assert list(await ChatHistoryMD(path).load()) == messages


async def test_markdown_round_trips_tricky_texts_side_by_side(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    messages: list[Message] = [
        UserMessage(text=text) if index % 2 else AssistantMessage(text=text, model="m")
        for index, text in enumerate(TRICKY_TEXTS.values())
    ]
    history = ChatHistoryMD(path)
    assert await history.store(messages) == tuple(messages)
    assert list(await ChatHistoryMD(path).load()) == messages


async def test_markdown_round_trips_every_kind_of_message(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    messages = [
        SystemMessage(text="Be brief."),
        UserMessage(text="Hi"),
        AssistantMessage(
            text="Hello!",
            model="gpt-4o",
            agent_alias="LLM_AGENT",
            finish_reason="stop",
            usage=TokenUsage(input_tokens=12, output_tokens=3),
        ),
        AssistantMessage(text="partial", usage=TokenUsage(output_tokens=7), finish_reason="length"),
        Message(
            text="a note",
            author="bot",
            tags=("a", "b"),
            nested={"k": [1, 2], "inner": {"deep": "é"}},
            count=3,
            ratio=0.5,
            flag=True,
        ),
        Message(text=None, kind="tool-call", arguments={"query": "x"}),
        UserMessage(text=None),
        Message(),
        AssistantMessage(text="", model="m"),
    ]
    history = ChatHistoryMD(path)
    for message in messages:
        await history.append(message)

    loaded = await ChatHistoryMD(path).load()
    assert list(loaded) == messages
    assert [type(message) for message in loaded] == [type(message) for message in messages]
    assert isinstance(loaded[2], AssistantMessage)
    assert loaded[2].usage == TokenUsage(input_tokens=12, output_tokens=3)
    assert loaded[5].text is None
    assert loaded[6].text is None
    assert loaded[8].text == ""


async def test_markdown_loads_the_approval_requests_and_every_providers_reply_as_themselves(
    tmp_path: Path,
) -> None:
    # an approval request loaded back as a plain Message of role "assistant" was shown to
    # the model, after a restart, as its own text: "Approve the call of delete with ...?"
    path = tmp_path / "chat.md"
    arguments = {"path": "a.txt"}
    messages = [
        UserMessage(text="Delete a.txt"),
        LLMToolCallMessage(tool_name="delete", call_id="c1", arguments=arguments, model="m"),
        LLMToolApprovalRequest(tool_name="delete", call_id="c1", arguments=arguments, model="m"),
        ToolApprovalRequest(tool_name="delete", call_id="c1", arguments=arguments),
        LLMToolResultMessage(text="deleted", tool_name="delete", call_id="c1"),
        GeminiMessage(text="g", model="gemini"),
        BedrockMessage(text="b", model="claude"),
        CompatibleMessage(text="c", model="llama"),
        LLMMessage(text="l", role="assistant"),
        AssistantMessage(text="Done."),
    ]
    await ChatHistoryMD(path).store(messages)
    loaded = await ChatHistoryMD(path).load()
    assert list(loaded) == messages
    assert [type(message) for message in loaded] == [type(message) for message in messages]
    assert prompt_of(loaded, None) == prompt_of(MessageTuple(messages), None)
    assert "Approve the call" not in str(prompt_of(loaded, None))


async def test_markdown_keeps_each_class_and_picks_one_by_role_when_none_is_recorded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.md"
    messages = [
        Message(text="u", role="user"),
        Message(text="a", role="assistant", model="x", extra=1),
        Message(text="s", role="system"),
        Message(text="t", role="tool", name="calc"),
        Message(text="n"),
        OfflineMessage(text="o", model="offline"),
        UserMessage(text="looks like an assistant", role="assistant"),
    ]
    await ChatHistoryMD(path).store(messages)
    loaded = await ChatHistoryMD(path).load()
    assert list(loaded) == messages
    assert [type(message) for message in loaded] == [type(message) for message in messages]

    # sections that record no class (all of them, before classes were recorded): by role
    old = tmp_path / "old.md"
    old.write_text(
        "".join(
            f"<!-- miniagents: {fields} -->\n### X\n\n{text}\n\n"
            for fields, text in [
                ('{"role": "user"}', "u"),
                ('{"role": "assistant", "model": "x", "extra": 1}', "a"),
                ('{"role": "system"}', "s"),
                ('{"role": "tool", "name": "calc"}', "t"),
                ("{}", "n"),
            ]
        ),
        encoding="utf-8",
    )
    assert list(await ChatHistoryMD(old).load()) == [
        UserMessage(text="u"),
        AssistantMessage.model_validate({"text": "a", "model": "x", "extra": 1}),
        SystemMessage(text="s"),
        Message(text="t", role="tool", name="calc"),
        Message(text="n"),
    ]


async def test_the_extensions_message_classes_load_back_as_themselves(tmp_path: Path) -> None:
    # (was: an A2AMessage or a HandoffResult loaded back as a plain Message; the history
    # package may not import their packages, which add them to the stores' built-in classes)
    path = tmp_path / "chat.md"
    messages = [
        A2AMessage(text="from the remote", task_id="t1", context_id="c1", artifact_id="a1"),
        A2AData(data={"n": 1}, task_id="t1"),
        A2AFile(filename="notes.txt", data=b"abc", media_type="text/plain"),
        A2AInputRequest(text="Which city?", task_id="t2"),
        A2AAuthRequest(text="Sign in, please.", task_id="t3"),
        HandoffResult(text="the text agent's answer", call_id="h1", tool_name="ask", handed_to="X"),
    ]
    await ChatHistoryMD(path).store(messages)
    loaded = await ChatHistoryMD(path).load()
    assert [type(message) for message in loaded] == [type(message) for message in messages]
    assert list(loaded) == messages
    assert {A2AMessage, HandoffResult} <= set(built_in_message_classes())
    with pytest.raises(ChatHistoryOptionError, match="Two message classes are named A2AMessage"):
        ChatHistoryMD(path, message_classes=[type("A2AMessage", (Message,), {})])


_MADE_BEFORE_THE_EXTENSION = """
import asyncio, sys
from miniagents.ext.history.errors import ChatHistoryOptionError
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.history.storage import MessageClassRegistry
from miniagents.messages import Message

assert "miniagents.ext.a2a" not in sys.modules
writer, reader = ChatHistoryMD(sys.argv[1]), ChatHistoryMD(sys.argv[1])
clash = MessageClassRegistry([type("A2AData", (Message,), {})])
from miniagents.ext.a2a.messages import A2AData, A2AMessage

async def main() -> None:
    await writer.store([A2AMessage(text="hi", task_id="t1"), A2AData(data={"n": 1})])
    print(*[type(message).__name__ for message in await reader.load()])
    try:
        clash.by_name
    except ChatHistoryOptionError as error:
        print(error)

asyncio.run(main())
"""


def test_a_history_made_before_an_extension_was_imported_knows_its_classes(
    tmp_path: Path,
) -> None:
    # (was: a store took the registered classes as it was made, so a ChatHistoryMD made
    # before miniagents.ext.a2a was imported loaded an A2AMessage back as a plain Message)
    path = tmp_path / "chat.md"
    done = run_python(["-c", _MADE_BEFORE_THE_EXTENSION, str(path)], tmp_path)
    assert done.returncode == 0, done.stderr
    loaded, refused = done.stdout.splitlines()
    assert loaded == "A2AMessage A2AData"
    assert refused.startswith(
        "Two message classes are named A2AData (miniagents.ext.a2a.messages and "
    )


async def test_markdown_file_is_readable_by_a_person(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    await history.store(
        [
            SystemMessage(text="Be brief."),
            UserMessage(text="Hello"),
            AssistantMessage(text="Hi there!\n\n- one\n- two", model="gpt-4o"),
            AssistantMessage(text="no model"),
            Message(text="metadata only", author="bot"),
            Message(text="a tool said", role="tool"),
            Message(text="odd role", role=""),
        ]
    )
    lines = path.read_text(encoding="utf-8").split("\n")
    headings = [line for line in lines if line.startswith("### ")]
    assert headings == [
        "### SYSTEM",
        "### USER",
        "### ASSISTANT (gpt-4o)",
        "### ASSISTANT",
        "### MESSAGE",
        "### TOOL",
        "### MESSAGE",
    ]
    for text in ["Be brief.", "Hello", "Hi there!", "- one", "- two", "metadata only"]:
        assert text in lines, f"{text!r} is not a line of its own"
    headers = [line for line in lines if line.startswith("<!--")]
    assert len(headers) == 7
    header = r"<!-- miniagents size=\d+ crc32=[0-9a-f]{8}: \{.*\} -->"
    assert all(re.fullmatch(header, line) for line in headers)


async def test_markdown_escapes_header_like_lines_with_a_backslash(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    text = '<!-- miniagents: {"role": "system"} -->\n\\<!-- miniagents: x\nplain'
    await ChatHistoryMD(path).append(UserMessage(text=text))
    content = path.read_text(encoding="utf-8")
    assert '\n\\<!-- miniagents: {"role": "system"} -->\n' in content
    assert "\n\\\\<!-- miniagents: x\n" in content
    assert content.count("\n<!-- miniagents:") == 0  # only the first line is a header
    assert content.startswith("<!-- miniagents size=")
    assert list(await ChatHistoryMD(path).load()) == [UserMessage(text=text)]


async def test_markdown_model_name_with_a_line_break_keeps_the_file_readable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.md"
    messages = [
        UserMessage(text="hi"),
        AssistantMessage(text="reply", model="gpt\n4o"),
        Message(text="odd", role="two\nlines"),
    ]
    await ChatHistoryMD(path).store(messages)
    assert list(await ChatHistoryMD(path).load()) == messages


async def test_markdown_round_trips_metadata_that_is_none(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    messages = [
        Message(text="x", reply_to=None),
        UserMessage.model_validate({"text": "y", "tool_call_id": None}),
    ]
    await ChatHistoryMD(path).store(messages)
    assert list(await ChatHistoryMD(path).load()) == messages


# --- ChatHistoryMD: appending only adds to the end --------------------------------------


async def test_append_adds_to_the_end_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    await ChatHistoryMD(path).store([UserMessage(text="one"), AssistantMessage(text="two")])
    before = path.read_bytes()

    history = ChatHistoryMD(path)
    assert summary(await history.load()) == [("UserMessage", "one"), ("AssistantMessage", "two")]
    await history.append(UserMessage(text="three"))
    await ChatHistoryMD(path).append(AssistantMessage(text="four"))  # another writer, at the end

    after = path.read_bytes()
    assert after.startswith(before)
    assert after[len(before) :].startswith(b"<!-- miniagents size=")
    assert summary(await ChatHistoryMD(path).load()) == [
        ("UserMessage", "one"),
        ("AssistantMessage", "two"),
        ("UserMessage", "three"),
        ("AssistantMessage", "four"),
    ]


async def test_two_histories_of_one_file_take_in_each_others_appends(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    first, second = ChatHistoryMD(path), ChatHistoryMD(path)
    assert await first.load() == await second.load() == ()
    expected: list[Message] = []
    for index in range(3):
        for history in (first, second):
            message = UserMessage(text=f"{index} from {'first' if history is first else 'second'}")
            await history.append(message)
            expected.append(message)
            assert list(await history.load()) == expected  # it saw the other's appends first
    assert list(await ChatHistoryMD(path).load()) == expected


@pytest.mark.parametrize("exists", [True, False], ids=["file", "no-file-yet"])
async def test_a_load_takes_in_what_another_history_of_the_file_appended_since(
    tmp_path: Path, exists: bool
) -> None:
    # (was: load() read the file once, at its first call: a reader never saw a writer's
    # later messages, in this process or another, until it appended one itself)
    path = tmp_path / "chat.md"
    if exists:
        await ChatHistoryMD(path).append(UserMessage(text="before"))
    reader, writer = ChatHistoryMD(path), ChatHistoryMD(path)
    expected: list[Message] = [UserMessage(text="before")] if exists else []
    assert list(await reader.load()) == expected
    for text in ("one", "two"):
        await writer.append(UserMessage(text=text))
        expected.append(UserMessage(text=text))
        assert list(await reader.load()) == expected
        assert list(await reader.load()) == expected  # unchanged: nothing read twice
    await reader.append(AssistantMessage(text="three"))
    expected.append(AssistantMessage(text="three"))
    assert list(await writer.load()) == expected == list(await reader.load())
    assert list(await ChatHistoryMD(path).load()) == expected


@pytest.mark.parametrize("change", ["shortened", "removed", "replaced"])
async def test_a_file_changed_under_a_history_is_not_written_to(
    tmp_path: Path, change: str
) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    await history.store([UserMessage(text="one"), UserMessage(text="two")])
    content = path.read_bytes()
    if change == "shortened":
        path.write_bytes(content[: len(content) // 2])
    elif change == "removed":
        path.unlink()
    else:
        replacement = tmp_path / "other.md"
        replacement.write_bytes(content)
        replacement.replace(path)
    before = path.read_bytes() if path.exists() else None

    with pytest.raises(ChatHistoryError) as caught:
        await history.append(UserMessage(text="three"))
    assert not isinstance(caught.value, MalformedChatHistoryError)
    assert str(path) in str(caught.value)
    assert "this message was not written" in str(caught.value)
    assert "make a new one to read the file again" in str(caught.value)
    assert (path.read_bytes() if path.exists() else None) == before
    assert [m.text for m in await history.load()] == ["one", "two"]


@pytest.mark.parametrize(
    ("ending", "first_text"),
    [("hello", "hello"), ("hello\n", "hello"), ("hello\n\n", "hello"), ("hello\n\n\n", "hello\n")],
    ids=["no-newline", "one-newline", "as-written", "three-newlines"],
)
async def test_append_to_a_file_with_any_ending(
    tmp_path: Path, ending: str, first_text: str
) -> None:
    # a file ends as written ("text\n\n"), or as a person saved it after an edit
    path = tmp_path / "chat.md"
    original = ('<!-- miniagents: {"role": "user"} -->\n### USER\n\n' + ending).encode()
    path.write_bytes(original)

    history = ChatHistoryMD(path)
    assert list(await history.load()) == [UserMessage(text=first_text)]
    await history.append(AssistantMessage(text="next", model="m"))
    await history.append(UserMessage(text="last"))

    assert path.read_bytes().startswith(original)
    expected = [
        UserMessage(text=first_text),
        AssistantMessage(text="next", model="m"),
        UserMessage(text="last"),
    ]
    assert list(await history.load()) == expected
    assert list(await ChatHistoryMD(path).load()) == expected


@pytest.mark.parametrize("ending", ["", "\n"], ids=["no-newline", "newline"])
async def test_append_after_a_section_without_a_blank_line_keeps_the_file_readable(
    tmp_path: Path, ending: str
) -> None:
    path = tmp_path / "chat.md"
    path.write_text('<!-- miniagents: {"role": "user"} -->\n### USER' + ending, encoding="utf-8")
    history = ChatHistoryMD(path)
    assert list(await history.load()) == [UserMessage(text="")]  # it loads ...
    await history.append(UserMessage(text="next"))
    # ... so after an append it should load too
    assert list(await ChatHistoryMD(path).load()) == [
        UserMessage(text=""),
        UserMessage(text="next"),
    ]


async def test_blank_lines_before_the_first_section_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    path.write_text("\n  \n\t\n" + USER_SECTION, encoding="utf-8")
    assert list(await ChatHistoryMD(path).load()) == [UserMessage(text="hello")]


@pytest.mark.parametrize("content", ["", "\n", "\n\n  \n"], ids=["empty", "newline", "blanks"])
async def test_an_empty_file_is_an_empty_history(tmp_path: Path, content: str) -> None:
    path = tmp_path / "chat.md"
    path.write_text(content, encoding="utf-8")
    history = ChatHistoryMD(path)
    assert await history.load() == ()
    await history.append(UserMessage(text="first"))
    assert path.read_text(encoding="utf-8").startswith(content)
    assert list(await ChatHistoryMD(path).load()) == [UserMessage(text="first")]


async def test_a_missing_file_is_created_at_the_first_append(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    assert await history.load() == ()
    assert not path.exists(), "load() must not create the file"
    await history.append(UserMessage(text="first"))
    assert path.is_file()
    assert list(await ChatHistoryMD(path).load()) == [UserMessage(text="first")]


async def test_the_file_is_read_lazily(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(str(path))  # a str path works too
    assert history.path == path
    path.write_text(USER_SECTION, encoding="utf-8")  # written after the history was made
    assert list(await history.load()) == [UserMessage(text="hello")]

    broken = tmp_path / "broken.md"
    broken.write_text("not a chat history\n", encoding="utf-8")
    ChatHistoryMD(broken)  # making it reads nothing, so it does not fail


async def test_a_missing_directory_is_a_chat_history_error(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "chat.md"
    history = ChatHistoryMD(path)
    assert await history.load() == ()
    with pytest.raises(ChatHistoryError) as caught:
        await history.append(UserMessage(text="lost"))
    assert not isinstance(caught.value, MalformedChatHistoryError)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    assert not (tmp_path / "no").exists()
    assert await history.load() == (), "a message that was not written is not kept"


# --- ChatHistoryMD: malformed files ------------------------------------------------------


def _section(fields: str, heading: str = "### USER", body: str = "x") -> str:
    return f"<!-- miniagents: {fields} -->\n{heading}\n\n{body}\n\n"


USER = '{"role": "user"}'

MALFORMED: dict[str, tuple[bytes, int]] = {
    "text-before-the-first-header": (("stray text\n" + USER_SECTION).encode(), 1),
    "text-after-blank-lines": (("\n\nstray\n" + USER_SECTION).encode(), 3),
    "header-with-trailing-space": (b"<!-- miniagents: {} --> \n### X\n\nx\n", 1),
    "bad-json": ((USER_SECTION + _section('{"role": user}')).encode(), 6),
    "json-array": (_section("[1, 2]").encode(), 1),
    "json-string": ((USER_SECTION * 2 + _section('"user"')).encode(), 11),
    "json-null": (_section("null").encode(), 1),
    "missing-heading": ((USER_SECTION + _section(USER, heading="USER")).encode(), 7),
    "heading-without-space": (_section(USER, heading="###USER").encode(), 2),
    "header-at-the-end": ((USER_SECTION + "<!-- miniagents: {} -->\n").encode(), 7),
    "header-at-the-end-without-newline": ((USER_SECTION + "<!-- miniagents: {} -->").encode(), 7),
    "missing-blank-line": (
        (USER_SECTION + '<!-- miniagents: {"role": "user"} -->\n### USER\nx\n\n').encode(),
        8,
    ),
    "model-not-a-string": (
        (USER_SECTION * 2 + _section('{"role": "assistant", "model": 5}', "### A")).encode(),
        11,
    ),
    "usage-not-an-object": (_section('{"role": "assistant", "usage": "many"}').encode(), 1),
    "tokens-not-numbers": (
        (USER_SECTION + _section('{"role": "assistant", "usage": {"input_tokens": "x"}}')).encode(),
        6,
    ),
    "null-text-with-a-body": (_section('{"role": "user", "text": null}').encode(), 1),
    "text-in-the-header": (_section('{"role": "user", "text": "x"}', body="").encode(), 1),
    "invalid-utf8": (
        USER_SECTION.encode() + _section(USER, body="caf\udce9").encode("utf-8", "surrogateescape"),
        9,
    ),
    "invalid-utf8-on-line-1": (b"\xff\xfe" + USER_SECTION.encode(), 1),
    "truncated-utf8-at-the-end": (USER_SECTION.encode() + "é".encode()[:1], 6),
}


def _assert_names_file_and_line(error: BaseException, path: Path, line: int) -> None:
    message = str(error)
    assert str(path) in message
    assert re.findall(r"\bline (\d+)\b", message) == [str(line)], message


@pytest.mark.parametrize(("content", "line"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_file_is_reported_and_left_untouched(
    tmp_path: Path, content: bytes, line: int
) -> None:
    path = tmp_path / "chat.md"
    path.write_bytes(content)
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    for attempt in every_call(ChatHistoryMD(path)):
        with pytest.raises(MalformedChatHistoryError) as caught:
            await attempt()
        assert isinstance(caught.value, ValueError)
        assert isinstance(caught.value, MiniAgentsError)
        _assert_names_file_and_line(caught.value, path, line)
        assert "not changed" in str(caught.value)

    with pytest.raises(MalformedChatHistoryError):
        await ChatHistoryMD(path).append(UserMessage(text="new"))  # append before any load

    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == OLD_MTIME_NS
    assert os.listdir(tmp_path) == ["chat.md"], "no other file was written"


# --- History agents, in process ----------------------------------------------------------


async def test_in_memory_history_agent_shares_one_history_per_context() -> None:
    async with MiniAgents():
        first = await in_memory_history_agent.inquire(UserMessage(text="a"))
        second = await in_memory_history_agent.fork().inquire(["b", "c"])
    async with MiniAgents():
        other = await in_memory_history_agent.inquire("z")
    assert summary(first) == [("UserMessage", "a")]
    assert summary(second) == [("UserMessage", "a"), ("Message", "b"), ("Message", "c")]
    assert summary(other) == [("Message", "z")]


async def test_in_memory_history_agent_uses_a_bound_history() -> None:
    history = InMemoryChatHistory([SystemMessage(text="sys")])
    async with MiniAgents():
        bound = await in_memory_history_agent.fork(chat_history=history).inquire("x")
        unbound = await in_memory_history_agent.inquire("y")
    assert summary(bound) == [("SystemMessage", "sys"), ("Message", "x")]
    assert summary(await history.load()) == summary(bound)
    assert summary(unbound) == [("Message", "y")]


async def test_an_in_memory_history_agent_given_a_path_names_what_it_takes() -> None:
    async with MiniAgents():
        # (was: AttributeError: 'str' object has no attribute 'append', after the input)
        fix = re.escape("e.g. in_memory_history_agent.fork(chat_history=ChatHistoryMD(path))")
        with pytest.raises(ChatHistoryOptionError, match=fix) as by:
            await in_memory_history_agent.inquire("x", chat_history=cast(Any, "CHAT.md"))
        assert str(by.value).startswith(
            "in_memory_history_agent needs chat_history to be a ChatHistory; got 'CHAT.md'."
        )


async def test_history_agent_needs_a_chat_history() -> None:
    async with MiniAgents():
        with pytest.raises(ValueError, match=r"fork\(chat_history=") as caught:
            await history_agent.inquire("x")
    assert "history_agent needs a chat history" in str(caught.value)


async def test_a_history_agent_given_a_path_or_no_path_names_what_it_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with MiniAgents():
        # (was: AttributeError: 'str' object has no attribute 'append')
        fix = re.escape("e.g. history_agent.fork(chat_history=ChatHistoryMD(path))")
        with pytest.raises(ChatHistoryOptionError, match=fix) as by:
            await history_agent.inquire("x", chat_history=cast(Any, "CHAT.md"))
        assert str(by.value).startswith(
            "history_agent needs chat_history to be a ChatHistory; got 'CHAT.md'."
        )
        for wrong in (None, 3):  # (was: TypeError: expected str, bytes or os.PathLike object)
            with pytest.raises(ChatHistoryOptionError, match=r"fork\(history_md_file=") as by:
                await markdown_history_agent.inquire("x", history_md_file=cast(Any, wrong))
            assert f"to be a path (a str or a PathLike); got {wrong}." in str(by.value)
    assert not (tmp_path / "CHAT.md").exists()  # (no file written)


async def test_markdown_history_agent_writes_the_file_and_replies_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "chat.md"
    by_relative_name = markdown_history_agent.fork(history_md_file="chat.md")
    by_absolute_path = markdown_history_agent.fork(history_md_file=path)
    async with MiniAgents():
        first = await by_relative_name.inquire(
            [UserMessage(text="a"), AssistantMessage(text="b", model="m")]
        )
        # the same file by other names: one history in this context, read once, so each
        # call sees what the others stored
        second = await by_absolute_path.inquire("c")
        third = await by_relative_name.inquire("d")
    assert list(first) == [UserMessage(text="a"), AssistantMessage(text="b", model="m")]
    assert summary(second) == [("UserMessage", "a"), ("AssistantMessage", "b"), ("Message", "c")]
    assert [message.text for message in third] == ["a", "b", "c", "d"]
    assert list(await ChatHistoryMD(path).load()) == list(third)

    async with MiniAgents():  # a new context reads the file again, as a new process would
        fourth = await markdown_history_agent.fork(history_md_file=str(path)).inquire("e")
    assert [message.text for message in fourth] == ["a", "b", "c", "d", "e"]
    assert summary(await ChatHistoryMD(path).load()) == summary(fourth)


async def test_markdown_history_agent_refuses_a_path_no_file_can_have(tmp_path: Path) -> None:
    agent = markdown_history_agent.fork(history_md_file=tmp_path / "a\x00b.md")
    async with MiniAgents():
        with pytest.raises(ChatHistoryOptionError, match="holds a NUL character"):
            await agent.inquire("x")


def test_a_chat_history_md_of_no_path_names_what_it_takes() -> None:
    for wrong in (None, 3):  # (was: TypeError: expected str, bytes or os.PathLike object)
        with pytest.raises(ChatHistoryOptionError) as by:
            ChatHistoryMD(cast(Any, wrong))
        assert str(by.value) == (
            f"ChatHistoryMD needs path to be a path (a str or a PathLike); got {wrong}. "
            'Pass e.g. ChatHistoryMD("CHAT.md").'
        )


async def test_markdown_history_agent_defaults_to_chat_md(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with MiniAgents():
        reply = await markdown_history_agent.inquire(UserMessage(text="hi"))
    assert list(reply) == [UserMessage(text="hi")]
    assert list(await ChatHistoryMD(tmp_path / "CHAT.md").load()) == [UserMessage(text="hi")]


async def test_markdown_history_agent_reports_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    path.write_text("not a chat history\n", encoding="utf-8")
    async with MiniAgents():
        with pytest.raises(MalformedChatHistoryError, match=r"line 1\b"):
            await markdown_history_agent.fork(history_md_file=path).inquire("x")
    assert path.read_text(encoding="utf-8") == "not a chat history\n"


class RecordingHistory(InMemoryChatHistory):
    """Records each append, with the text the message had then."""

    def __init__(self) -> None:
        super().__init__()
        self.appended: list[Message] = []

    async def append(self, message: Message) -> None:
        self.appended.append(message)
        await super().append(message)


async def test_history_agent_stores_each_complete_message_once_in_order() -> None:
    history = RecordingHistory()
    words = "one two three four five"
    async with MiniAgents():
        streamed = offline_agent.fork(token_delay=0.001, reply=words).inquire("q")
        reply = await history_agent.fork(chat_history=history).inquire(
            [UserMessage(text="first"), streamed, "last"]
        )
    assert summary(history.appended) == [
        ("UserMessage", "first"),
        ("OfflineMessage", words),  # complete, not a part of the stream
        ("Message", "last"),
    ]
    assert list(reply) == history.appended


EXPECTED_DIALOG = [
    ("user", "one"),
    ("assistant", offline_text(1, "one")),
    ("user", "two"),
    ("assistant", offline_text(3, "two")),
    ("user", "three"),
    ("assistant", offline_text(5, "three")),
]


async def test_dialog_loop_with_history_agent_keeps_the_whole_conversation() -> None:
    history = RecordingHistory()
    async with MiniAgents():
        await adialog_loop(
            user_agent=scripted_user(["one", "two", "three"]),
            assistant_agent=offline_agent.fork(token_delay=0.0),
            history_agent=history_agent.fork(chat_history=history),
        )
    # the assistant saw 1, 3, then 5 messages: the whole conversation each turn
    assert roles_and_texts(await history.load()) == EXPECTED_DIALOG
    assert history.appended == list(await history.load()), "each message stored once"


async def test_dialog_loop_with_own_history_subclass() -> None:
    history = ListHistory()
    async with MiniAgents():
        await adialog_loop(
            scripted_user(["one", "two", "three"]),
            offline_agent.fork(token_delay=0.001),
            history_agent.fork(chat_history=history),
        )
    assert roles_and_texts(history.messages) == EXPECTED_DIALOG
    assert history.appends == len(EXPECTED_DIALOG)


async def test_dialog_loop_with_markdown_history_agent(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    for texts in [["one", "two"], ["three"]]:  # the second dialog resumes the first
        async with MiniAgents():
            await adialog_loop(
                scripted_user(texts),
                offline_agent.fork(token_delay=0.0),
                markdown_history_agent.fork(history_md_file=path),
            )
    loaded = await ChatHistoryMD(path).load()
    assert roles_and_texts(loaded) == EXPECTED_DIALOG
    assert [type(message) for message in loaded] == [UserMessage, OfflineMessage] * 3


# --- Dialogs in subprocesses: resuming, and crashing -------------------------------------


DIALOG_SCRIPT = """\
import asyncio

from miniagents import MiniAgents
from miniagents.ext.history.agents import markdown_history_agent
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.misc_agents import console_user_agent
from miniagents.utils import adialog_loop


async def main() -> None:
    async with MiniAgents():
        await adialog_loop(
            user_agent=console_user_agent,
            assistant_agent=offline_agent.fork(token_delay=0.0),
            history_agent=markdown_history_agent.fork(history_md_file="chat.md"),
        )


asyncio.run(main())
"""

SEED_SCRIPT = """\
from miniagents import MiniAgents
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.console.agents import create_console_user_agent
from miniagents.ext.llm.offline import create_offline_agent
from miniagents.utils import adialog_loop


async def amain() -> None:
    await adialog_loop(
        user_agent=create_console_user_agent(chat_history=ChatHistoryMD("CHAT.md")),
        assistant_agent=create_offline_agent(token_delay=0.0),
    )


MiniAgents().run(amain())
"""


@pytest.mark.parametrize(
    ("script", "file_name"),
    [(DIALOG_SCRIPT, "chat.md"), (SEED_SCRIPT, "CHAT.md")],
    ids=["history-agent", "console-user-agent-chat-history"],
)
def test_a_dialog_resumes_from_its_file_in_a_new_process(
    tmp_path: Path, script: str, file_name: str
) -> None:
    (tmp_path / "dialog.py").write_text(script, encoding="utf-8")
    path = tmp_path / file_name

    first = run_script(tmp_path, "dialog.py", "hello\nsecond\n")
    assert (first.returncode, first.stderr) == (0, "")
    assert f"ASSISTANT: {offline_text(1, 'hello')}\n" in first.stdout
    assert f"ASSISTANT: {offline_text(3, 'second')}\n" in first.stdout
    after_first = path.read_bytes()
    assert roles_and_texts(load_fresh(path)) == [
        ("user", "hello"),
        ("assistant", offline_text(1, "hello")),
        ("user", "second"),
        ("assistant", offline_text(3, "second")),
    ]

    second = run_script(tmp_path, "dialog.py", "third\n\nfourth\nexit\nnot read\n")
    assert (second.returncode, second.stderr) == (0, "")
    # the model's prompt holds the first run's four messages, then the new one
    assert f"ASSISTANT: {offline_text(5, 'third')}\n" in second.stdout
    assert f"ASSISTANT: {offline_text(7, 'fourth')}\n" in second.stdout
    assert "not read" not in second.stdout

    assert path.read_bytes().startswith(after_first)
    loaded = load_fresh(path)
    assert roles_and_texts(loaded) == [
        ("user", "hello"),
        ("assistant", offline_text(1, "hello")),
        ("user", "second"),
        ("assistant", offline_text(3, "second")),
        ("user", "third"),
        ("assistant", offline_text(5, "third")),
        ("user", "fourth"),
        ("assistant", offline_text(7, "fourth")),
    ]
    assert [type(message) for message in loaded] == [UserMessage, OfflineMessage] * 4
    assert all(
        isinstance(message, OfflineMessage) and message.model == "offline"
        for message in loaded[1::2]
    )
    content = path.read_text(encoding="utf-8")
    assert content.count("\n### ASSISTANT (offline)\n") == 4
    first_header = r'<!-- miniagents size=\d+ crc32=[0-9a-f]{8}: \{"role": "user"\} -->\n'
    assert re.match(first_header + r"### USER\n\nhello\n\n", content)


SLOW_TEMPLATE = """\
import asyncio

from miniagents import MiniAgents
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.console.agents import create_console_user_agent
from miniagents.ext.history.agents import markdown_history_agent
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.misc_agents import console_user_agent
from miniagents.utils import adialog_loop

LONG = " ".join(f"word{{i}}" for i in range(2000))  # 0.2 s a word: it would take 400 s


async def main() -> None:
    async with MiniAgents():
        await adialog_loop(
            {agents},
            assistant_agent=offline_agent.fork(
                token_delay=0.2, reply=iter(["short reply", LONG, "never"])
            ),
        )


asyncio.run(main())
"""

WITH_HISTORY_AGENT = (
    "user_agent=console_user_agent,\n"
    '            history_agent=markdown_history_agent.fork(history_md_file="chat.md")'
)
WITH_USER_HISTORY = 'user_agent=create_console_user_agent(chat_history=ChatHistoryMD("chat.md"))'

COMPLETED_BEFORE_THE_SLOW_REPLY = [
    UserMessage(text="first"),
    OfflineMessage(
        text="short reply",
        model="offline",
        agent_alias="OFFLINE_AGENT",
        finish_reason="stop",
        usage=TokenUsage(input_tokens=1, output_tokens=2),
    ),
    UserMessage(text="second"),
]


ENDS_WITHIN = 30.0
"""Seconds a dialog has to end after Ctrl+C: far more than it takes, far less than its reply."""


class SlowDialog:
    """A dialog subprocess whose second reply streams slowly; stdin stays open.

    Its output comes through a pipe that the test reads as the dialog writes it: a wait for
    a text is a wait for the dialog to print it (bounded by the test's own timeout only).
    """

    def __init__(self, started: ProcessGroups, tmp_path: Path, agents: str) -> None:
        self.tmp_path = tmp_path
        self.chat = tmp_path / "chat.md"
        self.printed = b""
        script = SLOW_TEMPLATE.format(agents=agents)
        (tmp_path / "slow.py").write_text(script, encoding="utf-8")
        pipe = subprocess.PIPE
        with (tmp_path / "err.txt").open("w") as err:  # (Ctrl+C works: see start_python)
            self.process = started.python(
                ["slow.py"], tmp_path, stdin=pipe, stdout=pipe, stderr=err
            )

    def say(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def read_more(self) -> bool:
        """Read what the dialog printed next (waiting for it); ``False`` at its output's end."""
        assert self.process.stdout is not None
        printed = os.read(self.process.stdout.fileno(), 65536)
        self.printed += printed
        return bool(printed)

    def read_until(self, text: str) -> None:
        """Read the dialog's output as it prints it until ``text`` is in it."""
        while text.encode() not in self.printed:
            if not self.read_more():
                raise AssertionError(
                    f"The dialog ended before it printed {text!r}; it printed "
                    f"{self.printed.decode(errors='replace')!r} and wrote to stderr "
                    f"{self.errors()!r}."
                )

    def output(self) -> str:
        """All the dialog printed, once it has ended."""
        assert self.process.poll() is not None
        while self.read_more():
            pass
        return self.printed.decode()

    def errors(self) -> str:
        return (self.tmp_path / "err.txt").read_text(encoding="utf-8")

    def wait_for_the_slow_reply(self) -> None:
        """Until the second reply has streamed a few words: the model is mid-reply."""
        self.say("first\nsecond\n")
        self.read_until("ASSISTANT: short reply\n")
        self.read_until("word2 ")
        assert b"word1999" not in self.printed


@pytest.fixture
def slow_dialogs(tmp_path: Path) -> Iterator[Callable[[str], SlowDialog]]:
    """Starts dialogs; each is ended with every process it started once the test is over,
    whatever happened (and its pipes closed)."""
    with ProcessGroups() as started:
        yield lambda agents: SlowDialog(started, tmp_path, agents)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize(
    "agents",
    [WITH_HISTORY_AGENT, WITH_USER_HISTORY],
    ids=["history-agent", "console-user-agent-chat-history"],
)
def test_a_dialog_killed_mid_reply_leaves_every_complete_message(
    slow_dialogs: Callable[[str], SlowDialog], agents: str
) -> None:
    dialog = slow_dialogs(agents)
    dialog.wait_for_the_slow_reply()
    dialog.process.send_signal(signal.SIGKILL)
    assert dialog.process.wait(timeout=10) == -signal.SIGKILL

    content = dialog.chat.read_text(encoding="utf-8")
    assert "word0" not in content, "the half-streamed reply is not in the file"
    assert content.endswith("\n\nsecond\n\n")
    assert list(load_fresh(dialog.chat)) == COMPLETED_BEFORE_THE_SLOW_REPLY


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_ctrl_c_mid_reply_with_a_chat_history_user_agent_ends_at_once(
    slow_dialogs: Callable[[str], SlowDialog],
) -> None:
    dialog = slow_dialogs(WITH_USER_HISTORY)
    dialog.wait_for_the_slow_reply()
    dialog.process.send_signal(signal.SIGINT)
    assert dialog.process.wait(timeout=ENDS_WITHIN) == 0  # not after the 400 s of the reply
    assert dialog.errors() == ""
    assert "word1999" not in dialog.output()
    assert list(load_fresh(dialog.chat)) == COMPLETED_BEFORE_THE_SLOW_REPLY


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_ctrl_c_mid_reply_with_a_history_agent_ends_at_once(
    slow_dialogs: Callable[[str], SlowDialog],
) -> None:
    dialog = slow_dialogs(WITH_HISTORY_AGENT)
    dialog.wait_for_the_slow_reply()
    dialog.process.send_signal(signal.SIGINT)
    try:
        returncode = dialog.process.wait(timeout=ENDS_WITHIN)  # the reply would need 400 s
    except subprocess.TimeoutExpired:
        returncode = None
    assert returncode == 0, "the program did not end at Ctrl+C"
    assert dialog.errors() == ""
    assert list(load_fresh(dialog.chat)) == COMPLETED_BEFORE_THE_SLOW_REPLY


async def test_role_of_reads_a_loaded_messages_role_declared_or_extra(tmp_path: Path) -> None:
    # (was: a loaded message is typed Message, whose type names no role: code checked with
    # mypy --strict read it with getattr(message, "role", None), and chose the default itself)
    messages = [
        SystemMessage(text="Be brief."),
        UserMessage(text="Hi"),
        AssistantMessage(text="Hello!", model="m"),
        Message(text="A note", role="narrator"),  # (an extra field)
        Message(text="No role"),  # (the user's, as the LLM agents count it)
        Message(text="Not a text", role=3),
    ]
    history = ChatHistoryMD(tmp_path / "chat.md")
    await history.store(messages)
    loaded = await ChatHistoryMD(tmp_path / "chat.md").load()
    expected = ["system", "user", "assistant", "narrator", "user", "user"]
    assert [role_of(message) for message in loaded] == expected
    assert [role_of(message) for message in messages] == expected
