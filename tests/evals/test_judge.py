"""The LLM judge: a rubric, a typed verdict, any provider (the offline model, the real SDKs)."""

from __future__ import annotations

import json

import pytest

from miniagents import InteractionContext, miniagent
from miniagents.errors import AgentArgumentError
from miniagents.evals import (
    Case,
    EvaluatorDefinitionError,
    JudgeVerdict,
    LLMJudge,
    Score,
    aevaluate,
)
from miniagents.evals.judge import JUDGE_INSTRUCTIONS
from miniagents.ext.llm import LLMCall
from miniagents.ext.llm.offline import offline_agent
from miniagents.testing import FakeLLMServer
from tests.ext.llm.providers import LLM, SDKClient, client, llm, server  # noqa: F401
from tests.fakes.fixtures import fake_llm  # noqa: F401

RUBRIC = "The answer names the capital of the country asked about."


@miniagent
async def geographer(ctx: InteractionContext) -> None:
    """Answers Paris, whatever the question."""
    ctx.reply("Paris.")


def _grade(call: LLMCall) -> str:
    """The offline judge: 1 if the answer to grade is the reference, else 0.2."""
    prompt = call.messages[-1].text or ""
    answer = prompt.rpartition("Answer to grade:\n")[2]
    reference = prompt.partition("Reference answer:\n")[2].partition("\n")[0]
    right = bool(reference) and reference in answer
    verdict = {"score": 1.0 if right else 0.2, "reason": "Right." if right else "Wrong city."}
    return json.dumps(verdict)


async def test_an_offline_judge_scores_each_case_with_its_reason() -> None:
    judge = LLMJudge(offline_agent.fork(alias="JUDGE", reply=_grade, token_delay=0), RUBRIC)
    cases = [Case("Capital of France?", "Paris", name="france"), Case("Capital of Peru?", "Lima")]
    report = await aevaluate(geographer, cases, [judge])
    france, peru = report.results
    assert france.scores["judge"] == Score(1.0, True, "Right.")
    assert peru.scores["judge"] == Score(0.2, False, "Wrong city.")  # below 0.5
    assert report.evaluation_usage.requests == 2
    assert report.usage.requests == 0  # the agent called no model


async def test_the_judges_prompt_holds_the_rubric_the_input_the_reference_and_the_answer() -> None:
    prompts: list[str] = []

    def record(call: LLMCall) -> str:
        prompts.append(call.messages[-1].text or "")
        return '{"score": 0.9, "reason": "Fine."}'

    judge = LLMJudge(offline_agent.fork(reply=record, token_delay=0), RUBRIC, threshold=0.95)
    report = await aevaluate(geographer, [Case("Capital of France?", "Paris")], [judge])
    assert report.results[0].scores["judge"] == Score(0.9, False, "Fine.")
    assert prompts == [
        f"{JUDGE_INSTRUCTIONS}\n\nRubric:\n{RUBRIC}\n\nInput:\nCapital of France?\n\n"
        "Reference answer:\nParis\n\nAnswer to grade:\nParis."
    ]
    blind = LLMJudge(
        offline_agent.fork(reply=record, token_delay=0),
        RUBRIC,
        include_input=False,
        include_expected=False,
    )
    await aevaluate(geographer, [Case("Capital of France?", "Paris")], [blind])
    assert "Input:" not in prompts[-1]
    assert "Reference answer:" not in prompts[-1]


async def test_a_verdict_that_does_not_validate_is_the_judges_error_not_the_cases() -> None:
    judge = LLMJudge(
        offline_agent.fork(reply='{"score": 7, "reason": "Great."}', token_delay=0),
        RUBRIC,
        output_retries=0,
    )
    report = await aevaluate(geographer, [Case("Capital of France?", "Paris")], [judge])
    result = report.results[0]
    assert result.error is None
    assert result.scores["judge"].error == "LLMOutputValidationError"
    assert not result.scores["judge"].passed


def test_a_judge_needs_a_rubric_an_llm_agent_and_a_threshold_from_0_to_1() -> None:
    with pytest.raises(EvaluatorDefinitionError, match="needs a rubric"):
        LLMJudge(offline_agent, "  ")
    with pytest.raises(EvaluatorDefinitionError, match="from 0 to 1"):
        LLMJudge(offline_agent, RUBRIC, threshold=1.5)
    with pytest.raises(AgentArgumentError):
        LLMJudge(geographer, RUBRIC)  # not an LLM agent: it takes no output_type


async def test_a_judge_of_each_provider_over_its_real_sdk(
    llm: LLM,  # noqa: F811
    client: SDKClient,  # noqa: F811
    server: FakeLLMServer,  # noqa: F811
) -> None:
    server.reply(['{"score": 0.75, ', '"reason": "Names Paris."}'], usage=(120, 12))
    judge = LLMJudge(llm.agent.fork(model=llm.model, async_client=client), RUBRIC)
    report = await aevaluate(geographer, [Case("Capital of France?", "Paris")], [judge])
    assert report.results[0].scores["judge"] == Score(0.75, True, "Names Paris.")
    (request,) = server.requests
    sent = json.dumps(request.json)
    for part in (RUBRIC, "Capital of France?", "Reference answer:", "Answer to grade:"):
        assert part in sent
    assert "score" in sent  # the verdict's schema went with the request (structured output)
    assert report.evaluation_usage.input_tokens == 120
    assert JudgeVerdict.model_json_schema()["required"] == ["score", "reason"]


async def test_the_judge_and_the_report_are_given_an_expected_messages_fields() -> None:
    from miniagents import Message

    class Capital(Message):
        city: str = ""
        country: str = ""

    prompts: list[str] = []

    def record(call: LLMCall) -> str:
        prompts.append(call.messages[-1].text or "")
        return '{"score": 1, "reason": "Fine."}'

    expected = Capital(text="Paris", city="Paris", country="France")
    judge = LLMJudge(offline_agent.fork(reply=record, token_delay=0), RUBRIC)
    report = await aevaluate(geographer, [Case("Capital of France?", expected)], [judge])
    shown = '{"text":"Paris","city":"Paris","country":"France"}'  # (was: "Paris" alone)
    assert f"Reference answer:\n{shown}\n" in prompts[0]
    assert report.results[0].expected == shown
