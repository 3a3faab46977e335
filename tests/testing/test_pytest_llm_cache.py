"""The pytest plugin of the call cache: a user's suite records its calls once, then replays them
with no key and no network, and fails clearly when a prompt changes."""

from __future__ import annotations

from pathlib import Path

from miniagents.testing import FakeLLMServer
from tests.subprocesses import run_python

CONFTEST = 'pytest_plugins = ["miniagents.testing.pytest_llm_cache"]\n'

TESTS = """
import pytest

from miniagents import MiniAgents
from miniagents.ext.llm.openai import openai_agent

agent = openai_agent.fork(model="gpt-4o-mini")


@pytest.mark.llm_cache
async def test_the_answer() -> None:
    async with MiniAgents():
        reply = await agent.inquire("PROMPT")
    assert str(reply[-1]) == "PROMPT"  # the fake server echoes


async def test_the_fixture(llm_cache) -> None:
    async with MiniAgents():
        await agent.inquire("another prompt")
    assert llm_cache.stats.hits + llm_cache.stats.recorded == 1
"""

INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


def _suite(folder: Path, prompt: str) -> None:
    (folder / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (folder / "test_app.py").write_text(TESTS.replace("PROMPT", prompt), encoding="utf-8")
    (folder / "pytest.ini").write_text(INI, encoding="utf-8")


def _pytest(folder: Path, *args: str, llm: FakeLLMServer | None = None) -> tuple[int, str]:
    done = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", *args], folder, llm=llm)
    return done.returncode, done.stdout + done.stderr


def test_a_suite_records_its_calls_then_replays_them_offline(tmp_path: Path) -> None:
    _suite(tmp_path, "Hello there")
    with FakeLLMServer() as llm:
        code, output = _pytest(tmp_path, "--llm-cache=record", llm=llm)
        assert code == 0, output
        assert len(llm.requests) == 2
    assert (tmp_path / "llm_calls.sqlite").exists()

    code, output = _pytest(tmp_path)  # replay only: no server, no key
    assert code == 0, output

    _suite(tmp_path, "Hello thera")  # a prompt changed
    code, output = _pytest(tmp_path)
    assert code == 1
    assert "LLMCacheMissError" in output
    assert '"text": "Hello there"' in output
    assert '"text": "Hello thera"' in output
    assert "--llm-cache=record" in output
    assert "1 failed, 1 passed" in output


def test_read_through_records_only_what_is_missing(tmp_path: Path) -> None:
    _suite(tmp_path, "first")
    with FakeLLMServer() as llm:
        assert _pytest(tmp_path, "--llm-cache=record", llm=llm)[0] == 0
        _suite(tmp_path, "second")
        code, output = _pytest(tmp_path, "--llm-cache=read_through", llm=llm)
        assert code == 0, output
        assert len(llm.requests) == 3  # two recorded, then only the changed one


MISUSED = """
import pytest


@pytest.mark.llm_cache("record")
def test_a_mode_given_without_its_keyword() -> None:
    pass


@pytest.mark.llm_cache(namspace="mine")
def test_a_misspelled_keyword() -> None:
    pass
"""


def test_a_marker_argument_it_does_not_take_fails_the_test_naming_it(tmp_path: Path) -> None:
    # (both were ignored: the test ran in replay mode, in the shared namespace)
    (tmp_path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (tmp_path / "test_app.py").write_text(MISUSED, encoding="utf-8")
    code, output = _pytest(tmp_path, "-p", "no:asyncio")
    assert code == 1, output
    assert "2 errors" in output
    assert "mode=, path= and namespace=, not 'record'" in output
    assert "mode=, path= and namespace=, not namspace=" in output
