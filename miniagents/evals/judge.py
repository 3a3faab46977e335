"""An LLM as the judge: a rubric, and a model that answers with a typed score and its reason.

The judge is an agent of this library: any LLM agent (``openai_agent``, ``anthropic_agent``,
``offline_agent``, your own provider's), asked for a :class:`JudgeVerdict` through the
structured output of :mod:`miniagents.ext.llm.structured` (validated, retried with the
errors)::

    judge = LLMJudge(
        openai_agent.fork(model="gpt-4o-mini", temperature=0),
        "The answer names the capital and nothing false.",
    )
    # its prompt: the rubric, the case's input, the expected answer, the output
    # its answer: JudgeVerdict(score=0.9, reason="Names Paris; no false claim.")

The judge's calls run after the case's agent has replied, outside the case's reply tree
(they are not the agent's), charged to the run's budget; the report counts what they
used apart (``EvalReport.evaluation_usage``).
"""

from __future__ import annotations

from pydantic import Field

from miniagents.arguments import check_number, check_text
from miniagents.evals.case import CaseRun, Evaluator, Score
from miniagents.evals.errors import EvaluatorDefinitionError
from miniagents.evals.matching import expected_text
from miniagents.ext.llm.structured import structured
from miniagents.messages import Message
from miniagents.miniagents import MiniAgent

__all__ = ["JUDGE_INSTRUCTIONS", "JudgeVerdict", "LLMJudge", "judge_prompt"]

JUDGE_INSTRUCTIONS = (
    "You grade the answer of an AI agent against a rubric. Read the rubric, the input the "
    "agent was given, the reference answer if there is one, and the agent's answer. Give a "
    "score from 0 (the answer fails the rubric) to 1 (it meets the rubric fully), and the "
    "reason for it in one or two sentences."
)
"""What the judge is told to do, before the rubric (the start of its prompt)."""


class JudgeVerdict(Message):
    """The judge's answer: a score from 0 to 1 and its reason."""

    score: float = Field(ge=0, le=1, description="From 0 (fails the rubric) to 1 (meets it).")
    reason: str = Field(description="Why, in one or two sentences.")


def judge_prompt(
    rubric: str, run: CaseRun[object, object], *, input: bool = True, expected: bool = True
) -> str:
    """The prompt the judge is given for ``run`` (see :data:`JUDGE_INSTRUCTIONS`)."""
    parts = [JUDGE_INSTRUCTIONS, f"Rubric:\n{rubric}"]
    if input:
        parts.append(f"Input:\n{run.input}")
    reference = expected_text(run.expected) if expected else None
    if reference is not None:
        parts.append(f"Reference answer:\n{reference}")
    parts.append(f"Answer to grade:\n{run.output}")
    return "\n\n".join(parts)


class LLMJudge(Evaluator[object, object]):
    """An LLM agent scores the output against a rubric (see the module docstring).

    Args:
        agent: The judge: an LLM agent, forked with its model and options (e.g.
            ``temperature=0``).
        rubric: What a good answer is.
        threshold: The score from which it passes.
        name: The evaluator's name in the reports.
        include_input: Show the judge the case's input.
        include_expected: Show the judge the case's expected answer, as a reference.
        output_retries: How many times a verdict that does not validate goes back to the
            judge with the errors (default: the agent's own, 1).

    Raises:
        EvaluatorDefinitionError: for an empty rubric, or a threshold not from 0 to 1.
        AgentArgumentError: if ``agent`` is not an LLM agent (it cannot answer with a
            structured verdict).
    """

    def __init__(
        self,
        agent: MiniAgent[..., Message],
        rubric: str,
        *,
        threshold: float = 0.5,
        name: str = "judge",
        include_input: bool = True,
        include_expected: bool = True,
        output_retries: int | None = None,
    ) -> None:
        fix = "Write a few sentences saying what a good answer is."
        self.rubric = check_text(
            rubric, "a rubric", owner="LLMJudge", fix=fix, error=EvaluatorDefinitionError
        )
        self.threshold = check_number(
            threshold, "threshold", most=1, owner="LLMJudge", error=EvaluatorDefinitionError
        )
        self.agent = structured(agent, JudgeVerdict, output_retries=output_retries)
        self.name = name
        self.include_input = include_input
        self.include_expected = include_expected

    def prompt(self, run: CaseRun[object, object]) -> str:
        """What the judge is asked about ``run``."""
        return judge_prompt(
            self.rubric, run, input=self.include_input, expected=self.include_expected
        )

    async def ascore(self, run: CaseRun[object, object]) -> Score:
        """Ask the judge; its verdict is the score (``threshold`` decides if it passed)."""
        verdict = (await self.agent.inquire(self.prompt(run)))[0]
        return Score.of(verdict.score, threshold=self.threshold, reason=verdict.reason)
