"""The report of a run: each case's result, each evaluator's summary, a table, JSON.

An :class:`EvalReport` holds a :class:`CaseResult` per run of a case (one per repetition),
in the dataset's order, and what the run as a whole used. It prints as a table for the
terminal (:meth:`EvalReport.table`), saves as JSON and loads back (:meth:`EvalReport.write_json`,
:meth:`EvalReport.read_json`: the baseline of a later comparison), and renders as a
self-contained HTML page (:func:`miniagents.evals.html.write_html`)::

    capitals: ASSISTANT on 3 cases (2 passed, 1 failed, 0 errors)
    case     exact    contains  duration  first token  tokens  cost
    france   ✓ 1.00   ✓ 1.00    0.412 s   0.101 s          17  $0.000012
    peru     ✗ 0.00   ✓ 1.00    0.398 s   0.097 s          15  $0.000011
    ...
    mean       0.50     1.00    p50 0.405 s ...
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from miniagents.arguments import check_path
from miniagents.evals._stats import mean, percentile
from miniagents.evals.case import Score
from miniagents.evals.errors import EvalArgumentError, EvalReportError
from miniagents.evals.tree import ReplyTree, check_amounts
from miniagents.ext.llm.usage import UsageTotals
from miniagents.messages import Message
from miniagents.reexports import FORMER_HOMES_GO_AFTER

__all__ = ["FORMAT_VERSION", "CaseResult", "EvalReport", "EvaluatorSummary", "usage_sum"]

FORMAT_VERSION = 1
"""The version of the report's JSON (``EvalReport.read_json`` reads this one)."""


@dataclass(frozen=True)
class CaseResult:
    """What one run of a case gave: its output or error, its scores, time and cost.

    Attributes:
        case: The case's name.
        repetition: Which repetition of the case (from 0).
        input: The case's input, as text.
        expected: The case's expected output, as text (``None``: nothing said).
        output: The text of the replies (``None`` if the agent failed).
        error: The class name of the error the agent failed with (after its retries).
        error_message: That error's message.
        scores: Each evaluator's score, by name (none if the agent failed; an evaluator
            that did not apply to the case is left out).
        duration: Seconds from the inquiry to the last token (or to the failure).
        first_token: Seconds from the inquiry to the first token, if one came.
        usage: What the model calls of the case used and cost, in all its tries (a try
            that failed and was retried was paid for too).
        attempts: How many tries it took.
        tree: The reply tree (kept with ``keep_trees=True``; else ``None``).
        metadata: The case's metadata.
    """

    case: str
    repetition: int
    input: str
    expected: str | None
    output: str | None
    error: str | None = None
    error_message: str | None = None
    scores: Mapping[str, Score] = field(default_factory=dict)
    duration: float | None = None
    first_token: float | None = None
    usage: UsageTotals = field(default_factory=UsageTotals)
    attempts: int = 1
    tree: ReplyTree | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Keep the scores and the metadata read-only."""
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def passed(self) -> bool:
        """Whether the agent replied and every evaluator that scored it passed it."""
        return self.error is None and all(score.passed for score in self.scores.values())

    def value(self, evaluator: str) -> float | None:
        """The evaluator's value for this run: its score, 0 if the agent failed, else ``None``."""
        score = self.scores.get(evaluator)
        if score is not None:
            return score.value
        return 0.0 if self.error is not None else None

    def to_dict(self) -> dict[str, object]:
        """The result as JSON-ready data."""
        return {
            "case": self.case,
            "repetition": self.repetition,
            "input": self.input,
            "expected": self.expected,
            "output": self.output,
            "error": self.error,
            "error_message": self.error_message,
            "scores": {name: asdict(score) for name, score in self.scores.items()},
            "duration": self.duration,
            "first_token": self.first_token,
            "usage": asdict(self.usage),
            "attempts": self.attempts,
            "tree": None if self.tree is None else self.tree.to_dict(),
            "metadata": _plain(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseResult:
        """The result that :meth:`to_dict` gave.

        Raises:
            EvalReportError: if ``data`` is not such a result, or its ``usage`` has a count
                or cost that is none (negative, fractional, a string): the error names the
                case and the field.
        """
        try:
            tree = data.get("tree")
            owner = f"The usage of the case {data['case']!r} (repetition {data['repetition']!r})"
            return cls(
                case=data["case"],
                repetition=data["repetition"],
                input=data["input"],
                expected=data["expected"],
                output=data["output"],
                error=data.get("error"),
                error_message=data.get("error_message"),
                scores={name: Score(**score) for name, score in data["scores"].items()},
                duration=data.get("duration"),
                first_token=data.get("first_token"),
                usage=_usage(data.get("usage", {}), owner),
                attempts=data.get("attempts", 1),
                tree=None if tree is None else ReplyTree.from_dict(tree),
                metadata=data.get("metadata") or {},
            )
        except EvalReportError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise EvalReportError(
                f"A case result of the report is not one ({type(error).__name__}: {error})."
            ) from None


@dataclass(frozen=True)
class EvaluatorSummary:
    """One evaluator over a run: its mean score and how many runs it passed.

    Attributes:
        name: The evaluator's name.
        mean: The mean of its values over the runs it scored (a failed run counts 0).
        passed: The runs it passed.
        scored: The runs it scored (failed runs included: they did not pass).
        errors: The runs where the evaluator itself failed.
    """

    name: str
    mean: float | None
    passed: int
    scored: int
    errors: int

    @property
    def pass_rate(self) -> float | None:
        """The share of the scored runs it passed."""
        return self.passed / self.scored if self.scored else None


@dataclass(frozen=True)
class EvalReport:
    """The results of one run of a dataset against an agent.

    Attributes:
        name: The run's name (e.g. ``baseline``, ``candidate``; default: the agent's alias).
        agent: The alias of the agent run.
        dataset: The dataset's name.
        results: One result per run of a case, in the dataset's order (repetitions
            together).
        evaluators: The evaluators' names, in the order they were given.
        repetitions: How many times each case ran.
        started: When the run started (ISO 8601, UTC).
        duration: How long the run took, in seconds (wall time).
        evaluation_usage: What the evaluators' own model calls (LLM judges) used.
        metadata: Anything said about the run (``metadata=`` of ``aevaluate``).
    """

    name: str
    agent: str
    dataset: str
    results: tuple[CaseResult, ...]
    evaluators: tuple[str, ...] = ()
    repetitions: int = 1
    started: str = ""
    duration: float = 0.0
    evaluation_usage: UsageTotals = field(default_factory=UsageTotals)
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Keep the results a tuple and the metadata read-only."""
        object.__setattr__(self, "results", tuple(self.results))
        object.__setattr__(self, "evaluators", tuple(self.evaluators))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    # -- figures -----------------------------------------------------------------------

    def summary(self, evaluator: str) -> EvaluatorSummary:
        """The summary of one evaluator (no runs scored: a mean of ``None``)."""
        values = [
            value for result in self.results if (value := result.value(evaluator)) is not None
        ]
        scores = [result.scores[evaluator] for result in self.results if evaluator in result.scores]
        return EvaluatorSummary(
            name=evaluator,
            mean=mean(values),
            passed=sum(score.passed for score in scores),
            scored=len(values),
            errors=sum(score.error is not None for score in scores),
        )

    def summaries(self) -> dict[str, EvaluatorSummary]:
        """Every evaluator's summary, by name, in order."""
        return {name: self.summary(name) for name in self.evaluators}

    def mean(self, evaluator: str) -> float | None:
        """The mean score of one evaluator (``None``: it scored no run)."""
        return self.summary(evaluator).mean

    @property
    def passed(self) -> int:
        """The runs that replied and passed every evaluator."""
        return sum(result.passed for result in self.results)

    @property
    def errors(self) -> int:
        """The runs whose agent failed (after its retries)."""
        return sum(result.error is not None for result in self.results)

    @property
    def usage(self) -> UsageTotals:
        """What the agent's model calls used over every case (the judges' aside)."""
        return UsageTotals.summed(result.usage for result in self.results)

    def durations(self) -> list[float]:
        """The durations of the runs that replied, in seconds."""
        return [
            result.duration
            for result in self.results
            if result.error is None and result.duration is not None
        ]

    def first_tokens(self) -> list[float]:
        """The times to the first token of the runs that had one, in seconds."""
        return [result.first_token for result in self.results if result.first_token is not None]

    def costs(self) -> list[float]:
        """The cost of each run, in US dollars."""
        return [result.usage.cost_usd for result in self.results]

    # -- the terminal --------------------------------------------------------------------

    def headline(self) -> str:
        """One line: the run, the agent, the dataset and how many runs passed."""
        runs = len(self.results)
        cases = runs // max(self.repetitions, 1)
        times = f" x {self.repetitions}" if self.repetitions > 1 else ""
        return (
            f"{self.name}: {self.agent} on {self.dataset} ({cases} case(s){times}: "
            f"{self.passed} passed, {runs - self.passed - self.errors} failed, "
            f"{self.errors} error(s))"
        )

    def table(self, *, timing: bool = True, cost: bool = True, width: int = 24) -> str:
        """The report as a table for the terminal: a row per run, then the summaries.

        Args:
            timing: Show the durations and times to the first token.
            cost: Show the tokens and the cost.
            width: The widest the case column may be (longer names are cut).
        """
        header = ["case", *self.evaluators]
        if timing:
            header += ["duration", "first token"]
        if cost:
            header += ["tokens", "cost"]
        rows: list[list[str]] = []
        for result in self.results:
            label = result.case if self.repetitions == 1 else f"{result.case} #{result.repetition}"
            row = [_cut(label, width)]
            if result.error is None:
                row += [_score_cell(result.scores.get(name)) for name in self.evaluators]
            elif self.evaluators:
                row += [f"error: {result.error}"] + ["-"] * (len(self.evaluators) - 1)
            else:
                row[0] += f" (error: {result.error})"
            if timing:
                row += [_seconds(result.duration), _seconds(result.first_token)]
            if cost:
                row += [f"{result.usage.total_tokens:,}", _usd(result.usage.cost_usd)]
            rows.append(row)
        footer = ["mean", *(_mean_cell(self.mean(name)) for name in self.evaluators)]
        passed = ["passed"]
        for name in self.evaluators:
            summary = self.summary(name)
            passed.append(f"{summary.passed}/{summary.scored}")
        if timing:
            footer += [
                "p50 " + _seconds(percentile(self.durations(), 50)),
                "p50 " + _seconds(percentile(self.first_tokens(), 50)),
            ]
            passed += [
                "p95 " + _seconds(percentile(self.durations(), 95)),
                "p95 " + _seconds(percentile(self.first_tokens(), 95)),
            ]
        if cost:
            usage = self.usage
            footer += [f"{usage.total_tokens:,}", _usd(usage.cost_usd)]
            passed += ["", ""]
        return "\n".join([self.headline(), _layout([header, *rows], [footer, passed])])

    def __str__(self) -> str:
        """The table."""
        return self.table()

    # -- JSON --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """The report as JSON-ready data (:meth:`from_dict` reads it back)."""
        return {
            "format": "miniagents.evals.report",
            "version": FORMAT_VERSION,
            "name": self.name,
            "agent": self.agent,
            "dataset": self.dataset,
            "evaluators": list(self.evaluators),
            "repetitions": self.repetitions,
            "started": self.started,
            "duration": self.duration,
            "evaluation_usage": asdict(self.evaluation_usage),
            "metadata": _plain(self.metadata),
            "results": [result.to_dict() for result in self.results],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, default=str)

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Save the report as JSON in ``path`` (its folder must exist); return the path.

        Raises:
            EvalArgumentError: for a ``path`` that is no path, or a folder.
        """
        return _written(path, self.to_json() + "\n", "write_json()", "report.json")

    @classmethod
    def from_dict(cls, data: object) -> EvalReport:
        """The report that :meth:`to_dict` gave.

        Raises:
            EvalReportError: if ``data`` is not a report of a version this one reads, or a
                field of it is missing or none (the error says which part of the report).
        """
        if not isinstance(data, Mapping) or data.get("format") != "miniagents.evals.report":
            raise EvalReportError(
                "This is not an eval report (no 'format': 'miniagents.evals.report'); give "
                "the JSON that EvalReport.write_json() wrote."
            )
        if data.get("version") != FORMAT_VERSION:
            raise EvalReportError(
                f"This report is of version {data.get('version')!r}; this MiniAgents reads "
                f"version {FORMAT_VERSION}. Run the evaluation again to write it anew."
            )
        try:
            results = tuple(CaseResult.from_dict(result) for result in data["results"])
            return cls(
                name=data["name"],
                agent=data["agent"],
                dataset=data["dataset"],
                results=results,
                evaluators=tuple(data.get("evaluators", ())),
                repetitions=data.get("repetitions", 1),
                started=data.get("started", ""),
                duration=data.get("duration", 0.0),
                evaluation_usage=_usage(
                    data.get("evaluation_usage", {}), "The report's evaluation_usage"
                ),
                metadata=data.get("metadata") or {},
            )
        except EvalReportError:
            raise  # (a case result's, or a usage's: it names where already)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise EvalReportError(
                "The report lacks or mistypes a field of its own (its name, agent, dataset, "
                "evaluators, repetitions, started, duration or metadata: "
                f"{type(error).__name__}: {error}); give it as EvalReport.write_json() wrote it."
            ) from None

    @classmethod
    def from_json(cls, text: str) -> EvalReport:
        """The report of JSON text that :meth:`to_json` gave.

        Raises:
            EvalReportError: if ``text`` is not JSON of a report.
        """
        try:
            data = json.loads(text)
        except ValueError as error:
            raise EvalReportError(f"A report is JSON; this is not ({error}).") from None
        return cls.from_dict(data)

    @classmethod
    def read_json(cls, path: str | os.PathLike[str]) -> EvalReport:
        """The report saved in ``path`` by :meth:`write_json`.

        Raises:
            EvalReportError: if the file cannot be read, or is not a report.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise EvalReportError(
                _cannot_read(path, error, "a report that write_json saved")
            ) from None
        try:
            return cls.from_json(text)
        except EvalReportError as error:
            raise EvalReportError(f"{path}: {error}") from None


def usage_sum(usages: Iterable[UsageTotals]) -> UsageTotals:
    """The sum of several ``UsageTotals``; deprecated: use :meth:`UsageTotals.summed`.

    It warns (a ``DeprecationWarning``) and returns what ``UsageTotals.summed(usages)`` does.
    """
    warnings.warn(
        "miniagents.evals.report.usage_sum() is deprecated and goes in the first release "
        f"after {FORMER_HOMES_GO_AFTER}: call UsageTotals.summed(usages) "
        "(miniagents.ext.llm.usage), which it returns, instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return UsageTotals.summed(usages)


def _usage(data: object, owner: str) -> UsageTotals:
    """The ``UsageTotals`` that ``asdict`` gave, its counts and cost checked.

    Raises:
        EvalReportError: naming ``owner`` and the field, if a count or the cost is none.
    """
    if not isinstance(data, Mapping):
        raise EvalReportError(
            f"{owner} is {data!r}, not a JSON object of counts; give it as the report wrote it."
        )
    check_amounts(data, _USAGE_COUNTS, owner, unknown=False)
    return UsageTotals(**data)


_USAGE_COUNTS = tuple(each.name for each in fields(UsageTotals) if each.name != "cost_usd")
"""The fields of a ``UsageTotals`` that count (requests, tokens): whole numbers of at least 0."""


# -- rendering helpers (the comparison's table uses them too) --------------------------------


def _plain(value: object) -> object:
    """``value`` as JSON-ready data (mappings as dicts, sequences as lists, messages dumped)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Message):
        return _plain(value.model_dump())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _score_cell(score: Score | None) -> str:
    if score is None:
        return "-"
    if score.error is not None:
        return f"! {score.error}"
    return f"{'✓' if score.passed else '✗'} {score.value:.2f}"


def _mean_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _usd(value: float) -> str:
    return f"${value:.6f}" if value < 0.01 else f"${value:,.4f}"


def _layout(rows: list[list[str]], footer: list[list[str]]) -> str:
    """Rows of cells as aligned columns (the first left, the others right), then the footer."""
    everything = rows + footer
    columns = max(len(row) for row in everything)
    widths = [
        max(len(row[index]) for row in everything if index < len(row)) for index in range(columns)
    ]

    def line(row: list[str]) -> str:
        cells = [
            cell.ljust(widths[index]) if index == 0 else cell.rjust(widths[index])
            for index, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([*(line(row) for row in rows), rule, *(line(row) for row in footer)])


def _written(path: str | os.PathLike[str], text: str, owner: str, example: str) -> Path:
    """``text`` written to the file ``path`` (a report's JSON, a page); its path.

    Raises:
        EvalArgumentError: for a ``path`` that is no path, or a folder (``example`` names a
            file to give in it).
    """
    fix = f"Give the file to write, e.g. {example!r}."
    file = Path(check_path(path, "path", owner=owner, fix=fix, error=EvalArgumentError))
    if file.is_dir():
        raise EvalArgumentError(
            f"{owner} writes a file, but {str(path)!r} is a folder: give a file in it, e.g. "
            f"{str(file / example)!r}."
        )
    file.write_text(text, encoding="utf-8")
    return file


def _cannot_read(
    path: str | os.PathLike[str], error: OSError | UnicodeDecodeError, what: str
) -> str:
    """The sentence for a file of the evals (``what``) that cannot be read, with the fix."""
    return (
        f"{os.fspath(path)}: cannot be read ({error}); give the path of {what} (a relative "
        f"path starts from the current folder, {os.getcwd()})."
    )
