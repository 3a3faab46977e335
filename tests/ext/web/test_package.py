"""``miniagents.ext.web`` without its extra: one error that says what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.subprocesses import run_python


@pytest.mark.parametrize("missing", ["starlette", "sse_starlette", "ag_ui"])
def test_importing_it_without_the_web_extra_names_the_install(tmp_path: Path, missing: str) -> None:
    code = (
        "import sys\n"
        f"sys.modules[{missing!r}] = None  # as if it were not installed\n"
        "import miniagents  # the core never needs it\n"
        "from miniagents.errors import MissingExtraError\n"
        "try:\n"
        "    import miniagents.ext.web\n"
        "except MissingExtraError as error:\n"
        "    print(isinstance(error, ImportError), error)\n"
    )
    result = run_python(["-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"True miniagents.ext.web needs {missing} (Starlette, sse-starlette and "
        'ag-ui-protocol). Install them with: pip install "miniagents[web]"\n'
    )
