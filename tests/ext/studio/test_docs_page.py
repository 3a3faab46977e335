"""The commands of docs/studio.md run as written, on the example it names, offline.

tests/test_docs.py runs the page's python block; its shell blocks run here: each line of
the first (record, show, fork, diff, list) in a folder holding the example where the page
says it is, and the second (``miniagents studio``, which serves until stopped) with a free
port added, until its page and its API answer.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.subprocesses import ROOT, ProcessGroups, killed, run_python

PAGE = ROOT / "docs" / "studio.md"


def _shell_blocks() -> list[list[list[str]]]:
    """The page's ``sh`` blocks: each line, as the words a shell would make of it."""
    blocks = re.findall(r"```sh\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
    return [[shlex.split(line) for line in block.splitlines() if line.strip()] for block in blocks]


def _in_a_copy(tmp_path: Path) -> Path:
    """A folder with the example where the page's commands look for it (``examples/``)."""
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "research_team.py", tmp_path / "examples")
    return tmp_path


@pytest.mark.timeout(400)  # (six Pythons one after the other: slow on a loaded machine)
def test_the_pages_commands_record_show_fork_and_compare_the_example(tmp_path: Path) -> None:
    commands, _ = _shell_blocks()
    assert [words[:2] for words in commands] == [
        ["miniagents", "run"],
        ["miniagents", "studio"],
        ["miniagents", "studio"],
        ["miniagents", "studio"],
        ["miniagents", "studio"],
    ]
    folder = _in_a_copy(tmp_path)
    outputs = []
    for words in commands:
        done = run_python(["-m", *words], cwd=folder, timeout=240)  # (the `miniagents` command)
        assert done.returncode == 0, (words, done.stderr)
        outputs.append(done.stdout)
    ran, shown, forked, compared, listed = outputs
    assert ran == (
        "Our findings: Paris has about 2.1 million people. Rome has about 2.8 million people. "
        "No figures for Atlantis.\n"
    )
    assert (folder / "miniagents_runs.sqlite").is_file()  # where the page says it is
    assert re.search(r"agent EDITOR #1 .*\n    agent RESEARCHER #\d+", shown)
    assert re.search(r"call \d+ offline \(live\): calls lookup", shown)
    assert re.search(r"tool lookup #\d+ .* ! ToolCallError: No figures for Atlantis.", shown)
    assert "Our findings: Paris has about 3 million people. Rome has about 2.8" in forked
    assert re.search(r"~ \. RESEARCHER .* call \d+ replayed, call \d+ edited", forked)
    assert re.search(r"= \. RESEARCHER .* call \d+ replayed, call \d+ replayed", forked)
    assert re.search(r"~ \. WRITER .* call \d+ live\n +- 2\.1 \+ 3\n", forked)
    assert compared.strip() in forked  # the same two runs side by side
    first = listed.splitlines()[1].split()[0]
    assert [line.split()[1:] for line in listed.splitlines()] == [
        ["ok", "research_team.py", "fork", "of", first],
        ["ok", "research_team.py"],
    ]


@pytest.mark.timeout(300)
def test_the_pages_studio_command_serves_the_page_and_its_api(tmp_path: Path) -> None:
    _, (serve,) = _shell_blocks()
    assert serve == ["miniagents", "studio"]
    folder = _in_a_copy(tmp_path)
    recorded = run_python(["-m", "miniagents", "run", "examples/research_team.py"], cwd=folder)
    assert recorded.returncode == 0, recorded.stderr
    pipe = subprocess.PIPE
    with ProcessGroups() as started:  # (the server: ended with all it started, whatever happens)
        server = started.python(
            ["-m", *serve, "--port", "0"],  # (a free port: the page's is 8100)
            folder,
            stdout=pipe,
            stderr=pipe,
        )
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.fullmatch(
            r"The studio of \S+ is at (http://127\.0\.0\.1:\d+)/#token=(\S+)\n", line
        )
        assert found, (line, killed(server))
        address, token = found.groups()
        page = httpx.get(f"{address}/", timeout=30)
        assert page.status_code == 200
        assert "MiniAgents Studio" in page.text
        assert httpx.get(f"{address}/api/runs", timeout=30).status_code == 401
        runs = httpx.get(
            f"{address}/api/runs", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()
        assert [run["name"] for run in runs["runs"]] == ["research_team.py"]
