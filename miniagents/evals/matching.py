r"""Evaluators of the output's text: exact and fuzzy match, contains, regex, JSON schema, type.

Each compares ``run.output`` (the text of the replies) with what it was given, or, given
nothing, with the case's ``expected`` (a ``str``, or a ``Message``'s text); a case that
expects nothing is not scored (``None``) by the evaluators that need an expectation, and a
case that expects something other than text (a number, a message with fields and no text)
fails them with an ``EvaluatorDefinitionError`` that says to compare it with an evaluator of
one's own (its text would be compared, not its value); so does a message given fields
beside its text (its fields would not be compared)::

    output "Paris."   ExactMatch("Paris")      0.0  failed ("Paris." != "Paris")
                      FuzzyMatch("Paris")      0.91 passed (threshold 0.8)
                      Contains("paris")        1.0  passed
                      Regex(r"^Paris\\b")       1.0  passed

``MatchesJSONSchema`` needs ``jsonschema`` (``pip install "miniagents[evals]"``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
from pydantic_core import PydanticSerializationError

from miniagents.arguments import a_class, check_number
from miniagents.evals.case import CaseRun, Evaluator, Score
from miniagents.evals.errors import EvaluatorDefinitionError
from miniagents.ext.errors import MissingExtraError
from miniagents.messages import Message

__all__ = [
    "Contains",
    "ExactMatch",
    "FuzzyMatch",
    "MatchesJSONSchema",
    "MatchesType",
    "Regex",
    "expected_text",
]


def expected_text(expected: object) -> str | None:
    """The text an expectation stands for, shown to a judge and in a report.

    Its text alone where it is text alone (see :func:`_text_alone`: what the text
    evaluators compare); a ``Message`` with fields beside its text, its JSON (text and
    fields; its ``repr`` where a field is no JSON value); anything else its ``str()``.
    """
    text = _text_alone(expected)
    if text is not None or expected is None:
        return text
    if isinstance(expected, Message):
        try:
            return expected.model_dump_json(exclude_unset=True)
        except PydanticSerializationError:
            return repr(expected)
    return str(expected)


def _fields_beside_text(message: Message) -> list[str]:
    """The fields ``message`` holds beside its text (given, not left to their defaults)."""
    return sorted(message.model_dump(exclude_unset=True).keys() - {"text"})


def _text_alone(expected: object) -> str | None:
    """``expected`` as text alone, if it is: the one decision of the report, judge and evaluators.

    A ``str``, or the text of a ``Message`` with no field beside it; ``None`` for anything else.
    """
    if isinstance(expected, str):
        return expected
    if isinstance(expected, Message) and not _fields_beside_text(expected):
        return expected.text
    return None


def _case_text(run: CaseRun[object, object], who: str) -> str | None:
    """The case's expected text, for a text evaluator: a ``str``, or a ``Message``'s text.

    Raises:
        EvaluatorDefinitionError: for an expectation that is not text alone (see
            :func:`_text_alone`): a number, a list, a message with fields and no text, whose
            ``str()`` would be compared, a message with fields beside its text, whose fields
            would not be, or an empty message.
    """
    expected = run.expected
    text = _text_alone(expected)
    if text is not None or expected is None:
        return text
    if isinstance(expected, Message) and expected.text is not None:
        fields = ", ".join(_fields_beside_text(expected))
        problem = f"a message with fields beside its text ({fields}), not compared"
        fix = f"expect its text alone (expected={expected.text!r:.40})"
    elif isinstance(expected, Message) and not _fields_beside_text(expected):
        problem = "an empty message (no text, no fields), with nothing to compare"
        fix = 'give the case the text to expect (e.g. expected=Message(text="Paris"))'
    else:
        problem = "which is not text (its str() would be compared, not its value)"
        fix = f"give the case a text to expect (e.g. expected={str(expected)!r:.40})"
    raise EvaluatorDefinitionError(
        f"{who} compares texts, but the case expects {expected!r:.60}, {problem}: {fix}, or "
        "compare the value with your own evaluator (an evaluator(function) comparing "
        "run.replies[-1] with run.expected; see docs/evals.md)."
    )


def _given_text(value: object, name: str, who: str) -> str | None:
    """``value`` if it is a ``str`` or ``None``.

    Raises:
        EvaluatorDefinitionError: for anything else.
    """
    if value is None or isinstance(value, str):
        return value
    raise _not_text(value, name, who)


def _not_text(value: object, name: str, who: str) -> EvaluatorDefinitionError:
    return EvaluatorDefinitionError(
        f"{who} compares texts, but its {name} is {value!r:.60}, not a str: pass the text "
        f"(e.g. {who}({str(value)!r:.40})), or compare the value with your own evaluator "
        "(see docs/evals.md)."
    )


def _shorten(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


class ExactMatch(Evaluator[object, object]):
    """The output is exactly the expected text (by default: both stripped of spaces around).

    Args:
        expected: The text (default: the case's ``expected``).
        case_sensitive: Whether ``Paris`` and ``paris`` differ.
        strip: Whether spaces and newlines around the texts are ignored.
        name: The evaluator's name in the reports.
    """

    def __init__(
        self,
        expected: str | None = None,
        *,
        case_sensitive: bool = True,
        strip: bool = True,
        name: str = "exact",
    ) -> None:
        self.expected = _given_text(expected, "expected", "ExactMatch")
        self.case_sensitive = case_sensitive
        self.strip = strip
        self.name = name

    def _normal(self, text: str) -> str:
        text = text.strip() if self.strip else text
        return text if self.case_sensitive else text.casefold()

    def score(self, run: CaseRun[object, object]) -> Score | None:
        """1 if the texts are equal, else 0; ``None`` without an expected text."""
        expected = self.expected if self.expected is not None else _case_text(run, "ExactMatch")
        if expected is None:
            return None
        if self._normal(run.output) == self._normal(expected):
            return Score(1.0, True)
        return Score(0.0, False, f"{_shorten(run.output)!r} != {_shorten(expected)!r}")


class FuzzyMatch(Evaluator[object, object]):
    """How close the output is to the expected text: ``difflib``'s ratio, from 0 to 1.

    Args:
        expected: The text (default: the case's ``expected``).
        threshold: The ratio from which it passes.
        case_sensitive: Whether ``Paris`` and ``paris`` differ.
        name: The evaluator's name in the reports.

    Raises:
        EvaluatorDefinitionError: if ``threshold`` is not from 0 to 1.
    """

    def __init__(
        self,
        expected: str | None = None,
        *,
        threshold: float = 0.8,
        case_sensitive: bool = False,
        name: str = "fuzzy",
    ) -> None:
        self.expected = _given_text(expected, "expected", "FuzzyMatch")
        self.threshold = _threshold(threshold, "FuzzyMatch")
        self.case_sensitive = case_sensitive
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score | None:
        """The similarity ratio of the two texts (spaces around them ignored)."""
        expected = self.expected if self.expected is not None else _case_text(run, "FuzzyMatch")
        if expected is None:
            return None
        output, wanted = run.output.strip(), expected.strip()
        if not self.case_sensitive:
            output, wanted = output.casefold(), wanted.casefold()
        ratio = difflib.SequenceMatcher(None, output, wanted, autojunk=False).ratio()
        return Score.of(ratio, threshold=self.threshold, reason=f"similarity {ratio:.2f}")


class Contains(Evaluator[object, object]):
    """The output contains a text (or each of several: the score is the share found).

    Args:
        text: The text, or the texts, to find (default: the case's ``expected``).
        case_sensitive: Whether ``Paris`` and ``paris`` differ.
        name: The evaluator's name in the reports.
    """

    def __init__(
        self,
        text: str | Sequence[str] | None = None,
        *,
        case_sensitive: bool = False,
        name: str = "contains",
    ) -> None:
        self.texts: tuple[str, ...] | None = _texts(text)
        self.case_sensitive = case_sensitive
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score | None:
        """The share of the texts found in the output; it passes when all are."""
        texts = self.texts
        if texts is None:
            expected = _case_text(run, "Contains")
            if expected is None:
                return None
            texts = (expected,)
        output = run.output if self.case_sensitive else run.output.casefold()
        missing = [
            text
            for text in texts
            if (text if self.case_sensitive else text.casefold()) not in output
        ]
        if not texts:
            return Score(1.0, True)
        value = 1 - len(missing) / len(texts)
        reason = None if not missing else "missing " + ", ".join(repr(text) for text in missing)
        return Score(value, not missing, reason)


class Regex(Evaluator[object, object]):
    """The output matches a regular expression (``re.search``: anywhere in it).

    Args:
        pattern: The expression.
        flags: ``re`` flags, e.g. ``re.IGNORECASE``.
        full: The whole output must match (``re.fullmatch``), not a part of it.
        name: The evaluator's name in the reports.

    Raises:
        EvaluatorDefinitionError: if ``pattern`` is not a valid expression.
    """

    def __init__(
        self, pattern: str, *, flags: int = 0, full: bool = False, name: str = "regex"
    ) -> None:
        try:
            self.pattern = re.compile(pattern, flags)
        except (re.error, TypeError) as error:
            raise EvaluatorDefinitionError(
                f"Regex({pattern!r}) is not a valid regular expression: {error}. Fix the "
                "pattern (a raw string, r'...', keeps its backslashes)."
            ) from None
        self.full = full
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score:
        """1 if the output matches, else 0."""
        match = (self.pattern.fullmatch if self.full else self.pattern.search)(run.output)
        if match is not None:
            return Score(1.0, True)
        return Score(0.0, False, f"no match for /{self.pattern.pattern}/")


class MatchesJSONSchema(Evaluator[object, object]):
    """The output is JSON that a JSON schema accepts (``jsonschema``'s validation).

    Args:
        schema: The JSON schema (e.g. ``Weather.model_json_schema()``).
        name: The evaluator's name in the reports.

    Raises:
        MissingExtraError: if ``jsonschema`` is not installed (``pip install
            "miniagents[evals]"``).
        EvaluatorDefinitionError: if ``schema`` is not a valid schema.
    """

    def __init__(self, schema: Mapping[str, object], *, name: str = "json_schema") -> None:
        try:
            import jsonschema
        except ImportError as error:
            raise MissingExtraError(
                'MatchesJSONSchema needs jsonschema: pip install "miniagents[evals]".'
            ) from error
        plain: dict[str, Any] = json.loads(json.dumps(schema, default=_plain))
        validator_class = jsonschema.validators.validator_for(plain)
        try:
            validator_class.check_schema(plain)
        except jsonschema.SchemaError as error:
            raise EvaluatorDefinitionError(
                f"MatchesJSONSchema was given a schema that is not valid: {error.message}."
            ) from None
        self.schema = plain
        self._validator = validator_class(plain)
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score:
        """1 if the output parses as JSON and the schema accepts it, else 0 (with why)."""
        try:
            value = json.loads(run.output)
        except ValueError as error:
            return Score(0.0, False, f"not JSON: {error}")
        problems = sorted(self._validator.iter_errors(value), key=lambda problem: problem.path)
        if not problems:
            return Score(1.0, True)
        first = problems[0]
        where = "/".join(str(part) for part in first.absolute_path) or "(the value)"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Score(0.0, False, f"{where}: {first.message}{more}")


class MatchesType(Evaluator[object, object]):
    """The reply is a valid instance of a ``Message`` subclass (or any pydantic model).

    It passes if one of the reply messages is an instance of it (a structured answer), or
    if the output is JSON that validates as it (a model that wrote the JSON as text).

    Args:
        model: The class, e.g. a ``Message`` subclass with typed fields.
        name: The evaluator's name in the reports (default: the class's name).

    Raises:
        EvaluatorDefinitionError: if ``model`` is not a pydantic model class.
    """

    def __init__(self, model: type[pydantic.BaseModel], *, name: str | None = None) -> None:
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            raise EvaluatorDefinitionError(
                f"MatchesType takes a Message subclass (or another pydantic model class), "
                f"not {model!r}."
            )
        self.model = model
        self.name = name if name is not None else f"type:{model.__name__}"

    def score(self, run: CaseRun[object, object]) -> Score:
        """1 if the reply is (or its output validates as) the model, else 0 (with why)."""
        if any(isinstance(message, self.model) for message in run.replies):
            return Score(1.0, True)
        try:
            self.model.model_validate_json(run.output)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(the value)"
            more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
            return Score(0.0, False, f"not {a_class(self.model)}: {where}: {first['msg']}{more}")
        return Score(1.0, True)


def _texts(given: object) -> tuple[str, ...] | None:
    """``Contains``'s texts: ``None``, a ``str`` alone, or several ``str``.

    Raises:
        EvaluatorDefinitionError: for anything else (a number, a list holding one).
    """
    if given is None or isinstance(given, str):
        return None if given is None else (given,)
    texts: list[str] = []
    for text in given if isinstance(given, Sequence) else (given,):
        if not isinstance(text, str):
            raise _not_text(text, "text", "Contains")
        texts.append(text)
    return tuple(texts)


def _threshold(value: object, who: str) -> float:
    return check_number(value, "threshold", most=1, owner=who, error=EvaluatorDefinitionError)


def _plain(value: object) -> object:
    """A JSON value for what ``json`` cannot write (a frozen mapping, a message)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Message):
        return value.model_dump()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return str(value)
