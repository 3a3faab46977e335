"""``pipeline(..., durable=...)`` in the core layer: its argument, and the error without DBOS.

The durable runs themselves are tested with DBOS in ``tests/ext/dbos/test_durable_kills.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from miniagents import InteractionContext, miniagent
from miniagents.errors import DurablePipelineUnavailableError, PipelineArgumentError
from miniagents.pipeline import pipeline
from miniagents.pipeline.durability import durable_pipeline_id
from tests.subprocesses import run_python


@miniagent
async def extract(ctx: InteractionContext) -> None:
    ctx.reply(ctx.messages)


@miniagent
async def summarize(ctx: InteractionContext) -> None:
    ctx.reply(ctx.messages)


def test_durable_true_names_the_pipeline_by_its_agents_aliases() -> None:
    assert durable_pipeline_id([extract]) == "EXTRACT"
    assert durable_pipeline_id([extract, summarize]) == "EXTRACT>SUMMARIZE"


@pytest.mark.parametrize("durable", ["", "  ", 1, None])
def test_durable_must_be_a_bool_or_a_pipeline_id(durable: object) -> None:
    with pytest.raises(PipelineArgumentError, match="durable to be True, False or a pipeline"):
        pipeline(extract, ["a"], durable=durable)  # type: ignore[arg-type]


def test_without_ext_dbos_durable_says_what_to_install_and_import(tmp_path: Path) -> None:
    program = (
        "from miniagents import miniagent\n"
        "from miniagents.errors import DurablePipelineUnavailableError\n"
        "from miniagents.pipeline import pipeline\n"
        "@miniagent\n"
        "async def echo(ctx) -> None:\n"
        "    ctx.reply(ctx.messages)\n"
        "pipeline(echo, ['a'])  # not durable: fine\n"
        "try:\n"
        "    pipeline(echo, ['a'], durable=True)\n"
        "except DurablePipelineUnavailableError as error:\n"
        "    print(error)\n"
    )
    done = run_python(["-c", program], tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'pip install "miniagents[dbos]"' in done.stdout
    assert "import miniagents.ext.dbos" in done.stdout
    assert issubclass(DurablePipelineUnavailableError, ImportError)
