"""Every README snippet and every example runs, offline, and prints what the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.llm_server import FakeLLMServer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def readme_snippets() -> list[tuple[str, str | None]]:
    """Each python block of the README, with the text block right after it, if any."""
    blocks = [(match.group(1), match.group(2), match.end()) for match in _BLOCK.finditer(README)]
    snippets: list[tuple[str, str | None]] = []
    for index, (language, code, end) in enumerate(blocks):
        if language != "python":
            continue
        expected = None
        if index + 1 < len(blocks):
            next_language, next_code, _ = blocks[index + 1]
            between = README[end : README.index("```" + next_language + "\n" + next_code, end)]
            if next_language == "text" and not between.strip():
                expected = next_code
        snippets.append((code, expected))
    return snippets


def run_python(
    args: list[str], cwd: Path, llm: FakeLLMServer | None = None
) -> subprocess.CompletedProcess[str]:
    """Run Python offline: no API key, or keys for the local fake LLM server ``llm``."""
    env = {**os.environ, "PYTHONWARNINGS": "error", "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        env.pop(name, None)
    if llm is not None:
        env |= {
            "OPENAI_API_KEY": "test",
            "OPENAI_BASE_URL": llm.openai_base_url,
            "ANTHROPIC_API_KEY": "test",
            "ANTHROPIC_BASE_URL": llm.anthropic_base_url,
        }
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


SNIPPETS = readme_snippets()


def test_the_readme_has_snippets_to_run() -> None:
    assert len(SNIPPETS) >= 8
    assert sum(expected is not None for _, expected in SNIPPETS) >= 8


@pytest.mark.parametrize(
    ("code", "expected"), SNIPPETS, ids=[f"snippet-{n}" for n in range(1, len(SNIPPETS) + 1)]
)
def test_a_readme_snippet_runs_and_prints_what_the_readme_says(
    code: str, expected: str | None, tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    result = run_python([str(script)], cwd=tmp_path, llm=fake_llm)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if expected is not None:
        assert result.stdout == expected


EXAMPLES = sorted((ROOT / "examples").rglob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_runs_offline(path: Path, tmp_path: Path) -> None:
    result = run_python([str(path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_the_demo_asks_openai_when_a_key_is_set(tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    fake_llm.reply(tokens=["Streams ", "replay."], times=2)
    result = run_python([str(ROOT / "examples" / "demo.py")], cwd=tmp_path, llm=fake_llm)
    assert result.returncode == 0, result.stderr
    assert "Streams replay.\n[style] 2 words" in result.stdout
    assert "['STREAMS REPLAY.']" in result.stdout
    first = fake_llm.requests[0].json
    assert isinstance(first, dict)
    assert first["model"] == "gpt-4o-mini"
    assert first["messages"][0] == {"role": "system", "content": "Answer in two sentences."}


def test_the_quick_start_demo_is_an_example_that_the_tests_run() -> None:
    assert "python examples/demo.py" in README
    assert ROOT / "examples" / "demo.py" in EXAMPLES
