"""The Python subprocesses the tests start: offline, strict, on this checkout.

They start with SIGINT at its default action, as from a terminal (Ctrl+C raises
``KeyboardInterrupt``), even when the test run ignores SIGINT (e.g. pytest started with
``&`` from a script): see :func:`default_sigint_in_children`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal, Protocol, TypeVar, overload
from urllib.parse import unquote, urlsplit

from miniagents.testing import FakeLLMServer

ROOT = Path(__file__).resolve().parent.parent


_RAY_DEPRECATIONS = (
    "ignore::DeprecationWarning:ray._common.utils",  # the dashboard: asyncio's get_event_loop
    "ignore:uvloop.install() is deprecated:DeprecationWarning",  # the workers (from Ray)
)
"""The warnings filters that let Ray's own processes off the deprecations they hit from
Python 3.12 on (only a newer Ray can mend them)."""


def python_env(llm: FakeLLMServer | None = None, **extra: str) -> dict[str, str]:
    """An environment for a child ``python``: no API key, warnings are errors.

    Every Python process the child starts inherits the setting, Ray's own too; from
    Python 3.12 on, Ray's processes hit two deprecations (of asyncio and of uvloop) that
    only a newer Ray can mend: they are let off those (see ``_RAY_DEPRECATIONS``).
    With ``llm``, the OpenAI and Anthropic SDKs of the child talk to that fake server (with
    test keys, and no proxy in between). ``extra`` variables are added last.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("OPENAI_", "ANTHROPIC_"))  # nothing may reach an LLM
    }
    python_path = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env |= {
        "PYTHONWARNINGS": ",".join(["error", *_RAY_DEPRECATIONS]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join(python_path),
    }
    if llm is not None:
        for name in list(env):
            if name.upper() in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}:
                del env[name]
        env |= {
            "OPENAI_BASE_URL": llm.openai_base_url,
            "OPENAI_API_KEY": "test",
            "ANTHROPIC_BASE_URL": llm.anthropic_base_url,
            "ANTHROPIC_API_KEY": "test",
        }
    return env | extra


def outputs_by_hash_seed(program: str, seeds: tuple[str, ...] = ("1", "2", "3", "4")) -> set[str]:
    """What ``python -c program`` prints (stripped), in a process of each hash seed of ``seeds``.

    One output when what the program prints does not depend on the process's hash seed
    (a set's order does: a key made from one is not one key in every process).
    """
    return {
        subprocess.run(
            [sys.executable, "-c", program],
            env=python_env(PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.strip()
        for seed in seeds
    }


def run_python(
    args: list[str],
    cwd: Path,
    *,
    stdin: str = "",
    llm: FakeLLMServer | None = None,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in ``cwd`` with ``stdin`` piped in (see :func:`python_env`).

    ``env`` holds variables added to the child's environment. A child that outlives
    ``timeout`` is killed with every process it started (see :func:`start_python`), and
    ``subprocess.TimeoutExpired`` is raised, with what the child had written so far.
    """
    pipe = subprocess.PIPE
    with start_python(args, cwd, llm=llm, env=env, stdin=pipe, stdout=pipe, stderr=pipe) as child:
        try:
            out, err = child.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            end_process_group(child)
            child.wait()
            raise
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


@overload
def start_python(
    args: list[str],
    cwd: Path,
    *,
    llm: FakeLLMServer | None = None,
    env: Mapping[str, str] | None = None,
    kind: type[subprocess.Popen[str]] = subprocess.Popen,
    python: Path | str = sys.executable,
    text: Literal[True] = True,
    **popen: Any,
) -> subprocess.Popen[str]: ...


@overload
def start_python(
    args: list[str],
    cwd: Path,
    *,
    llm: FakeLLMServer | None = None,
    env: Mapping[str, str] | None = None,
    kind: type[subprocess.Popen[bytes]] = subprocess.Popen,
    python: Path | str = sys.executable,
    text: Literal[False],
    **popen: Any,
) -> subprocess.Popen[bytes]: ...


def start_python(
    args: list[str],
    cwd: Path,
    *,
    llm: FakeLLMServer | None = None,
    env: Mapping[str, str] | None = None,
    kind: type[subprocess.Popen[Any]] = subprocess.Popen,
    python: Path | str = sys.executable,
    text: bool = True,
    **popen: Any,
) -> subprocess.Popen[Any]:
    """Start ``python *args`` in ``cwd`` (see :func:`python_env`), ``popen`` given on.

    Its pipes are in text mode, or bytes with ``text=False``.

    The child leads a process group of its own, which the processes it starts join (Ray's
    daemons among them): :func:`end_process_group` ends them all, where killing the child
    alone would leave them running with no parent (a timed-out Ray program did, eating CPU
    for the rest of the run). ``kind`` is the class of the child made (a ``Popen``);
    ``python`` its interpreter (this one, unless another environment's is given).
    """
    with default_sigint_in_children():
        return kind(
            [str(python), *args],
            cwd=cwd,
            env=python_env(llm, **(env or {})),
            text=text,
            process_group=0,
            **popen,
        )


def start_server(
    program: Path,
    *,
    llm: FakeLLMServer | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> tuple[subprocess.Popen[str], str]:
    """Start ``python program``, a server that prints ``PORT n`` once it listens on
    127.0.0.1 (see :func:`start_python`); the child (its output piped) and its URL.

    A child whose first line is another is waited for (at most ``timeout`` seconds), one
    that writes no line in ``timeout`` seconds is not: either fails the test with what it
    wrote to stderr, killed with every process it started (as on any other failure here).
    A thread reads its stderr as it comes (see :class:`StderrRead`): ``communicate`` gives
    it all.
    """
    pipe = subprocess.PIPE
    child = start_python(
        [str(program)], ROOT, llm=llm, env=env, kind=StderrRead, stdout=pipe, stderr=pipe
    )
    try:
        line = _first_line(child, timeout)
        if line is not None and line.startswith("PORT "):
            return child, f"http://127.0.0.1:{int(line.split()[1])}"
        if line is not None:  # (it ends, its error written: waited for, not reaped)
            ends_within(child.pid, timeout)
    except BaseException:
        killed(child, timeout)
        raise
    _, err = killed(child, timeout)
    said = repr(line) if line is not None else f"no line in {timeout} s"
    raise AssertionError(f"{program.name} did not start: {said}\n{err[-4000:]}")


def _first_line(child: subprocess.Popen[str], timeout: float) -> str | None:
    """The first line ``child`` writes to its stdout ("" if it ends first), or ``None`` if it
    writes none in ``timeout`` seconds (its group then killed, which ends the read)."""
    stdout = child.stdout
    assert stdout is not None
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.append(stdout.readline()), name=f"stdout of {child.pid}", daemon=True
    )
    reader.start()
    reader.join(timeout)
    if not lines:
        end_process_group(child)
        reader.join(timeout)
        return None
    return lines[0]


class StderrRead(subprocess.Popen[str]):
    """A child whose stderr (a pipe) a thread reads as it comes; :meth:`communicate` gives it.

    A pipe holds 64 KB: a server child whose stderr is read only at its end would block in
    the write that fills it, and stop serving (a server that logs as it goes).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stderr, self.stderr = self.stderr, None  # (``communicate`` reads stdout alone)
        assert stderr is not None, "StderrRead needs stderr=subprocess.PIPE"
        self._written: list[str] = []
        self._reader = threading.Thread(
            target=self._read, args=(stderr,), name=f"stderr of {self.pid}", daemon=True
        )
        self._reader.start()

    def _read(self, stderr: IO[str]) -> None:
        with stderr:
            self._written.extend(stderr)

    def communicate(
        self, input: str | None = None, timeout: float | None = None
    ) -> tuple[Any, Any]:
        """Like ``Popen.communicate``, stderr read by the thread (its end waited for too)."""
        out, _ = super().communicate(input, timeout)
        self._reader.join(timeout)
        if self._reader.is_alive():  # (a process the child started holds its stderr open)
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return out, "".join(self._written)


_Child = TypeVar("_Child", bound="subprocess.Popen[Any]")


class ProcessGroups(contextlib.ExitStack):
    """The children a test starts (see :func:`start_python`): at the exit, whatever happened,
    each is ended with every process it started (a test that failed before a child's end
    left them running for the rest of the run): see :func:`killed`."""

    def python(self, args: list[str], cwd: Path, **options: Any) -> subprocess.Popen[str]:
        """Start ``python *args`` in ``cwd``, as :func:`start_python` (the same ``options``)."""
        return self.ended(start_python(args, cwd, **options))

    def ended(self, child: _Child) -> _Child:
        """``child`` (a group's leader, text or bytes: see :func:`start_python`), killed at
        the exit with every process of its group (see :func:`killed`)."""
        self.callback(killed, child)
        return child


def killed(child: subprocess.Popen[Any], timeout: float = 120) -> tuple[Any, Any]:
    """Kill ``child`` with every process of its group (see :func:`end_process_group`); what
    it wrote (``communicate``: its pipes read to their ends, and closed; a stdin its user
    closed is left so)."""
    end_process_group(child)
    if child.stdin is not None and child.stdin.closed:
        child.stdin = None  # (``communicate`` would flush it: a ValueError)
    return child.communicate(timeout=timeout)


class _Leader(Protocol):
    """A child that leads a process group: a ``subprocess.Popen`` or an asyncio ``Process``."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...


def end_process_group(child: _Leader) -> None:
    """Kill ``child`` and every process of its group, if ``child`` has not been reaped.

    ``child`` leads its group (started with ``process_group=0``, as by :func:`start_python`,
    or by ``asyncio.create_subprocess_exec``). Until it is reaped (``returncode`` still
    ``None``), even ended, its pid is held, so the group of that id is its own. Once reaped,
    the id may be another process's (a new group, of another test), so nothing is signalled:
    whatever of its group outlived it is left alone (Linux keeps an id while a group of that
    id lives, but once that group has ended, it may be reused, and the two cases cannot be
    told apart). So end the group before the child is waited for (as :func:`killed` does),
    waiting without reaping if need be (:func:`ends_within`).
    """
    if child.returncode is not None:  # (reaped: its pid may be another's)
        return
    with contextlib.suppress(ProcessLookupError):  # (all of them ended already)
        os.killpg(child.pid, signal.SIGKILL)


def ends_within(pid: int, seconds: float) -> bool:
    """Whether the process ``pid`` (one a child started, say) ends within ``seconds``."""
    ended = os.pidfd_open(pid)  # (readable once that process has ended)
    try:
        return select.select([ended], [], [], seconds)[0] == [ended]
    finally:
        os.close(ended)


@contextlib.contextmanager
def default_sigint_in_children() -> Iterator[None]:
    """Processes started inside the block get SIGINT's default action, even if ours ignores it.

    An ignored signal stays ignored in a child, across ``exec``; a handled one is reset to
    its default. So while the block runs (in the main thread), a handler that does nothing
    stands in for "ignored": no different for this process, and a Python child installs
    its ``KeyboardInterrupt`` handler as at a terminal.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, _do_nothing)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _do_nothing(signum: int, frame: FrameType | None) -> None:
    return None


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
