"""Datasets in code and in files (YAML, JSON, JSONL), validated, every error naming its case."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from miniagents import Message
from miniagents.errors import MissingExtraError
from miniagents.evals import (
    Case,
    Contains,
    Dataset,
    DatasetError,
    ExactMatch,
    FuzzyMatch,
    MaxDuration,
    Regex,
    ToolsCalled,
    load_dataset,
)


class Question(Message):
    topic: str


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cases_without_a_name_are_named_by_their_place() -> None:
    dataset = Dataset([Case("a"), Case("b", name="second"), Case("c")], name="letters")
    assert [case.name for case in dataset] == ["case-1", "second", "case-3"]
    assert len(dataset) == 3
    assert dataset.case("second").input == "b"
    with pytest.raises(DatasetError, match="no case named 'fourth'"):
        dataset.case("fourth")


def test_a_dataset_refuses_two_cases_of_one_name_and_what_is_not_a_case() -> None:
    with pytest.raises(DatasetError, match="Cases #1 and #3 of the dataset 'd' are both named 'x'"):
        Dataset([Case("a", name="x"), Case("b"), Case("c", name="x")], name="d")
    with pytest.raises(DatasetError, match=r"Case #2 of the dataset 'dataset' is 'b', not a Case"):
        Dataset([Case("a"), "b"])  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="has no case"):
        Dataset([])
    with pytest.raises(DatasetError, match="takes a list of Case objects"):
        Dataset("abc")  # type: ignore[arg-type]


def test_a_case_or_dataset_of_the_wrong_kind_of_parts_says_what_to_give() -> None:
    # (each was a bare TypeError from dict() or tuple(), or a name that broke the reports)
    with pytest.raises(DatasetError, match=r"The case 'q' needs its metadata as a mapping"):
        Case("a", name="q", metadata=None)  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match=r"needs its evaluators as a list.*\[Contains\("):
        Case("a", evaluators=Contains())  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match=r"The dataset 'd' needs its evaluators as a list"):
        Dataset([Case("a")], name="d", evaluators=Contains())  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match=r"A dataset's name is a str, not 3"):
        Dataset([Case("a")], name=3)  # type: ignore[arg-type]


def test_a_cases_metadata_is_read_only() -> None:
    case = Case("a", metadata={"level": 1})
    with pytest.raises(TypeError):
        case.metadata["level"] = 2  # type: ignore[index]


def test_a_yaml_file_holds_the_cases_their_evaluators_and_the_datasets(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "capitals.yaml",
        """\
name: capitals
evaluators:
  - contains
  - max_duration: 5
cases:
  - name: france
    input: What is the capital of France?
    expected: Paris
    metadata: {region: europe}
  - input: What is the capital of Peru?
    expected: Lima
    evaluators:
      - regex: "^Lima"
      - fuzzy: {threshold: 0.7}
      - tools: {tools: [search], order: exact}
""",
    )
    dataset = load_dataset(path)
    assert dataset.name == "capitals"
    france, peru = dataset.cases
    assert (france.name, france.input, france.expected) == (
        "france",
        "What is the capital of France?",
        "Paris",
    )
    assert dict(france.metadata) == {"region": "europe"}
    assert peru.name == "case-2"
    assert [type(evaluator) for evaluator in dataset.evaluators] == [Contains, MaxDuration]
    assert [type(evaluator) for evaluator in peru.evaluators] == [Regex, FuzzyMatch, ToolsCalled]
    regex, fuzzy, tools = peru.evaluators
    assert isinstance(regex, Regex)
    assert regex.pattern.pattern == "^Lima"
    assert isinstance(fuzzy, FuzzyMatch)
    assert fuzzy.threshold == 0.7
    assert isinstance(tools, ToolsCalled)
    assert (tools.tools, tools.order) == (("search",), "exact")


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".yaml"])
def test_a_file_that_starts_with_a_byte_order_mark_is_read(tmp_path: Path, suffix: str) -> None:
    # (as editors on Windows save UTF-8: JSON's parser refused it, "Unexpected UTF-8 BOM")
    text = '{"input": "one", "expected": "1"}' if suffix == ".jsonl" else '[{"input": "one"}]'
    path = tmp_path / f"cases{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert [case.input for case in load_dataset(path)] == ["one"]


def test_jsonl_and_json_files_and_a_yaml_list(tmp_path: Path) -> None:
    lines = _write(
        tmp_path,
        "cases.jsonl",
        '{"name": "a", "input": "one", "expected": "1", "evaluators": ["exact"]}\n\n'
        '{"input": "two", "expected": "2"}\n',
    )
    dataset = load_dataset(lines)
    assert dataset.name == "cases"
    assert [(case.name, case.input) for case in dataset] == [("a", "one"), ("case-2", "two")]
    assert isinstance(dataset.cases[0].evaluators[0], ExactMatch)
    whole = _write(tmp_path, "whole.json", '{"name": "w", "cases": [{"input": "x"}]}')
    assert load_dataset(whole).name == "w"
    listed = _write(tmp_path, "listed.yml", "- input: x\n- input: y\n")
    assert len(load_dataset(listed, name="given")) == 2
    assert load_dataset(listed, name="given").name == "given"


def test_typed_inputs_and_expectations_are_validated(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "typed.yaml",
        "- input: {text: Tell me, topic: rivers}\n  expected: 3\n",
    )
    dataset = load_dataset(path, input_type=Question, expected_type=int)
    case = dataset.cases[0]
    assert case.input == Question(text="Tell me", topic="rivers")
    assert case.expected == 3


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad.yaml",
            "cases:\n  - input: fine\n  - name: peru\n    input: 42\n",
            r"bad.yaml, case 'peru' \(line 3\): input: Input should be a valid string "
            r"\(got 42\)",
        ),
        (
            "bad.yaml",
            "- input: fine\n- expected: Lima\n",
            r"bad.yaml, case #2 \(line 2\): the case has no 'input'",
        ),
        (
            "bad.yaml",
            "- input: fine\n  expectd: Lima\n",
            r"case #1 \(line 1\): unknown key\(s\) 'expectd'; a case has name, input",
        ),
        ("bad.yaml", "cases: [1]\n", r"case #1 \(line 1\): a case is a mapping with 'input'"),
        ("bad.yaml", "- input: x\n  metadata: 3\n", r"metadata is a mapping, not 3"),
        (
            "bad.yaml",
            "- input: x\n  evaluators: [containz]\n",
            r"case #1 \(line 1\): evaluators: There is no evaluator 'containz'; the ones a "
            r"file may name: exact, fuzzy, contains",
        ),
        (
            "bad.yaml",
            "- input: x\n  evaluators: [{regex: '('}]\n",
            r"evaluators: Regex\('\('\) is not a valid regular expression",
        ),
        (
            "bad.yaml",
            "- input: x\n  evaluators: [{fuzzy: {cutoff: 1}}]\n",
            r"The evaluator fuzzy cannot take \{'cutoff': 1\}",
        ),
        (
            "bad.yaml",
            "- input: x\n  evaluators: [{a: 1, b: 2}]\n",
            r"An evaluator is named alone",
        ),
        ("bad.yaml", "cases:\n  - input: [unclosed\n", r"bad.yaml: not valid YAML"),
        ("bad.yaml", "surprise: 1\ncases: []\n", r"unknown key\(s\) 'surprise'"),
        ("bad.yaml", "cases: 3\n", r"'cases' is a list of cases, not 3"),
        ("bad.yaml", "just text\n", r"a dataset is a list of cases, or a mapping with 'cases'"),
        ("bad.yaml", "cases: []\n", r"there is no case"),
        ("bad.yaml", "name: 3\ncases: [{input: x}]\n", r"the dataset's name is a string"),
        ("bad.jsonl", '{"input": "x"}\n{"input": \n', r"bad.jsonl, line 2: not JSON"),
        ("bad.json", "{", r"bad.json: not JSON"),
        ("bad.txt", "input: x", r"a dataset file is .yaml, .yml, .json or .jsonl"),
        (
            "bad.yaml",
            "- {input: a, name: x}\n- {input: b, name: x}\n",
            r"bad.yaml: Cases #1 and #2 of the dataset 'bad' are both named 'x'",
        ),
    ],
)
def test_a_file_that_is_not_valid_names_the_case_and_its_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_a_missing_file_says_it_cannot_be_read_and_what_to_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(was: the OSError alone, no fix named)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"^missing\.yaml: cannot be read") as info:
        load_dataset("missing.yaml")
    assert str(info.value).endswith(
        f"; give the path of a dataset file (a relative path starts from the current folder, "
        f"{tmp_path})."
    )


def test_yaml_without_pyyaml_gives_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "cases.yaml", "- input: x\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match=r'pip install "miniagents\[evals\]"'):
        load_dataset(path)
