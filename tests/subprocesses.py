"""The Python subprocesses the tests start: offline, strict, on this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.llm_server import FakeLLMServer

ROOT = Path(__file__).resolve().parent.parent


def python_env(llm: FakeLLMServer | None = None, **extra: str) -> dict[str, str]:
    """An environment for a child ``python``: no API key, warnings are errors.

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
        "PYTHONWARNINGS": "error",
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


def run_python(
    args: list[str],
    cwd: Path,
    *,
    stdin: str = "",
    llm: FakeLLMServer | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in ``cwd`` with ``stdin`` piped in (see :func:`python_env`)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=python_env(llm),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
