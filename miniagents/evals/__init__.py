"""Evals: know whether a change made the agents better, cheaper and faster, agent tree included.

Run a dataset of cases against an agent (:func:`aevaluate`), score each run with evaluators
(the output's text, the reply tree of agents, tools and model calls, time and cost, an LLM
judge), report (a terminal table, JSON, HTML, OpenTelemetry spans), and compare a baseline
with a candidate case by case (:func:`compare`), in a test suite too (:func:`assert_eval`)::

    dataset = Dataset([Case("Capital of France?", "Paris"), Case("Capital of Peru?", "Lima")])
    report = await aevaluate(assistant, dataset, [Contains(), MaxDuration(5)])
    print(report.table())

The modules: ``case`` (``Case``, ``CaseRun``, ``Score``, ``Evaluator``), ``dataset``
(``Dataset``, ``load_dataset``), ``tree`` (the reply tree), the evaluators (``matching``,
``trajectory``, ``performance``, ``functions``, ``judge``), ``run`` (``aevaluate``,
``evaluate``), ``report`` (``EvalReport``), ``compare`` (``compare``, ``Comparison``),
``html`` (``write_html``), ``assertions`` (``assert_eval``), ``cli`` (``miniagents eval``)
and ``errors``. Importing it imports neither PyYAML, jsonschema nor OpenTelemetry: they
come with the ``evals`` and ``otel`` extras, when used.
"""

from miniagents.evals.case import Case as Case
from miniagents.evals.case import CaseRun as CaseRun
from miniagents.evals.case import Evaluator as Evaluator
from miniagents.evals.case import Score as Score
from miniagents.evals.dataset import Dataset as Dataset
from miniagents.evals.dataset import load_dataset as load_dataset
from miniagents.evals.errors import CaseTimeoutError as CaseTimeoutError
from miniagents.evals.errors import DatasetError as DatasetError
from miniagents.evals.errors import EvalArgumentError as EvalArgumentError
from miniagents.evals.errors import EvalReportError as EvalReportError
from miniagents.evals.errors import EvalsError as EvalsError
from miniagents.evals.errors import EvalThresholdError as EvalThresholdError
from miniagents.evals.errors import EvaluatorDefinitionError as EvaluatorDefinitionError
from miniagents.evals.errors import EvaluatorTimeoutError as EvaluatorTimeoutError
from miniagents.evals.functions import FunctionEvaluator as FunctionEvaluator
from miniagents.evals.functions import evaluator as evaluator
from miniagents.evals.judge import JudgeVerdict as JudgeVerdict
from miniagents.evals.judge import LLMJudge as LLMJudge
from miniagents.evals.matching import Contains as Contains
from miniagents.evals.matching import ExactMatch as ExactMatch
from miniagents.evals.matching import FuzzyMatch as FuzzyMatch
from miniagents.evals.matching import MatchesJSONSchema as MatchesJSONSchema
from miniagents.evals.matching import MatchesType as MatchesType
from miniagents.evals.matching import Regex as Regex
from miniagents.evals.performance import MaxCost as MaxCost
from miniagents.evals.performance import MaxDuration as MaxDuration
from miniagents.evals.performance import MaxFirstTokenTime as MaxFirstTokenTime
from miniagents.evals.performance import MaxTokens as MaxTokens
from miniagents.evals.report import CaseResult as CaseResult
from miniagents.evals.report import EvalReport as EvalReport
from miniagents.evals.report import EvaluatorSummary as EvaluatorSummary
from miniagents.evals.run import aevaluate as aevaluate
from miniagents.evals.run import evaluate as evaluate
from miniagents.evals.run import reply_text as reply_text
from miniagents.evals.trajectory import AgentsCalled as AgentsCalled
from miniagents.evals.trajectory import NoFailedSteps as NoFailedSteps
from miniagents.evals.trajectory import ToolCalledWith as ToolCalledWith
from miniagents.evals.trajectory import ToolsCalled as ToolsCalled
from miniagents.evals.tree import AgentStep as AgentStep
from miniagents.evals.tree import ModelCall as ModelCall
from miniagents.evals.tree import ReplyTree as ReplyTree
from miniagents.evals.tree import ToolStep as ToolStep

__all__ = [
    "AgentStep",
    "AgentsCalled",
    "Case",
    "CaseResult",
    "CaseRun",
    "CaseTimeoutError",
    "Contains",
    "Dataset",
    "DatasetError",
    "EvalArgumentError",
    "EvalReport",
    "EvalReportError",
    "EvalThresholdError",
    "EvalsError",
    "Evaluator",
    "EvaluatorDefinitionError",
    "EvaluatorSummary",
    "EvaluatorTimeoutError",
    "ExactMatch",
    "FunctionEvaluator",
    "FuzzyMatch",
    "JudgeVerdict",
    "LLMJudge",
    "MatchesJSONSchema",
    "MatchesType",
    "MaxCost",
    "MaxDuration",
    "MaxFirstTokenTime",
    "MaxTokens",
    "ModelCall",
    "NoFailedSteps",
    "ReplyTree",
    "Score",
    "ToolCalledWith",
    "ToolStep",
    "ToolsCalled",
    "aevaluate",
    "evaluate",
    "evaluator",
    "load_dataset",
    "reply_text",
]
