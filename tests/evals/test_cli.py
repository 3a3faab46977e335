"""``miniagents eval``: a dataset file against an agent named by its import path.

The subprocess tests run ``python -m miniagents eval`` in a folder holding the user's
module (the agents) and the dataset; :func:`main` runs in the test's process for the rest.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from miniagents.cli import main as miniagents_main
from miniagents.evals import EvalReport
from miniagents.evals.cli import main
from miniagents.testing import run_with_virtual_time
from tests.subprocesses import run_python

AGENTS = """\
import asyncio

from miniagents import InteractionContext, miniagent
from miniagents.evals import CaseRun, evaluator


@miniagent
async def good(ctx: InteractionContext) -> None:
    question = str((await ctx.message_promises)[0])
    ctx.reply("Paris." if "France" in question else "Lima.")


@miniagent
async def worse(ctx: InteractionContext) -> None:
    ctx.reply("Paris.")


@evaluator
def short(run: CaseRun[str, str]) -> bool:
    return len(run.output) < 10


@evaluator
async def hangs(run: CaseRun[str, str]) -> bool:
    await asyncio.Event().wait()  # (a service that never answers)
    return True


not_an_agent = 42
"""

DATASET = """\
name: capitals
evaluators: [contains]
cases:
  - name: france
    input: Capital of France?
    expected: Paris
  - name: peru
    input: Capital of Peru?
    expected: Lima
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "my_agents.py").write_text(AGENTS, encoding="utf-8")
    (tmp_path / "capitals.yaml").write_text(DATASET, encoding="utf-8")
    return tmp_path


def test_a_run_prints_its_table_saves_its_json_and_a_later_run_compares(folder: Path) -> None:
    first = run_python(
        [
            "-m",
            "miniagents",
            "eval",
            "capitals.yaml",
            "--agent",
            "my_agents:good",
            "--json",
            "baseline.json",
            "--evaluator",
            "my_agents:short",
            "--evaluator",
            "exact",
            "--min-score",
            "contains=1",
        ],
        folder,
    )
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "GOOD: GOOD on capitals (2 case(s): 0 passed, 2 failed, 0 error(s))"
    assert lines[1].split()[:4] == ["case", "short", "exact", "contains"]
    assert lines[-1] == "The report is saved in baseline.json."
    baseline = EvalReport.read_json(folder / "baseline.json")
    assert baseline.mean("contains") == 1.0
    second = run_python(
        [
            "-m",
            "miniagents",
            "eval",
            "capitals.yaml",
            "--agent",
            "my_agents:worse",
            "--baseline",
            "baseline.json",
            "--name",
            "candidate",
            "--html",
            "page.html",
            "--max-drop",
            "0.1",
        ],
        folder,
    )
    assert second.returncode == 1
    assert "GOOD -> candidate (capitals: 2 case(s); 1 regressed" in second.stdout
    # issue 62, item 6: the baseline's evaluators that this run lacks read "-", warned of
    warned = [
        f"warning: the evaluator {name!r} scored the baseline only, not the candidate: its "
        "change is not known (shown as -). Run both with the same evaluators to compare it."
        for name in ("short", "exact")
    ]
    assert second.stderr.splitlines()[:2] == warned
    assert all(warning in second.stdout for warning in warned)
    assert second.stderr.split("\n", 2)[2].startswith(
        "The eval failed:\n- contains: the mean score dropped from 1.000 to 0.500"
    )
    assert "Regressed cases: peru (contains 1.00 -> 0.00)" in second.stderr
    page = (folder / "page.html").read_text(encoding="utf-8")
    assert "<title>GOOD → candidate: capitals</title>" in page
    assert page.count('<p class="warning">warning: the evaluator ') == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.yaml", "--agent", "my_agents:good"], "missing.yaml: cannot be read"),
        (["capitals.yaml", "--agent", "my_agents"], "give an import path MODULE:NAME"),
        (["capitals.yaml", "--agent", "nowhere:good"], "cannot import nowhere"),
        (["capitals.yaml", "--agent", "my_agents:bad"], "my_agents has no bad"),
        (["capitals.yaml", "--agent", "my_agents:not_an_agent"], "is int, not an agent"),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--evaluator", "nope"],
            "There is no evaluator 'nope'",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--evaluator", "my_agents:not_an_agent"],
            "int is not an evaluator",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--min-score", "contains"],
            "give NAME=VALUE",
        ),
        (  # (was: the whole run, then "There is no evaluator 'contans' in the report")
            ["capitals.yaml", "--agent", "my_agents:good", "--min-score", "contans=0.9"],
            "--min-score contans: no evaluator of this run is named 'contans' (its evaluators: "
            "contains); give one of those names",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--baseline", "none.json"],
            "--baseline: none.json: cannot be read",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--json", "no/such/dir/x.json"],
            "its folder does not exist",
        ),
        (  # (was: "aevaluate() needs repetitions ...", and so for each flag below)
            ["capitals.yaml", "--agent", "my_agents:good", "--repetitions", "0"],
            "--repetitions must be a whole number of at least 1; got 0. Give e.g. --repetitions 3.",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--concurrency", "0"],
            "--concurrency must be a whole number of at least 1; got 0. Give e.g. --concurrency 4.",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--retries", "-1"],
            "--retries must be a whole number of at least 0; got -1. Give e.g. --retries 2.",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--timeout", "nan"],
            "--timeout must be a positive number of seconds; got nan. Give e.g. --timeout 60",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--evaluator-timeout", "0"],
            "--evaluator-timeout must be a positive number of seconds; got 0.0.",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--max-cost", "-5"],
            "--max-cost must be a number of US dollars of at least 0; got -5.0. "
            "Give e.g. --max-cost 0.50",
        ),
        (["capitals.yaml", "--agent", "my_agents:good", "--json", "."], "--json .: is a folder"),
        (  # (was: "aevaluate() needs name to be a non-empty str ...", the function's words)
            ["capitals.yaml", "--agent", "my_agents:good", "--name", ""],
            "--name must be a non-empty str; got ''. Give e.g. --name baseline, or leave it "
            "out for the agent's alias.",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--min-score", "contains=nan"],
            "--min-score contains must be a number from 0 to 1; got nan. A mean score is from "
            "0 to 1: give e.g. --min-score contains=0.9.",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--max-drop", "-1"],
            "--max-drop must be a number from 0 to 1; got -1.0.",
        ),
        (["capitals.yaml", "--agent", "my_agents:good", "--html", "."], "--html .: is a folder"),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--max-text", "0"],
            "--max-text must be a whole number of at least 1; got 0. Give e.g. --max-text 600.",
        ),
        (
            ["capitals.yaml", "--agent", "my_agents:good", "--input-type", "my_agents:good"],
            "is not a Message subclass",
        ),
    ],
)
def test_a_run_that_cannot_start_exits_2_with_one_line_saying_why(
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    with pytest.raises(SystemExit) as exit:
        main(arguments)
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("miniagents eval: error: ")
    assert message in error
    assert error.endswith("(see miniagents eval --help)\n")
    assert error.count("\n") == 1


def test_the_command_line_lists_eval_and_hands_it_its_arguments(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        miniagents_main(["--help"])
    assert "eval      evaluate an agent on a dataset file" in capsys.readouterr().out
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    status = miniagents_main(
        [
            "eval",
            "capitals.yaml",
            "--agent",
            "my_agents:good",
            "--json",
            "out.json",
            "--no-progress",
            "--repetitions",
            "2",
            "--trees",
        ],
        prog="python -m miniagents",
    )
    assert status == 0
    capsys.readouterr()  # (the table)
    data = json.loads((folder / "out.json").read_text(encoding="utf-8"))
    assert data["repetitions"] == 2
    assert len(data["results"]) == 4
    assert data["results"][0]["tree"]["agent"] == "GOOD"
    with pytest.raises(SystemExit) as exit:
        miniagents_main(["eval", "--help"], prog="python -m miniagents")
    assert exit.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m miniagents eval")


def test_an_evaluator_past_the_evaluator_timeout_scores_its_runs_as_timed_out(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(asyncio, "run", run_with_virtual_time)  # (evaluate()'s loop)
    arguments = ["capitals.yaml", "--agent", "my_agents:good", "--no-progress"]
    arguments += ["--evaluator", "my_agents:hangs", "--evaluator-timeout", "60"]
    status = main([*arguments, "--json", "out.json", "--min-score", "contains=1"])
    assert status == 0
    capsys.readouterr()
    results = json.loads((folder / "out.json").read_text(encoding="utf-8"))["results"]
    assert [result["scores"]["hangs"]["error"] for result in results] == [
        "EvaluatorTimeoutError"
    ] * 2
    assert [result["scores"]["contains"]["passed"] for result in results] == [True, True]


def test_max_text_reaches_the_html_page(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    arguments = ["capitals.yaml", "--agent", "my_agents:good", "--no-progress", "--trees"]
    assert main([*arguments, "--html", "whole.html"]) == 0
    assert main([*arguments, "--html", "cut.html", "--max-text", "3"]) == 0
    capsys.readouterr()
    whole = (folder / "whole.html").read_text(encoding="utf-8")
    cut = (folder / "cut.html").read_text(encoding="utf-8")
    assert '<td class="output">Paris.' in whole
    assert '<td class="output">Par… [3 more characters]' in cut  # (was: no such flag)
    assert 'data-case="fra… [3 more characters]"' in cut  # (the case's name, cut too)
    assert re.search(r"<pre>agent GOOD \(\d+\.\d{3} \.\. ", whole)  # (its times: any)
    assert "<pre>age… [" in cut  # (each line of the reply tree, cut too)


def test_python_m_miniagents_cli_is_the_command_as_python_m_miniagents(tmp_path: Path) -> None:
    # (was: the module ran nothing and exited 0)
    ran = run_python(["-m", "miniagents.cli", "eval", "--help"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("usage: python -m miniagents.cli eval")
