"""The argument checks every layer shares (``miniagents.arguments``), and their one error.

Each check takes what it must and refuses the rest with an ``ArgumentError`` (a
``ValueError``), or the subclass its caller names: the errors the layers raised before
(``StreamLimitError``, ``LLMConfigurationError``, ...) derive from it, so that code catching
either keeps working. No module of the package writes such a check by hand.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import assert_type

import pytest

import miniagents.errors
from miniagents import MiniAgents
from miniagents.arguments import (
    a_class,
    check_count,
    check_flag,
    check_number,
    check_path,
    check_seconds,
    check_text,
    coroutine_refusal,
    refused_argument,
)
from miniagents.errors import ArgumentError, LLMConfigurationError, MiniAgentsError
from miniagents.ext.llm.batch import BatchMode
from miniagents.ext.llm.usage import Budget

PACKAGE = Path(miniagents.errors.__file__).resolve().parent

NOT_NUMBERS = [True, False, None, "1", [1], math.nan]


def test_a_count_is_a_whole_number_of_at_least_its_least() -> None:
    assert check_count(1, "n") == 1
    assert check_count(0, "n", least=0) == 0
    for bad in [0, -1, 1.0, 1.5, *NOT_NUMBERS]:
        with pytest.raises(ArgumentError, match=r"^n must be a whole number of at least 1; got "):
            check_count(bad, "n")
    with pytest.raises(ArgumentError, match=r"whole number of at least 0; got -1\.$"):
        check_count(-1, "n", least=0)


def test_seconds_are_a_number_above_0_and_finite_unless_told() -> None:
    assert check_seconds(2, "t") == 2.0
    assert isinstance(check_seconds(2, "t"), float)
    assert check_seconds(0, "t", zero=True) == 0.0
    assert check_seconds(math.inf, "t", forever=True) == math.inf
    refused = {
        (False, False): [0, -1, math.inf, *NOT_NUMBERS],
        (True, False): [-0.5, math.inf, *NOT_NUMBERS],
        (False, True): [0, -math.inf, *NOT_NUMBERS],
        (True, True): [-1, -math.inf, *NOT_NUMBERS],
    }
    rules = {
        (False, False): "a positive, finite number of seconds",
        (True, False): "a finite number of seconds of at least 0",
        (False, True): "a positive number of seconds",
        (True, True): "a number of seconds of at least 0",
    }
    for (zero, forever), values in refused.items():
        for bad in values:
            with pytest.raises(ArgumentError) as raised:
                check_seconds(bad, "t", zero=zero, forever=forever)
            assert str(raised.value) == f"t must be {rules[zero, forever]}; got {bad!r}."


def test_a_number_is_from_0_to_its_most() -> None:
    assert check_number(0, "usd") == 0.0
    assert check_number(math.inf, "usd") == math.inf
    for bad in [-0.01, *NOT_NUMBERS]:
        with pytest.raises(ArgumentError, match=r"^usd must be a number of US dollars of at least"):
            check_number(bad, "usd", unit="US dollars")
    assert [check_number(value, "p", most=1) for value in (0, 1, 0.5)] == [0, 1, 0.5]
    for bad in [-0.1, 1.01, math.inf, *NOT_NUMBERS]:
        with pytest.raises(ArgumentError, match=r"^p must be a number from 0 to 1; got "):
            check_number(bad, "p", most=1)


def test_a_number_may_have_a_least_below_0() -> None:
    assert [check_number(value, "p", least=-2, most=2) for value in (-2, 0, 2)] == [-2, 0, 2]
    for bad in [-2.5, 2.01, math.nan, *NOT_NUMBERS]:
        with pytest.raises(ArgumentError, match=r"^p must be a number from -2 to 2; got "):
            check_number(bad, "p", least=-2, most=2)


def test_a_number_may_be_below_its_most() -> None:
    assert [
        check_number(value, "p", least=-2, most=2, below_most=True) for value in (-2, 1.99)
    ] == [
        -2,
        1.99,
    ]
    for bad in [2, 2.0, 2.01, math.inf, math.nan, *NOT_NUMBERS]:
        with pytest.raises(
            ArgumentError, match=r"^p must be a number from -2 up to but not including 2; got "
        ):
            check_number(bad, "p", least=-2, most=2, below_most=True)


def test_a_finite_number_refuses_inf() -> None:
    assert check_number(2.5, "t", finite=True) == 2.5
    for bad in [math.inf, -math.inf, math.nan]:
        with pytest.raises(ArgumentError, match=r"^t must be a finite number of at least 0; got "):
            check_number(bad, "t", finite=True)


def test_a_path_is_a_str_or_a_path_like() -> None:
    given = ("a.md", Path("a.md"))
    assert [check_path(path, "file", owner="f", fix="") for path in given] == list(given)
    paths: list[object] = [None, 3, b"a.md", ["a.md"]]
    for bad in paths:
        with pytest.raises(ArgumentError, match=r"^f needs file to be a path \(a str or a Path"):
            check_path(bad, "file", owner="f", fix="Pass e.g. f('a.md').")
    for blank in ["", "  "]:  # (was: taken, and read as the current folder, ".")
        with pytest.raises(ArgumentError, match=r"^f needs file to be the path of a file, not an"):
            check_path(blank, "file", owner="f", fix="Pass e.g. f('a.md').")


def test_a_text_has_more_than_spaces_and_a_flag_is_a_bool() -> None:
    assert check_text("hi", "name", most=2) == "hi"
    texts: list[object] = ["", "  \n", None, 1, b"hi", "abc"]
    for bad in texts:
        with pytest.raises(ArgumentError, match=r"^name must be a non-empty str of at most 2"):
            check_text(bad, "name", most=2)
    assert check_flag(False, "on") is False
    flags: list[object] = [0, 1, "yes", None]
    for flag in flags:
        with pytest.raises(ArgumentError, match=r"^on must be True or False; got "):
            check_flag(flag, "on")


def test_the_message_names_who_takes_the_argument_and_the_fix_and_the_error_its_parameter() -> None:
    with pytest.raises(LLMConfigurationError) as raised:
        check_count(
            0, "max_requests", owner="BatchMode", fix="E.g. 100.", error=LLMConfigurationError
        )
    assert str(raised.value) == (
        "BatchMode needs max_requests to be a whole number of at least 1; got 0. E.g. 100."
    )
    assert raised.value.parameter == "max_requests"
    assert isinstance(raised.value, ArgumentError)
    assert isinstance(raised.value, ValueError)


def test_a_rule_of_the_callers_own_is_refused_with_the_checks_sentence_as_its_error() -> None:
    refused = refused_argument(
        5,
        "voice",
        "a str",
        owner="The agent V",
        fix="E.g. voice='ash'.",
        error=LLMConfigurationError,
    )
    assert_type(refused, LLMConfigurationError)  # (the caller's class, for mypy too)
    assert type(refused) is LLMConfigurationError
    assert str(refused) == "The agent V needs voice to be a str; got 5. E.g. voice='ash'."
    assert refused.parameter == "voice"
    plain = refused_argument([1], "tags", "a tuple", error=ArgumentError)
    assert (str(plain), plain.parameter) == ("tags must be a tuple; got [1].", "tags")


def test_a_long_value_is_cut_in_the_message() -> None:
    refused = refused_argument(list(range(100)), "tags", "a tuple", error=ArgumentError)
    shown = repr(list(range(100)))[:80]
    assert str(refused) == f"tags must be a tuple; got {shown}...."  # (was: all 390 characters)


def test_a_coroutine_is_taken_and_its_uncalled_function_refused_with_the_call_to_write() -> None:
    async def main() -> None:
        pass

    coroutine = main()
    assert coroutine_refusal(coroutine, "start") is None
    coroutine.close()
    refusal = coroutine_refusal(main, "start")
    assert refusal is not None
    assert refusal.startswith("start() takes a coroutine, not <function ")
    assert refusal.endswith(": call the async function, start(main()), with the parentheses.")


def test_a_class_is_named_after_its_article() -> None:
    class Error(Exception):
        pass

    assert [a_class(cls) for cls in (str, int, Error, MiniAgents)] == [
        "a str",
        "an int",
        "an Error",
        "a MiniAgents",
    ]
    assert a_class("OfflineNote") == "an OfflineNote"  # (a name given as it is)


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("Unit", "a Unit"),
        ("User", "a User"),
        ("UsageError", "a UsageError"),
        ("UnicodeError", "a UnicodeError"),
        ("Undefined", "an Undefined"),
        ("UUID", "a UUID"),
        ("URL", "a URL"),
        ("Hour", "an Hour"),
        ("Handle", "a Handle"),
        ("HTTPError", "an HTTPError"),
        ("OSError", "an OSError"),
        ("LLMCall", "an LLMCall"),
        ("JSONDecodeError", "a JSONDecodeError"),
        ("OneOf", "a OneOf"),
        ("OfflineMessage", "an OfflineMessage"),
        ("int", "an int"),
        ("str", "a str"),
        ("uint8", "a uint8"),
        ("NoneType", "a NoneType"),
        ("X", "an X"),
        ("T", "a T"),
    ],
)
def test_a_class_takes_the_article_of_how_its_name_sounds(name: str, named: str) -> None:
    """By the first letter alone it was "an Unit", "an UUID", "a Hour", "a HTTPError"."""
    assert a_class(name) == named


def test_no_module_builds_an_argument_refusal_of_its_own() -> None:
    """The refusals made from a caller's error class are made by ``refused_argument`` only:
    the private copies it replaced (``_refused``, ``_wrong``, ``_not_a_description``) are gone."""
    copies = {
        f"{path.relative_to(PACKAGE.parent)}: {node.name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.parse(path.read_text(encoding="utf-8")).body  # (module-level functions)
        if isinstance(node, ast.FunctionDef)
        and node.name in {"_refused", "_wrong", "_not_a_description"}
    }
    assert not copies, f"Build these refusals with miniagents.arguments.refused_argument: {copies}"


def test_the_layers_argument_errors_are_argument_errors_still_caught_as_before() -> None:
    subclasses = {
        "StreamLimitError": "MiniAgentsError",
        "ConcurrencyLimitError": "MiniAgentsError",
        "OperatorArgumentError": "MiniAgentsError",
        "PipelineArgumentError": "MiniAgentsError",
        "RayPipelineArgumentError": "MiniAgentsError",
        "WebConfigurationError": "MiniAgentsError",
        "LLMConfigurationError": "LLMError",
        "A2AConfigurationError": "A2AError",
        "RayAgentArgumentError": "RayAgentError",
        "ChatHistoryOptionError": "ChatHistoryError",
        "EvalArgumentError": "EvalsError",
        "EvaluatorDefinitionError": "EvalsError",
    }
    for name, parent in subclasses.items():
        error = getattr(miniagents.errors, name)
        assert issubclass(error, ArgumentError), name
        assert issubclass(error, getattr(miniagents.errors, parent)), name
        assert issubclass(error, ValueError), name
    assert issubclass(ArgumentError, MiniAgentsError)


def test_the_layers_checks_raise_their_own_errors_through_the_one_check() -> None:
    with pytest.raises(miniagents.errors.StreamLimitError) as limit:
        MiniAgents(replay_window=0)
    with pytest.raises(LLMConfigurationError) as batch:
        BatchMode(idle_wait=-1)
    with pytest.raises(LLMConfigurationError) as budget:
        Budget(max_cost_usd=float("nan"))
    assert str(limit.value) == (
        "replay_window must be a whole number of at least 1; got 0. Pass e.g. "
        "replay_window=1024, or replay_window=None for no limit."
    )
    assert str(batch.value) == (
        "BatchMode needs idle_wait to be a finite number of seconds of at least 0; got -1. "
        "E.g. BatchMode(idle_wait=1)."
    )
    assert str(budget.value).startswith("A Budget needs max_cost_usd to be a number of US dollars")
    assert (limit.value.parameter, batch.value.parameter) == ("replay_window", "idle_wait")


HAND_WRITTEN_ALLOWED: dict[str, str] = {
    "miniagents.arguments": "the checks themselves",
    "miniagents.ext.a2a._wire": "a remote's JSON (not an argument): a protocol error",
    "miniagents.ext.a2a.server": "a client's JSON-RPC id (not an argument): a protocol error",
    "miniagents.ext.llm.batch._run": "reads the stall timeout checked elsewhere: refuses nothing",
    "miniagents.ext.llm.batch.openai_batches": "a result line's status_code (not an argument): "
    "that request's failure",
    "miniagents.evals.tree": "a stored report's counts and costs (not an argument): "
    "an EvalReportError naming the step or case",
}
"""Modules that test ``isinstance(x, bool) or not isinstance(x, <number>)`` themselves."""


def hand_written_number_checks(source: str) -> list[int]:
    """The lines that refuse a bool for a number by hand: ``isinstance(x, bool)`` beside a
    ``not isinstance(x, ...)`` of the same ``x``."""
    found: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.BoolOp):
            continue
        tested = {
            (ast.unparse(call.args[0]), ast.unparse(call.args[1]) == "bool")
            for call in ast.walk(node)
            if isinstance(call, ast.Call)
            and getattr(call.func, "id", None) == "isinstance"
            and len(call.args) == 2
        }
        if any((name, True) in tested and (name, False) in tested for name, _ in tested):
            found.append(node.lineno)
    return found


def test_no_module_writes_a_number_check_by_hand() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        if module.startswith("miniagents.testing") or module in HAND_WRITTEN_ALLOWED:
            continue
        lines = hand_written_number_checks(path.read_text(encoding="utf-8"))
        if lines:
            found[module] = lines
    assert not found, (
        f"These check a number by hand: {found}. Use miniagents.arguments (check_count, "
        "check_seconds, ...), with error= the layer's error."
    )


def test_the_hand_written_check_is_seen() -> None:
    source = (
        "def f(n):\n"
        "    if isinstance(n, bool) or not isinstance(n, int) or n < 1:\n"
        "        raise ValueError(n)\n"
    )
    assert hand_written_number_checks(source) == [2]
    assert hand_written_number_checks("ok = isinstance(n, bool)\n") == []
