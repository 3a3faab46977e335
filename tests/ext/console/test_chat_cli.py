"""The command line, ``python -m miniagents chat`` (and ``web``) and the ``miniagents`` command.

Each test runs it in a child process with the user's lines piped in: offline (no key set),
and with the real OpenAI and Anthropic SDKs talking to the fake provider server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from miniagents.ext.console import _terminal
from miniagents.ext.console.chat_cli import BROKEN_PIPE_STATUS, main
from miniagents.ext.console.web_options import SERVING_OPTIONS, option_flag
from miniagents.ext.history import ChatHistoryError
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.web import WebSettings
from miniagents.ext.web.serving import HEADERS_SECONDS, MAX_CONNECTIONS, server_config
from miniagents.ext.web.settings import LOCAL_HOSTS
from miniagents.testing import FakeLLMServer
from tests.ext.console.terminal import WAIT, read_until, run_with_stdin_closed
from tests.ext.web.serving import configs_run
from tests.subprocesses import (
    ProcessGroups,
    default_sigint_in_children,
    installed_checkout,
    python_env,
    run_python,
    start_python,
)

ROOT = Path(__file__).resolve().parents[3]
GETTING_STARTED = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
"""The page that documents the command (its section "Command-line chat")."""

OFFLINE = '(offline model "{model}", {count} message(s) in the prompt) You said: {text}'
"""The offline model's default reply."""


def chat(
    tmp_path: Path, *args: str, stdin: str = "", llm: FakeLLMServer | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m miniagents chat *args`` in ``tmp_path`` with ``stdin`` piped in."""
    return run_python(["-m", "miniagents", "chat", *args], tmp_path, stdin=stdin, llm=llm)


def assert_ended_well(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_offline_without_a_key_a_chat_streams_replies_until_exit(tmp_path: Path) -> None:
    result = chat(tmp_path, stdin="Hello!\n\nWhat did I say?\nexit\nnot read\n")

    assert_ended_well(result)
    assert result.stdout == (
        "Chatting with the offline model (set OPENAI_API_KEY to talk with OpenAI). "
        "Type exit or press Ctrl+D to end.\n"
        "USER: Hello!\n"
        f"ASSISTANT: {OFFLINE.format(model='offline', count=1, text='Hello!')}\n"
        "USER: What did I say?\n"  # the whole conversation goes to the model each turn
        f"ASSISTANT: {OFFLINE.format(model='offline', count=3, text='What did I say?')}\n"
        "USER: exit\n"
        "Bye!\n"
    )


def test_the_end_of_input_ends_the_chat(tmp_path: Path) -> None:
    result = chat(tmp_path, "--provider", "offline", "--model", "tiny", stdin="Hi\n")

    assert_ended_well(result)
    assert result.stdout == (
        "Chatting with the offline model. Type exit or press Ctrl+D to end.\n"
        f"USER: Hi\nASSISTANT: {OFFLINE.format(model='tiny', count=1, text='Hi')}\n"
        "USER: \nBye!\n"
    )


def test_a_closed_stdin_ends_the_chat(tmp_path: Path) -> None:
    result = run_with_stdin_closed(["-m", "miniagents", "chat", "--provider", "offline"], tmp_path)

    assert_ended_well(result)
    assert result.stdout.endswith("Type exit or press Ctrl+D to end.\nUSER: \nBye!\n")


def test_a_history_file_keeps_the_chat_and_resumes_it(tmp_path: Path) -> None:
    first = chat(tmp_path, "--history", "talk.md", stdin="My name is Ada.\n")
    second = chat(tmp_path, "--history", "talk.md", stdin="What is my name?\n")

    assert_ended_well(first)
    assert_ended_well(second)
    assert "Resuming" not in first.stdout
    assert first.stdout.endswith("The conversation is saved in talk.md.\nBye!\n")
    assert second.stdout.startswith(
        "Resuming the conversation in talk.md (2 messages so far).\nChatting with"
    )
    reply = OFFLINE.format(model="offline", count=3, text="What is my name?")
    assert f"ASSISTANT: {reply}\n" in second.stdout  # the model saw the earlier turn
    saved = load_history(tmp_path / "talk.md")
    assert [text for _, text in saved] == [
        "My name is Ada.",
        OFFLINE.format(model="offline", count=1, text="My name is Ada."),
        "What is my name?",
        reply,
    ]
    assert [role for role, _ in saved] == ["user", "assistant", "user", "assistant"]


def load_history(path: Path) -> list[tuple[str, str | None]]:
    messages = asyncio.run(ChatHistoryMD(path).load())
    return [(str(message.model_dump().get("role")), message.text) for message in messages]


@pytest.mark.parametrize("chosen", ["--provider openai", "environment"])
def test_openai_gets_the_model_the_system_prompt_and_the_conversation(
    tmp_path: Path, fake_llm: FakeLLMServer, chosen: str
) -> None:
    fake_llm.reply(tokens=["Hi ", "Ada."])
    fake_llm.reply(tokens=["You ", "are ", "Ada."])
    provider = chosen.split() if chosen != "environment" else []  # both keys set: OpenAI
    result = chat(
        tmp_path,
        *provider,
        "--model",
        "gpt-4o",
        "--system",
        "Be brief.",
        stdin="I am Ada.\nWho am I?\n",
        llm=fake_llm,
    )

    assert_ended_well(result)
    assert result.stdout == (
        "Chatting with OpenAI (gpt-4o). Type exit or press Ctrl+D to end.\n"
        "USER: I am Ada.\nASSISTANT: Hi Ada.\n"
        "USER: Who am I?\nASSISTANT: You are Ada.\n"
        "USER: \nBye!\n"
    )
    first, second = (request.json for request in fake_llm.requests)
    assert first["model"] == second["model"] == "gpt-4o"
    assert second["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "Who am I?"},
    ]


def test_anthropic_with_its_default_model_and_no_system_prompt(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply(tokens=["Hello."])
    result = chat(tmp_path, "--provider", "anthropic", "--system", "", stdin="Hi\n", llm=fake_llm)

    assert_ended_well(result)
    assert result.stdout.startswith("Chatting with Anthropic (claude-haiku-4-5).")
    assert "USER: Hi\nASSISTANT: Hello.\n" in result.stdout
    (request,) = fake_llm.requests
    assert request.json["model"] == "claude-haiku-4-5"
    assert "system" not in request.json
    assert request.json["messages"] == [{"role": "user", "content": "Hi"}]


def test_the_key_of_a_provider_the_chat_lacks_is_named_not_silently_ignored(
    tmp_path: Path,
) -> None:
    # (was: "Chatting with the offline model (set OPENAI_API_KEY to talk with OpenAI)", as
    # if GEMINI_API_KEY were not set, though llm_agent_from_env would choose Gemini)
    env = {"GEMINI_API_KEY": "secret", "GOOGLE_API_KEY": "", "GOOGLE_GENAI_USE_VERTEXAI": ""}
    result = run_python(["-m", "miniagents", "chat"], tmp_path, stdin="Hi\n", env=env)

    assert_ended_well(result)
    assert result.stdout.startswith(
        "Chatting with the offline model (the environment chooses gemini, which this chat "
        "does not talk with: set OPENAI_API_KEY or ANTHROPIC_API_KEY, or use "
        "llm_agent_from_env in a program of your own)."
    )


def test_an_anthropic_bearer_token_alone_chooses_anthropic(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply(tokens=["Hello."])
    token = {"ANTHROPIC_AUTH_TOKEN": "secret", "ANTHROPIC_BASE_URL": fake_llm.anthropic_base_url}
    result = run_python(["-m", "miniagents", "chat"], tmp_path, stdin="Hi\n", env=token)

    assert_ended_well(result)
    assert result.stdout.startswith("Chatting with Anthropic (claude-haiku-4-5).")
    (request,) = fake_llm.requests
    assert request.headers["authorization"] == "Bearer secret"


def test_a_refused_key_is_one_line_and_the_chat_goes_on(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    fake_llm.fail(401)
    fake_llm.reply(tokens=["Now ", "it ", "works."])
    result = chat(tmp_path, stdin="first\nsecond\nexit\n", llm=fake_llm)

    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "ERROR: OpenAI refused the API key: Error code: 401 - Incorrect API key provided.\n"
    )
    # no empty "ASSISTANT: " line before the error (on stderr)
    assert "USER: first\nUSER: second\nASSISTANT: Now it works.\n" in result.stdout
    assert result.stdout.endswith("USER: exit\nBye!\n")


def test_ctrl_c_mid_reply_ends_the_chat_with_the_reply_line_ended(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply(tokens=["Once ", "upon ", "a time."], hang_after=2)  # then it hangs
    pipe = subprocess.PIPE
    with ProcessGroups() as groups:  # (ended with all it started, whatever happens)
        process = groups.ended(  # (Ctrl+C works even if the test run ignores it)
            start_python(
                ["-m", "miniagents", "chat"],
                tmp_path,
                llm=fake_llm,
                text=False,
                stdin=pipe,
                stdout=pipe,
                stderr=pipe,
            )
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(b"Tell me a story.\n")
        process.stdin.flush()
        shown = bytearray()
        read_until(process.stdout.fileno(), shown, b"ASSISTANT: Once upon ")
        process.send_signal(signal.SIGINT)
        # stdin stays open until the chat has ended: only Ctrl+C can end it here
        assert process.wait(timeout=WAIT) == 0
        rest, errors = process.communicate(timeout=WAIT)

    assert errors == b""
    assert bytes(shown + rest).decode() == (
        "Chatting with OpenAI (gpt-4o-mini). Type exit or press Ctrl+D to end.\n"
        "USER: Tell me a story.\n"
        "ASSISTANT: Once upon \n"  # the cut reply ended its line before the goodbye
        "Bye!\n"
    )
    assert fake_llm.wait_disconnected(0)  # the HTTP stream was closed


def test_a_reader_that_goes_away_ends_the_chat_quietly(tmp_path: Path) -> None:
    pipe = subprocess.PIPE
    with ProcessGroups() as groups:  # (ended with all it started, whatever happens)
        process = groups.ended(
            start_python(
                ["-m", "miniagents", "chat", "--provider", "offline"],
                tmp_path,
                text=False,
                stdin=pipe,
                stdout=pipe,
                stderr=pipe,
            )
        )
        assert process.stdin is not None
        assert process.stdout is not None
        shown = bytearray()
        read_until(process.stdout.fileno(), shown, b"USER: ")
        process.stdout.close()  # as `miniagents chat | head -2` does once it has its lines
        process.stdin.write(b"Hello!\n")  # the chat's next output has no reader
        process.stdin.close()
        status = process.wait(timeout=WAIT)
        errors = process.stderr.read() if process.stderr is not None else b""

    assert status == BROKEN_PIPE_STATUS == 141
    assert errors == b""


BAD_ARGUMENTS = {
    "no command": ([], "error: the following arguments are required: COMMAND"),
    "unknown command": (["talk"], "error: argument COMMAND: invalid choice: 'talk'"),
    "unknown provider": (
        ["chat", "--provider", "gemini"],
        "chat: error: argument --provider: invalid choice: 'gemini'",
    ),
    "unknown option": (["chat", "--temperature", "1"], "error: unrecognized arguments"),
    "missing value": (["chat", "--history"], "chat: error: argument --history: expected one"),
    "empty model": (["chat", "--model", " "], "chat: error: --model is empty"),
    # (was: "--history : Cannot read the chat history file .: it is a directory")
    "empty history": (
        ["chat", "--provider", "offline", "--history", ""],
        "chat: error: --history is empty; give a file, e.g. --history CHAT.md",
    ),
    "no key": (
        ["chat", "--provider", "anthropic"],
        "chat: error: Anthropic needs an API key; set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN)",
    ),
    "no page": (
        ["web", "--provider", "offline", "--page", "nope.html"],
        "web: error: --page nope.html: there is no such file; give an HTML page",
    ),
    "port too high": (
        ["web", "--port", "99999"],
        "web: error: argument --port: 99999 is not a port; give one from 0 to 65535",
    ),
    "negative port": (["web", "--port", "-1"], "web: error: argument --port: -1 is not a port"),
    "empty token": (
        ["web", "--provider", "offline", "--token", ""],
        "web: error: the token (--token) is empty or has spaces",
    ),
    "short token": (
        ["web", "--provider", "offline", "--token", "x"],
        "web: error: the token (--token or MINIAGENTS_WEB_TOKEN) has 1 characters, too few",
    ),
    "no origin": (
        ["web", "--provider", "offline", "--allow-origin", "*"],
        "web: error: --allow-origin: allowed_origins holds '*', which is not an origin",
    ),
    "no live runs": (
        ["web", "--provider", "offline", "--max-live-runs", "0"],
        "web: error: --max-live-runs: WebSettings needs max_live_runs to be a whole number "
        "of at least 1; got 0.",
    ),
    "endless keep": (
        ["web", "--provider", "offline", "--keep-runs-for", "inf"],
        "web: error: --keep-runs-for: WebSettings needs keep_runs_for to be a finite number "
        "of seconds of at least 0; got inf.",
    ),
    "no body": (
        ["web", "--provider", "offline", "--max-body-bytes", "-1"],
        "web: error: --max-body-bytes: WebSettings needs max_body_bytes to be a whole number",
    ),
    "fractional count": (
        ["web", "--max-ended-runs", "2.5"],
        "web: error: argument --max-ended-runs: invalid int value: '2.5'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_bad_arguments_are_one_line_errors_with_exit_code_2(tmp_path: Path, case: str) -> None:
    args, expected = BAD_ARGUMENTS[case]
    result = run_python(["-m", "miniagents", *args], tmp_path, stdin="Hello!\n")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("python -m miniagents")
    assert expected in result.stderr
    assert result.stderr.endswith("--help)\n")
    assert result.stderr.count("\n") == 1, result.stderr


def test_a_provider_whose_sdk_is_missing_says_how_to_install_it(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    code = (
        "import sys\n"
        "sys.modules['anthropic'] = None  # as if it were not installed\n"
        "from miniagents.ext.console.chat_cli import main\n"
        "sys.exit(main(['chat', '--provider', 'anthropic']))\n"
    )
    result = run_python(["-c", code], tmp_path, stdin="Hello!\n", llm=fake_llm)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "miniagents chat: error: Anthropic needs its SDK, which is not installed; install it "
        'with pip install "miniagents[anthropic]" (see miniagents chat --help)\n'
    )
    assert fake_llm.requests == []


def test_a_file_that_is_not_a_chat_history_is_a_one_line_error_and_stays(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# My notes\n", encoding="utf-8")

    result = chat(tmp_path, "--history", "notes.md", stdin="Hello!\n")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "python -m miniagents chat: error: --history notes.md: notes.md, line 1: "
    )
    assert result.stderr.count("\n") == 1
    assert notes.read_text(encoding="utf-8") == "# My notes\n"


def test_a_history_file_in_a_missing_folder_is_a_one_line_error_before_the_chat(
    tmp_path: Path,
) -> None:
    result = chat(tmp_path, "--history", "missing/talk.md", stdin="my first message\n")

    assert result.returncode == 2
    assert result.stdout == ""  # refused before the user typed anything
    assert result.stderr == (
        "python -m miniagents chat: error: --history missing/talk.md: there is no folder "
        "missing; create it, or give a file in a folder that exists (see python -m "
        "miniagents chat --help)\n"
    )
    assert not (tmp_path / "missing").exists()


def test_help_names_every_option(tmp_path: Path) -> None:
    top = run_python(["-m", "miniagents", "--help"], tmp_path)
    sub = run_python(["-m", "miniagents", "chat", "--help"], tmp_path)

    assert top.returncode == sub.returncode == 0
    assert top.stdout.startswith("usage: python -m miniagents [-h] [--version] COMMAND")
    assert "chat      chat with an LLM in your terminal" in top.stdout
    for option in ("--provider {openai,anthropic,offline}", "--model", "--system", "--history"):
        assert option in sub.stdout
    assert "OPENAI_API_KEY" in sub.stdout


def test_the_miniagents_command_is_installed(tmp_path: Path) -> None:
    if installed_checkout() != ROOT:
        pytest.skip(f"miniagents is not installed from this checkout ({ROOT})")
    command = Path(sys.executable).parent / "miniagents"
    with default_sigint_in_children():
        result = subprocess.run(
            [str(command), "chat", "--provider", "offline"],
            cwd=tmp_path,
            env=python_env(),
            input="Hello!\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        bad = subprocess.run(
            [str(command), "chat", "--provider", "x"],
            cwd=tmp_path,
            env=python_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert_ended_well(result)
    assert f"ASSISTANT: {OFFLINE.format(model='offline', count=1, text='Hello!')}" in result.stdout
    assert bad.returncode == 2
    assert bad.stderr.startswith("miniagents chat: error: argument --provider")


def test_the_docs_show_what_the_command_prints(tmp_path: Path) -> None:
    section = GETTING_STARTED[GETTING_STARTED.index("## Command-line chat") :]
    shown = re.search(r"<!-- stdin\n(.*?)-->\s*```text\n(.*?)```", section, re.DOTALL)
    assert shown is not None
    result = chat(tmp_path, stdin=shown.group(1))

    assert_ended_well(result)
    assert result.stdout == shown.group(2)


def test_miniagents_web_on_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_python(["-m", "miniagents", "web", "--port", str(port)], tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"python -m miniagents web: error: cannot listen on 127.0.0.1:{port}: Address already "
        "in use; give another --port (or --host) (see python -m miniagents web --help)\n"
    )


def test_miniagents_web_on_a_host_that_is_no_address_names_host_in_its_error(
    tmp_path: Path,
) -> None:
    result = run_python(["-m", "miniagents", "web", "--host", "http://0.0.0.0"], tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    [said] = result.stderr.splitlines()
    assert said.startswith(  # (was: "--allow-host: allowed_hosts holds 'http://0.0.0.0'")
        "python -m miniagents web: error: --host 'http://0.0.0.0' is no host name nor address"
    )


def test_miniagents_web_serves_the_chat_page_with_the_offline_model(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port (the server binds it right after)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pipe = subprocess.PIPE
    with ProcessGroups() as groups:  # (ended with all it started, whatever happens)
        server = groups.ended(
            start_python(
                ["-m", "miniagents", "web", "--provider", "offline", "--port", str(port)],
                tmp_path,
                text=False,
                stdout=pipe,
                stderr=pipe,
            )
        )
        assert server.stdout is not None
        shown = bytearray()
        read_until(server.stdout.fileno(), shown, b"\n")
        announced = f"Chatting with the offline model at http://127.0.0.1:{port}/#token="
        assert shown.decode().startswith(announced)
        token = shown.decode().removeprefix(announced).strip()
        assert len(token) >= 32  # a new random one (no --token, no MINIAGENTS_WEB_TOKEN)
        deadline = time.monotonic() + WAIT
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as client:
            while True:  # the child binds its port after the line above: look until it does
                try:
                    page = client.get("/")
                    break
                except httpx2.ConnectError:
                    assert time.monotonic() < deadline, "the web chat did not start"
                    time.sleep(0.05)
            assert page.status_code == 200
            assert "<title>MiniAgents web chat</title>" in page.text
            assert "script-src 'sha256-" in page.headers["content-security-policy"]
            assert page.headers["x-content-type-options"] == "nosniff"
            question = {"id": "1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}
            chat = {"id": "c", "messages": [question]}
            stranger = client.post("/api/chat/", json=chat)
            cross_site = client.post(
                "/api/chat/",
                json=chat,
                headers={"authorization": f"Bearer {token}", "origin": "http://evil.example"},
            )
            answer = client.post(
                "/api/chat/", json=chat, headers={"authorization": f"Bearer {token}"}
            )
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=WAIT)
    assert stranger.status_code == 401  # the same protections as the apps
    assert cross_site.status_code == 403
    assert answer.headers["x-vercel-ai-ui-message-stream"] == "v1"
    deltas = [
        json.loads(line[6:])["delta"]
        for line in answer.text.splitlines()
        if line.startswith('data: {"type": "text-delta"')
    ]
    assert "".join(deltas) == OFFLINE.format(model="offline", count=1, text="Hi")
    assert server.returncode == 0, err.decode()


WEB_OPTIONS = [  # an option of the web command for each field of WebSettings
    *("--allow-host", "chat.example.com", "--allow-host", "*.lan"),
    *("--allow-origin", "https://front.example"),
    "--approval-edits",
    "--error-texts",
    *("--grace-period", "2.5", "--keep-runs-for", "60"),
    *("--max-live-runs", "7", "--max-live-runs-per-principal", "3", "--max-ended-runs", "0"),
    *("--max-live-run-bytes", "50000", "--max-ended-run-bytes", "100"),
    *("--max-streams", "9", "--max-streams-per-principal", "4", "--max-body-bytes", "5000"),
    *("--max-body-values", "300", "--max-id-chars", "64", "--body-seconds", "4.5"),
]
WEB_SETTINGS = WebSettings(  # what they set
    allowed_hosts=[*LOCAL_HOSTS, "chat.example.com", "*.lan"],  # (and --host, 127.0.0.1)
    allowed_origins=["https://front.example"],
    approval_edits=True,
    error_texts=True,
    grace_period=2.5,
    keep_runs_for=60.0,
    max_live_runs=7,
    max_live_runs_per_principal=3,
    max_live_run_bytes=50000,
    max_ended_runs=0,
    max_ended_run_bytes=100,
    max_streams=9,
    max_streams_per_principal=4,
    max_body_bytes=5000,
    max_body_values=300,
    max_id_chars=64,
    body_seconds=4.5,
)


def _served_chat_api(monkeypatch: pytest.MonkeyPatch, *args: str) -> Starlette:
    """The agent's app ``miniagents web *args`` would serve (its server is not run)."""
    served: list[Starlette] = []

    def run(self: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        served_app = getattr(self.config.app, "app", None)  # (the serving's, around it)
        assert isinstance(served_app, Starlette)
        # the apps' one serving, bounded (was: uvicorn's defaults, no connection limit and
        # no deadline for a request's headers)
        assert getattr(self.config.http, "most", None) == MAX_CONNECTIONS
        assert getattr(self.config.http, "deadline", None) == HEADERS_SECONDS
        served.append(served_app)
        self.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    assert main(["web", "--provider", "offline", "--port", "0", *args]) == 0
    (app,) = served
    (api,) = [route.app for route in app.routes if isinstance(route, Mount)]
    assert isinstance(api, Starlette)
    return api


def test_miniagents_web_gives_each_settings_option_to_the_app(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    given = [option for option in WEB_OPTIONS if option.startswith("--")]
    flags = {field.name: _flag_of(field.name) for field in _CHATS_FIELDS}
    assert sorted(set(given)) == sorted(flags.values())  # one option per field, each named so
    settings = _served_chat_api(monkeypatch, *WEB_OPTIONS).state.runs.settings
    assert settings == WEB_SETTINGS
    for name in ("grace_period", "keep_runs_for", "max_live_runs", "max_body_bytes"):
        assert type(getattr(settings, name)) is type(getattr(WEB_SETTINGS, name)), name
    assert "Chatting with the offline model" in capsys.readouterr().out

    defaults = _served_chat_api(monkeypatch).state.runs.settings  # none given: the defaults
    assert defaults == WebSettings()
    elsewhere = _served_chat_api(monkeypatch, "--host", "127.0.0.2").state.runs.settings
    assert elsewhere.allowed_hosts == (*LOCAL_HOSTS, "127.0.0.2")  # the host it listens on


def test_miniagents_web_gives_each_serving_option_to_the_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = configs_run(monkeypatch)
    served = ["web", "--provider", "offline", "--port", "0"]
    bounds = ["--max-connections", "7", "--headers-seconds", "3", "--trusted-proxy", "10.0.0.1"]
    assert main([*served, *bounds, "--linger-seconds", "0.5"]) == 0  # (was: unrecognized)
    (config,) = configs
    assert getattr(config.http, "most", None) == 7
    assert getattr(config.http, "deadline", None) == 3.0
    assert getattr(config.http, "linger", None) == 0.5
    assert isinstance(getattr(config.app, "app", None), ProxyHeadersMiddleware)
    with pytest.raises(SystemExit) as exited:
        main([*served, "--headers-seconds", "0"])
    assert exited.value.code == 2
    said = capsys.readouterr().err
    assert "web: error: --headers-seconds: server_config needs headers_seconds" in said
    assert len(configs) == 1  # (nothing served with a bound it cannot keep)


def test_miniagents_web_turns_the_per_address_bound_off_with_0_as_server_config_does_with_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs = configs_run(monkeypatch)
    served = ["web", "--provider", "offline", "--port", "0"]
    for given, bound in (([], 32), (["5"], 5), (["0"], None)):  # (was: 0 refused, no way off)
        option = ["--max-connections-per-address", *given] if given else []
        assert main([*served, *option]) == 0
        assert getattr(configs[-1].http, "most_per_address", "unset") == bound, given


def test_miniagents_web_prints_an_ipv6_host_in_brackets_in_its_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    try:  # (the URL's host is checked_host's, tested in tests/ext/web/test_settings.py)
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            pass
    except OSError:  # no IPv6 here: the command says it cannot listen there, in one line
        assert main(["web", "--provider", "offline", "--port", "0", "--host", "::1"]) == 2
        assert "cannot listen on ::1:0" in capsys.readouterr().err
        return
    api = _served_chat_api(monkeypatch, "--host", "::1")
    assert api.state.runs.settings.allowed_hosts == LOCAL_HOSTS  # ([::1] is one already)
    said = capsys.readouterr().out
    assert re.search(r"at http://\[::1\]:\d+/#token=", said), said


_CHATS_FIELDS = dataclasses.fields(WebSettings)
"""The fields of WebSettings: the chat page has a use for each (each has its option; was: all
but ``max_live_run_bytes``, refused as A2A's own, though it cuts the page's answers too)."""


def _flag_of(setting: str) -> str:
    """The option of the web command for a field of WebSettings (the lists' in the singular)."""
    singular = {"allowed_hosts": "--allow-host", "allowed_origins": "--allow-origin"}
    return singular.get(setting, f"--{setting.replace('_', '-')}")


def test_miniagents_web_help_says_each_settings_default_as_the_settings_have_it(
    tmp_path: Path,
) -> None:
    shown = run_python(["-m", "miniagents", "web", "--help"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    helped = " ".join(shown.stdout.split())  # (argparse wraps the lines)
    defaults = WebSettings()
    for field in _CHATS_FIELDS:
        flag, default = _flag_of(field.name), getattr(defaults, field.name)
        assert f"{flag} " in helped, flag
        if isinstance(default, bool):
            said = re.search(rf"{flag} .*?\(default: (on|off)", helped)
            assert said is not None, flag
            assert (said.group(1) == "on") is default, flag
        elif isinstance(default, (int, float)):
            said = re.search(rf"{flag} (?:SECONDS|N) .*?\(default: ([0-9.]+)", helped)
            assert said is not None, flag
            assert float(said.group(1)) == default, flag
    assert "--grace-period SECONDS" in helped  # (None: the app's own, 10 s, said in its help)
    assert "(default: 10;" in helped.split("--grace-period", 1)[1]
    serving = inspect.signature(server_config).parameters  # (the serving's options alike)
    for name in SERVING_OPTIONS:
        flag, default = option_flag(name), serving[name].default
        if isinstance(default, (int, float)):
            said = re.search(rf"{flag} (?:SECONDS|N) .*?\(default: ([0-9.]+)", helped)
            assert said is not None, flag
            assert float(said.group(1)) == default, flag


def test_a_history_file_that_cannot_be_written_mid_chat_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(self: ChatHistoryMD, message: object) -> None:
        raise ChatHistoryError(f"Cannot write to the chat history file {self}: the disk is full.")

    monkeypatch.setattr(ChatHistoryMD, "_append", full)  # (e.g. the disk filled up)
    reading, writing = os.pipe()
    os.write(writing, b"Hello!\n")
    os.close(writing)
    with open(reading, encoding="utf-8") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        monkeypatch.setattr(_terminal._console_input, "reader", None)
        status = main(["chat", "--provider", "offline", "--history", str(tmp_path / "t.md")])
    assert status == 1
    error = capsys.readouterr().err
    assert error.startswith("miniagents chat: error: Cannot write to the chat history file ")
    assert error.endswith("the disk is full.\n")
    assert error.count("\n") == 1  # (no traceback)
