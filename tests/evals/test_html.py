"""The HTML pages of a run and of a comparison, opened in a real headless Chromium.

Chromium is Debian's ``chromium`` (``.ci/run`` installs it); without it the tests fail.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Page

from miniagents import InteractionContext, miniagent
from miniagents.evals import (
    Case,
    CaseRun,
    Contains,
    Dataset,
    EvalArgumentError,
    EvalReport,
    ExactMatch,
    Score,
    aevaluate,
    evaluator,
)
from miniagents.evals.compare import compare
from miniagents.evals.html import MAX_TEXT, comparison_html, report_html, write_html
from miniagents.evals.report import CaseResult
from miniagents.evals.tree import AgentStep, ModelCall, ReplyTree
from miniagents.testing import virtual_time
from tests.ext.web.browser import chromium_page, wait_for

DATASET = Dataset(
    [
        Case("Capital of France?", "Paris", name="france"),
        Case("Capital of Peru?", "Lima", name="peru"),
        Case("Capital of <b>Chile</b>?", "Santiago", name="chile"),
        Case("Capital of Mars?", "none", name="mars"),
    ],
    name="capitals",
)


@miniagent
async def before(ctx: InteractionContext) -> None:
    question = str((await ctx.message_promises)[0])
    if "Mars" in question:
        raise LookupError("no such planet")
    await asyncio.sleep(1 if "France" in question else 2)
    answers = {"France": "Paris", "Peru": "Lima"}
    ctx.reply(next((a for q, a in answers.items() if q in question), "<script>x()</script>"))


@miniagent
async def after(ctx: InteractionContext) -> None:
    question = str((await ctx.message_promises)[0])
    await asyncio.sleep(3)
    ctx.reply("Paris" if "France" in question else "Santiago" if "Chile" in question else "?")


async def _reports() -> tuple[EvalReport, EvalReport]:
    """The runs of the two agents, on a virtual clock (then the browser runs in real time)."""
    evaluators = [Contains(), ExactMatch()]
    with virtual_time():
        baseline = await aevaluate(before, DATASET, evaluators, name="baseline", keep_trees=True)
        candidate = await aevaluate(after, DATASET, evaluators, name="candidate")
    return baseline, candidate


async def _look(browser: Page, file: Path) -> None:
    await browser.goto(file.as_uri())
    await wait_for(browser, "document.readyState === 'complete' && !!document.body")


_NOTHING_LOADED = """
    performance.getEntriesByType('resource').length === 0
    && document.querySelectorAll('script, link, img, iframe, [src]').length === 0
"""


async def test_a_runs_page_shows_its_scores_distributions_and_cases(
    tmp_path: Path,
) -> None:
    baseline, _ = await _reports()
    page = write_html(baseline, tmp_path / "baseline.html")
    async with chromium_page() as browser:
        await _look(browser, page)
        assert await browser.evaluate("document.title") == "baseline: capitals"
        assert await browser.evaluate(_NOTHING_LOADED) is True
        bars = await browser.evaluate(
            "[...document.querySelectorAll('#scores rect.bar')].map(bar => "
            "[bar.dataset.evaluator, bar.dataset.value, +bar.getAttribute('width'), "
            "bar.getBoundingClientRect().width > 0 || bar.dataset.value === '0.00'])"
        )
        assert bars == [
            ["contains", "0.50", 180, True],  # france and peru: 2 of 4 (mars failed: 0)
            ["exact", "0.50", 180, True],
        ]
        counts = await browser.evaluate(
            "[...document.querySelectorAll('#durations rect.hist')]"
            ".reduce((sum, bar) => sum + +bar.dataset.count, 0)"
        )
        assert counts == 3  # the runs that replied
        rows = await browser.evaluate(
            "[...document.querySelectorAll('#cases tbody tr')].map(row => "
            "[row.dataset.case, row.className])"
        )
        assert rows == [
            ["france", "run passed"],
            ["peru", "run passed"],
            ["chile", "run failed"],
            ["mars", "run failed"],
        ]
        shown = await browser.evaluate(
            "document.querySelector('tr[data-case=chile] td.output').textContent"
        )
        assert shown.startswith("<script>x()</script>")  # shown as text, never run
        assert "reply tree" in shown
        error = await browser.evaluate(
            "document.querySelector('tr[data-case=mars] td.output').textContent"
        )
        assert error == "no such planet"
        await browser.screenshot(path=str(tmp_path / "baseline.png"))
    assert (tmp_path / "baseline.png").stat().st_size > 10_000


async def test_a_comparisons_page_lists_the_regressions_first_with_both_outputs(
    tmp_path: Path,
) -> None:
    baseline, candidate = await _reports()
    comparison = compare(baseline, candidate)
    page = write_html(comparison, tmp_path / "comparison.html")
    async with chromium_page() as browser:
        await _look(browser, page)
        assert await browser.evaluate("document.title") == "baseline → candidate: capitals"
        assert await browser.evaluate(_NOTHING_LOADED) is True
        changed = await browser.evaluate(
            "[...document.querySelectorAll('#changed tbody tr')].map(row => "
            "[row.dataset.case, row.className, row.cells[3].textContent, "
            "row.cells[4].textContent])"
        )
        assert changed == [
            ["peru", "regressed", "Lima", "?"],
            ["chile", "improved", "<script>x()</script>", "Santiago"],
            ["mars", "improved", "error: LookupError: no such planet", "?"],
        ]
        dots = await browser.evaluate(
            "[...document.querySelectorAll('#changes circle.dot')].map(dot => "
            "[dot.dataset.evaluator, dot.dataset.delta, dot.getAttribute('class')])"
        )
        assert dots == [["contains", "+0.000", "dot same"], ["exact", "+0.000", "dot same"]]
        durations = await browser.evaluate(
            "['baseline', 'candidate'].map(kind => [...document.querySelectorAll("
            "'#durations rect.hist.' + kind)].reduce((sum, bar) => sum + +bar.dataset.count, 0))"
        )
        assert durations == [3, 4]
        figures = await browser.evaluate(
            "[...document.querySelectorAll('#figures tbody tr')].map(row => row.dataset.figure)"
        )
        assert figures == ["contains", "exact", "duration (s)", "first token (s)", "cost ($/case)"]


def test_the_pages_are_html_text() -> None:
    report = EvalReport("r", "A", "d", ())
    assert report_html(report).startswith("<!DOCTYPE html>")
    assert "no s measured" in report_html(report)
    with pytest.raises(EvalArgumentError, match="share no case"):
        comparison_html(compare(report, report))


@miniagent
async def terse(ctx: InteractionContext) -> None:
    question = str((await ctx.message_promises)[0])
    ctx.reply("Paris" if "France" in question else "Lima" if "Peru" in question else "none")


@miniagent
async def verbose(ctx: InteractionContext) -> None:
    question = str((await ctx.message_promises)[0])
    if "Mars" in question:
        raise LookupError("no such planet: " + "m" * 1_000_000)
    ctx.reply("Paris " + "p" * 1_000_000 if "France" in question else "Lima")


@evaluator
def loud(run: CaseRun[str, str]) -> bool:
    raise ValueError("r" * 1_000_000)


async def test_a_page_shows_each_output_error_and_reason_cut_saying_how_much(
    tmp_path: Path,
) -> None:
    cases = [DATASET.cases[0], DATASET.cases[1], DATASET.cases[3]]
    report = await aevaluate(verbose, cases, [ExactMatch(), loud])
    france = report.results[0]
    assert len(france.output or "") == 1_000_006  # kept whole
    assert len(report.to_json()) > 3_000_000  # (the stored report too)
    page = write_html(report, tmp_path / "report.html").read_text(encoding="utf-8")
    assert len(page) < 20_000
    assert "Paris " + "p" * (MAX_TEXT - 6) + "… [999,406 more characters]" in page
    assert "no such planet: " + "m" * (MAX_TEXT - 16) + "… [999,416 more characters]" in page
    assert "r" * MAX_TEXT + "… [999,400 more characters]" in page  # the score's reason
    assert "Lima</td>" in page  # a short output is whole
    small = report_html(report, max_text=10)
    assert "Paris pppp… [999,996 more characters]" in small
    assert len(small) < len(page) - 3 * (MAX_TEXT - 10)
    baseline = await aevaluate(terse, cases, [ExactMatch()])
    comparison = compare(baseline, await aevaluate(verbose, cases, [ExactMatch()]))
    assert [case.status for case in comparison.cases] == ["regressed", "regressed", "unchanged"]
    compared = comparison_html(comparison)
    assert len(compared) < 20_000
    assert "p" * (MAX_TEXT - 6) + "… [999,406 more characters]" in compared
    assert "m" * (MAX_TEXT - 16) + "… [999,416 more characters]" in compared
    with pytest.raises(EvalArgumentError, match=r"write_html\(\) needs max_text to be a whole"):
        write_html(report, tmp_path / "no.html", max_text=0)
    assert not (tmp_path / "no.html").exists()


async def test_a_report_or_a_page_written_to_a_folder_is_refused_naming_a_file_in_it(
    tmp_path: Path,
) -> None:
    """(was: IsADirectoryError: [Errno 21] Is a directory: '...', and for None Path's
    TypeError)."""
    report = await aevaluate(terse, [DATASET.cases[0]], [ExactMatch()])
    with pytest.raises(EvalArgumentError) as info:
        write_html(report, tmp_path)
    assert str(info.value) == (
        f"write_html() writes a file, but {str(tmp_path)!r} is a folder: give a file in it, "
        f"e.g. {str(tmp_path / 'report.html')!r}."
    )
    with pytest.raises(EvalArgumentError, match=r"^write_json\(\) writes a file, but .* folder"):
        report.write_json(str(tmp_path))
    with pytest.raises(EvalArgumentError, match=r"^write_json\(\) needs path to be a path"):
        report.write_json(None)  # type: ignore[arg-type]
    assert EvalReport.read_json(report.write_json(tmp_path / "r.json")) == report


def test_a_page_cuts_a_long_reply_tree_metadata_values_and_case_names() -> None:
    calls = tuple(ModelCall(order, "m", "offline", 0.0) for order in range(1, 100_000))
    tree = ReplyTree(AgentStep(0, "BIG", 0.0, children=calls))  # (100,000 steps)
    name = "c" * 1_000_000
    result = CaseResult(name, 0, "q", None, "a", tree=tree)
    report = EvalReport("r", "A", "d", (result,), metadata={"commit": "x" * 5_000_000})
    page = report_html(report)
    assert len(page) < 80_000, len(page)  # (was: 5 MB of metadata, the whole tree, the name)
    shown = page.split("<pre>", 1)[1].split("</pre>", 1)[0].splitlines()
    assert len(shown) == MAX_TEXT + 1
    assert shown[0] == "agent BIG (0.000 .. ? s)"
    assert shown[-2] == "  model m [offline] (0.000 .. ? s)"
    assert shown[-1] == f"… [{100_000 - MAX_TEXT:,} more nodes]"
    assert "x" * MAX_TEXT + "… [4,999,400 more characters]</td>" in page
    assert f'data-case="{"c" * MAX_TEXT}… [999,400 more characters]"' in page
    small = report_html(report, max_text=2)
    lines = "ag… [22 more characters]\n  … [32 more characters]\n… [99,998 more nodes]"
    assert f"<pre>{lines}</pre>" in small
    compared = comparison_html(compare(report, report))
    assert len(compared) < 20_000, len(compared)
    assert f"<td>{'c' * MAX_TEXT}… [999,400 more characters]</td>" in compared


def test_a_page_cuts_the_names_of_its_run_agent_dataset_and_evaluators_and_a_scores_error() -> None:
    big = "n" * 1_000_000
    cut = "n" * MAX_TEXT + "… [999,400 more characters]"
    failed = Score(0.0, False, error="e" * 1_000_000)
    result = CaseResult("c", 0, "q", None, "a", scores={big: failed})
    report = EvalReport(big, big, big, (result,), evaluators=(big,))
    page = report_html(report)
    assert len(page) < 40_000, len(page)  # (was: 14 MB: the names in every place, the error)
    assert f"<title>{cut}: {cut}</title>" in page
    assert f"<h1>{cut}: {cut} on {cut}</h1>" in page
    assert f'data-evaluator="{cut}"' in page
    assert "! " + "e" * MAX_TEXT + "… [999,400 more characters]</td>" in page
    other = EvalReport("r", "A", "d", (CaseResult("c", 0, "q", None, "b"),), evaluators=(big,))
    compared = comparison_html(compare(report, other))
    assert len(compared) < 40_000, len(compared)
    assert f"<h1>{cut} → r on d</h1>" in compared
    assert f'data-evaluator="{cut}"' in compared
