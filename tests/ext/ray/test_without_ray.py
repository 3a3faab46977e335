"""Ray is an optional extra: the package imports without it and says how to install it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.subprocesses import run_python

pytestmark = pytest.mark.ray

WITHOUT_RAY = """
import sys

sys.modules["ray"] = None  # as if Ray were not installed
import miniagents.ext.ray
from miniagents import InteractionContext, miniagent

@miniagent
async def agent(ctx: InteractionContext) -> None:
    pass

for use in (lambda: miniagents.ext.ray.ray_agent(agent),
            lambda: miniagents.ext.ray.ray_pipeline(agent, ["a"])):
    try:
        use()
    except ImportError as error:
        print(error)
"""


def test_the_package_imports_without_ray_and_using_it_gives_the_install_hint(
    tmp_path: Path,
) -> None:
    script = tmp_path / "without_ray.py"
    script.write_text(WITHOUT_RAY, encoding="utf-8")
    result = run_python([str(script)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    hint = 'Running agents on Ray needs Ray: pip install "miniagents[ray]"'
    assert [line.startswith(hint) for line in result.stdout.splitlines()] == [True, True]
