"""Datasets of cases: made in code, or loaded from a YAML, JSON or JSONL file, validated.

In code, a :class:`Dataset` holds :class:`~miniagents.evals.case.Case` s (typed: a
``Dataset[str, str]`` has ``str`` inputs and expectations). A file holds the same, checked
against the types given to :func:`load_dataset` (with pydantic), every problem named by its
case and line::

    # capitals.yaml                              # capitals.jsonl: one case per line
    name: capitals                               {"name": "france", "input": "...", ...}
    evaluators: [contains, {max_duration: 5}]
    cases:
      - name: france
        input: What is the capital of France?
        expected: Paris
        metadata: {region: europe}
      - input: What is the capital of Peru?      # named case-2 (its place)
        expected: Lima
        evaluators: [{regex: "^Lima"}]

A case's keys are ``input`` (required), ``expected``, ``name``, ``metadata`` and
``evaluators`` (built-in ones, by name: see :mod:`miniagents.evals._specs`); a YAML or JSON
file is a list of cases, or a mapping of ``name``, ``evaluators`` and ``cases``. YAML needs
PyYAML (``pip install "miniagents[evals]"``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, overload

import pydantic
from typing_extensions import TypeVar

from miniagents.evals._specs import evaluator_of
from miniagents.evals.case import Case, Evaluator, _evaluators_tuple
from miniagents.evals.errors import DatasetError, EvaluatorDefinitionError
from miniagents.evals.report import _cannot_read
from miniagents.ext.errors import MissingExtraError

__all__ = ["Dataset", "load_dataset"]

InputT_co = TypeVar("InputT_co", covariant=True)
ExpectedT_co = TypeVar("ExpectedT_co", covariant=True, default=object)
I = TypeVar("I")  # noqa: E741
E = TypeVar("E")

_CASE_KEYS = ("name", "input", "expected", "metadata", "evaluators")
_FILE_KEYS = ("name", "evaluators", "cases")


@dataclass(frozen=True)
class Dataset(Generic[InputT_co, ExpectedT_co]):
    """Cases to run an agent on, and the evaluators of every case.

    Cases without a name are named by their place (``case-1``, ``case-2``, ...).

    Attributes:
        cases: The cases, in order.
        name: The dataset's name (in the reports).
        evaluators: The evaluators of every case (a run adds its own, a case its own).

    Raises:
        DatasetError: if two cases have the same name, a case is not a ``Case``, there is no
            case, the name is not a ``str`` or the evaluators are not a list.
    """

    cases: Sequence[Case[InputT_co, ExpectedT_co]]
    name: str = "dataset"
    evaluators: Sequence[Evaluator[InputT_co, ExpectedT_co]] = field(default=())

    def __post_init__(self) -> None:
        """Name the unnamed cases, and check that names are unique."""
        name: object = self.name  # (typed so; code mypy does not check may pass anything)
        if not isinstance(name, str):
            raise DatasetError(f"A dataset's name is a str, not {name!r}; e.g. name='capitals'.")
        given: object = self.cases
        if not isinstance(given, Iterable) or isinstance(given, (str, bytes, Mapping)):
            raise DatasetError(f"A dataset takes a list of Case objects, not {given!r}.")
        cases = list(given)
        if not cases:
            raise DatasetError(f"The dataset {self.name!r} has no case; give it at least one.")
        named: list[Case[InputT_co, ExpectedT_co]] = []
        seen: dict[str, int] = {}
        for index, case in enumerate(cases):
            if not isinstance(case, Case):
                raise DatasetError(
                    f"Case #{index + 1} of the dataset {self.name!r} is {case!r}, not a "
                    "Case; make it Case(input=..., expected=...)."
                )
            if not case.name:
                case = replace(case, name=f"case-{index + 1}")
            if case.name in seen:
                raise DatasetError(
                    f"Cases #{seen[case.name] + 1} and #{index + 1} of the dataset "
                    f"{self.name!r} are both named {case.name!r}; give each case a name of "
                    "its own."
                )
            seen[case.name] = index
            named.append(case)
        object.__setattr__(self, "cases", tuple(named))
        whose = f"The dataset {self.name!r}"
        object.__setattr__(self, "evaluators", _evaluators_tuple(self.evaluators, whose))

    def __len__(self) -> int:
        """The number of cases."""
        return len(self.cases)

    def __iter__(self) -> Iterator[Case[InputT_co, ExpectedT_co]]:
        """The cases, in order."""
        return iter(self.cases)

    def case(self, name: str) -> Case[InputT_co, ExpectedT_co]:
        """The case called ``name``.

        Raises:
            DatasetError: if there is none.
        """
        for case in self.cases:
            if case.name == name:
                return case
        raise DatasetError(f"The dataset {self.name!r} has no case named {name!r}.")


@overload
def load_dataset(path: str | os.PathLike[str], *, name: str | None = None) -> Dataset[str, str]: ...


@overload
def load_dataset(
    path: str | os.PathLike[str], *, input_type: type[I], name: str | None = None
) -> Dataset[I, str]: ...


@overload
def load_dataset(
    path: str | os.PathLike[str], *, expected_type: type[E], name: str | None = None
) -> Dataset[str, E]: ...


@overload
def load_dataset(
    path: str | os.PathLike[str],
    *,
    input_type: type[I],
    expected_type: type[E],
    name: str | None = None,
) -> Dataset[I, E]: ...


def load_dataset(
    path: str | os.PathLike[str],
    *,
    input_type: type[Any] = str,
    expected_type: type[Any] = str,
    name: str | None = None,
) -> Dataset[Any, Any]:
    """Load a dataset from a ``.yaml`` / ``.yml``, ``.json`` or ``.jsonl`` file.

    Args:
        path: The file (its suffix says its format).
        input_type: The type of the cases' inputs, e.g. ``str`` or a ``Message`` subclass
            (a mapping in the file is validated into it).
        expected_type: The type of the cases' expectations (any type pydantic validates).
        name: The dataset's name (default: the file's ``name``, else its stem).

    Raises:
        DatasetError: if the file cannot be read or parsed, or a case is not valid (the
            message names the file, the case and its line, and what is wrong).
        MissingExtraError: for a YAML file without PyYAML (``pip install
            "miniagents[evals]"``).
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json", ".jsonl"):
        raise DatasetError(
            f"{file}: a dataset file is .yaml, .yml, .json or .jsonl; rename it or convert it."
        )
    try:
        text = file.read_text(encoding="utf-8-sig")  # (a byte order mark, if any, is dropped)
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(_cannot_read(file, error, "a dataset file")) from None
    if suffix == ".jsonl":
        raw_cases, lines = _jsonl(file, text)
        top: Mapping[str, object] = {}
    else:
        loaded, lines = _yaml(file, text) if suffix != ".json" else _json(file, text)
        if isinstance(loaded, list):
            top, raw_cases = {}, loaded
        elif isinstance(loaded, Mapping):
            unknown = [key for key in loaded if key not in _FILE_KEYS]
            if unknown:
                raise DatasetError(
                    f"{file}: unknown key(s) {', '.join(map(repr, unknown))}; a dataset file "
                    f"has {', '.join(_FILE_KEYS)}."
                )
            top = loaded
            raw = loaded.get("cases")
            if not isinstance(raw, list):
                raise DatasetError(f"{file}: 'cases' is a list of cases, not {raw!r}.")
            raw_cases = raw
        else:
            raise DatasetError(
                f"{file}: a dataset is a list of cases, or a mapping with 'cases'; got {loaded!r}."
            )
    inputs = pydantic.TypeAdapter(input_type)
    expectations = pydantic.TypeAdapter(expected_type)
    cases = [
        _case(file, index, lines[index] if index < len(lines) else None, raw, inputs, expectations)
        for index, raw in enumerate(raw_cases)
    ]
    if not cases:
        raise DatasetError(f"{file}: there is no case; add at least one.")
    evaluators = _evaluators(top.get("evaluators"), f"{file}: the dataset's evaluators")
    given_name = top.get("name")
    if given_name is not None and not isinstance(given_name, str):
        raise DatasetError(f"{file}: the dataset's name is a string, not {given_name!r}.")
    try:
        return Dataset(
            tuple(cases), name=name or given_name or file.stem, evaluators=tuple(evaluators)
        )
    except DatasetError as error:
        raise DatasetError(f"{file}: {error}") from None


def _case(
    file: Path,
    index: int,
    line: int | None,
    raw: object,
    inputs: pydantic.TypeAdapter[Any],
    expectations: pydantic.TypeAdapter[Any],
) -> Case[Any, Any]:
    where = f"{file}, case #{index + 1}" + (f" (line {line})" if line is not None else "")
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{where}: a case is a mapping with 'input', not {raw!r}.")
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise DatasetError(f"{where}: the name is a string, not {name!r}.")
    if name:
        where = f"{file}, case {name!r}" + (f" (line {line})" if line is not None else "")
    unknown = [key for key in raw if key not in _CASE_KEYS]
    if unknown:
        raise DatasetError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; a case has "
            f"{', '.join(_CASE_KEYS)}."
        )
    if "input" not in raw:
        raise DatasetError(f"{where}: the case has no 'input'; give the agent's input.")
    value = _valid(inputs, raw["input"], f"{where}: input")
    expected = raw.get("expected")
    if expected is not None:
        expected = _valid(expectations, expected, f"{where}: expected")
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise DatasetError(f"{where}: metadata is a mapping, not {metadata!r}.")
    evaluators = _evaluators(raw.get("evaluators"), f"{where}: evaluators")
    return Case(value, expected, name, metadata, tuple(evaluators))


def _valid(adapter: pydantic.TypeAdapter[Any], value: object, where: str) -> Any:
    try:
        return adapter.validate_python(value)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            (".".join(str(part) for part in problem["loc"]) + ": " if problem["loc"] else "")
            + problem["msg"]
            for problem in error.errors()
        )
        raise DatasetError(f"{where}: {problems} (got {value!r}).") from None


def _evaluators(specs: object, where: str) -> list[Evaluator[object, object]]:
    if specs is None:
        return []
    if not isinstance(specs, Sequence) or isinstance(specs, str):
        raise DatasetError(f"{where}: a list of evaluators, not {specs!r}.")
    made: list[Evaluator[object, object]] = []
    for spec in specs:
        try:
            made.append(evaluator_of(spec))
        except (EvaluatorDefinitionError, MissingExtraError) as error:
            raise DatasetError(f"{where}: {error}") from None
    return made


def _jsonl(file: Path, text: str) -> tuple[list[object], list[int | None]]:
    cases: list[object] = []
    lines: list[int | None] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            cases.append(json.loads(line))
        except ValueError as error:
            raise DatasetError(f"{file}, line {number}: not JSON ({error}).") from None
        lines.append(number)
    return cases, lines


def _json(file: Path, text: str) -> tuple[object, list[int | None]]:
    try:
        return json.loads(text), []
    except ValueError as error:
        raise DatasetError(f"{file}: not JSON ({error}).") from None


def _yaml(file: Path, text: str) -> tuple[object, list[int | None]]:
    """The file's data, and the line of each case (from the YAML's nodes)."""
    try:
        import yaml
    except ImportError as error:
        raise MissingExtraError(
            f'{file}: reading YAML needs PyYAML: pip install "miniagents[evals]" (or give '
            "the dataset as .json or .jsonl)."
        ) from error
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise DatasetError(f"{file}: not valid YAML ({error}).") from None
    items: list[Any] = []
    if isinstance(root, yaml.SequenceNode):
        items = root.value
    elif isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if getattr(key, "value", None) == "cases" and isinstance(value, yaml.SequenceNode):
                items = value.value
    return data, [node.start_mark.line + 1 for node in items]
