"""``miniagents eval``: run a dataset file against an agent named by its import path.

::

    miniagents eval DATASET --agent MODULE:NAME [--evaluator NAME_OR_PATH ...]
                    [--name RUN] [--repetitions N] [--concurrency N] [--retries N]
                    [--timeout S] [--evaluator-timeout S] [--max-cost USD]
                    [--input-type MODULE:NAME]
                    [--json FILE] [--html FILE] [--max-text N] [--trees]
                    [--baseline FILE] [--max-drop X] [--min-score NAME=VALUE ...]

``DATASET`` is a ``.yaml``, ``.json`` or ``.jsonl`` file (see
:func:`~miniagents.evals.dataset.load_dataset`), with its evaluators; ``--evaluator`` adds
one, by a built-in name (``contains``) or an import path (``checks:polite``: an
``Evaluator``, or a function of the run). An import path is ``module:name`` (the module
found from the current folder too, as ``python -m`` finds it). The report prints as a
table; ``--json`` and ``--html`` save it (with ``--baseline``, the HTML page is the
comparison's; ``--max-text N``: the most characters of each text the page shows, and the
most steps of each reply tree, 600 by default, as
:func:`~miniagents.evals.html.write_html`'s ``max_text``). An evaluator that scored only
one of the two runs compared has no change to show: a ``warning:`` line on stderr (and in
the comparison's table) names it.

Exit status: 0 when every ``--min-score`` holds and, with ``--baseline FILE`` (a report
saved with ``--json``), no evaluator's mean dropped by more than ``--max-drop``; 1 when
one does not (the problems on stderr); 2 when the run cannot start (a bad argument, a
dataset that is not valid, an import path that names nothing), with one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, cast

import pydantic

from miniagents.arguments import check_count, check_number, check_seconds, check_text
from miniagents.evals._specs import evaluator_of
from miniagents.evals.assertions import problems_of
from miniagents.evals.case import CaseRun, Evaluator
from miniagents.evals.compare import Comparison
from miniagents.evals.dataset import Dataset, load_dataset
from miniagents.evals.errors import DatasetError, EvalArgumentError, EvalReportError, EvalsError
from miniagents.evals.functions import FunctionEvaluator, ScoreLike
from miniagents.evals.html import MAX_TEXT, write_html
from miniagents.evals.report import EvalReport
from miniagents.evals.run import evaluate
from miniagents.ext.errors import MissingExtraError
from miniagents.ext.llm.usage import Budget
from miniagents.miniagents import MiniAgent
from miniagents.root_error import ArgumentError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what is wrong, and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _CannotStart(Exception):
    """The run cannot start: the message says why (and what to do)."""


def main(argv: Sequence[str] | None = None, *, prog: str = "miniagents eval") -> int:
    """Run ``miniagents eval`` with ``argv`` (the arguments after ``eval``); its exit status."""
    parser = _parser(prog)
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return _run(args)
    except _CannotStart as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        print()
        return 130


def _parser(prog: str) -> _Parser:
    parser = _Parser(
        prog=prog,
        description=(
            "Run every case of a dataset file against an agent, score the runs with the "
            "dataset's evaluators (and --evaluator's), print the report, and compare it "
            "with a baseline. Exit status 1 when a --min-score or the baseline is not met."
        ),
    )
    parser.add_argument("dataset", metavar="DATASET", help="the dataset: .yaml, .json or .jsonl")
    parser.add_argument(
        "--agent", required=True, metavar="MODULE:NAME", help="the agent, by its import path"
    )
    parser.add_argument(
        "--evaluator",
        action="append",
        default=[],
        metavar="NAME_OR_PATH",
        help="one more evaluator: a built-in name (contains, exact, ...) or MODULE:NAME",
    )
    parser.add_argument("--name", help="the run's name in the report (default: the agent's)")
    parser.add_argument("--repetitions", type=int, default=1, help="runs of each case")
    parser.add_argument("--concurrency", type=int, default=16, help="cases at once")
    parser.add_argument("--retries", type=int, default=0, help="tries more of a failed case")
    parser.add_argument("--timeout", type=float, help="seconds a case may take")
    parser.add_argument(
        "--evaluator-timeout",
        type=float,
        metavar="S",
        help="seconds an evaluator may take on a run (past it, its score is an error)",
    )
    parser.add_argument("--max-cost", type=float, metavar="USD", help="the run's budget")
    parser.add_argument(
        "--input-type", metavar="MODULE:NAME", help="the inputs' type (default: str)"
    )
    parser.add_argument("--json", metavar="FILE", help="save the report as JSON")
    parser.add_argument("--html", metavar="FILE", help="save the report as an HTML page")
    parser.add_argument(
        "--max-text",
        type=int,
        default=MAX_TEXT,
        metavar="N",
        help="the most characters of each output, error, reason, case name and metadata "
        f"value the HTML page shows, and the most steps of a reply tree (default: {MAX_TEXT})",
    )
    parser.add_argument("--trees", action="store_true", help="keep the reply trees")
    parser.add_argument("--baseline", metavar="FILE", help="a report (JSON) to compare with")
    parser.add_argument(
        "--max-drop",
        type=float,
        default=0.0,
        help="how much a mean score may drop from the baseline's (default: 0)",
    )
    parser.add_argument(
        "--min-score",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="the lowest mean score of an evaluator, e.g. contains=0.9",
    )
    parser.add_argument("--no-progress", action="store_true", help="show no progress bar")
    return parser


def _run(args: argparse.Namespace) -> int:
    minimums = _checked_limits(args)
    agent = _imported(args.agent, "--agent")
    if not isinstance(agent, MiniAgent):
        raise _CannotStart(
            f"--agent {args.agent} is {type(agent).__name__}, not an agent; name a MiniAgent "
            "(an @miniagent function, an LLM agent, ...)"
        )
    input_type: type[object] = str
    if args.input_type is not None:
        found = _imported(args.input_type, "--input-type")
        if not (isinstance(found, type) and issubclass(found, (str, pydantic.BaseModel))):
            raise _CannotStart(
                f"--input-type {args.input_type} is not a Message subclass (nor another "
                "pydantic model): the agent's input is a str or a message"
            )
        input_type = found
    evaluators = [_evaluator(spec) for spec in args.evaluator]
    try:
        # (a str or a model: what an agent takes, as checked above)
        dataset = load_dataset(args.dataset, input_type=cast("type[str]", input_type))
    except (DatasetError, MissingExtraError) as error:
        raise _CannotStart(str(error)) from None
    _check_scored(minimums, dataset, evaluators)
    baseline = None
    if args.baseline is not None:
        try:
            baseline = EvalReport.read_json(args.baseline)
        except EvalReportError as error:
            raise _CannotStart(f"--baseline: {error}") from None
    for flag, value in (("--json", args.json), ("--html", args.html)):
        if value is not None and not Path(value).resolve().parent.is_dir():
            raise _CannotStart(f"{flag} {value}: its folder does not exist")
        if value is not None and Path(value).is_dir():  # (found now, not after the run)
            raise _CannotStart(f"{flag} {value}: is a folder; give the file to write")
    try:
        budget = None if args.max_cost is None else Budget(max_cost_usd=args.max_cost)
    except ArgumentError as error:
        raise _CannotStart(f"--max-cost {args.max_cost}: {error}") from None
    try:
        report = evaluate(
            agent,
            dataset,
            evaluators,
            name=args.name,
            repetitions=args.repetitions,
            max_concurrency=args.concurrency,
            retries=args.retries,
            timeout=args.timeout,
            evaluator_timeout=args.evaluator_timeout,
            budget=budget,
            progress=False if args.no_progress else None,
            keep_trees=args.trees,
        )
    except EvalsError as error:
        raise _CannotStart(str(error)) from None
    print(report.table())
    problems, comparison = problems_of(
        report, min_scores=minimums, baseline=baseline, max_drop=args.max_drop
    )
    if comparison is not None:
        print()
        print(comparison.table())
        for warning in comparison.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    if args.json is not None:
        report.write_json(args.json)
        print(f"The report is saved in {args.json}.")
    if args.html is not None:
        page: EvalReport | Comparison = comparison if comparison is not None else report
        write_html(page, args.html, max_text=args.max_text)
        print(f"The HTML page is saved in {args.html}.")
    if problems:
        print("The eval failed:\n- " + "\n- ".join(problems), file=sys.stderr)
        return 1
    return 0


def _check_scored(
    minimums: dict[str, float],
    dataset: Dataset[str, object],
    given: list[Evaluator[object, object]],
) -> None:
    """Refuse a ``--min-score`` that no evaluator of the run would score.

    Found before the run, not after one that may cost money.
    """
    named = dict.fromkeys(
        [evaluator.name for evaluator in dataset.evaluators]
        + [evaluator.name for evaluator in given]
        + [evaluator.name for case in dataset for evaluator in case.evaluators]
    )
    for name in minimums:
        if name not in named:
            raise _CannotStart(
                f"--min-score {name}: no evaluator of this run is named {name!r} (its "
                f"evaluators: {', '.join(named) or 'none'}); give one of those names"
            )


def _checked_limits(args: argparse.Namespace) -> dict[str, float]:
    """The ``--min-score`` minimums, checked with every other number given and ``--name``.

    Each error names the flag and how to give it (not ``aevaluate()``'s argument).
    """
    minimums = _minimums(args.min_score)
    score = "A mean score is from 0 to 1"
    try:
        for name, minimum in minimums.items():
            check_number(
                minimum,
                f"--min-score {name}",
                most=1,
                fix=f"{score}: give e.g. --min-score {name}=0.9.",
                error=EvalArgumentError,
            )
        check_number(
            args.max_drop,
            "--max-drop",
            most=1,
            fix=f"{score}: give e.g. --max-drop 0.05.",
            error=EvalArgumentError,
        )
        for flag, value, least, example in (
            ("--repetitions", args.repetitions, 1, "3"),
            ("--concurrency", args.concurrency, 1, "4"),
            ("--retries", args.retries, 0, "2"),
            ("--max-text", args.max_text, 1, "600"),
        ):
            fix = f"Give e.g. {flag} {example}."
            check_count(value, flag, least=least, fix=fix, error=EvalArgumentError)
        for flag, seconds in (
            ("--timeout", args.timeout),
            ("--evaluator-timeout", args.evaluator_timeout),
        ):
            if seconds is not None:
                fix = f"Give e.g. {flag} 60, or leave it out for no timeout."
                check_seconds(seconds, flag, forever=True, fix=fix, error=EvalArgumentError)
        if args.name is not None:
            fix = "Give e.g. --name baseline, or leave it out for the agent's alias."
            check_text(args.name, "--name", fix=fix, error=EvalArgumentError)
        if args.max_cost is not None:
            fix = "Give e.g. --max-cost 0.50, or leave it out for no limit."
            check_number(
                args.max_cost, "--max-cost", unit="US dollars", fix=fix, error=EvalArgumentError
            )
    except EvalArgumentError as error:
        raise _CannotStart(str(error)) from None
    return minimums


def _minimums(given: list[str]) -> dict[str, float]:
    minimums: dict[str, float] = {}
    for item in given:
        name, equals, value = item.partition("=")
        try:
            minimums[name.strip()] = float(value)
        except ValueError:
            equals = ""
        if not equals or not name.strip():
            raise _CannotStart(f"--min-score {item}: give NAME=VALUE, e.g. contains=0.9")
    return minimums


def _imported(path: str, flag: str) -> object:
    """The object an import path ``module:name`` names (the current folder on the path)."""
    module_name, colon, attribute = path.partition(":")
    if not colon or not module_name or not attribute:
        raise _CannotStart(f"{flag} {path}: give an import path MODULE:NAME, e.g. app.agents:bot")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` finds the modules of this folder
    try:
        found: object = importlib.import_module(module_name)
    except ImportError as error:
        raise _CannotStart(f"{flag} {path}: cannot import {module_name} ({error})") from None
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise _CannotStart(f"{flag} {path}: {module_name} has no {attribute}") from None
    return found


def _evaluator(spec: str) -> Evaluator[object, object]:
    if ":" not in spec:
        try:
            return evaluator_of(spec)
        except EvalsError as error:
            raise _CannotStart(f"--evaluator {spec}: {error}") from None
    found = _imported(spec, "--evaluator")
    if isinstance(found, type) and issubclass(found, Evaluator):
        try:
            found = found()
        except TypeError as error:
            raise _CannotStart(
                f"--evaluator {spec}: the class needs arguments ({error}); name an instance"
            ) from None
    if isinstance(found, Evaluator):
        return found
    if callable(found) and not inspect.isclass(found):
        function = cast("Callable[[CaseRun[object, object]], ScoreLike]", found)
        return FunctionEvaluator(function, name=spec.rpartition(":")[2])
    raise _CannotStart(f"--evaluator {spec}: {type(found).__name__} is not an evaluator")
