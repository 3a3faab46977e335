"""``assert_eval``: a test fails when a score is below its threshold, or dropped from a baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from miniagents import InteractionContext, Message, MiniAgent, miniagent
from miniagents.evals import (
    Case,
    Contains,
    Dataset,
    EvalArgumentError,
    EvalReport,
    EvalReportError,
    EvalThresholdError,
    ExactMatch,
    aevaluate,
)
from miniagents.evals.assertions import UPDATE_BASELINES, assert_eval

DATASET = Dataset(
    [
        Case("France?", "Paris", name="france"),
        Case("Peru?", "Lima", name="peru"),
        Case("Chile?", "Santiago", name="chile"),
    ],
    name="capitals",
)


def _agent(answers: dict[str, str]) -> MiniAgent[..., Message]:
    @miniagent(alias="GEOGRAPHER")
    async def geographer(ctx: InteractionContext) -> None:
        ctx.reply(answers.get(str((await ctx.message_promises)[0]), "?"))

    return geographer


ALL = _agent({"France?": "Paris", "Peru?": "Lima", "Chile?": "Santiago"})
TWO = _agent({"France?": "Paris", "Chile?": "Santiago"})


async def _run(agent: MiniAgent[..., Message], name: str) -> EvalReport:
    return await aevaluate(agent, DATASET, [Contains(), ExactMatch()], name=name)


async def test_scores_at_their_thresholds_pass_and_below_fail_naming_each() -> None:
    report = await _run(TWO, "candidate")
    assert assert_eval(report, min_scores={"contains": 0.6}) is None
    with pytest.raises(EvalThresholdError) as failure:
        assert_eval(report, min_scores={"contains": 0.9, "exact": 0.7, "judge": 0.5})
    message = str(failure.value)
    assert message.startswith(
        "The eval 'candidate' of 'capitals' failed:\n"
        "- contains: the mean score is 0.667, below its threshold 0.9.\n"
        "- exact: the mean score is 0.667, below its threshold 0.7.\n"
        "- There is no evaluator 'judge' in the report (it has: contains, exact).\n"
    )
    assert "peru" in message  # the table follows
    assert isinstance(failure.value, AssertionError)


async def test_a_first_run_below_its_thresholds_fails_and_writes_no_baseline(
    tmp_path: Path,
) -> None:
    # (was: the failing run was written as the baseline, and later runs compared with it)
    baseline = tmp_path / "baselines" / "capitals.json"
    with pytest.raises(EvalThresholdError) as failure:
        assert_eval(await _run(TWO, "bad"), min_scores={"contains": 0.9}, baseline=baseline)
    assert not baseline.exists()
    assert f"The baseline {str(baseline)!r} was not written" in str(failure.value)
    assert "update_baseline=True" in str(failure.value)
    assert (
        assert_eval(await _run(ALL, "good"), min_scores={"contains": 0.9}, baseline=baseline)
        is None
    )
    assert EvalReport.read_json(baseline).name == "good"
    with pytest.raises(EvalThresholdError):  # (asked for: written, the thresholds still checked)
        assert_eval(
            await _run(TWO, "accepted"),
            min_scores={"contains": 0.9},
            baseline=baseline,
            update_baseline=True,
        )
    assert EvalReport.read_json(baseline).name == "accepted"


async def test_the_first_run_writes_the_baseline_then_a_drop_fails_with_the_regressions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UPDATE_BASELINES, raising=False)
    baseline = tmp_path / "baselines" / "capitals.json"
    assert assert_eval(await _run(ALL, "baseline"), baseline=baseline) is None
    assert EvalReport.read_json(baseline).name == "baseline"
    same = assert_eval(await _run(ALL, "again"), baseline=baseline)
    assert same is not None
    assert same.regressions == ()
    with pytest.raises(EvalThresholdError) as failure:
        assert_eval(await _run(TWO, "candidate"), baseline=baseline, max_drop=0.1)
    message = str(failure.value)
    assert (
        "- contains: the mean score dropped from 1.000 to 0.667 (-0.333, 95% CI [-1.768, "
        "+1.101]) against the baseline 'baseline', more than the 0.1 allowed."
    ) in message
    assert "- Regressed cases: peru (contains 1.00 -> 0.00; exact 1.00 -> 0.00)." in message
    assert "baseline -> candidate" in message  # the comparison's tables follow
    passed = assert_eval(await _run(TWO, "candidate"), baseline=baseline, max_drop=0.4)
    assert passed is not None
    assert [case.case for case in passed.regressions] == ["peru"]


async def test_updating_writes_the_baseline_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = tmp_path / "capitals.json"
    assert_eval(await _run(ALL, "first"), baseline=baseline)
    monkeypatch.setenv(UPDATE_BASELINES, "1")
    assert assert_eval(await _run(TWO, "accepted"), baseline=baseline) is None
    assert EvalReport.read_json(baseline).name == "accepted"
    monkeypatch.delenv(UPDATE_BASELINES)
    assert_eval(await _run(TWO, "after"), baseline=baseline)  # no drop from the new one
    assert_eval(await _run(ALL, "explicit"), baseline=baseline, update_baseline=True)
    assert EvalReport.read_json(baseline).name == "explicit"


async def test_a_baseline_given_as_a_report_and_a_broken_baseline_file(tmp_path: Path) -> None:
    stored = await _run(ALL, "baseline")
    with pytest.raises(EvalThresholdError, match=r"dropped from 1\.000 to 0\.667"):
        assert_eval(await _run(TWO, "candidate"), baseline=stored)
    broken = tmp_path / "broken.json"
    broken.write_text("{}", encoding="utf-8")
    with pytest.raises(EvalReportError, match=r"broken\.json: This is not an eval report"):
        assert_eval(stored, baseline=broken)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"min_scores": {"contains": float("nan")}}, r"min_scores\['contains'\] to be a number"),
        ({"min_scores": {"contains": 2}}, r"min_scores\['contains'\] to be a number from 0 to 1"),
        ({"min_scores": {"contains": "0.9"}}, r"min_scores\['contains'\] to be a number"),
        ({"max_drop": float("nan")}, r"max_drop to be a number from 0 to 1; got nan"),
        ({"max_drop": -0.1}, r"max_drop to be a number from 0 to 1; got -0.1"),
    ],
)
async def test_a_threshold_that_no_score_can_meet_or_fail_is_refused(
    tmp_path: Path, given: dict[str, object], message: str
) -> None:
    # (a NaN threshold passed every score: a gate that never failed)
    report = await _run(ALL, "candidate")
    baseline = tmp_path / "baseline.json"
    with pytest.raises(EvalArgumentError, match=message):
        assert_eval(report, baseline=baseline, **given)  # type: ignore[arg-type]
    assert not baseline.exists()  # refused before anything is written
