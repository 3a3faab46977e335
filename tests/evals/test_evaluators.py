"""The built-in evaluators and function evaluators, on runs made by hand."""

from __future__ import annotations

import re

import pytest

from miniagents import Message, MessageTuple
from miniagents.evals import (
    AgentsCalled,
    AgentStep,
    Case,
    CaseRun,
    Contains,
    Evaluator,
    EvaluatorDefinitionError,
    ExactMatch,
    FunctionEvaluator,
    FuzzyMatch,
    MatchesJSONSchema,
    MatchesType,
    MaxCost,
    MaxDuration,
    MaxFirstTokenTime,
    MaxTokens,
    ModelCall,
    NoFailedSteps,
    Regex,
    ReplyTree,
    Score,
    ToolCalledWith,
    ToolsCalled,
    ToolStep,
    evaluator,
)
from miniagents.evals.matching import expected_text
from miniagents.ext.llm import UsageTotals


class Weather(Message):
    city: str
    celsius: float


def _run(
    output: str,
    expected: object = None,
    *,
    replies: tuple[Message, ...] | None = None,
    tree: ReplyTree | None = None,
    duration: float = 1.0,
    first_token: float | None = 0.5,
    usage: UsageTotals | None = None,
) -> CaseRun[object, object]:
    return CaseRun(
        case=Case("the question", expected, name="case"),
        repetition=0,
        attempts=1,
        replies=MessageTuple(replies if replies is not None else (Message(text=output),)),
        output=output,
        tree=tree if tree is not None else ReplyTree(),
        duration=duration,
        first_token=first_token,
        usage=usage if usage is not None else UsageTotals(),
    )


def _tree() -> ReplyTree:
    """ORCHESTRATOR: search(q=rivers) -> SEARCHER, then WRITER; a tool that failed."""
    searcher = AgentStep(order=3, agent="SEARCHER", started=0.2, ended=0.4)
    search = ToolStep(
        order=2,
        tool="search",
        call_id="c1",
        arguments={"q": "rivers", "filters": {"year": 2024, "tags": ["a", "b"]}},
        started=0.2,
        ended=0.4,
        result="found",
        children=(searcher,),
    )
    broken = ToolStep(
        order=5,
        tool="lookup",
        call_id="c2",
        arguments={},
        started=0.5,
        ended=0.5,
        result="no",
        error="error result",
    )
    writer = AgentStep(order=4, agent="WRITER", started=0.45, ended=0.9)
    call = ModelCall(order=1, model="gpt", provider="openai", started=0.0, ended=0.2)
    root = AgentStep(
        order=0,
        agent="ORCHESTRATOR",
        started=0.0,
        ended=1.0,
        children=(call, search, writer, broken),
    )
    return ReplyTree(root)


@pytest.mark.parametrize(
    ("evaluator", "output", "expected", "score"),
    [
        (ExactMatch(), " Paris \n", "Paris", Score(1.0, True)),
        (ExactMatch(), "paris", "Paris", Score(0.0, False, "'paris' != 'Paris'")),
        (ExactMatch(case_sensitive=False), "paris", "Paris", Score(1.0, True)),
        (ExactMatch(strip=False), " Paris", "Paris", Score(0.0, False, "' Paris' != 'Paris'")),
        (ExactMatch("Lima"), "Lima", "Paris", Score(1.0, True)),
        (ExactMatch(), "Paris", None, None),
        (Contains(), "It is PARIS.", "paris", Score(1.0, True)),
        (
            Contains(case_sensitive=True),
            "It is PARIS.",
            "paris",
            Score(0.0, False, "missing 'paris'"),
        ),
        (
            Contains(["Paris", "France", "Seine"]),
            "Paris, France",
            None,
            Score(1 - 1 / 3, False, "missing 'Seine'"),
        ),
        (Contains(), "Paris", None, None),
    ],
)
def test_the_text_evaluators(
    evaluator: Evaluator[object, object], output: str, expected: str | None, score: Score | None
) -> None:
    assert evaluator.score(_run(output, expected)) == score


def test_a_message_expected_is_compared_by_its_text() -> None:
    assert ExactMatch().score(_run("Paris", Message(text="Paris"))) == Score(1.0, True)


class Answer(Message):
    confidence: float = 1.0


@pytest.mark.parametrize("make", [ExactMatch, FuzzyMatch, Contains])
@pytest.mark.parametrize(
    ("expected", "fields"),
    [
        (Weather(text="Sunny", city="Paris", celsius=21.5), "(celsius, city)"),
        (Message(text="Sunny", city="Paris"), "(city)"),
        (Answer(text="Sunny", confidence=0.2), "(confidence)"),
    ],
)
def test_a_message_expected_with_fields_beside_its_text_is_refused_by_the_text_evaluators(
    make: type[Evaluator[object, object]], expected: Message, fields: str
) -> None:
    """(was: compared by its text alone, its fields ignored: passed on "Sunny" from Rome)."""
    with pytest.raises(EvaluatorDefinitionError, match="fields beside its text") as info:
        make().score(
            _run("Sunny", expected, replies=(Weather(text="Sunny", city="Rome", celsius=3),))
        )
    assert fields in str(info.value)
    assert "expect its text alone (expected='Sunny')" in str(info.value)
    assert "compare the value with your own evaluator" in str(info.value)


def test_a_message_expected_whose_fields_keep_their_defaults_is_compared_by_its_text() -> None:
    assert ExactMatch().score(_run("Sunny", Answer(text="Sunny"))) == Score(1.0, True)


@pytest.mark.parametrize(
    ("expected", "shown"),
    [
        (Message(text="Sunny", images=[]), "Sunny"),  # (no images: no field beside its text)
        (Answer(text="Sunny"), "Sunny"),
        (Message(text="Sunny", city="Paris"), '{"text":"Sunny","city":"Paris"}'),
        (Message(text="Sunny", raw=b"\xff"), "Message(text='Sunny', raw=b'\\xff')"),
    ],
)
def test_the_report_and_the_text_evaluators_take_an_expected_message_as_text_alone_alike(
    expected: Message, shown: str
) -> None:
    """(was: a message given ``images=[]`` was refused by the evaluators, shown as JSON by
    the report; a field that JSON cannot hold failed the report)."""
    assert expected_text(expected) == shown
    if shown == "Sunny":
        assert ExactMatch().score(_run("Sunny", expected)) == Score(1.0, True)
    else:
        with pytest.raises(EvaluatorDefinitionError, match="fields beside its text"):
            ExactMatch().score(_run("Sunny", expected))


@pytest.mark.parametrize("make", [ExactMatch, FuzzyMatch, Contains])
@pytest.mark.parametrize("expected", [5, ["Paris"], Weather(city="Paris", celsius=21.5)])
def test_an_expected_that_is_not_text_is_refused_by_the_text_evaluators(
    make: type[Evaluator[object, object]], expected: object
) -> None:
    """(was: its str() compared: Contains passed 5 on "Paris 5", ExactMatch failed JSON on a
    space)."""
    with pytest.raises(EvaluatorDefinitionError, match="which is not text") as info:
        make().score(_run("Paris 5 ['Paris']", expected))
    assert "compare the value with your own evaluator" in str(info.value)
    assert "docs/evals.md" in str(info.value)


@pytest.mark.parametrize("make", [ExactMatch, FuzzyMatch, Contains])
def test_an_empty_message_expected_is_refused_as_empty_by_the_text_evaluators(
    make: type[Evaluator[object, object]],
) -> None:
    """(was: refused as "not text", its str() compared, with an example of that str())."""
    with pytest.raises(EvaluatorDefinitionError, match="an empty message") as info:
        make().score(_run("Paris", Message()))
    assert 'expected=Message(text="Paris")' in str(info.value)
    assert "not text" not in str(info.value)


def test_a_text_evaluator_given_what_is_not_text_is_refused_as_it_is_made() -> None:
    with pytest.raises(EvaluatorDefinitionError, match="its expected is 5, not a str"):
        ExactMatch(5)  # type: ignore[arg-type]
    with pytest.raises(EvaluatorDefinitionError, match="its expected is 5, not a str"):
        FuzzyMatch(5)  # type: ignore[arg-type]
    for given in (5, ["Paris", 5]):
        with pytest.raises(EvaluatorDefinitionError, match="its text is 5, not a str"):
            Contains(given)  # type: ignore[arg-type]
    assert Contains(["Paris", "France"]).texts == ("Paris", "France")


def test_fuzzy_match_scores_the_similarity_and_passes_from_its_threshold() -> None:
    close = FuzzyMatch().score(_run("Paris.", "paris"))
    assert close is not None
    assert close.value == pytest.approx(10 / 11)
    assert close.passed
    assert close.reason == "similarity 0.91"
    far = FuzzyMatch(threshold=0.95).score(_run("Paris.", "paris"))
    assert far is not None
    assert not far.passed
    with pytest.raises(EvaluatorDefinitionError, match="threshold to be a number from 0 to 1"):
        FuzzyMatch(threshold=2)


def test_regex_searches_or_matches_the_whole_output() -> None:
    assert Regex(r"\bParis\b").score(_run("It is Paris.")) == Score(1.0, True)
    assert Regex(r"Paris", full=True).score(_run("It is Paris.")) == Score(
        0.0, False, "no match for /Paris/"
    )
    assert Regex(r"paris", flags=re.IGNORECASE).score(_run("PARIS")).passed
    with pytest.raises(EvaluatorDefinitionError, match=r"Regex\('\('\) is not a valid"):
        Regex("(")


def test_a_json_schema_validates_the_output() -> None:
    schema = Weather.model_json_schema()
    evaluator = MatchesJSONSchema(schema)
    assert evaluator.score(_run('{"city": "Oslo", "celsius": 3.5}')) == Score(1.0, True)
    wrong = evaluator.score(_run('{"city": "Oslo", "celsius": "cold"}'))
    assert wrong == Score(0.0, False, "celsius: 'cold' is not of type 'number'")
    missing = evaluator.score(_run('{"celsius": "cold"}'))
    assert missing.reason is not None
    assert missing.reason.endswith("(and 1 more)")
    assert evaluator.score(_run("Oslo")).reason == (
        "not JSON: Expecting value: line 1 column 1 (char 0)"
    )
    with pytest.raises(EvaluatorDefinitionError, match="schema that is not valid"):
        MatchesJSONSchema({"type": "whatever"})


def test_a_type_validates_a_structured_reply_or_the_outputs_json() -> None:
    evaluator = MatchesType(Weather)
    assert evaluator.name == "type:Weather"
    answer = Weather(city="Oslo", celsius=3.5)
    assert evaluator.score(_run(str(answer), replies=(answer,))) == Score(1.0, True)
    assert evaluator.score(_run('{"city": "Oslo", "celsius": 3}')) == Score(1.0, True)
    assert evaluator.score(_run('{"city": "Oslo"}')) == Score(
        0.0, False, "not a Weather: celsius: Field required"
    )
    with pytest.raises(EvaluatorDefinitionError, match="takes a Message subclass"):
        MatchesType(dict)  # type: ignore[arg-type]


class Outlook(Message):
    summary: str


def test_a_type_that_does_not_validate_is_named_after_its_article() -> None:
    # on main: "not a Outlook"
    assert (
        MatchesType(Outlook).score(_run("{}")).reason == "not an Outlook: summary: Field required"
    )


def test_the_performance_evaluators() -> None:
    usage = UsageTotals(requests=2, input_tokens=900, output_tokens=200, cost_usd=0.004)
    run = _run("x", duration=2.5, first_token=0.4, usage=usage)
    assert MaxDuration(3).score(run) == Score(1.0, True, "2.500 s <= 3 s")
    assert MaxDuration(2).score(run) == Score(0.0, False, "2.500 s > 2 s")
    assert MaxFirstTokenTime(0.5).score(run) == Score(1.0, True, "0.400 s <= 0.5 s")
    assert MaxFirstTokenTime(0.5).score(_run("", first_token=None)) == Score(
        0.0, False, "no token came"
    )
    assert MaxTokens(1_000).score(run) == Score(0.0, False, "1,100 tokens > 1,000")
    assert MaxCost(0.01).score(run) == Score(1.0, True, "$0.004000 <= $0.01")
    unpriced = UsageTotals(requests=2, cost_usd=0.001, unpriced_requests=1)
    bound = MaxCost(0.01).score(_run("x", usage=unpriced))
    assert bound.reason == "$0.001000 <= $0.01 (at least: 1 call(s) of unknown price)"
    with pytest.raises(
        EvaluatorDefinitionError, match="MaxCost needs usd to be a number of US dollars"
    ):
        MaxCost(-1)


def test_the_trajectory_evaluators_read_the_tree_at_every_depth() -> None:
    run = _run("x", tree=_tree())
    assert AgentsCalled(["SEARCHER", "WRITER"], order="in_order").score(run) == Score(1.0, True)
    assert AgentsCalled(["WRITER", "SEARCHER"], order="in_order").score(run) == Score(
        0.5,
        False,
        "ran SEARCHER, WRITER; expected WRITER, SEARCHER in this order "
        "(SEARCHER missing or out of order)",
    )
    assert AgentsCalled(["SEARCHER", "WRITER"], order="exact").score(run).passed
    assert AgentsCalled(["SEARCHER"], order="exact").score(run) == Score(
        0.0, False, "ran SEARCHER, WRITER; expected exactly SEARCHER"
    )
    assert AgentsCalled(["WRITER", "EDITOR"]).score(run) == Score(
        0.5, False, "ran SEARCHER, WRITER; never ran EDITOR"
    )
    assert AgentsCalled(["ORCHESTRATOR", "WRITER"]).score(run) == Score(
        0.5,
        False,
        "ran SEARCHER, WRITER; never ran ORCHESTRATOR; ORCHESTRATOR is the case's own agent, "
        "which is not counted: name the agents it asks",
    )  # (it said "never ran ORCHESTRATOR", the agent that ran first)
    assert AgentsCalled([], order="exact").score(_run("x", tree=ReplyTree())).passed
    assert ToolsCalled(["search", "lookup"], order="exact").score(run).passed
    assert ToolsCalled(["lookup"]).score(run).passed
    with pytest.raises(EvaluatorDefinitionError, match="takes a list of names"):
        ToolsCalled("search")
    with pytest.raises(EvaluatorDefinitionError, match="order='any', 'in_order' or 'exact'"):
        ToolsCalled(["search"], order="sorted")  # type: ignore[arg-type]


def test_tool_arguments_are_checked_by_content() -> None:
    run = _run("x", tree=_tree())
    assert ToolCalledWith("search", {"q": "rivers"}).score(run).passed
    nested = {"filters": {"year": 2024, "tags": ("a", "b")}}
    assert ToolCalledWith("search", nested).score(run).passed
    assert ToolCalledWith("search", {"q": "lakes"}).score(run) == Score(
        0.0,
        False,
        "search was called with q='rivers', filters={'year': 2024, 'tags': ['a', 'b']}",
    )
    assert ToolCalledWith("fetch", {}).score(run) == Score(0.0, False, "fetch was never called")
    assert ToolCalledWith("search", {}).name == "tool_args:search"


def test_no_failed_steps_names_what_failed() -> None:
    assert NoFailedSteps().score(_run("x", tree=_tree())) == Score(
        0.0, False, "tool lookup: error result"
    )
    assert NoFailedSteps().score(_run("x")) == Score(1.0, True)


async def test_a_function_is_an_evaluator_of_what_it_returns() -> None:
    @evaluator
    def polite(run: CaseRun[str, str]) -> bool:
        return "please" in run.output

    @evaluator(name="length", threshold=0.5)
    async def short(run: CaseRun[str, str]) -> float:
        return min(1.0, 10 / max(len(run.output), 1))

    @evaluator
    def not_mine(run: CaseRun[str, str]) -> None:
        return None

    def scored(run: CaseRun[str, str]) -> Score:
        return Score(0.25, False, "a quarter")

    text = _run("Say please, twice: please.")
    assert polite.name == "polite"
    assert await polite.ascore(text) == Score(1.0, True)  # type: ignore[arg-type]
    assert polite.score(text) == Score(1.0, True)  # type: ignore[arg-type]
    assert short.name == "length"
    assert await short.ascore(text) == Score(10 / 26, False)  # type: ignore[arg-type]
    assert await not_mine.ascore(text) is None  # type: ignore[arg-type]
    assert await FunctionEvaluator(scored).ascore(text) == Score(0.25, False, "a quarter")  # type: ignore[arg-type]
    with pytest.raises(EvaluatorDefinitionError, match="await ascore"):
        short.score(text)  # type: ignore[arg-type]


async def test_a_function_that_returns_what_no_score_is_fails_with_what_to_return() -> None:
    @evaluator
    def wrong(run: CaseRun[object, object]) -> float:
        return "yes"  # type: ignore[return-value]

    @evaluator
    def too_big(run: CaseRun[object, object]) -> float:
        return 2.0

    with pytest.raises(EvaluatorDefinitionError, match="return a bool, a number from 0 to 1"):
        await wrong.ascore(_run("x"))
    with pytest.raises(EvaluatorDefinitionError, match=r"a number from 0 to 1; got 2\.0"):
        await too_big.ascore(_run("x"))
    with pytest.raises(EvaluatorDefinitionError, match="takes a function of the run"):
        FunctionEvaluator(42)  # type: ignore[arg-type]


def _yes(run: CaseRun[object, object], /) -> bool:
    return True


def test_a_function_that_cannot_take_the_run_alone_is_refused_as_the_evaluator_is_made() -> None:
    """(was: taken, and each case's score a TypeError: "polite() takes 0 positional
    arguments but 1 was given", the run going on with every case failed)."""

    def polite() -> bool:
        return True

    def graded(run: CaseRun[object, object], rubric: str) -> bool:
        return True

    for function in (polite, graded):
        with pytest.raises(EvaluatorDefinitionError, match="calls its function with the run"):
            evaluator(function)  # type: ignore[arg-type]
    with pytest.raises(EvaluatorDefinitionError) as info:
        evaluator(polite)  # type: ignore[arg-type]
    assert "but polite() cannot be called so: give it one parameter" in str(info.value)

    def with_defaults(run: CaseRun[object, object], strict: bool = False) -> bool:
        return not strict

    checks: list[Evaluator[object, object]] = [evaluator(with_defaults), evaluator(_yes)]
    assert [check.score(_run("x")) for check in checks] == [Score(1.0, True)] * 2


def test_an_evaluator_that_implements_nothing_says_what_to_implement() -> None:
    class Empty(Evaluator[object, object]):
        name = "empty"

    with pytest.raises(EvaluatorDefinitionError, match=r"implement score\(run\)"):
        Empty().score(_run("x"))
    assert repr(Empty()) == "Empty(name='empty')"
