"""The seed README drafts are the spec: every snippet runs, or fails exactly as it must.

The five drafts in ``/work/shared/seeds`` (``shared/seeds`` next to this repository) were
written by users; every import path and snippet in them must work as written, a missing
``import asyncio`` aside. The python blocks are read from the drafts when the tests run.

The snippets that use the LLM agents (``miniagents.ext.llm.openai``, with python-dotenv's
``load_dotenv``) run against a fake OpenAI server on ``127.0.0.1`` that the test starts
(``miniagents.testing``): the subprocess gets ``OPENAI_BASE_URL`` and
``OPENAI_API_KEY=test``, the fake's replies are scripted, and both what the snippet prints
and the requests it made (model, messages, keyword arguments) are asserted.

The snippets that talk with the user at the console (``console_user_agent`` in a dialog
loop, with or without a chat history) get the user's messages on a pipe, one per line, and
end cleanly at the end of the input: the transcript they print, the conversation each
request to the model carries, and the markdown file a chat history is kept in are asserted.

Every other snippet runs in a subprocess, offline, and its real output is asserted; the
few snippets that cannot work as written are tested for how exactly they fail, and for
what they do with the smallest fix. :data:`CATEGORIES` sorts every snippet into one kind,
and :func:`runs` records which tests run which snippet: a snippet added to the drafts
fails the tests until one runs it.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from miniagents.ext.chat_history_md import ChatHistoryMD
from miniagents.ext.llm.messages import AssistantMessage, UserMessage
from miniagents.testing import FakeLLMServer, RecordedRequest
from tests.fakes.fixtures import fake_llm  # noqa: F401 - a fixture
from tests.subprocesses import ProcessGroups, run_python, start_python


def seeds_dir(root: Path) -> Path:
    """``shared/seeds`` next to the repository ``root``: next to its main checkout, if it is
    a worktree.

    (A worktree's ``.git`` is a file naming its git folder inside the main checkout's
    ``.git``; without this, the tests of a worktree elsewhere found no drafts and skipped.)
    """
    git = root / ".git"
    if git.is_file() and (text := git.read_text(encoding="utf-8")).startswith("gitdir:"):
        own = (root / text.removeprefix("gitdir:").strip()).resolve()
        common = own / "commondir"
        if common.is_file():
            main = (own / common.read_text(encoding="utf-8").strip()).resolve().parent
            if (main.parent / "shared" / "seeds").is_dir():
                return main.parent / "shared" / "seeds"
    return root.parent / "shared" / "seeds"


SEEDS_DIR = seeds_dir(Path(__file__).resolve().parents[1])

pytestmark = pytest.mark.skipif(
    not SEEDS_DIR.is_dir(),
    reason=f"the early README drafts these tests run are kept outside the repository, in "
    f"{SEEDS_DIR}, which this checkout does not have",
)

TIMEOUT = 60.0
"""Seconds a snippet may run (they all take well under one second, bar the sleeps)."""


# --- Reading the snippets -------------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    """A python block of a seed draft, named by the draft and the heading above it."""

    seed: str
    heading: str
    code: str

    @property
    def key(self) -> str:
        return f"{self.seed} {self.heading}"


def read_snippets() -> list[Snippet]:
    """Every python block of every seed draft, in order (none if the drafts are absent)."""
    if not SEEDS_DIR.is_dir():
        return []
    snippets: list[Snippet] = []
    for path in sorted(SEEDS_DIR.glob("*.txt")):
        heading = ""
        language: str | None = None
        lines: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if language is None:
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
                elif line.startswith("```"):
                    language, lines = line[3:].strip(), []
            elif line.startswith("```"):
                if language == "python":
                    snippets.append(Snippet(path.name[:3], heading, "\n".join(lines) + "\n"))
                language = None
            else:
                lines.append(line)
        assert language is None, f"{path.name} has a code block that never ends"
    return snippets


SNIPPETS = read_snippets()
BY_KEY = {snippet.key: snippet for snippet in SNIPPETS}

LLM_MARKERS = ("openai_agent", "create_openai_agent", "anthropic", "dotenv")
"""What the snippets that use the LLM agents (or load an API key from ``.env``) contain."""

CONSOLE_AND_HISTORY_MARKERS = (
    "console_user_agent",
    "markdown_history_agent",
    "ChatHistoryMD",
    "create_console_user_agent",
    "history_agents",
    "misc_agents",
    "chat_history_md",
)
"""What the snippets that use the console or chat history agents contain."""


def uses_llm_agents(snippet: Snippet) -> bool:
    """Whether the snippet uses the LLM agents (``miniagents.ext.llm``) or python-dotenv."""
    return any(marker in snippet.code for marker in LLM_MARKERS)


def uses_console_or_history_agents(snippet: Snippet) -> bool:
    """Whether the snippet uses the console or chat history agents (``miniagents.ext``)."""
    return any(marker in snippet.code for marker in CONSOLE_AND_HISTORY_MARKERS)


OFFLINE = {
    "000 Basic Usage",
    "001 Basic Usage",
    "001 Multiple Agents Interaction",
    "002 Custom Agents",
    "002 Chaining Agents",
    "002 Error Handling",
    "002 Custom Message Types",
    "002 Parallel Execution of Agents",
    "002 Using AWAIT and CLEAR Sentinels",
    "002 Extending the Framework",
    "002 Message Promises and Sequences",
    "004 Usage",
}
"""The snippets that need no LLM: they run offline."""

STREAMING_KEYS = {
    "000 Integrating with OpenAI",
    "001 Integrating with OpenAI",
    "002 Streaming Tokens from LLMs",
}
"""The snippets that stream one OpenAI reply, printing it token by token (:data:`STREAMING`)."""

DIALOG_KEYS = {
    "000 Creating a Dialog Loop",
    "002 Basic Usage",
    "002 Persisting Chat History",
    "003 Usage",
}
"""The snippets where the user talks with an OpenAI assistant at the console (:data:`DIALOGS`)."""

SELF_DEVELOPMENT = "002 Self-Development Capabilities"
"""The snippet that asks OpenAI once for improved code (it needs a model to work)."""

CATEGORIES = {
    "offline": OFFLINE,
    "streams an OpenAI reply": STREAMING_KEYS,
    "asks OpenAI for improved code": {SELF_DEVELOPMENT},
    "a console dialog with an OpenAI assistant": DIALOG_KEYS,
}
"""Every snippet, sorted into exactly one kind."""

RUNS_AGAINST_THE_FAKE_LLM = STREAMING_KEYS | {SELF_DEVELOPMENT} | DIALOG_KEYS
"""The snippets that call OpenAI: they run against the fake LLM server."""

F = TypeVar("F", bound=Callable[..., object])

RUN_BY: dict[str, tuple[str, ...]] = {}
"""Which snippets each test runs: the test's name, and the keys of its snippets."""


def runs(*keys: str) -> Callable[[F], F]:
    """Record that the decorated test runs the snippets ``keys`` (see :data:`RUN_BY`)."""

    def record(test: F) -> F:
        name = getattr(test, "__name__", "")
        assert name.startswith("test_"), name
        assert name not in RUN_BY, name
        assert keys, name
        if SNIPPETS:  # without the drafts, the tests are skipped
            assert all(key in BY_KEY for key in keys), keys
        RUN_BY[name] = keys
        return test

    return record


# --- Running a snippet ----------------------------------------------------------------


def as_a_user_runs_it(code: str) -> str:
    """The snippet, with ``import asyncio`` added if it uses asyncio without importing it."""
    if re.search(r"\basyncio\.", code) and not re.search(r"^import asyncio\b", code, re.M):
        return "import asyncio\n" + code
    return code


def run_code(
    code: str,
    tmp_path: Path,
    *,
    stdin: str = "",
    harness: str | None = None,
    llm: FakeLLMServer | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script in ``tmp_path`` (through ``harness`` if given).

    With ``llm``, the OpenAI and Anthropic SDKs of the script talk to that fake server.
    """
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    args = [str(script)]
    if harness is not None:
        runner = tmp_path / "harness.py"
        runner.write_text(harness, encoding="utf-8")
        args = [str(runner), str(script)]
    return run_python(args, tmp_path, stdin=stdin, llm=llm, timeout=TIMEOUT)


def run_snippet(
    key: str, tmp_path: Path, *, stdin: str = "", llm: FakeLLMServer | None = None
) -> subprocess.CompletedProcess[str]:
    return run_code(as_a_user_runs_it(BY_KEY[key].code), tmp_path, stdin=stdin, llm=llm)


def assert_clean_run(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


# --- Which snippets run ---------------------------------------------------------------


def test_every_seed_snippet_is_of_exactly_one_kind() -> None:
    """The kinds of :data:`CATEGORIES` do not overlap, and every snippet is of one of them.

    The snippets that use the LLM agents are exactly those that run against the fake LLM
    server, and those that use the console or chat history agents are exactly the console
    dialogs (all of which talk with an OpenAI assistant).
    """
    keys = [snippet.key for snippet in SNIPPETS]
    assert len(keys) == len(set(keys)), "two snippets share a draft and a heading"
    kinds = [key for keys_of_kind in CATEGORIES.values() for key in keys_of_kind]
    assert sorted(kinds) == sorted(keys)
    assert set(keys) - OFFLINE == RUNS_AGAINST_THE_FAKE_LLM
    for snippet in SNIPPETS:
        assert uses_llm_agents(snippet) == (snippet.key in RUNS_AGAINST_THE_FAKE_LLM), snippet.key
        assert uses_console_or_history_agents(snippet) == (snippet.key in DIALOG_KEYS), snippet.key
    assert set(STREAMING) == STREAMING_KEYS
    assert set(DIALOGS) == DIALOG_KEYS


def test_every_seed_snippet_is_run_by_a_test() -> None:
    """Each test that :func:`runs` snippets exists here, and together they run them all."""
    for name in RUN_BY:
        assert callable(globals().get(name)), name
    run = {key for keys in RUN_BY.values() for key in keys}
    assert run == set(BY_KEY)


# --- Snippets that ask the (fake) LLM -------------------------------------------------


SCRIPTED_TOKENS = ["I am ", "fine, ", "thanks!"]
"""What the fake LLM server replies, token by token."""


@dataclass(frozen=True)
class ExpectedCall:
    """The request a snippet must send to OpenAI."""

    model: str
    prompt: str
    kwargs: dict[str, object]


STREAMING = {
    "000 Integrating with OpenAI": ExpectedCall(
        "gpt-4o-2024-05-13", "How are you today?", {"max_tokens": 1000, "temperature": 0.0}
    ),
    "001 Integrating with OpenAI": ExpectedCall(
        "gpt-4", "How are you today?", {"max_tokens": 1000, "temperature": 0.0}
    ),
    "002 Streaming Tokens from LLMs": ExpectedCall("gpt-3.5-turbo", "Tell me a short story", {}),
}
"""The snippets that stream an OpenAI reply token by token, printing each token."""


def assert_openai_request(
    request: RecordedRequest,
    model: str,
    messages: list[dict[str, str]],
    kwargs: dict[str, object] | None = None,
) -> None:
    """``request`` is a streamed chat completion request as given, and it got all its reply."""
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer test"  # OPENAI_API_KEY
    body = {name: value for name, value in request.json.items() if name != "stream_options"}
    assert body == {"model": model, "messages": messages, "stream": True, **(kwargs or {})}
    assert request.outcome == "complete"
    assert not request.client_disconnected


def assert_one_openai_call(llm: FakeLLMServer, expected: ExpectedCall) -> None:
    """The snippet sent one streamed chat completion request, as ``expected``, and got it all."""
    assert llm.pending == 0, "the scripted reply was not used"
    [request] = llm.requests
    assert_openai_request(
        request, expected.model, [{"role": "user", "content": expected.prompt}], expected.kwargs
    )


@pytest.mark.parametrize("key", sorted(STREAMING))
@runs(*STREAMING)
def test_a_streaming_snippet_prints_the_llm_reply_token_by_token(
    key: str,
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811 - the fixture
) -> None:
    """The snippet runs as written, ``load_dotenv()`` included, against the fake server.

    It prints the scripted tokens as they come (``end=""``), then a newline, and it asks
    for the model, the prompt and the options (``max_tokens``, ``temperature``) it names,
    streamed.
    """
    fake_llm.reply(tokens=SCRIPTED_TOKENS)
    result = run_snippet(key, tmp_path, llm=fake_llm)
    assert_clean_run(result)
    assert result.stdout == "I am fine, thanks!\n"
    assert_one_openai_call(fake_llm, STREAMING[key])


SELF_DEVELOPMENT_PROMPT = (
    "Improve the following Python function:\n\n"
    "def greet(name):\n    print(f'Hello, {name}!')\n\n"
    "Add error handling and make it more versatile."
)


@runs(SELF_DEVELOPMENT)
def test_seed_002_self_development_needs_a_model_for_openai_agent(
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811 - the fixture
) -> None:
    """The snippet inquires ``openai_agent`` without a model: it cannot work as written.

    docs/seed-drafts.md documents this deviation ("Where the seed drafts cannot work as
    written"). As written, ``openai_agent.inquire(prompt)`` names no model, so the agent
    fails with ``LLMConfigurationError`` before any request; the message says to give a
    model with ``openai_agent.fork(model=...)``. The error reaches ``main`` through the
    reply of ``self_improving_agent`` and ends the script.

    With ``openai_agent.fork(model="gpt-4o")`` instead (and the reply of
    ``self_improving_agent`` printed, which the snippet's ``main`` does not do), it asks
    for the improved code and replies ``Improved code:`` followed by the model's reply.
    """
    code = as_a_user_runs_it(BY_KEY[SELF_DEVELOPMENT].code)

    as_written = run_code(code, tmp_path, llm=fake_llm)
    assert as_written.returncode == 1
    assert as_written.stdout == ""
    error = last_line(as_written.stderr)
    assert error.startswith("miniagents.errors.LLMConfigurationError: "), error
    assert "OPENAI_AGENT needs a model" in error
    assert "openai_agent.fork(model=...)" in error
    assert fake_llm.requests == []

    with_model, replaced = re.subn(
        r"\bopenai_agent\.inquire\(", 'openai_agent.fork(model="gpt-4o").inquire(', code
    )
    assert replaced == 1
    printed, replaced = re.subn(
        r"await self_improving_agent\.inquire\(\)",
        "print(await self_improving_agent.inquire())",
        with_model,
    )
    assert replaced == 1
    fake_llm.reply(tokens=SCRIPTED_TOKENS)
    fixed = run_code(printed, tmp_path, llm=fake_llm)
    assert_clean_run(fixed)
    assert fixed.stdout == "Improved code:\n\nI am fine, thanks!\n"
    assert_one_openai_call(fake_llm, ExpectedCall("gpt-4o", SELF_DEVELOPMENT_PROMPT, {}))


# --- Snippets that talk with the user at the console --------------------------------


@dataclass(frozen=True)
class Turn:
    """One turn of a console dialog: what the user types, and the model's reply tokens."""

    user: str
    tokens: tuple[str, ...]

    @property
    def reply(self) -> str:
        return "".join(self.tokens)


TURNS = (
    Turn("How are you?", ("I am ", "fine, ", "thanks!")),
    Turn("What is the capital of France?", ("Paris", ".")),
)
"""Two turns: the user's two lines on stdin, and the fake LLM's two scripted replies."""

LATER_TURN = Turn("What did I ask first?", ("You asked ", "how I am."))
"""The turn of a later run of a snippet that resumes its conversation."""


@dataclass(frozen=True)
class Dialog:
    """A snippet's console dialog with an OpenAI assistant: the model, and where it is kept."""

    model: str
    history_file: str | None
    """The markdown file of its chat history (``None``: the model sees each message alone)."""


DIALOGS = {
    "000 Creating a Dialog Loop": Dialog("gpt-4o-2024-05-13", None),
    "002 Basic Usage": Dialog("gpt-3.5-turbo", None),
    "002 Persisting Chat History": Dialog("gpt-3.5-turbo", "chat_history.md"),
    "003 Usage": Dialog("gpt-4o-2024-05-13", "CHAT.md"),
}
"""The snippets that run a dialog loop between ``console_user_agent`` and ``openai_agent``."""


def script_replies(llm: FakeLLMServer, turns: Sequence[Turn]) -> str:
    """Script the fake's reply for each turn; return the user's lines, for stdin."""
    for turn in turns:
        llm.reply(tokens=turn.tokens)
    return "".join(f"{turn.user}\n" for turn in turns)


def transcript(turns: Sequence[Turn]) -> str:
    """What a dialog prints with its input on a pipe, up to the end of the input.

    The prompt, the user's line (echoed, since a pipe does not show it), then the label and
    the reply, for each turn; at the end of the input, the prompt and a line break.
    """
    shown = "".join(f"USER: {turn.user}\nASSISTANT: {turn.reply}\n" for turn in turns)
    return shown + "USER: \n"


def conversation(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The messages of ``turns``, in order, as the OpenAI API gets them."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        messages.append({"role": "user", "content": turn.user})
        messages.append({"role": "assistant", "content": turn.reply})
    return messages


def asking(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The conversation the model gets for the last turn's reply: all but that reply."""
    return conversation(turns)[:-1]


def assert_openai_dialog(
    llm: FakeLLMServer,
    model: str,
    conversations: Sequence[list[dict[str, str]]],
    *,
    earlier_requests: int = 0,
) -> None:
    """After ``earlier_requests``, one request per turn, with ``conversations`` in turn."""
    assert llm.pending == 0, "a scripted reply was not used"
    requests = llm.requests[earlier_requests:]
    assert [request.json.get("messages") for request in requests] == list(conversations)
    for request, messages in zip(requests, conversations, strict=True):
        assert_openai_request(request, model, messages)


async def load_history(path: Path, model: str) -> list[dict[str, str]]:
    """The messages a markdown chat history file holds, as :func:`conversation` gives them.

    Each is a ``UserMessage``, or an ``AssistantMessage`` of ``model`` from
    ``openai_agent``; a missing file is an empty history.
    """
    messages: list[dict[str, str]] = []
    for message in await ChatHistoryMD(path).load():
        assert isinstance(message, (UserMessage, AssistantMessage)), message
        assert message.text is not None
        if isinstance(message, AssistantMessage):
            assert message.model == model
            assert message.agent_alias == "OPENAI_AGENT"
            messages.append({"role": "assistant", "content": message.text})
        else:
            messages.append({"role": "user", "content": message.text})
    return messages


NO_HISTORY = sorted(key for key, dialog in DIALOGS.items() if dialog.history_file is None)


@pytest.mark.parametrize("key", NO_HISTORY)
@runs(*NO_HISTORY)
def test_a_dialog_snippet_sends_the_model_each_user_message_alone(
    key: str,
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811 - the fixture
) -> None:
    """The user and the assistant take turns until the input ends; the loop ends cleanly.

    ``console_user_agent`` prints the prompt, reads a line, and replies with it; the
    assistant (the model the snippet names) gets that message alone, with no history,
    and its reply is printed after ``ASSISTANT: `` as it streams. At the end of the input
    the user agent raises ``EOFError``, which ends ``adialog_loop``: exit code 0, nothing
    on stderr, and no file written.
    """
    dialog = DIALOGS[key]
    stdin = script_replies(fake_llm, TURNS)
    result = run_snippet(key, tmp_path, llm=fake_llm, stdin=stdin)
    assert_clean_run(result)
    assert result.stdout == transcript(TURNS)
    assert_openai_dialog(
        fake_llm, dialog.model, [[{"role": "user", "content": turn.user}] for turn in TURNS]
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["snippet.py"]


PERSISTING = "002 Persisting Chat History"
MINIAGENTS_IMPORT = "from miniagents.miniagents import MiniAgents\n"


@runs(PERSISTING)
def test_seed_002_persisting_chat_history_cannot_work_as_written(
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811 - the fixture
) -> None:
    """The snippet uses ``MiniAgents`` without importing it: ``NameError``, before anything.

    Unlike ``asyncio`` (which the tests add, as a user would), this import is not there:
    ``async with MiniAgents()`` raises ``NameError`` in ``main``, so no prompt is printed,
    no request is made and no chat history file is written.
    """
    code = BY_KEY[PERSISTING].code
    assert "MiniAgents()" in code
    assert "import MiniAgents" not in code
    stdin = script_replies(fake_llm, TURNS)
    as_written = run_snippet(PERSISTING, tmp_path, llm=fake_llm, stdin=stdin)
    assert as_written.returncode == 1
    assert as_written.stdout == ""
    assert as_written.stderr.count("Traceback") == 1, as_written.stderr
    assert last_line(as_written.stderr) == "NameError: name 'MiniAgents' is not defined"
    assert fake_llm.requests == []
    assert not (tmp_path / "chat_history.md").exists()


@runs(PERSISTING)
async def test_seed_002_persisting_chat_history_with_the_import_keeps_the_dialog_in_markdown(
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811 - the fixture
) -> None:
    """With only ``from miniagents.miniagents import MiniAgents`` added, it works as described.

    ``markdown_history_agent`` stores each user message and each reply in
    ``chat_history.md`` and gives the assistant the whole conversation: the second request
    carries the first question, its answer and the second question. The file loads back
    with ``ChatHistoryMD`` as that conversation, in order, both replies included.
    """
    code = as_a_user_runs_it(MINIAGENTS_IMPORT + BY_KEY[PERSISTING].code)
    dialog = DIALOGS[PERSISTING]
    assert dialog.history_file is not None
    stdin = script_replies(fake_llm, TURNS)
    result = run_code(code, tmp_path, llm=fake_llm, stdin=stdin)
    assert_clean_run(result)
    assert result.stdout == transcript(TURNS)
    assert_openai_dialog(fake_llm, dialog.model, [asking(TURNS[:1]), asking(TURNS)])
    assert fake_llm.requests[1].json["messages"] == [
        {"role": "user", "content": "How are you?"},
        {"role": "assistant", "content": "I am fine, thanks!"},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert await load_history(tmp_path / dialog.history_file, dialog.model) == conversation(TURNS)


USAGE_003 = "003 Usage"


@runs(USAGE_003)
async def test_seed_003_usage_keeps_the_dialog_in_chat_md(
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811 - the fixture
) -> None:
    """``create_console_user_agent(chat_history=ChatHistoryMD("CHAT.md"))`` keeps the dialog.

    The user agent stores each reply it gets and each message the user types in
    ``CHAT.md``, and replies with the whole history, so the assistant
    (``create_openai_agent(model="gpt-4o-2024-05-13")``) sees the whole conversation:
    the second request carries the first question, its answer and the second question.
    ``MiniAgents().run(amain())`` returns when the input ends (the loop ends cleanly: the
    snippet's ``except KeyboardInterrupt`` prints nothing).
    """
    dialog = DIALOGS[USAGE_003]
    assert dialog.history_file is not None
    stdin = script_replies(fake_llm, TURNS)
    result = run_snippet(USAGE_003, tmp_path, llm=fake_llm, stdin=stdin)
    assert_clean_run(result)
    assert result.stdout == transcript(TURNS)
    assert_openai_dialog(fake_llm, dialog.model, [asking(TURNS[:1]), asking(TURNS)])
    assert await load_history(tmp_path / dialog.history_file, dialog.model) == conversation(TURNS)


@runs(USAGE_003)
async def test_seed_003_usage_resumes_the_dialog_from_chat_md(
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811 - the fixture
) -> None:
    """Run again, the snippet goes on with the conversation kept in ``CHAT.md``.

    The first request of the second run carries the whole earlier conversation (both
    turns, both replies) before the new question; the transcript shows only the new turn;
    the file then holds all three turns, in order.
    """
    dialog = DIALOGS[USAGE_003]
    assert dialog.history_file is not None
    first = run_snippet(USAGE_003, tmp_path, llm=fake_llm, stdin=script_replies(fake_llm, TURNS))
    assert_clean_run(first)
    assert_openai_dialog(fake_llm, dialog.model, [asking(TURNS[:1]), asking(TURNS)])

    all_turns = (*TURNS, LATER_TURN)
    stdin = script_replies(fake_llm, [LATER_TURN])
    second = run_snippet(USAGE_003, tmp_path, llm=fake_llm, stdin=stdin)
    assert_clean_run(second)
    assert second.stdout == transcript([LATER_TURN])
    assert_openai_dialog(fake_llm, dialog.model, [asking(all_turns)], earlier_requests=len(TURNS))
    assert fake_llm.requests[-1].json["messages"][-2:] == [
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "What did I ask first?"},
    ]
    history = tmp_path / dialog.history_file
    assert await load_history(history, dialog.model) == conversation(all_turns)


CTRL_C_HARNESS = """\
import runpy
import signal
import sys

# Ctrl+C raises KeyboardInterrupt, as at a terminal, even if the tests run with SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
runpy.run_path(sys.argv[1], run_name="__main__")
"""


@dataclass(frozen=True)
class Interrupted:
    """How a snippet ended after Ctrl+C: its exit code and its output."""

    returncode: int
    stdout: str
    stderr: str


def interrupt_at_the_prompt(
    key: str, tmp_path: Path, llm: FakeLLMServer, turns: Sequence[Turn]
) -> Interrupted:
    """Run ``key`` with ``turns`` typed, then press Ctrl+C at the next prompt.

    SIGINT is sent once the transcript of ``turns`` and the next prompt are printed; stdin
    stays open until the snippet exits, so it is Ctrl+C that ends it, not the end of input.
    """
    script = tmp_path / "snippet.py"
    script.write_text(as_a_user_runs_it(BY_KEY[key].code), encoding="utf-8")
    runner = tmp_path / "harness.py"
    runner.write_text(CTRL_C_HARNESS, encoding="utf-8")
    stdin = script_replies(llm, turns)
    prompted = transcript(turns).removesuffix("\n")
    pipe = subprocess.PIPE
    with ProcessGroups() as groups:  # (ended with all it started, whatever happens)
        process = groups.ended(
            start_python(
                [str(runner), str(script)],
                tmp_path,
                llm=llm,
                text=False,
                stdin=pipe,
                stdout=pipe,
                stderr=pipe,
            )
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(stdin.encode("utf-8"))
        process.stdin.flush()
        shown = b""
        deadline = time.monotonic() + TIMEOUT
        while shown.decode("utf-8") != prompted:
            assert prompted.startswith(shown.decode("utf-8")), shown
            assert process.poll() is None, f"the snippet ended before its prompt: {shown!r}"
            assert time.monotonic() < deadline, f"no prompt after {TIMEOUT} s: {shown!r}"
            ready, _, _ = select.select([process.stdout], [], [], 0.1)
            if ready:
                shown += os.read(process.stdout.fileno(), 65536)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=TIMEOUT)  # stdin still open: only Ctrl+C can end the snippet
        stdout, stderr = process.communicate(timeout=TIMEOUT)  # (closes stdin: an end of input)
    return Interrupted(process.returncode, (shown + stdout).decode("utf-8"), stderr.decode("utf-8"))


@runs(USAGE_003)
async def test_seed_003_usage_ends_cleanly_on_ctrl_c_keeping_the_dialog(
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811 - the fixture
) -> None:
    """Ctrl+C while the user is to type ends the dialog: exit code 0, no traceback.

    The snippet wraps ``adialog_loop`` in ``except KeyboardInterrupt``; the loop itself
    ends cleanly on Ctrl+C (it returns), so ``MiniAgents().run(amain())`` returns and the
    program exits with 0 and nothing on stderr. The prompt's line is ended (as at the
    end of input), and ``CHAT.md`` keeps the turn before.
    """
    dialog = DIALOGS[USAGE_003]
    assert dialog.history_file is not None
    ended = interrupt_at_the_prompt(USAGE_003, tmp_path, fake_llm, TURNS[:1])
    assert ended.returncode == 0, ended.stderr
    assert ended.stderr == ""
    assert ended.stdout == transcript(TURNS[:1])
    assert_openai_dialog(fake_llm, dialog.model, [asking(TURNS[:1])])
    history = tmp_path / dialog.history_file
    assert await load_history(history, dialog.model) == conversation(TURNS[:1])


# --- Snippets that print --------------------------------------------------------------


@runs("000 Basic Usage")
def test_seed_000_basic_usage_prints_the_echo(tmp_path: Path) -> None:
    result = run_snippet("000 Basic Usage", tmp_path)
    assert_clean_run(result)
    assert result.stdout == "You said: Hello!\n"


@runs("001 Basic Usage")
def test_seed_001_basic_usage_prints_the_agents_reply(tmp_path: Path) -> None:
    result = run_snippet("001 Basic Usage", tmp_path)
    assert_clean_run(result)
    assert result.stdout == "Hello from the agent!\n"


@runs("002 Custom Message Types")
def test_seed_002_custom_message_types_prints_text_and_custom_field(tmp_path: Path) -> None:
    result = run_snippet("002 Custom Message Types", tmp_path)
    assert_clean_run(result)
    assert result.stdout == "Hello\nCustom Value\n"


@runs("002 Message Promises and Sequences")
def test_seed_002_message_promises_and_sequences_prints_each_message(tmp_path: Path) -> None:
    result = run_snippet("002 Message Promises and Sequences", tmp_path)
    assert_clean_run(result)
    assert result.stdout == "Processed: Hello\nProcessed: World\n"


VIRTUAL_TIME_HARNESS = """\
import asyncio
import runpy
import sys

from miniagents.testing import run_with_virtual_time

ended_at = []


def run_on_virtual_time(main, **options):
    async def timed():
        result = await main
        ended_at.append(asyncio.get_running_loop().time())
        return result

    return run_with_virtual_time(timed())


asyncio.run = run_on_virtual_time  # the snippet's own asyncio.run(), on a virtual clock
runpy.run_path(sys.argv[1], run_name="__main__")
print(f"virtual seconds: {ended_at}")
"""
"""Runs a snippet whose ``asyncio.run()`` runs on a virtual clock; prints how long it took."""


@runs("002 Parallel Execution of Agents")
def test_seed_002_parallel_execution_runs_the_five_agents_at_once(tmp_path: Path) -> None:
    """Five agents that sleep one second each finish in one (virtual) second, not five."""
    code = as_a_user_runs_it(BY_KEY["002 Parallel Execution of Agents"].code)
    result = run_code(code, tmp_path, harness=VIRTUAL_TIME_HARNESS)
    assert_clean_run(result)
    assert result.stdout == "virtual seconds: [1.0]\n"


# --- Snippets that only define agents -------------------------------------------------


DEFINING = {
    "002 Custom Agents": (
        """
async def _drive() -> None:
    from miniagents import MiniAgents
    async with MiniAgents():
        print(await my_agent.inquire(["Hello!", "Bye!"]))
""",
        "You said: Hello!\n\nYou said: Bye!\n",
    ),
    "002 Extending the Framework": (
        """
class _EchoClient:
    async def generate(self, prompt: str) -> str:
        return f"LLM says: {prompt}"

async def _drive() -> None:
    from miniagents import MiniAgents
    async with MiniAgents():
        print(await custom_llm_agent.inquire("Hi", custom_llm_client=_EchoClient()))
""",
        "LLM says: Hi\n",
    ),
}
"""Snippets that define an agent: a driver that uses it, and what the driver prints."""


@pytest.mark.parametrize("key", sorted(DEFINING))
@runs(*DEFINING)
def test_a_defining_snippet_defines_its_agent_and_the_agent_works(key: str, tmp_path: Path) -> None:
    code = as_a_user_runs_it(BY_KEY[key].code)
    as_written = run_code(code, tmp_path)
    assert_clean_run(as_written)
    assert as_written.stdout == ""

    driver, expected = DEFINING[key]
    used = run_code(f"{code}\n{driver}\nimport asyncio\nasyncio.run(_drive())\n", tmp_path)
    assert_clean_run(used)
    assert used.stdout == expected


@runs("002 Error Handling")
def test_seed_002_error_handling_is_a_fragment_that_needs_the_miniagent_import(
    tmp_path: Path,
) -> None:
    """The seed's fault, not the library's: the snippet uses ``@miniagent`` unimported.

    It continues the snippets above it in the draft; as written it raises ``NameError``.
    With the import of the snippet above it (``from miniagents.miniagents import
    miniagent``) it defines ``error_prone_agent``, and the agent replies with the error
    that its undefined ``some_risky_operation`` raises, as the draft describes.
    """
    code = BY_KEY["002 Error Handling"].code
    as_written = run_code(as_a_user_runs_it(code), tmp_path)
    assert as_written.returncode == 1
    assert last_line(as_written.stderr) == "NameError: name 'miniagent' is not defined"

    with_import = "from miniagents.miniagents import miniagent\n" + code
    defined = run_code(with_import, tmp_path)
    assert_clean_run(defined)
    assert defined.stdout == ""

    driver = """
import asyncio
from miniagents import MiniAgents

async def _drive() -> None:
    async with MiniAgents():
        print(await error_prone_agent.inquire())

asyncio.run(_drive())
"""
    used = run_code(with_import + driver, tmp_path)
    assert_clean_run(used)
    assert used.stdout == "An error occurred: name 'some_risky_operation' is not defined\n"


# --- Snippets that loop ---------------------------------------------------------------


PROGRESS_HARNESS = """\
import runpy
import sys

from miniagents import MiniAgent

inquiries = 0
inquire = MiniAgent.inquire


def counting_inquire(self, *args, **kwargs):
    global inquiries
    inquiries += 1
    if inquiries == 200:
        print("200 inquiries, and still going", flush=True)
    return inquire(self, *args, **kwargs)


MiniAgent.inquire = counting_inquire
runpy.run_path(sys.argv[1], run_name="__main__")
print("the snippet ended", flush=True)
"""
"""Runs a snippet, saying when agents were inquired 200 times, and whether it ended."""


ENDLESS_CHAINS = ("002 Chaining Agents", "002 Using AWAIT and CLEAR Sentinels")
"""The snippets that run ``achain_loop`` with agents that never stop."""


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line ``process`` prints ("" if it prints none within ``timeout`` seconds)."""
    out = process.stdout
    assert out is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(out.readline()))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""


@pytest.mark.parametrize("key", ENDLESS_CHAINS)
@runs(*ENDLESS_CHAINS)
def test_an_endless_chain_snippet_loops_until_it_is_stopped(key: str, tmp_path: Path) -> None:
    """``achain_loop`` with agents that never stop runs forever, by design.

    The snippet goes round its loop (200 agents inquired) with no error and without
    ending; then the test terminates it.
    """
    script = tmp_path / "snippet.py"
    script.write_text(as_a_user_runs_it(BY_KEY[key].code), encoding="utf-8")
    runner = tmp_path / "harness.py"
    runner.write_text(PROGRESS_HARNESS, encoding="utf-8")
    pipe = subprocess.PIPE
    with ProcessGroups() as started:  # (ended with all it started, whatever happens)
        process = started.python(
            [str(runner), str(script)], tmp_path, stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe
        )
        said = first_line(process, TIMEOUT)
        still_running = process.poll() is None
        process.terminate()
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert said == "200 inquiries, and still going\n", f"{said!r}{stdout!r}{stderr}"
    assert still_running, f"the loop ended (exit code {process.returncode}):\n{stderr}"
    assert stderr == ""
    assert stdout == ""


@runs("001 Multiple Agents Interaction")
def test_seed_001_multiple_agents_interaction_talks_until_the_input_ends(
    tmp_path: Path,
) -> None:
    """The user agent reads ``input()``: two lines, then EOF, which ends the loop cleanly."""
    result = run_snippet(
        "001 Multiple Agents Interaction", tmp_path, stdin="first line\nsecond line\n"
    )
    assert_clean_run(result)
    assert result.stdout == (
        "USER: first line\n"  # the prompt, then the assistant printing what it got
        "Hello, how can I assist you?\n"  # the user agent printing the assistant's reply
        "USER: second line\n"
        "Hello, how can I assist you?\n"
        "USER: "  # EOF here: input() raises EOFError, and achain_loop returns
    )


# --- The snippet that cannot work as written ------------------------------------------


@runs("004 Usage")
def test_seed_004_usage_cannot_work_as_written(tmp_path: Path) -> None:
    """Seed 004 claims to print ``Hello!`` and ``You said: Hello!``; it cannot.

    docs/seed-drafts.md documents this deviation ("Where the seed drafts cannot work as
    written"). As written, the snippet never imports ``achain_loop``, so it raises
    ``NameError``. With the import added it passes ``achain_loop`` a list of reply
    sequences (``agent.inquire()``) with no agent and no ``AWAIT``, which is a
    ``ChainDefinitionError`` (a ``ValueError``) by design: the message says to pass the
    agents themselves, not their replies, and shows where ``AWAIT`` goes. Chaining the
    agents directly, as docs/seed-drafts.md suggests instead, prints ``You said: Hello!``.
    """
    code = BY_KEY["004 Usage"].code
    assert "achain_loop" in code
    assert "import achain_loop" not in code

    as_written = run_code(as_a_user_runs_it(code), tmp_path)
    assert as_written.returncode == 1
    assert as_written.stdout == ""
    assert last_line(as_written.stderr) == "NameError: name 'achain_loop' is not defined"

    with_import = run_code("from miniagents.utils import achain_loop\n" + code, tmp_path)
    assert with_import.returncode == 1
    assert with_import.stdout == ""
    assert with_import.stderr.count("Traceback") == 1, with_import.stderr
    error = last_line(with_import.stderr)
    assert error.startswith(
        "miniagents.errors.ChainDefinitionError: achain_loop() needs agents in its list"
    ), error
    assert "[MessageSequencePromise, MessageSequencePromise]" in error
    assert "Pass the agents themselves, not the replies of agent.inquire()" in error
    assert "achain_loop([user_agent, AWAIT, assistant_agent])" in error

    # The closest working code, as docs/seed-drafts.md gives it, prints the reply of the chain.
    chained, replaced = re.subn(
        r"await achain_loop\(\[.*?\]\)",
        "print(await echo_agent.inquire(hello_agent.inquire()))",
        code,
        flags=re.DOTALL,
    )
    assert replaced == 1
    fixed = run_code(chained, tmp_path)
    assert_clean_run(fixed)
    assert fixed.stdout == "You said: Hello!\n"


def test_a_worktree_finds_the_drafts_next_to_its_main_checkout(tmp_path: Path) -> None:
    # (was: parents[2] of this file, so a worktree at /work/wt/<name> looked in
    # /work/wt/shared/seeds, found nothing and skipped every test here)
    seeds = tmp_path / "shared" / "seeds"
    seeds.mkdir(parents=True)
    main, own = tmp_path / "main", tmp_path / "main" / ".git" / "worktrees" / "mine"
    own.mkdir(parents=True)
    (own / "commondir").write_text("../..\n", encoding="utf-8")
    worktree = tmp_path / "wt" / "mine"
    worktree.mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {own}\n", encoding="utf-8")
    assert seeds_dir(worktree) == seeds
    assert seeds_dir(main) == seeds
    assert seeds_dir(tmp_path / "wt") == tmp_path / "shared" / "seeds"  # (no .git: beside it)
