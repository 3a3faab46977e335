"""The README's install, seen from a user's own project outside the clone.

After ``pip install -e .`` the package must be found by ``mypy --strict`` in the user's
project, with its types (setuptools' editable install hides it from type checkers behind
an import hook; hatchling's is a plain path entry). These tests check the install this
test run uses, from an empty folder, with nothing pointing at the clone; ``.ci/run``
also does the whole install into a fresh virtual environment (editable, then a copy).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
USER_PROGRAM = ROOT / "tests" / "user_program.py"


def installed_checkout() -> Path | None:
    """The folder ``miniagents`` was installed from with pip, if it was installed from one.

    (Build leftovers such as a ``miniagents.egg-info`` folder in the clone are skipped.)
    """
    for distribution in importlib.metadata.distributions(name="miniagents"):
        direct_url = distribution.read_text("direct_url.json")
        if direct_url is not None:
            url = urlsplit(json.loads(direct_url).get("url", ""))
            return Path(unquote(url.path)).resolve() if url.scheme == "file" else None
    return None


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """An empty folder outside the clone holding the user's program, ``app.py``."""
    if installed_checkout() != ROOT:
        pytest.skip(
            f"miniagents is not installed from this checkout ({ROOT}); install it as the "
            'README says (pip install -e ".[all,dev]") to check the install'
        )
    assert not tmp_path.resolve().is_relative_to(ROOT)
    shutil.copy(USER_PROGRAM, tmp_path / "app.py")
    return tmp_path


def run_in(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in ``project`` with nothing pointing at the clone."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "MYPYPATH"}}
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=env | {"PYTHONWARNINGS": "error"},
        capture_output=True,
        text=True,
        timeout=480,  # a cold mypy of the package, on a loaded machine
    )


SDKS_UNREAD = "anthropic.*,openai.*,ray.*,numpy.*,mcp.*"
"""The extensions' SDKs, which mypy does not read in the user's project: they were 90 % of
this cold check's files (a minute of CPU) and none of its point. ``app.py``'s own lines
still need the package's types (its ``assert_type``s, its needed ``type: ignore``), and the
package itself, with pydantic and reactivex, is still read cold, from the install; ``.ci/run``
checks the whole dependency tree of a fresh install (the core alone) as well."""


@pytest.mark.timeout(540)
def test_mypy_strict_finds_the_installed_package_from_a_users_project(user_project: Path) -> None:
    config = f"[mypy]\n\n[mypy-{SDKS_UNREAD}]\nfollow_imports = skip\n"
    (user_project / "mypy.ini").write_text(config, encoding="utf-8")
    result = run_in(
        user_project,
        *("-m", "mypy", "--strict", "--config-file", "mypy.ini", "--cache-dir", ".mypy_cache"),
        "app.py",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout


def test_the_users_program_runs_with_the_installed_package(user_project: Path) -> None:
    result = run_in(user_project, "app.py")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello there.\nHELLO THERE.!!\n"


def test_the_readme_says_what_the_pypi_package_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    installation = readme[readme.index("## Installation") : readme.index("## Command-line chat")]

    # PyPI's `miniagents` is the original project (github.com/teremterem/MiniAgents), whose
    # releases from 0.0.21 on have another API: not "a different project".
    assert "a different project" not in readme
    assert "original MiniAgents project" in installation
    assert "(https://github.com/teremterem/MiniAgents)" in installation
    assert "`miniagents.ext.llms`" in installation
