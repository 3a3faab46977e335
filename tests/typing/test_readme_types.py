"""Every python snippet of the README passes ``mypy --strict``, as a user's module would.

Each snippet is written as a module of its own (``readme_snippet_NN.py``, NN its index among
the README's python blocks, as in ``tests/test_docs.py``) and all of them are checked in one
mypy run, with the project's ``mypy.ini`` (strict, ``warn_unused_ignores``). A snippet that
fails says which block it is, so the fix goes where it belongs: in the snippet, or in the
library when its types are what is wrong (no casts in snippets to hide a typing gap).
"""

from __future__ import annotations

import re
from pathlib import Path

import mypy.api
import pytest

from tests.test_docs import SNIPPETS

ROOT = Path(__file__).resolve().parents[2]

_LOCATION = re.compile(r"^readme_snippet_(\d+)\.py:(\d+): (error|note): ", re.MULTILINE)


def test_every_readme_snippet_passes_mypy_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = []
    for index, snippet in enumerate(SNIPPETS):
        path = tmp_path / f"readme_snippet_{index:02d}.py"
        path.write_text(snippet.code, encoding="utf-8")
        files.append(path.name)
    monkeypatch.chdir(tmp_path)
    stdout, stderr, status = mypy.api.run(
        [
            "--config-file",
            str(ROOT / "mypy.ini"),
            "--strict",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            *files,
        ]
    )
    failing = sorted({int(found.group(1)) for found in _LOCATION.finditer(stdout)})
    shown = "\n\n".join(f"snippet {index}:\n{SNIPPETS[index].code}" for index in failing[:3])
    assert status == 0, (
        f"mypy --strict fails on README snippets {failing}:\n{stdout}{stderr}\n{shown}"
    )


def test_a_snippet_with_a_type_error_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is real: the reply of a plain agent has no ``model`` (only LLM replies do)."""
    wrong = tmp_path / "readme_snippet_99.py"
    wrong.write_text(
        "from miniagents import InteractionContext, miniagent\n\n\n"
        "@miniagent\n"
        "async def echo(ctx: InteractionContext) -> None:\n"
        "    ctx.reply(ctx.messages)\n\n\n"
        "async def main() -> None:\n"
        "    print((await echo.inquire('x'))[0].model)\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    stdout, _, status = mypy.api.run(
        ["--config-file", str(ROOT / "mypy.ini"), "--strict", wrong.name]
    )
    assert status == 1
    assert '"Message" has no attribute "model"' in stdout
