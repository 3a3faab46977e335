"""The contract shared with ``ray_pipeline`` (``tests/fakes/pipeline_contract.py``), locally."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from miniagents import pipeline
from tests.fakes.pipeline_contract import CASES, Runner


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_pipeline_keeps_the_contract(case: Callable[[Runner], None]) -> None:
    case(pipeline)
