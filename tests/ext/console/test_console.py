"""The console agents, and Ctrl+C / the end of input ending the agent loops.

Three layers:

- through a pipe: a child Python process runs a console dialog with its stdin piped, and
  its exact transcript is asserted (prompts, echoed lines, streamed replies);
- through a pseudo-terminal: the same child on a pty, with prompt_toolkit (Enter sends,
  Esc+Enter starts a new line, Ctrl+D and Ctrl+C end) and without it (plain lines; a real
  SIGINT while waiting for input and while a reply streams);
- in-process: ``achain_loop`` and ``adialog_loop`` end on ``EOFError``, ``KeyboardInterrupt``
  and SIGINT, restore the SIGINT handler, and let other cancellations through.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import io
import logging
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, cast

import pytest

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.errors import ArgumentError
from miniagents.ext import console_user_agent as console_user_agent_module
from miniagents.ext.console import agents as console_agents
from miniagents.ext.console.agents import console_output_agent, console_user_agent
from miniagents.ext.errors import FileOutputError
from miniagents.ext.file_agents import file_output_agent
from miniagents.ext.history import ChatHistoryOptionError, InMemoryChatHistory
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.tools import ToolCallMessage, ToolResultMessage, ToolSet
from miniagents.messages import MessagePromise
from miniagents.miniagents.agent import MiniAgent
from miniagents.promising.sentinels import AWAIT
from miniagents.testing import FakeLLMServer
from miniagents.utils import achain_loop, adialog_loop
from miniagents.utils import loops as loops_module
from miniagents.utils.loops import ChainStep
from tests.ext.console.terminal import WAIT, read_until, run_with_stdin_closed
from tests.subprocesses import (
    ProcessGroups,
    default_sigint_in_children,
    python_env,
    run_python,
    start_python,
)

ROOT = Path(__file__).resolve().parents[3]

OFFLINE = '(offline model "offline", 1 message(s) in the prompt) You said: '
"""The start of the offline model's default reply to a one-message prompt."""


def write_script(directory: Path, name: str, code: str) -> Path:
    path = directory / name
    path.write_text(code, encoding="utf-8")
    return path


def run_piped(
    directory: Path, code: str, stdin: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python process with ``stdin`` piped in; capture its output."""
    script = write_script(directory, "script.py", code)
    return run_python([str(script), *args], directory, stdin=stdin, timeout=60)


def assert_clean_exit(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Traceback" not in result.stdout


# -- through a pipe ----------------------------------------------------------------------

DIALOG = """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.misc_agents import console_user_agent
from miniagents.utils import adialog_loop


async def main() -> None:
    async with MiniAgents():
        await adialog_loop(console_user_agent, offline_agent.fork(token_delay=0.0))
    print("DONE")


asyncio.run(main())
"""


def test_a_piped_dialog_prints_prompts_echoed_lines_and_replies_until_the_input_ends(
    tmp_path: Path,
) -> None:
    result = run_piped(tmp_path, DIALOG, "hello\n\n   \nsecond line\n")

    assert_clean_exit(result)
    assert result.stdout == (
        "USER: hello\n"
        f"ASSISTANT: {OFFLINE}hello\n"
        "USER: second line\n"  # the blank lines were skipped, without a new prompt
        f"ASSISTANT: {OFFLINE}second line\n"
        "USER: \n"  # the end of input: a line break, and the loop returned
        "DONE\n"
    )


def test_a_last_line_without_a_line_break_is_still_a_message(tmp_path: Path) -> None:
    result = run_piped(tmp_path, DIALOG, "no newline")

    assert_clean_exit(result)
    assert result.stdout == f"USER: no newline\nASSISTANT: {OFFLINE}no newline\nUSER: \nDONE\n"


def test_an_empty_input_ends_the_dialog_at_once(tmp_path: Path) -> None:
    result = run_piped(tmp_path, DIALOG, "")

    assert_clean_exit(result)
    assert result.stdout == "USER: \nDONE\n"


@pytest.mark.parametrize("word", ["exit", " EXIT ", "Quit"])
def test_typing_exit_ends_the_dialog_and_the_lines_after_it_are_not_read(
    tmp_path: Path, word: str
) -> None:
    result = run_piped(tmp_path, DIALOG, f"hello\n{word}\nnever read\n")

    assert_clean_exit(result)
    assert result.stdout == f"USER: hello\nASSISTANT: {OFFLINE}hello\nUSER: {word}\nDONE\n"
    assert "never read" not in result.stdout


MIXED = """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.console.agents import console_user_agent
from miniagents.ext.llm.offline import offline_agent
from miniagents.utils import adialog_loop


async def main() -> None:
    async with MiniAgents():
        await adialog_loop(console_user_agent, offline_agent.fork(token_delay=0.0))


print(f"Hello, {input('Your name: ')}!")
asyncio.run(main())
print(f"Then: {input()}")
"""


def test_input_and_the_console_agents_read_each_line_once_in_turn(tmp_path: Path) -> None:
    result = run_piped(tmp_path, MIXED, "Ada\nfirst question\nexit\nafter the dialog\n")

    assert_clean_exit(result)
    assert result.stdout == (
        "Your name: Hello, Ada!\n"  # input() took one line, not the whole buffer
        "USER: first question\n"
        f"ASSISTANT: {OFFLINE}first question\n"
        "USER: exit\n"
        "Then: after the dialog\n"  # and the dialog left the line after exit to input()
    )


@pytest.mark.parametrize("how", ["closed at the start", "closed by the program"])
def test_a_closed_stdin_is_the_end_of_input(tmp_path: Path, how: str) -> None:
    if how == "closed at the start":
        script = write_script(tmp_path, "script.py", DIALOG)
        result = run_with_stdin_closed([str(script)], tmp_path)
    else:
        result = run_piped(tmp_path, "import sys\nsys.stdin.close()\n" + DIALOG, "not read\n")

    assert_clean_exit(result)
    assert result.stdout == "USER: \nDONE\n"


CHAIN = """
import asyncio
import sys

from miniagents import MiniAgents
from miniagents.ext.misc_agents import (
    console_input_agent,
    console_output_agent,
    file_output_agent,
)
from miniagents.promising.sentinels import AWAIT
from miniagents.utils import achain_loop


async def main() -> None:
    async with MiniAgents():
        await achain_loop(
            [
                console_input_agent.fork(prompt="> "),
                console_output_agent.fork(label="ECHO: "),
                file_output_agent.fork(file="log.txt", append=sys.argv[1] == "append"),
                AWAIT,
            ]
        )
    print("DONE")


asyncio.run(main())
"""


def test_console_input_output_and_file_agents_in_a_chain(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("earlier\n", encoding="utf-8")

    result = run_piped(tmp_path, CHAIN, "one\n\ntwo words\n", "append")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Traceback" not in result.stdout
    # console_input_agent reads a line; console_output_agent prints it with its label and
    # passes it on to file_output_agent, which appends it; the end of input ends the chain.
    assert result.stdout == "> one\nECHO: one\n> two words\nECHO: two words\n> \nDONE\n"
    assert (tmp_path / "log.txt").read_text(encoding="utf-8") == "earlier\none\ntwo words\n"


def test_a_console_chain_ended_by_the_end_of_input_logs_no_error(tmp_path: Path) -> None:
    result = run_piped(tmp_path, CHAIN, "one\n", "append")

    assert result.returncode == 0
    assert result.stderr == ""


USER_AGENT_FACTORY = """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.history import InMemoryChatHistory
from miniagents.ext.console.agents import create_console_user_agent
from miniagents.ext.llm.offline import offline_agent
from miniagents.utils import adialog_loop


def count(call):
    return f"{len(call.messages)} message(s): " + " / ".join(text for _, text in call.messages)


async def main() -> None:
    user = create_console_user_agent(
        prompt="Q> ", label="A> ", chat_history=InMemoryChatHistory()
    )
    async with MiniAgents():
        await adialog_loop(user, offline_agent.fork(token_delay=0.0, reply=count))
    print("DONE")


asyncio.run(main())
"""


def test_create_console_user_agent_binds_the_prompt_the_label_and_the_history(
    tmp_path: Path,
) -> None:
    result = run_piped(tmp_path, USER_AGENT_FACTORY, "hi\nagain\n")

    assert_clean_exit(result)
    assert result.stdout == (
        "Q> hi\n"
        "A> 1 message(s): hi\n"
        "Q> again\n"
        # with a chat history the user agent replies with the whole conversation
        "A> 3 message(s): hi / 1 message(s): hi / again\n"
        "Q> \n"
        "DONE\n"
    )


def test_create_console_user_agent_is_the_console_user_agent_with_its_arguments_bound() -> None:
    history = InMemoryChatHistory()
    agent = console_user_agent_module.create_console_user_agent(
        prompt="Q> ", label="A> ", chat_history=history
    )

    assert console_user_agent_module.console_user_agent is console_user_agent
    assert agent.alias == console_user_agent.alias == "USER_AGENT"
    assert agent.func is console_user_agent.func
    assert agent is not console_user_agent  # a fork: the original keeps its defaults


LLM_DIALOG = """
import asyncio
import sys

from miniagents import MiniAgents
from miniagents.ext.history import InMemoryChatHistory
from miniagents.ext.console.agents import create_console_user_agent
from miniagents.ext.history.agents import in_memory_history_agent
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.utils import adialog_loop

mode, provider = sys.argv[1], sys.argv[2]


async def main() -> None:
    if provider == "openai":
        assistant = openai_agent.fork(model="gpt-4o-mini")
    else:
        assistant = anthropic_agent.fork(model="claude-haiku-4-5", max_tokens=100)
    async with MiniAgents():
        if mode == "history-agent":
            user = create_console_user_agent()
            await adialog_loop(user, assistant, history_agent=in_memory_history_agent)
        else:
            history = InMemoryChatHistory() if mode == "user-history" else None
            await adialog_loop(create_console_user_agent(chat_history=history), assistant)
    print("DONE")


asyncio.run(main())
"""

REFUSED_KEY = {
    "openai": "OpenAI refused the API key: Error code: 401 - Incorrect API key provided.",
    "anthropic": "Anthropic refused the API key:",
}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", ["plain", "history-agent", "user-history"])
def test_an_llm_error_in_a_chat_is_one_line_and_the_user_goes_on(
    tmp_path: Path, fake_llm: FakeLLMServer, mode: str, provider: str
) -> None:
    fake_llm.fail(401)  # a wrong API key
    fake_llm.reply(tokens=["Hi ", "again."])
    script = write_script(tmp_path, "script.py", LLM_DIALOG)

    result = run_python(
        [str(script), mode, provider], tmp_path, stdin="hello\nagain\n", llm=fake_llm
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "USER: hello\n"  # the failed reply prints no (empty) line: its error is shown
        "USER: again\n"
        "ASSISTANT: Hi again.\n"
        "USER: \n"
        "DONE\n"
    )
    assert result.stderr.startswith("ERROR: " + REFUSED_KEY[provider])
    assert result.stderr.count("\n") == 1  # one line, no traceback
    first, second = ([m["content"] for m in r.json["messages"]] for r in fake_llm.requests)
    assert first == ["hello"]
    # the failed reply was not kept: with a history, the model sees both user messages
    # (Anthropic's conversation alternates: two user turns in a row are one, of two parts)
    both: list[object] = ["hello", "again"]
    if provider == "anthropic":
        both = [[{"type": "text", "text": "hello"}, {"type": "text", "text": "again"}]]
    assert second == (["again"] if mode == "plain" else both)


def test_no_network_in_a_chat_is_one_line_and_the_user_can_leave(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        pass  # stopped: its port is closed, as a provider out of reach
    script = write_script(tmp_path, "script.py", LLM_DIALOG)

    result = run_python([str(script), "plain", "openai"], tmp_path, stdin="hello\n", llm=server)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "USER: hello\nUSER: \nDONE\n"  # no empty ASSISTANT line
    # one line: the error's own message (which names the SDK's "Connection error.")
    assert result.stderr.startswith("ERROR: OpenAI ")
    assert result.stderr.endswith("Connection error.\n")
    assert result.stderr.count("\n") == 1


GATED = """
import asyncio
import sys
from pathlib import Path

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.misc_agents import console_output_agent, console_user_agent
from miniagents.messages import MessagePromise
from miniagents.utils import adialog_loop


async def tokens():
    yield "first "
    while not Path("go").exists():  # the test creates it once it has seen "first "
        await asyncio.sleep(0.01)
    yield "second"


@miniagent
async def gated_assistant(ctx: InteractionContext) -> None:
    await ctx.messages
    ctx.reply(MessagePromise.from_async_iterable(tokens(), role="assistant"))


async def main() -> None:
    async with MiniAgents():
        if sys.argv[1] == "dialog":
            await adialog_loop(console_user_agent, gated_assistant)
        else:
            printer = console_output_agent.fork(label="OUT: ")
            replies = await printer.inquire(MessagePromise.from_async_iterable(tokens()))
            print("PASSED ON:", replies)
    print("DONE")


asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["dialog", "output"])
def test_tokens_are_printed_as_they_stream(tmp_path: Path, mode: str) -> None:
    script = write_script(tmp_path, "script.py", GATED)
    pipe = subprocess.PIPE
    with ProcessGroups() as groups:  # (ended with all it started, whatever happens)
        process = groups.ended(
            start_python(
                [str(script), mode], tmp_path, text=False, stdin=pipe, stdout=pipe, stderr=pipe
            )
        )
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        output = bytearray()
        if mode == "dialog":
            process.stdin.write(b"hi\n")
            process.stdin.flush()
        label = b"ASSISTANT: " if mode == "dialog" else b"OUT: "
        read_until(process.stdout.fileno(), output, label + b"first ")
        assert b"second" not in output  # the reply is still streaming
        (tmp_path / "go").touch()
        read_until(process.stdout.fileno(), output, b"second")
        rest, errors = process.communicate(timeout=WAIT)  # (it closes stdin: the end of input)
        assert process.returncode == 0, errors
    assert errors == b""
    if mode == "dialog":
        assert bytes(output + rest) == b"USER: hi\nASSISTANT: first second\nUSER: \nDONE\n"
    else:
        assert bytes(output + rest) == b"OUT: first second\nPASSED ON: first second\nDONE\n"


# -- the file output agent, in-process ---------------------------------------------------


async def test_file_output_agent_refuses_a_file_that_is_no_path_and_an_append_no_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with MiniAgents():
        # (was: TypeError: expected str, bytes or os.PathLike object, not int)
        with pytest.raises(ArgumentError, match=r"fork\(file=\"answer\.md\"\)") as by:
            await file_output_agent.inquire("x", file=cast(Any, 3))
        assert str(by.value).startswith("file_output_agent needs file to be a path (a str or")
        # (was: "no" taken as True: the file appended to)
        with pytest.raises(ArgumentError, match="needs append to be True or False; got 'no'"):
            await file_output_agent.inquire("x", file="out.txt", append=cast(Any, "no"))
    assert not (tmp_path / "out.txt").exists()


async def test_file_output_agent_writes_each_message_on_its_line_and_passes_them_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "answer.md"
    path.write_text("old content\n", encoding="utf-8")
    async with MiniAgents():
        replies = await file_output_agent.fork(file=path).inquire(["one", "two"])
        assert [str(message) for message in replies] == ["one", "two"]
        assert path.read_text(encoding="utf-8") == "one\ntwo\n"  # replaced

        await file_output_agent.fork(file=str(path), append=True).inquire("three")
        assert path.read_text(encoding="utf-8") == "one\ntwo\nthree\n"  # appended


async def test_file_output_agent_writes_off_the_loop_and_names_the_path_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = Path.open
    threads: set[int] = set()

    def watched_open(path: Path, *args: Any, **kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", watched_open)
    async with MiniAgents():
        await file_output_agent.fork(file=tmp_path / "answer.md").inquire("one")
        assert threads
        assert threading.get_ident() not in threads  # (was: opened on the loop)
        # (was: the bare IsADirectoryError and FileNotFoundError of open())
        with pytest.raises(FileOutputError, match="It is a directory") as directory:
            await file_output_agent.fork(file=tmp_path).inquire("x")
        with pytest.raises(FileOutputError, match="Its folder does not exist") as missing:
            await file_output_agent.fork(file=tmp_path / "no" / "a.md").inquire("x")
    assert str(directory.value).startswith(f"file_output_agent cannot write to {str(tmp_path)!r}")
    assert isinstance(missing.value, OSError)
    assert isinstance(missing.value.__cause__, FileNotFoundError)


async def test_file_output_agent_writes_each_token_as_it_comes(tmp_path: Path) -> None:
    path = tmp_path / "answer.md"

    seen: list[str] = []

    async def tokens() -> AsyncIterator[str]:
        yield "first "
        for _ in range(int(WAIT / 0.005)):  # wait (a while at most) for it to be in the file
            if path.exists() and path.read_text(encoding="utf-8") == "first ":
                seen.append("the first token alone in the file")
                break
            await asyncio.sleep(0.005)
        yield "second"

    async with MiniAgents():
        message = MessagePromise.from_async_iterable(tokens())
        replies = file_output_agent.fork(file=path).inquire(message)
        await asyncio.wait_for(replies, WAIT)

    assert seen == ["the first token alone in the file"]  # written before the second came
    assert path.read_text(encoding="utf-8") == "first second\n"


@miniagent
async def input_ends(ctx: InteractionContext) -> None:
    raise EOFError("The input ended.")


class _Verdict(Message):
    guilty: bool


async def test_a_message_of_fields_alone_is_printed_as_its_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with MiniAgents():
        await console_output_agent.inquire([_Verdict(guilty=False), Message()], label="AI: ")

    assert capsys.readouterr().out == 'AI: {"guilty":false}\nAI: \n'


async def test_tool_calls_and_results_are_printed_under_labels_of_their_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    call = ToolCallMessage(tool_name="add", arguments={"a": 2, "b": 3}, call_id="c1")
    result = ToolResultMessage(text="5", tool_name="add", call_id="c1")
    failed = ToolResultMessage(
        text="No such city.", tool_name="weather", call_id="c2", is_error=True
    )
    async with MiniAgents():
        await console_output_agent.inquire([call, result, failed, "It is 5."], label="AI: ")

    assert capsys.readouterr().out == (
        'TOOL CALL add: {"a": 2, "b": 3}\n'
        "TOOL RESULT add: 5\n"
        "TOOL RESULT weather (failed): No such city.\n"
        "AI: It is 5.\n"
    )


class NotingScreen(io.StringIO):
    """A stand-in for stdout that notes when ``awaited`` has been shown."""

    def __init__(self, awaited: str) -> None:
        super().__init__()
        self.awaited = awaited
        self.shown = asyncio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.awaited in self.getvalue():
            self.shown.set()
        return written


async def test_tool_results_that_fail_as_they_stream_are_labelled_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = NotingScreen("TOOL RESULT count: 1 2 3")
    monkeypatch.setattr(sys, "stdout", screen)

    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    async def count() -> AsyncIterator[str]:
        """Count, then fail."""
        yield "1 2 3"
        await screen.shown.wait()  # the first tokens are shown before the tool fails
        raise ValueError("no 4")

    tools = ToolSet([divide, count])
    async with MiniAgents():
        await console_output_agent.inquire(
            [
                tools.run(
                    ToolCallMessage(tool_name="divide", arguments={"a": 1, "b": 0}, call_id="c1")
                ),
                tools.run(ToolCallMessage(tool_name="count", arguments={}, call_id="c2")),
            ]
        )

    assert screen.getvalue() == (
        "TOOL RESULT divide (failed): The tool divide failed: ZeroDivisionError: "
        "float division by zero\n"
        "TOOL RESULT count: 1 2 3\n"
        "TOOL RESULT count (failed): The tool count failed: ValueError: no 4\n"
    )


@pytest.mark.parametrize("forwarder", ["console_output_agent", "file_output_agent"])
async def test_a_forwarding_agent_whose_input_fails_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, forwarder: str
) -> None:
    agent = (
        console_output_agent
        if forwarder == "console_output_agent"
        else file_output_agent.fork(file=tmp_path / "answer.md")
    )
    async with MiniAgents():
        with pytest.raises(EOFError, match="The input ended"):  # the caller gets the error
            await agent.inquire(input_ends.inquire())

    errors = [
        record.getMessage()
        for record in caplog.records
        if record.name == "miniagents" and record.levelno >= logging.ERROR
    ]
    caplog.clear()  # (so that the conftest fixture does not fail the teardown)
    assert errors == []


async def test_file_output_agent_whose_input_fails_keeps_the_file_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "answer.md"
    async with MiniAgents():
        await file_output_agent.fork(file=path).inquire("the last answer")
        with pytest.raises(EOFError):
            await file_output_agent.fork(file=path).inquire(input_ends.inquire())
    caplog.clear()  # (the other bug above logs an error here)

    assert path.read_text(encoding="utf-8") == "the last answer\n"


async def test_file_output_agent_without_a_file_says_how_to_bind_one(tmp_path: Path) -> None:
    async with MiniAgents():
        with pytest.raises(ValueError, match="file_output_agent needs a file") as raised:
            await file_output_agent.inquire("text")

    assert 'file_output_agent.fork(file="answer.md")' in str(raised.value)
    assert os.listdir(tmp_path) == []  # no file was made


# -- through a pseudo-terminal -----------------------------------------------------------

ON_A_TERMINAL = (
    "import fcntl, runpy, sys, termios\n"
    "{before}"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"  # the pty becomes the controlling terminal
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)
WITH_PROMPT_TOOLKIT = ON_A_TERMINAL.format(before="")
WITHOUT_PROMPT_TOOLKIT = ON_A_TERMINAL.format(before="sys.modules['prompt_toolkit'] = None\n")

HISTORY_DIALOG = """
import asyncio
import sys

from miniagents import MiniAgents
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.console.agents import create_console_user_agent
from miniagents.ext.llm.offline import offline_agent
from miniagents.utils import adialog_loop

history, token_delay, replies = sys.argv[1], float(sys.argv[2]), sys.argv[3]


def echo(call):
    return "echo: " + call.messages[-1][1]


async def main() -> None:
    user = create_console_user_agent(chat_history=ChatHistoryMD(history))
    reply = echo if replies == "ECHO" else iter(replies.split("|"))
    assistant = offline_agent.fork(token_delay=token_delay, reply=reply)
    async with MiniAgents():
        await adialog_loop(user, assistant)
    print("DONE")


asyncio.run(main())
"""


class Terminal:
    """A child Python process on a pseudo-terminal: type keys, read what it shows."""

    def __init__(
        self, directory: Path, wrapper: str, args: list[str], code: str = HISTORY_DIALOG
    ) -> None:
        script = write_script(directory, "dialog.py", code)
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = python_env(TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
        try:
            with default_sigint_in_children():  # Ctrl+C works even if the test run ignores it
                self.process = subprocess.Popen(
                    [sys.executable, "-c", wrapper, str(script), *args],
                    cwd=directory,
                    env=env,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    start_new_session=True,
                )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master
        self.output = bytearray()
        self._seen = 0  # what expect() found so far ends here

    def expect(self, text: str, timeout: float = WAIT) -> None:
        """Wait until ``text`` is shown after what was expected before."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while (found := self.output.find(wanted, self._seen)) < 0:
            left = deadline - time.monotonic()
            shown = bytes(self.output[self._seen :])
            assert left > 0, f"{text!r} not shown in {timeout} s; shown since: {shown!r}"
            assert self._read(left), f"the output ended before {text!r}; shown since: {shown!r}"
        self._seen = found + len(wanted)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_for_exit(self, timeout: float = WAIT) -> int:
        """Read the output to its end, then the exit status."""
        deadline = time.monotonic() + timeout
        while self._read(deadline - time.monotonic()):
            pass
        return self.process.wait(max(deadline - time.monotonic(), 0.1))

    def _read(self, timeout: float) -> bool:
        """Read what is shown within ``timeout`` seconds; False at the end of the output."""
        readable, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not readable:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every end of the pty's other side is closed
            return False
        self.output += chunk
        return bool(chunk)

    def close(self) -> None:
        """Kill the child with every process of its group (its session's), then close the pty."""
        with contextlib.suppress(ProcessLookupError):  # (all of them ended already)
            os.killpg(self.process.pid, signal.SIGKILL)  # (the child leads its new session)
        try:
            self.process.wait(WAIT)
        finally:
            os.close(self.master)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    """Start a dialog (``HISTORY_DIALOG``, or ``code``) on a pseudo-terminal; stopped after."""
    started: list[Terminal] = []

    def start(*args: str, prompt_toolkit: bool = True, code: str = HISTORY_DIALOG) -> Terminal:
        wrapper = WITH_PROMPT_TOOLKIT if prompt_toolkit else WITHOUT_PROMPT_TOOLKIT
        started.append(Terminal(tmp_path, wrapper, list(args), code))
        return started[-1]

    yield start
    for session in started:
        session.close()


def load_history(path: Path) -> list[tuple[str, str | None]]:
    messages = asyncio.run(ChatHistoryMD(path).load())
    return [(str(message.model_dump().get("role")), message.text) for message in messages]


def assert_ended_cleanly(session: Terminal, status: int) -> None:
    shown = bytes(session.output)
    assert status == 0, shown
    assert b"Traceback" not in shown
    assert shown.rstrip().endswith(b"DONE"), shown  # the code after the loop ran


needs_prompt_toolkit = pytest.mark.skipif(
    importlib.util.find_spec("prompt_toolkit") is None,
    reason="prompt_toolkit is not installed",
)


@needs_prompt_toolkit
def test_prompt_toolkit_enter_sends_esc_enter_starts_a_new_line_and_ctrl_d_ends(
    terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    history = tmp_path / "chat.md"
    session = terminal(str(history), "0", "ECHO")

    session.expect("USER:")
    session.type("hello\r")
    session.expect("ASSISTANT: echo: hello")
    session.expect("USER:")  # a new prompt: typing before it would reach the terminal's buffer
    session.type("line one\x1b\rline two\r")  # Esc, Enter: a new line in the same message
    session.expect("ASSISTANT: echo: line one")
    session.expect("line two")
    session.expect("USER:")
    session.type("\x04")  # Ctrl+D on an empty message

    assert_ended_cleanly(session, session.wait_for_exit())
    assert load_history(history) == [
        ("user", "hello"),
        ("assistant", "echo: hello"),
        ("user", "line one\nline two"),  # ONE message, with a line break
        ("assistant", "echo: line one\nline two"),
    ]


@needs_prompt_toolkit
def test_prompt_toolkit_ctrl_c_at_the_prompt_ends_the_dialog_and_keeps_the_history(
    terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    history = tmp_path / "chat.md"
    session = terminal(str(history), "0", "ECHO")

    session.expect("USER:")
    session.type("hello\r")
    session.expect("ASSISTANT: echo: hello")
    session.expect("USER:")
    session.type("half-typed, never sent")
    session.expect("never sent")
    session.type("\x03")  # Ctrl+C

    assert_ended_cleanly(session, session.wait_for_exit())
    assert load_history(history) == [("user", "hello"), ("assistant", "echo: hello")]


LONG_REPLY = " ".join(f"word{number}" for number in range(1, 2001))
"""2000 tokens: with 0.3 s before each, 10 minutes to stream. A dialog that Ctrl+C did not
stop would not end within ``WAIT``: ``wait_for_exit`` would fail."""


@pytest.mark.parametrize("prompt_toolkit", [pytest.param(True, marks=needs_prompt_toolkit), False])
def test_ctrl_c_while_a_reply_streams_ends_the_dialog_at_once_and_keeps_the_history(
    terminal: Callable[..., Terminal], tmp_path: Path, prompt_toolkit: bool
) -> None:
    history = tmp_path / "chat.md"
    session = terminal(str(history), "0.3", f"ok|{LONG_REPLY}", prompt_toolkit=prompt_toolkit)

    session.expect("USER:")
    session.type("first\r")
    session.expect("ASSISTANT: ok")
    session.expect("USER:")
    session.type("second\r")
    session.expect("ASSISTANT: word1 ")
    session.type("\x03")  # the terminal (cooked mode while the reply streams) sends SIGINT
    status = session.wait_for_exit()  # the rest of the reply would take 10 minutes

    assert_ended_cleanly(session, status)
    assert b"word2000" not in session.output
    assert load_history(history) == [
        ("user", "first"),
        ("assistant", "ok"),
        ("user", "second"),  # the reply given up on is not stored
    ]


def test_plain_lines_on_a_terminal_are_one_message_each_and_ctrl_d_ends(
    terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    history = tmp_path / "chat.md"
    session = terminal(str(history), "0", "ECHO", prompt_toolkit=False)

    session.expect("USER: ")
    session.type("one\r")
    session.expect("ASSISTANT: echo: one\r\n")
    session.expect("USER: ")
    session.type("\r")  # a blank line: the prompt again
    session.expect("USER: ")
    session.type("two\r")
    session.expect("ASSISTANT: echo: two\r\n")
    session.expect("USER: ")
    session.type("\x04")  # Ctrl+D: the end of input

    assert_ended_cleanly(session, session.wait_for_exit())
    # On a terminal the line is not echoed by the program: the terminal shows it once.
    assert bytes(session.output).count(b"one") == 2  # typed, and in the reply
    assert load_history(history) == [
        ("user", "one"),
        ("assistant", "echo: one"),
        ("user", "two"),
        ("assistant", "echo: two"),
    ]


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_plain_mode_sigint_while_waiting_for_input_ends_the_dialog_and_keeps_the_history(
    terminal: Callable[..., Terminal], tmp_path: Path, how: str
) -> None:
    history = tmp_path / "chat.md"
    session = terminal(str(history), "0", "ECHO", prompt_toolkit=False)

    session.expect("USER: ")
    session.type("one\r")
    session.expect("ASSISTANT: echo: one\r\n")
    session.expect("USER: ")
    if how == "ctrl-c":
        session.type("\x03")  # the terminal sends SIGINT to its foreground process group
    else:
        os.kill(session.process.pid, signal.SIGINT)
    status = session.wait_for_exit()  # a dialog still waiting for input would never end

    assert_ended_cleanly(session, status)
    assert load_history(history) == [("user", "one"), ("assistant", "echo: one")]


THEN_INPUT = """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.console.agents import console_user_agent
from miniagents.ext.llm.offline import offline_agent
from miniagents.utils import adialog_loop


async def main() -> None:
    async with MiniAgents():
        await adialog_loop(console_user_agent, offline_agent.fork(token_delay=0.0))


asyncio.run(main())
print(f"Then: {input('Name? ')}")
print("DONE")
"""


def test_plain_mode_after_ctrl_c_at_the_prompt_the_next_line_typed_goes_to_input(
    terminal: Callable[..., Terminal],
) -> None:
    session = terminal(prompt_toolkit=False, code=THEN_INPUT)

    session.expect("USER: ")
    session.type("\x03")  # Ctrl+C while the console waits for the user's line
    session.expect("Name? ")
    session.type("Ada\r")  # not taken by the console's read given up on

    session.expect("Then: Ada")
    assert_ended_cleanly(session, session.wait_for_exit())


def test_plain_mode_sigint_while_a_reply_streams_ends_the_dialog_at_once(
    terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    history = tmp_path / "chat.md"
    session = terminal(str(history), "0.3", LONG_REPLY, prompt_toolkit=False)

    session.expect("USER: ")
    session.type("question\r")
    session.expect("ASSISTANT: word1 word2 ")
    os.kill(session.process.pid, signal.SIGINT)
    status = session.wait_for_exit()  # the rest of the reply would take 10 minutes

    assert_ended_cleanly(session, status)
    assert b"word2000" not in session.output
    assert re.search(rb"word\d+ \r?\nDONE", session.output)  # the cut reply ended its line
    assert load_history(history) == [("user", "question")]


SIGINT_TESTS = [
    "tests/ext/console/test_console.py::test_the_default_handler_is_restored_too",
    "tests/ext/console/test_console.py::"
    "test_plain_mode_sigint_while_waiting_for_input_ends_the_dialog_and_keeps_the_history[kill]",
    "tests/ext/console/test_chat_cli.py::test_ctrl_c_mid_reply_ends_the_chat_with_the_reply_line_ended",
    "tests/ext/studio/test_cli.py::"
    "test_ctrl_c_ends_a_run_as_it_ends_the_program_with_its_own_traceback",
]
"""Tests that send SIGINT: to the test process itself, to a child on a pty, to a piped child."""


def test_the_sigint_tests_pass_when_the_test_run_ignores_sigint(tmp_path: Path) -> None:
    # A script that starts a command with `&` (no job control) starts it with SIGINT
    # ignored, and the children of that command inherit it.
    python = shlex.quote(sys.executable)
    script = (
        f'{python} -c "import signal; print(signal.getsignal(2) == signal.SIG_IGN)" & wait $!\n'
        f"{python} -m pytest -q -p no:cacheprovider {shlex.join(SIGINT_TESTS)} & wait $!\n"
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.stdout.startswith("True\n"), result.stdout  # SIGINT ignored, as in such a run
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(SIGINT_TESTS)} passed" in result.stdout


# -- the loops, in-process ---------------------------------------------------------------


class SigintRecorder:
    """A SIGINT handler that records the signals it gets (installed while the loop runs).

    It stands in for the handler a program had before the loop, and keeps a stray SIGINT
    from interrupting the test run.
    """

    def __init__(self) -> None:
        self.received: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)


@contextlib.contextmanager
def sigint_handler(handler: Callable[[int, FrameType | None], Any] | int) -> Iterator[None]:
    """Install ``handler`` for SIGINT; restore the previous one afterwards (and check it)."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, handler)
    try:
        yield
        assert signal.getsignal(signal.SIGINT) is handler  # the loop restored it
    finally:
        signal.signal(signal.SIGINT, before)
    assert signal.getsignal(signal.SIGINT) == before


def ending_agent(error: type[BaseException], calls: list[str], name: str) -> MiniAgent[...]:
    """An agent that replies with its name and call number, and raises ``error`` at call 3."""

    @miniagent(alias=name)
    async def agent(ctx: InteractionContext) -> None:
        calls.append(f"{name}{len(calls) + 1}")
        if len(calls) >= 3:
            raise error("the user is done")
        ctx.reply(f"{name} {len(calls)}: " + " ".join(str(m) for m in await ctx.messages))

    return agent


@miniagent
async def echo_assistant(ctx: InteractionContext) -> None:
    ctx.reply("echo: " + " ".join(str(message) for message in await ctx.messages))


@pytest.mark.parametrize("error", [EOFError, KeyboardInterrupt])
async def test_adialog_loop_returns_when_the_user_agent_ends_the_input(
    error: type[BaseException],
) -> None:
    calls: list[str] = []
    assistant_inputs: list[str] = []

    @miniagent
    async def assistant(ctx: InteractionContext) -> None:
        assistant_inputs.append(" ".join(str(m) for m in await ctx.messages))
        ctx.reply("reply")

    with sigint_handler(SigintRecorder()):
        async with MiniAgents():
            await adialog_loop(ending_agent(error, calls, "U"), assistant)  # nothing raised

    assert calls == ["U1", "U2", "U3"]
    assert assistant_inputs == ["U 1: ", "U 2: reply"]


@pytest.mark.parametrize("error", [EOFError, KeyboardInterrupt])
async def test_adialog_loop_returns_when_the_assistant_raises(
    error: type[BaseException],
) -> None:
    calls: list[str] = []
    user_turns: list[int] = []

    @miniagent
    async def user(ctx: InteractionContext) -> None:
        await ctx.messages
        user_turns.append(len(user_turns) + 1)
        ctx.reply(f"message {len(user_turns)}")

    with sigint_handler(SigintRecorder()):
        async with MiniAgents():
            await adialog_loop(user, ending_agent(error, calls, "A"))

    assert calls == ["A1", "A2", "A3"]
    assert user_turns == [1, 2, 3]  # its 4th turn failed reading the assistant's error


@pytest.mark.parametrize("error", [EOFError, KeyboardInterrupt])
async def test_achain_loop_returns_when_an_agent_raises_eof_or_keyboard_interrupt(
    error: type[BaseException],
) -> None:
    calls: list[str] = []
    with sigint_handler(SigintRecorder()):
        async with MiniAgents():
            await achain_loop([ending_agent(error, calls, "A"), AWAIT, echo_assistant, AWAIT])

    assert calls == ["A1", "A2", "A3"]


def waiting_user(events: list[str], on_wait: Callable[[], object] | None = None) -> MiniAgent[...]:
    """A user agent that waits forever for the user (until cancelled)."""

    @miniagent
    async def user(ctx: InteractionContext) -> None:
        await ctx.messages
        events.append("waiting")
        if on_wait is not None:
            on_wait()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    return user


def sigint_soon() -> None:
    asyncio.get_running_loop().call_later(0.01, signal.raise_signal, signal.SIGINT)


async def test_sigint_while_adialog_loop_waits_ends_it_and_restores_the_handler() -> None:
    events: list[str] = []
    recorder = SigintRecorder()
    with sigint_handler(recorder):
        async with MiniAgents():
            await asyncio.wait_for(
                adialog_loop(waiting_user(events, sigint_soon), offline_agent), WAIT
            )
            events.append("returned")
            await asyncio.sleep(0.01)  # the task of the loop is not cancelled any more
            events.append("still running")

    assert recorder.received == []  # the loop's own handler got the signal
    assert events == ["waiting", "cancelled", "returned", "still running"]


async def test_sigint_while_achain_loop_waits_ends_it_and_restores_the_handler() -> None:
    events: list[str] = []
    recorder = SigintRecorder()
    with sigint_handler(recorder):
        async with MiniAgents():
            chain: list[ChainStep] = [
                echo_assistant,
                AWAIT,
                waiting_user(events, sigint_soon),
                AWAIT,
            ]
            await asyncio.wait_for(achain_loop(chain), WAIT)
            events.append("returned")

    assert recorder.received == []
    assert events == ["waiting", "cancelled", "returned"]


async def test_the_default_handler_is_restored_too() -> None:
    events: list[str] = []
    # Python's own handler, the one a program has at a terminal (the test run itself may
    # ignore SIGINT, e.g. when a script started it with `&`).
    with sigint_handler(signal.default_int_handler):
        async with MiniAgents():
            await asyncio.wait_for(
                adialog_loop(waiting_user(events, sigint_soon), offline_agent), WAIT
            )

    assert events == ["waiting", "cancelled"]


async def test_a_cancellation_not_from_ctrl_c_still_propagates() -> None:
    events: list[str] = []
    waiting = asyncio.Event()
    with sigint_handler(SigintRecorder()):
        async with MiniAgents():
            loop_task = asyncio.create_task(
                adialog_loop(waiting_user(events, waiting.set), offline_agent)
            )
            await asyncio.wait_for(waiting.wait(), WAIT)
            loop_task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loop_task
            events.append("propagated")

    assert events == ["waiting", "cancelled", "propagated"]


async def test_a_second_loop_after_a_ctrl_c_ends_on_its_own_ctrl_c() -> None:
    events: list[str] = []
    with sigint_handler(SigintRecorder()):
        async with MiniAgents():
            for _ in range(2):
                await asyncio.wait_for(
                    adialog_loop(waiting_user(events, sigint_soon), offline_agent), WAIT
                )

    assert events == ["waiting", "cancelled", "waiting", "cancelled"]


class Screen(io.StringIO):
    """A stand-in for stdout that presses Ctrl+C once ``text`` has been shown."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.text and self.text in self.getvalue():
            self.text = ""
            signal.raise_signal(signal.SIGINT)
        return written


@pytest.mark.parametrize("lazy", [False, True], ids=["started-at-once", "lazy"])
@pytest.mark.parametrize("history", [False, True])
async def test_ctrl_c_mid_reply_ends_the_reply_line_before_the_loop_returns(
    monkeypatch: pytest.MonkeyPatch, history: bool, lazy: bool
) -> None:
    never = asyncio.Event()

    async def tokens() -> AsyncIterator[str]:
        yield "first "
        await never.wait()  # the rest of the reply never comes: Ctrl+C cuts it
        yield "second"

    @miniagent
    async def assistant(ctx: InteractionContext) -> None:
        await ctx.messages
        ctx.reply(MessagePromise.from_async_iterable(tokens(), role="assistant"))

    async def typed(prompt: str) -> str:
        return "question"

    screen = Screen("ASSISTANT: first ")
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(console_agents, "read_user_text", typed)
    user = console_user_agent.fork(chat_history=InMemoryChatHistory() if history else None)
    if lazy:  # its interactions start when the loop reads their replies, after inquire()
        user, assistant = user.fork(start_asap=False), assistant.fork(start_asap=False)
    with sigint_handler(SigintRecorder()):
        async with MiniAgents():
            await adialog_loop(user, assistant)  # (no wait_for: its task would hide the bug)
            print("AFTER THE LOOP")

    assert screen.getvalue() == "ASSISTANT: first \nAFTER THE LOOP\n"


async def test_a_loop_keeps_the_task_factory_of_the_event_loop() -> None:
    loop = asyncio.get_running_loop()
    made: list[asyncio.Task[Any]] = []

    def factory(loop: asyncio.AbstractEventLoop, coroutine: Any, **kwargs: Any) -> Any:
        task = asyncio.Task(coroutine, loop=loop, **kwargs)
        made.append(task)
        return task

    calls: list[str] = []
    loop.set_task_factory(factory)
    try:
        async with MiniAgents():
            await adialog_loop(ending_agent(EOFError, calls, "U"), echo_assistant)
        assert loop.get_task_factory() is factory  # the loop's own one came back
    finally:
        loop.set_task_factory(None)

    assert calls == ["U1", "U2", "U3"]
    names = [task.get_name() for task in made]  # (named once the factory has made them)
    assert names.count("miniagents:U") == 3  # the agents' tasks went through it
    assert names.count("miniagents:ECHO_ASSISTANT") == 2


async def test_an_ignored_sigint_changes_nothing() -> None:
    turns: list[str] = []

    @miniagent
    async def user(ctx: InteractionContext) -> None:
        await ctx.messages
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # not replaced
        turns.append("turn")
        if len(turns) == 1:
            signal.raise_signal(signal.SIGINT)  # ignored: the dialog goes on
            await asyncio.sleep(0.05)
            ctx.reply("hi")
        else:
            raise EOFError

    with sigint_handler(signal.SIG_IGN):
        async with MiniAgents():
            await asyncio.wait_for(adialog_loop(user, echo_assistant), WAIT)

    assert turns == ["turn", "turn"]


async def test_a_loop_in_another_thread_leaves_the_signal_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen: list[object] = []

    @miniagent
    async def user(ctx: InteractionContext) -> None:
        seen.append(signal.getsignal(signal.SIGINT))
        raise EOFError

    async def in_thread() -> None:
        async with MiniAgents():
            await adialog_loop(user, echo_assistant)
        seen.append(threading.current_thread() is threading.main_thread())

    await asyncio.wait_for(asyncio.to_thread(asyncio.run, in_thread()), WAIT)

    assert seen == [before, False]
    assert signal.getsignal(signal.SIGINT) == before


async def test_a_ctrl_c_as_the_loop_ends_does_not_cancel_the_code_after_it() -> None:
    @miniagent
    async def user(ctx: InteractionContext) -> None:
        raise EOFError

    code = loops_module._until_the_user_is_done.__code__  # where the loop ends
    pressed: list[bool] = []

    def local_trace(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "exception" and isinstance(arg[1], EOFError) and not pressed:
            pressed.append(True)  # Ctrl+C, just as the loop gets the end of input
            signal.raise_signal(signal.SIGINT)
        return local_trace

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        return local_trace if frame.f_code is code else None

    cancelled = False
    with sigint_handler(SigintRecorder()):
        async with MiniAgents():
            previous_trace = sys.gettrace()
            sys.settrace(trace)
            try:
                await adialog_loop(user, echo_assistant)
            finally:
                sys.settrace(previous_trace)
            assert pressed
            try:
                for _ in range(3):
                    await asyncio.sleep(0)
            except asyncio.CancelledError:
                cancelled = True
                uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python 3.11+
                if uncancel is not None:
                    uncancel()

    assert not cancelled, "the code after the loop was cancelled by the Ctrl+C"


def test_a_prompt_toolkit_that_cannot_start_falls_back_to_plain_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import prompt_toolkit

    from miniagents.ext.console import _terminal as _console

    attempts: list[int] = []

    def broken(*args: object, **kwargs: object) -> None:
        attempts.append(1)
        raise OSError("no console here")

    console_input = _console._ConsoleInput()
    monkeypatch.setattr(prompt_toolkit, "PromptSession", broken)
    assert console_input.prompt_session() is None
    assert console_input.prompt_session() is None
    assert attempts == [1]  # tried once, then plain lines for the rest of the process


APPROVING = """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.console.agents import console_output_agent
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool


def delete_file(path: str) -> str:
    '''Delete a file.'''
    return f"Deleted {path}"


llm = offline_agent.fork(
    tools=[FunctionTool(delete_file, requires_approval=True)],
    reply=one_per_call(CallTool("delete_file", {"path": "a.txt"}), "Finished."),
    token_delay=0,
)


async def main() -> None:
    async with MiniAgents():
        await console_output_agent.inquire(llm.inquire("Delete a.txt"), label="> ")


asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("typed", "result"),
    [
        ("y\n", "TOOL RESULT delete_file: Deleted a.txt"),
        (
            "n\n",
            "TOOL RESULT delete_file (failed): The user denied the call of the tool "
            "delete_file; it did not run. Their reason: The user said no in the console.",
        ),
        (
            "",
            "TOOL RESULT delete_file (failed): The user denied the call of the tool "
            "delete_file; it did not run. Their reason: The user said no in the console.",
        ),
    ],
)
def test_the_console_asks_the_user_to_approve_a_call_that_waits(
    tmp_path: Path, typed: str, result: str
) -> None:
    script = write_script(tmp_path, "approving.py", APPROVING)
    done = run_python([str(script)], tmp_path, stdin=typed)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        'TOOL CALL delete_file: {"path": "a.txt"}\n'
        '> Approve the call of delete_file with {"path": "a.txt"}?\n'
        f"Approve? [y/N] {typed.strip()}\n"
        f"{result}\n"
        "> Finished.\n"
    )


TOO_LONG = (
    "ERROR: The line read has more than 1,000,000 characters, the most the console takes as "
    "one message; it was skipped: send a shorter message.\n"
)


def test_a_piped_line_past_the_most_characters_is_skipped_saying_so(tmp_path: Path) -> None:
    result = run_piped(tmp_path, DIALOG, "x" * 1_000_001 + "\nhello\n")

    assert result.returncode == 0, result.stderr
    assert result.stderr == TOO_LONG  # (was: read whole, echoed and sent, whatever its size)
    assert result.stdout == f"USER: hello\nASSISTANT: {OFFLINE}hello\nUSER: \nDONE\n"


def test_an_approval_answer_past_the_most_characters_denies_the_call(tmp_path: Path) -> None:
    script = write_script(tmp_path, "approving.py", APPROVING)
    done = run_python([str(script)], tmp_path, stdin="y" * 1_000_001 + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr == TOO_LONG
    assert "Approve? [y/N] \nTOOL RESULT delete_file (failed): The user denied" in done.stdout


@pytest.fixture
def prompts_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The prompts the console agents read the user's text after (each read gives "hi")."""
    read: list[str] = []

    async def typed(prompt: str) -> str:
        read.append(prompt)
        return "hi"

    monkeypatch.setattr(console_agents, "read_user_text", typed)
    return read


async def test_a_path_as_the_console_user_agents_chat_history_is_refused_before_reading(
    prompts_read: list[str],
) -> None:
    user = console_user_agent.fork(chat_history="CHAT.md")  # (fork's arguments are untyped)
    async with MiniAgents():
        # (was: the user's message read, then AttributeError: 'str' has no attribute 'store')
        with pytest.raises(ChatHistoryOptionError) as refused:
            await user.inquire()
    assert str(refused.value).startswith(
        "console_user_agent needs chat_history to be a ChatHistory; got 'CHAT.md'. Give one, "
        "e.g. create_console_user_agent(chat_history=ChatHistoryMD(path))"
    )
    assert prompts_read == []


@pytest.mark.parametrize(
    ("agent", "name", "value"),
    [
        ("console_user_agent", "prompt", None),
        ("console_user_agent", "label", 3),
        ("console_input_agent", "prompt", 5),
        ("console_output_agent", "label", None),
    ],
)
async def test_a_prompt_or_a_label_that_is_not_text_is_refused_before_anything_is_read(
    prompts_read: list[str], agent: str, name: str, value: object
) -> None:
    async with MiniAgents():
        # (was: TypeError: write() argument must be str, not int; None: nothing printed)
        with pytest.raises(ArgumentError) as refused:
            await getattr(console_agents, agent).fork(**{name: value}).inquire("hello")
    assert str(refused.value) == (
        f"{agent} needs {name} to be a str; got {value!r}. Bind one, e.g. "
        f'{agent}.fork({name}="> ").'
    )
    assert prompts_read == []
