"""Every snippet of the README and of the docs pages, and every example, runs offline and
prints what its page says."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import inspect
import io
import itertools
import re
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from miniagents.ext.history import ChatHistory
from miniagents.testing import ChatHistoryContract, FakeLLMServer
from tests.fakes.batch import Outcome, Program, run_batch
from tests.fakes.doc_pages import BLOCK, INCLUDED, PAGES, ROOT, SHOWN, SNIPPETS, Snippet
from tests.subprocesses import run_python

README = (ROOT / "README.md").read_text(encoding="utf-8")


def page_text(name: str) -> str:
    """The text of the page ``name`` (relative to the repository root)."""
    return (ROOT / name).read_text(encoding="utf-8")


def lines_of(text: str) -> list[str]:
    """The lines of ``text`` without trailing spaces (a prompt at the end of input has one)."""
    return [line.rstrip() for line in text.splitlines()]


def test_the_pages_have_snippets_to_run() -> None:
    assert len(SNIPPETS) >= 60
    assert sum(snippet.expected is not None for snippet in SNIPPETS) >= 40
    assert sum(bool(snippet.stdin) for snippet in SNIPPETS) >= 4
    readme = [snippet for snippet in SNIPPETS if snippet.page == "README.md"]
    assert readme, "the README's example runs too"
    assert all(snippet.expected is not None for snippet in readme)
    pages = {snippet.page for snippet in SNIPPETS}
    assert len(pages) >= 15, pages  # the site's pages, not the README alone


def test_an_included_file_is_an_example() -> None:
    """A python block that includes a file (``--8<-- "examples/..."``) shows an example (run)."""
    included = [
        found[1]
        for path in PAGES
        for block in BLOCK.finditer(path.read_text(encoding="utf-8"))
        if block.group(1) == "python" and (found := INCLUDED.fullmatch(block.group(2)))
    ]
    for name in included:
        assert ROOT / name in EXAMPLES, f"{name} is included in a page but is no example"


def test_a_block_that_shows_an_example_is_that_example() -> None:
    """A block after ``<!-- example: examples/... -->`` is that example's file, as it is."""
    shown: list[tuple[str, str]] = []
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        blocks = list(BLOCK.finditer(text))
        for index, block in enumerate(blocks):
            before = text[blocks[index - 1].end() if index else 0 : block.start()]
            if block.group(1) == "python" and (found := SHOWN.search(before)):
                shown.append((found[1], block.group(2)))
    assert shown, "the A2A page shows its two-process example's files"
    for name, code in shown:
        assert ROOT / name in EXAMPLES, f"{name} is shown in a page but is no example"
        assert code == (ROOT / name).read_text(encoding="utf-8"), (
            f"the page's copy of {name} is not the file: copy the file into the page again"
        )


def test_every_page_and_example_serves_with_the_bounded_configuration() -> None:
    # docs/web.md's in-stream approval demo built uvicorn.Config(app) itself (no connection
    # limit, no deadline for headers): what is copied from the pages serves as server_config
    bare = re.compile(r"uvicorn\.(?:Config|run)\(")
    sources = [*PAGES, *sorted((ROOT / "examples").rglob("*.py"))]
    unbounded = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if bare.search(line)
    ]
    assert unbounded == [], "serve with miniagents.ext.web.serving.server_config(app)"


def test_the_agents_page_shows_a_reply_started_as_a_task_with_ensure_future() -> None:
    # asyncio.create_task(agent.inquire()) fails ("a coroutine was expected"): the page on
    # agents shows the spelling that works, in a snippet that the tests run
    page = [snippet for snippet in SNIPPETS if snippet.name.startswith("docs/concepts/agents.md")]
    shown = [
        snippet for snippet in page if "asyncio.ensure_future(researcher.inquire(" in snippet.code
    ]
    assert shown, "docs/concepts/agents.md: show asyncio.ensure_future(agent.inquire(...))"
    assert shown[0].expected is not None


def test_every_snippet_has_a_name_of_its_own() -> None:
    names = [snippet.name for snippet in SNIPPETS]
    assert len(set(names)) == len(names)


def _batched(tmp: Path, wanted: frozenset[str]) -> dict[str, Outcome]:
    """The blocks of the pages that read no console, and the examples that need no process of
    their own, named in ``wanted``, run in one interpreter (``tests/fakes/batch.py``), each in
    its own folder."""
    programs = [
        Program(name=snippet.name, cwd=str(folder), path=str(_script(folder, snippet)))
        for n, snippet in enumerate(SNIPPETS, start=1)
        if not snippet.stdin and snippet.name not in OWN_PROCESS and snippet.name in wanted
        for folder in [_folder(tmp, f"snippet-{n}")]
    ]
    programs += [
        Program(name=path.name, cwd=str(_folder(tmp, path.name)), path=str(path), offline=True)
        for path in EXAMPLES
        if path.name not in OWN_PROCESS and path.name in wanted
    ]
    with FakeLLMServer() as server:  # the blocks that need a key talk to it
        return run_batch(programs, llm=server, env=_pytest_with_the_pages_plugins())


PAGES_PYTEST_PLUGINS = frozenset({"asyncio"})
"""The pytest plugins that the pages' test files use (``docs/testing.md``: pytest-asyncio)."""


def _pytest_with_the_pages_plugins() -> dict[str, str]:
    """An environment where ``pytest`` loads only the plugins the pages' test files use.

    ``docs/testing.md``'s blocks run their own file with ``python -m pytest`` in a process of
    its own, as a reader runs it. Each of those runs started with every plugin installed
    here, hypothesis's among them (2 s of imports): 4.3 s against 0.75 s for a test that
    does nothing, and a minute or more under CI's load, for each of the four blocks. They
    are blocked (``-p no:NAME``), so a block's file passes with pytest and the plugins it
    names alone, as in a reader's project.
    """
    others = sorted(
        entry.name
        for entry in importlib.metadata.entry_points(group="pytest11")
        if entry.name not in PAGES_PYTEST_PLUGINS
    )
    return {"PYTEST_ADDOPTS": " ".join(f"-p no:{name}" for name in others)}


def _script(folder: Path, snippet: Snippet) -> Path:
    script = folder / "snippet.py"
    script.write_text(snippet.code, encoding="utf-8")
    return script


def _folder(tmp: Path, name: str) -> Path:
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def batched(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    """The outcomes of the batch (made once per process: the tests share one xdist group).

    It runs what the session's selected tests read of it only (was: every block and example,
    ten minutes on a loaded machine, for ``-k studio.md``'s two blocks too).
    """
    return _batched(tmp_path_factory.mktemp("docs"), _selected(request.session))


def _selected(session: pytest.Session) -> frozenset[str]:
    """The names of the blocks (``docs/studio.md-1``) and examples (``tools.py``) selected."""
    names: set[str] = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)  # (a parametrized test's parameters)
        values = () if callspec is None else callspec.params.values()
        names.update(value.name for value in values if isinstance(value, Snippet | Path))
    return frozenset(names)


BATCH_TIMEOUT = pytest.mark.timeout(660)
"""The first test to need the batch runs it (up to 600 s, its own limit, on a loaded machine);
a program that starts Ray runs on its own, as long (:data:`RAY_SECONDS`), without the batch."""


@BATCH_TIMEOUT
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[snippet.name for snippet in SNIPPETS])
def test_a_snippet_runs_and_prints_what_its_page_says(
    snippet: Snippet, tmp_path: Path, fake_llm: FakeLLMServer, request: pytest.FixtureRequest
) -> None:
    if snippet.stdin or snippet.name in OWN_PROCESS:  # (reading the console is a reason)
        script = tmp_path / "snippet.py"
        script.write_text(snippet.code, encoding="utf-8")
        result: Outcome | subprocess.CompletedProcess[str] = run_python(
            [str(script)],
            cwd=tmp_path,
            llm=fake_llm,
            stdin=snippet.stdin,
            timeout=own_process_seconds(snippet.name),
        )
    else:
        result = request.getfixturevalue("batched")[snippet.name]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    if snippet.expected is not None:
        assert lines_of(result.stdout) == lines_of(snippet.expected)


EXAMPLES = sorted((ROOT / "examples").rglob("*.py"))

EXAMPLE_INPUT = {
    "demo.py": "Hello!\n\nWhat did I say?\nexit\nnot read\n",
    "conversation.py": "Hello!\nHow are you?\n",
}
"""What the user types into the examples that read the console (piped, one line each)."""

EXAMPLE_OUTPUT = {
    "demo.py": [
        "Chatting with the offline model (set OPENAI_API_KEY to talk with OpenAI).",
        'USER: Hello!\nASSISTANT: (offline model "offline", 1 message(s) in the prompt) '
        "You said: Hello!\n",
        'USER: What did I say?\nASSISTANT: (offline model "offline", 3 message(s) in the '
        "prompt) You said: What did I say?\nUSER: exit\nBye!\n",
    ],
    "app.py": [  # examples/web_chat/app.py, without --serve: one question, in-process
        'page: text/html; charset=utf-8\ntool call: POET {"subject": "rivers"}\n',
        "tool output (streamed): The rivers run on, token by token; / each word arrives as it",
    ],
    "classify_documents.py": [
        "Classified 1999 of 2000 documents, 16 at a time.\n"
        "Topics: cooking 400, finance 400, science 400, sports 400, travel 399\n"
        "1 failed:\n- document 1234: the document is empty: there is nothing to classify\n",
        "The CSV has 2000 rows, in the documents' order: ['0', 'sports', ''], ['1', 'science',",
    ],
    "conversation.py": [
        "A new conversation, kept in CHAT.md.",
        'USER: How are you?\nASSISTANT: (offline model "offline", 3 message(s) in the prompt)',
        "The conversation is saved in CHAT.md.",
    ],
    "llm_example.py": [
        "A replayable stream keeps every token it has carried",
        "model: offline, finish reason: stop\ntokens: 5 in, 27 out\n",
    ],
    "parallel_agents.py": [
        "[style] 24 words, fine by me.\n[facts] 24 words",
        "checker 1: done\nchecker 2: done\nchecker 3: done\nThree one-second agents took 1.",
    ],
    "orchestrator.py": [  # examples/a2a/: the researcher in a process of its own
        "calling RESEARCHER over A2A\nthe researcher, live: Rivers meander because faster water",
        "the orchestrator: (offline model",
    ],
    "researcher.py": ["Rivers meander because faster water on the outside of a bend"],
    "tck_agent.py": [  # examples/a2a/: the kit's agent asking itself a few of the kit's requests
        "tck-artifact-file: A2AFile [file output.txt (text/plain, 3 bytes)]\n",
        "tck-message-response: A2AMessage Direct message response\n"
        "tck-input-required: A2AInputRequest The TCK asks for input: send a message to go on.\n"
        "tck-input-required: A2AMessage Hello from TCK\n"
        "tck-reject-task: A2ATaskRejectedError TASK_STATE_REJECTED\n",
    ],
    "research_team.py": [
        "Our findings: Paris has about 2.1 million people. Rome has about 2.8 million people. "
        "No figures for Atlantis.\n"
    ],
    "pipe_composition.py": [
        "A SHORT ANSWER TO 'WHY AGENTS?'\nA SHORT ANSWER TO 'WHY STREAMS?'\n",
        "10. A SHORT ANSWER TO 'WHY AGENTS?'\n11.",
    ],
    "ray_pipeline.py": [
        "document 0: A note on quiet river of district 0.\n"
        "document 1: A note on restored market of district 1.\n",
        "Summarised 300 of 300 documents on Ray (0 failed).\n",
    ],
    "self_dev.py": [
        "# The modules of `miniagents/ext`\n",
        "## `miniagents/ext/file_agents.py`\n\nFile agents: write messages to a file as they "
        "stream.",
        "(written to MODULES.md)",
    ],
    "streams_demo.py": ["Streams are replayable"],
    "voice_assistant.py": [  # examples/voice/: against the fake OpenAI Realtime API
        "user: Why do rivers meander?\nassistant: Good question, let me look.\n"
        "(calls RESEARCHER)\n(the researcher, live) Rivers meander because water runs faster",
        "assistant: Faster water wears the outer bank, so the bend grows.\n"
        "500 ms of speech; [session ended after 2 turns]\n",
    ],
    "tools.py": [
        'CALL get_weather: {"city": "Paris"}\nCALL multiply: {"a": "6", "b": "7"}\n',
        "RESULT multiply: 42\nRESULT POET: The streams run on, token by token;",
        "- get_weather: Sunny, 21 °C in Paris\n- multiply: 42\n",
    ],
}
"""Lines each example prints (offline); every example is listed."""


def test_every_example_is_listed_with_what_it_prints() -> None:
    assert sorted(EXAMPLE_OUTPUT) == sorted(path.name for path in EXAMPLES)


STARTS_RAY = "it starts and stops a Ray cluster of its own"

OWN_PROCESS = {
    **dict.fromkeys(EXAMPLE_INPUT, "it reads the console (file descriptor 0)"),
    "ray_pipeline.py": STARTS_RAY,
    "docs/ray.md-1": STARTS_RAY,  # (18 s of the batch on a quiet machine, 72 s under CI's load)
}
"""The examples and blocks (besides those reading the console) that run in a process of
their own, with the reason."""

RAY_SECONDS = 600
"""The bound of a program that starts a Ray cluster (a safety net, as the batch's 600 s is).

Where its time goes (``examples/ray_pipeline.py``, on 2 cores at a load of 5): importing Ray
2 s, ``ray.init`` 11-13 s (the cluster's processes), the first item 1.5 s (a worker's cold
start), the 300 documents 6.5-8 s, ``ray.shutdown`` 1.6 s: 31 s. Ray's start is most of it,
and it slows down as the cores are shared: ``docs/ray.md-1`` took 18 s alone and 89 s on a
core shared with one busy process, and the example outlasted 120 s on CI's Python 3.13 run
beside the other tests."""


def own_process_seconds(name: str) -> float:
    """The bound of the example or block ``name`` run in a process of its own."""
    return RAY_SECONDS if OWN_PROCESS.get(name) == STARTS_RAY else 120


def test_every_block_and_example_that_starts_ray_runs_in_a_process_of_its_own() -> None:
    # (was: docs/ray.md-1 started its cluster inside the batch, 72 s of it under CI's load)
    programs = {snippet.name: snippet.code for snippet in SNIPPETS}
    programs |= {path.name: path.read_text(encoding="utf-8") for path in EXAMPLES}
    starting = sorted(name for name, code in programs.items() if "ray.init(" in code)
    assert starting == sorted(name for name, why in OWN_PROCESS.items() if why == STARTS_RAY)


@BATCH_TIMEOUT
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_runs_offline(
    path: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if path.name in OWN_PROCESS:
        result: Outcome | subprocess.CompletedProcess[str] = run_python(
            [str(path)],
            cwd=tmp_path,
            stdin=EXAMPLE_INPUT.get(path.name, ""),
            timeout=own_process_seconds(path.name),
        )
    else:
        result = request.getfixturevalue("batched")[path.name]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for expected in EXAMPLE_OUTPUT[path.name]:
        assert expected in result.stdout


def test_the_conversation_example_resumes_from_its_history_file(tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "conversation.py")
    run_python([example, "talk.md"], cwd=tmp_path, stdin="My name is Ada.\n")
    result = run_python([example, "talk.md"], cwd=tmp_path, stdin="What is my name?\n")
    assert result.returncode == 0, result.stderr
    assert "Resuming the conversation in talk.md (2 messages so far)." in result.stdout
    assert '(offline model "offline", 3 message(s) in the prompt)' in result.stdout
    saved = (tmp_path / "talk.md").read_text(encoding="utf-8")
    assert saved.count("### USER") == 2
    assert saved.index("My name is Ada.") < saved.index("What is my name?")


def test_the_self_dev_example_writes_its_draft_to_a_file(tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "self_dev" / "self_dev.py")
    result = run_python([example, "miniagents/ext/llm", "llm.md"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    draft = (tmp_path / "llm.md").read_text(encoding="utf-8")
    public = sorted(
        path.name
        for path in (ROOT / "miniagents" / "ext" / "llm").glob("*.py")
        if not path.name.startswith("_")
    )
    headings = [line for line in draft.splitlines() if line.startswith("## ")]
    assert headings == [f"## `miniagents/ext/llm/{name}`" for name in public]
    assert draft in result.stdout


def test_the_demo_asks_openai_when_a_key_is_set(tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    fake_llm.reply(tokens=["Hi ", "Ada."])
    fake_llm.reply(tokens=["You ", "are ", "Ada."])
    result = run_python(
        [str(ROOT / "examples" / "demo.py")],
        cwd=tmp_path,
        llm=fake_llm,
        stdin="I am Ada.\nWho am I?\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Chatting with OpenAI." in result.stdout
    assert "USER: I am Ada.\nASSISTANT: Hi Ada.\nUSER: Who am I?\nASSISTANT: You are Ada.\n" in (
        result.stdout
    )
    first, second = (request.json for request in fake_llm.requests)
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["model"] == "gpt-4o-mini"
    system = {"role": "system", "content": "You are a helpful and concise assistant."}
    assert second["messages"] == [
        system,
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "Who am I?"},
    ]


def test_the_quick_start_demo_is_an_example_that_the_tests_run() -> None:
    assert "python examples/demo.py" in README
    assert ROOT / "examples" / "demo.py" in EXAMPLES


def test_the_quick_start_shows_what_the_demo_prints(tmp_path: Path) -> None:
    start = README.index("## Quick start")
    shown = BLOCK.search(README, README.index("Type `exit`", start))
    assert shown is not None
    assert shown.group(1) == "text"
    result = run_python([str(ROOT / "examples" / "demo.py")], cwd=tmp_path, stdin="Hello!\nexit\n")
    assert result.returncode == 0, result.stderr
    assert lines_of(result.stdout) == lines_of(shown.group(2))


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    quick_start = README[
        README.index("## Quick start") : README.index("\n## ", README.index("## Quick start") + 1)
    ]
    install_and_test = next(line for line in quick_start.splitlines() if ".ci/setup &&" in line)
    command = install_and_test.rsplit("&& ", 1)[1].strip()
    assert command.startswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f'echo "== pytest";              {command}\n' in ci
    assert f"The test command is `{command}`" in README


BLOCKING_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "exists"}


def test_the_chat_history_example_does_no_blocking_io_in_async_code() -> None:
    import ast

    [snippet] = [s for s in SNIPPETS if "class JSONLinesHistory" in s.code]
    [history] = [
        node
        for node in ast.walk(ast.parse(snippet.code))
        if isinstance(node, ast.ClassDef) and node.name == "JSONLinesHistory"
    ]
    blocking = [
        f"{function.name}: {call.func.attr}"
        for function in history.body
        if isinstance(function, ast.AsyncFunctionDef)
        for call in ast.walk(function)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in BLOCKING_CALLS
    ]
    assert blocking == []  # file I/O goes through asyncio.to_thread


def test_the_chat_history_example_passes_the_chat_history_contract(tmp_path: Path) -> None:
    [snippet] = [s for s in SNIPPETS if "class JSONLinesHistory" in s.code]
    namespace: dict[str, Any] = {}
    exec(snippet.code.split("\nasync def main")[0], namespace)  # the class, not its demo
    history_class: Callable[..., ChatHistory] = namespace["JSONLinesHistory"]
    files = (tmp_path / f"chat-{number}.jsonl" for number in itertools.count())

    class Contract(ChatHistoryContract):
        def new_history(self) -> ChatHistory:
            self.path = next(files)
            return history_class(str(self.path), self.message_classes)

        def reopen(self, history: ChatHistory) -> ChatHistory:
            return history_class(str(self.path), self.message_classes)

    contract = Contract()
    for check in [name for name in dir(contract) if name.startswith("test_")]:
        getattr(contract, check)()


OPTIONAL_PACKAGES = (
    "anthropic",
    "dbos",
    "dotenv",
    "genai_prices",
    "mcp",
    "openai",
    "opentelemetry",
    "prompt_toolkit",
    "ray",
    "sse_starlette",
    "starlette",
    "tqdm",
    "uvicorn",
)
"""The top-level packages that come only with an extra (pyproject's optional dependencies)."""

WITHOUT_EXTRAS = """
import importlib.abc, runpy, sys

class NoExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (an extra)", name=name)
        return None

sys.meta_path.insert(0, NoExtras())
sys.argv = [{demo!r}]
runpy.run_path({demo!r}, run_name="__main__")
"""


def test_the_quick_start_demo_installs_the_core_alone() -> None:
    quick_start = README[
        README.index("## Quick start") : README.index("\n## ", README.index("## Quick start") + 1)
    ]
    [demo] = [
        line for line in quick_start.splitlines() if "examples/demo.py" in line and "&&" in line
    ]
    assert "pip install -e . && python examples/demo.py" in demo
    assert "[" not in demo  # no extra: Ray, DBOS and the SDKs never come with the demo


def test_the_demo_runs_without_any_extra(tmp_path: Path) -> None:
    demo = str(ROOT / "examples" / "demo.py")
    code = WITHOUT_EXTRAS.format(blocked=set(OPTIONAL_PACKAGES), demo=demo)
    result = run_python(["-c", code], cwd=tmp_path, stdin="Hello!\nexit\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "You said: Hello!" in result.stdout
    assert result.stdout.endswith("Bye!\n")


def test_the_blocker_keeps_out_what_an_extra_brings(tmp_path: Path) -> None:
    """The check above is real: with the blocker, ``openai`` (installed here) cannot load."""
    code = WITHOUT_EXTRAS.format(blocked=set(OPTIONAL_PACKAGES), demo="-").split("sys.argv")[0]
    result = run_python(["-c", code + "import openai\n"], cwd=tmp_path)
    assert result.returncode == 1
    assert "No module named 'openai' (an extra)" in result.stderr


_NAV_PAGE = re.compile(r"^\s*-\s+(?:[^:\n]+:\s+)?([\w/.-]+\.md)\s*$", re.MULTILINE)


_SIZE = re.compile(r"\d[\d,.]*\s*\**\s*[MG]B\b")
_INSTALLED = re.compile(r"install|on disk|weighs|virtual environment", re.IGNORECASE)
_MEASURED = re.compile(
    r"measured on 20\d\d-\d\d-\d\d with\s+`python tests/benchmarks/install_sizes\.py"
)


def test_every_install_size_says_when_and_how_it_was_measured() -> None:
    # issue 62, item 8: the extras were larger than the pages said (gemini's "48 MB"), and
    # nothing said when the figures were measured or how to measure them again
    undated = []
    for path in PAGES:
        if path.name == "benchmarks-history.md":  # (the log of past measurements)
            continue
        for paragraph in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            lines = paragraph.strip().splitlines()
            joined = " ".join(paragraph.split())
            if _MEASURED.search(joined):
                continue
            table = all(line.startswith("|") for line in lines)
            for line in lines:
                for size in _SIZE.finditer(line):
                    # what the figure is of: its table's header and row, or the text around it
                    around = f"{lines[0]} {line}" if table else _around(joined, size.group())
                    if _INSTALLED.search(around):
                        undated.append(f"{path.relative_to(ROOT)}: {line.strip()[:90]}")
    assert not undated, (
        "An install size must say when it was measured, and with what: 'measured on "
        "YYYY-MM-DD with `python tests/benchmarks/install_sizes.py ...`' in its paragraph "
        "(or state no figure):\n" + "\n".join(undated)
    )


def _around(text: str, found: str, reach: int = 160) -> str:
    where = text.find(found)
    return text[max(0, where - reach) : where + len(found) + reach]


def test_the_site_lists_every_page_and_only_pages_that_exist() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
    listed = _NAV_PAGE.findall(nav)
    pages = sorted(path.relative_to(ROOT / "docs").as_posix() for path in PAGES[1:])
    assert len(listed) == len(set(listed))
    assert sorted(listed) == pages


def rendered() -> list[str]:
    """What the API reference renders: the name of each ``::: name`` of ``docs/api``."""
    return [
        name
        for path in sorted((ROOT / "docs" / "api").glob("*.md"))
        for name in re.findall(r"^::: ([\w.]+)$", path.read_text(encoding="utf-8"), re.M)
    ]


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name inside a module that is no package
        return False


def test_every_page_of_the_api_reference_renders_a_public_package() -> None:
    for path in sorted((ROOT / "docs" / "api").glob("*.md")):
        names = re.findall(r"^::: ([\w.]+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
        assert names, path
        for name in names:
            assert not any(part.startswith("_") for part in name.split(".")), name
            module, _, member = name.rpartition(".")
            # a module, or an object of one that its package's page cannot show (see below)
            assert is_module(name) or hasattr(importlib.import_module(module), member), name


def test_the_api_reference_renders_what_a_package_names_as_its_submodule_names() -> None:
    """``miniagents.testing.virtual_time`` is a function and a module: the reference shows the
    module, not the function; so each such function is rendered from its module, by name
    (unless that module is rendered, as ``miniagents.pipeline`` is, with its function)."""
    names = rendered()
    shadowed = [
        f"{package}.{name}.{name}"
        for package in names
        if is_module(package)
        for name in getattr(importlib.import_module(package), "__all__", ())
        if is_module(f"{package}.{name}")
        and f"{package}.{name}" not in names
        and not isinstance(getattr(importlib.import_module(package), name), ModuleType)
    ]
    assert len(shadowed) >= 3, shadowed  # virtual_time, structured, durable
    assert [name for name in shadowed if name not in names] == []


def test_the_api_reference_renders_the_low_levels_that_extending_calls_documented() -> None:
    said = page_text("docs/extending.md").split("documented low levels")[1].split("\n\n")[0]
    low_levels = re.findall(r"`(miniagents\.\w+\.lowlevel)`", said)
    assert low_levels == ["miniagents.promising.lowlevel", "miniagents.miniagents.lowlevel"]
    assert [name for name in low_levels if name not in rendered()] == []


def test_the_version_is_written_once() -> None:
    import miniagents

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject
    assert '\nversion = "' not in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", miniagents.__version__)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{miniagents.__version__}]" in changelog


def test_the_api_reference_shows_the_docstrings_rest_markup_as_markdown() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "rest_roles", ROOT / "docs" / "_hooks" / "rest_roles.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    docstring = (
        "See :class:`~miniagents.pipeline.ItemResult`, :func:`pipeline` and\n"
        ":meth:`the appender <miniagents.messages.MessageSequenceAppender.append>`.\n"
        "\n"
        ".. marble::\n"
        "    :alt: upper\n"
        "\n"
        "    --a--b--|\n"
        "    [ upper ]\n"
        "    --A--B--|\n"
        "\n"
        "Args:\n"
        "    x: A value.\n"
    )
    assert module.as_markdown(docstring) == (
        "See `ItemResult`, `pipeline` and\n"
        "`the appender`.\n"
        "\n"
        "```text\n"
        "--a--b--|\n"
        "[ upper ]\n"
        "--A--B--|\n"
        "```\n"
        "\n"
        "Args:\n"
        "    x: A value.\n"
    )


_COMMAND_LINE = re.compile(
    r"(?<![\w.-])miniagents\s+(chat|web|eval|run|studio(?: list| show| fork| diff)?)"
    r"((?: +(?:\"[^\"\n]*\"|[^\s`]+))*)"
)
"""A ``miniagents`` command written in a page, its words up to the line's end or a backtick."""
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@cache
def _flags_of(command: str) -> frozenset[str]:
    """The flags ``miniagents COMMAND --help`` lists."""
    from miniagents.cli import main

    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    return frozenset(_FLAG.findall(shown.getvalue()))


def test_every_flag_a_page_gives_a_command_is_one_of_its_flags() -> None:
    pages = [*PAGES, ROOT / "CHANGELOG.md"]  # (the site's changelog page includes it)
    unknown = [
        f"{page.relative_to(ROOT)}: miniagents {found[1]} {flag}"
        for page in pages
        for found in _COMMAND_LINE.finditer(page.read_text(encoding="utf-8"))
        for flag in _FLAG.findall(found[2])
        if flag not in _flags_of(found[1])
    ]
    # (was: the changelog gave `miniagents web --max-ended-task-bytes`, a flag renamed
    # --max-ended-run-bytes before any release)
    assert not unknown, f"Flags the commands do not take: {unknown}"


def test_the_console_agents_are_imported_from_where_the_chat_history_page_says() -> None:
    # (was: file_output_agent listed "From `miniagents.ext.console`", which has none)
    said = page_text("docs/chat-history.md").split("## Console agents")[1].split("\n\n")[1:3]
    home = re.findall(r"`(miniagents\.[\w.]+)`", said[0])
    assert home == ["miniagents.ext.console", "miniagents.ext.misc_agents"]
    for item in re.findall(r"^- `(\w+)`(.*)", said[1], flags=re.MULTILINE):
        name, rest = item
        other = re.match(r" \(from `(miniagents\.[\w.]+)`", rest)
        for module in [other[1]] if other else home:
            assert hasattr(importlib.import_module(module), name), (module, name)


def test_getting_started_says_which_keys_pick_the_chats_provider_and_where_history_goes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from miniagents.cli import main
    from miniagents.ext.history import markdown_history_agent

    with pytest.raises(SystemExit):
        main(["chat", "--help"])
    variables = set(re.findall(r"\b[A-Z]+_(?:API_KEY|AUTH_TOKEN)\b", capsys.readouterr().out))
    assert variables == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"}
    page = " ".join((ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8").split())
    choice = page[page.index("- `--provider openai|anthropic|offline`") :]
    choice = choice[: choice.index("- `--model`")]
    named = set(re.findall(r"`([A-Z]+_(?:API_KEY|AUTH_TOKEN))`", choice))
    assert named == variables  # (was: without ANTHROPIC_AUTH_TOKEN, which --help names)
    default = inspect.signature(markdown_history_agent.func).parameters["history_md_file"]
    assert default.default == "CHAT.md"
    assert "history_agent=markdown_history_agent)`" in page  # (was: never said)
    assert (
        "the history agent appends every message to `CHAT.md` in the current folder, unless "
        'you give it another file (`markdown_history_agent.fork(history_md_file="notes.md")`)'
    ) in page


def test_a_page_or_example_that_names_the_anthropic_key_names_its_bearer_token_too() -> None:
    # (was: docs/a2a.md and docs/streams.md named ANTHROPIC_API_KEY alone, though the
    # Anthropic agents take ANTHROPIC_AUTH_TOKEN as well; then eight examples' docstrings)
    missing = [
        page.relative_to(ROOT).as_posix()
        for page in [*PAGES, *EXAMPLES]
        if "ANTHROPIC_API_KEY" in (text := page.read_text(encoding="utf-8"))
        and "ANTHROPIC_AUTH_TOKEN" not in text
    ]
    assert not missing, f"pages and examples that name ANTHROPIC_API_KEY alone: {missing}"


def test_the_streams_page_makes_a_stream_over_an_async_iterable_as_the_constructors_take_it() -> (
    None
):
    # (was: `StreamedPromise(gen())`, which raises a TypeError: its resolver is required)
    from miniagents.messages import MessagePromise, MessageSequencePromise
    from miniagents.promising import StreamedPromise

    page = " ".join((ROOT / "docs" / "streams.md").read_text(encoding="utf-8").split())
    sentence = page[page.index("A stream over an async iterable (") :]
    sentence = sentence[: sentence.index(") does the same")]
    calls = re.findall(r"`([^`]+)`", sentence)
    assert len(calls) == 3, calls

    async def gen() -> Any:
        yield "a piece"

    names = {
        "gen": gen,
        "StreamedPromise": StreamedPromise,
        "MessagePromise": MessagePromise,
        "MessageSequencePromise": MessageSequencePromise,
    }
    for call in calls:
        eval(call, names)  # each as written: made, not started (nothing to run)
