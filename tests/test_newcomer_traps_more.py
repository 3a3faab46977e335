"""More mistakes a newcomer makes following the docs, each met with an error that names the fix.

The pages walked here: structured output, chat history, the call cache, batch mode, evals,
the studio and extending. Each test writes what a user new to MiniAgents writes (a slight
variation of a page's snippet, with the mistake) and checks that the library says what was
wrong and what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from miniagents.evals import Case, Contains, aevaluate
from miniagents.evals.errors import EvalArgumentError
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.studio.app import studio_app
from miniagents.ext.studio.errors import StudioConfigurationError


async def test_an_evaluators_class_given_for_an_evaluator_is_told_to_make_one() -> None:
    agent = offline_agent.fork(token_delay=0, reply="Paris")
    evaluators: Any = [Contains]  # the class, not Contains()
    with pytest.raises(EvalArgumentError, match=r"Contains is an evaluator's class.*Contains\(\)"):
        await aevaluate(agent, [Case("Capital of France?", "Paris")], evaluators, progress=False)


@pytest.mark.parametrize("dataset", ["Capital of France?", Case("Capital of France?", "Paris")])
async def test_a_single_input_or_case_for_a_dataset_is_told_to_make_it_a_list(
    dataset: object,
) -> None:
    agent = offline_agent.fork(token_delay=0, reply="Paris")
    given: Any = dataset
    with pytest.raises(EvalArgumentError, match=r"not .*: pass e\.g\. \[Case\(input=\.\.\."):
        await aevaluate(agent, given, [Contains()], progress=False)


@pytest.mark.parametrize(("token", "shown"), [(None, "not None"), (b"x" * 20, "of type bytes")])
def test_a_studio_given_no_text_for_its_token_is_told_how_to_make_one(
    token: object, shown: str, tmp_path: Path
) -> None:
    given: Any = token
    with pytest.raises(
        StudioConfigurationError, match=rf"{shown}: .*token=secrets\.token_urlsafe\(\)"
    ):
        studio_app(tmp_path / "runs.sqlite", token=given)
