"""Errors of the evals; the whole hierarchy is drawn in :mod:`miniagents.errors`.

::

EvalsError
├── DatasetError (also ValueError)         a dataset or one of its cases is not valid
├── EvaluatorDefinitionError (also ValueError)  an evaluator that cannot work as given
├── EvalArgumentError (also ValueError)    aevaluate() or compare() given what it cannot use
├── CaseTimeoutError (also TimeoutError)   a case's agent took longer than the timeout
├── EvaluatorTimeoutError (also TimeoutError)  an evaluator took longer than its timeout
├── EvalReportError (also ValueError)      a stored report (JSON) that cannot be read
└── EvalThresholdError (also AssertionError)  a score below its threshold, or regressed
"""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "CaseTimeoutError",
    "DatasetError",
    "EvalArgumentError",
    "EvalReportError",
    "EvalThresholdError",
    "EvalsError",
    "EvaluatorDefinitionError",
    "EvaluatorTimeoutError",
]


class EvalsError(MiniAgentsError):
    """An error of :mod:`miniagents.evals`."""


class DatasetError(EvalsError, ValueError):
    """A dataset, or one of its cases, is not valid; the message names the case (and line)."""


class EvaluatorDefinitionError(EvalsError, ArgumentError):
    """An evaluator was given what it cannot work with (a bad pattern, an unknown name, ...)."""


class EvalArgumentError(EvalsError, ArgumentError):
    """``aevaluate()``, ``evaluate()`` or ``compare()`` was given arguments it cannot use."""


class CaseTimeoutError(EvalsError, TimeoutError):
    """A case's agent took longer than the run's ``timeout`` (retried like a ``TimeoutError``)."""


class EvaluatorTimeoutError(EvalsError, TimeoutError):
    """An evaluator took longer than the run's ``evaluator_timeout``: its score for the run."""


class EvalReportError(EvalsError, ValueError):
    """A stored report (its JSON) cannot be read: not a report, or of an unknown version."""


class EvalThresholdError(EvalsError, AssertionError):
    """A score fell below its threshold, or regressed against the baseline (pytest fails)."""
