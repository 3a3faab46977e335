"""The contract shared with ``pipeline`` (``tests/fakes/pipeline_contract.py``), on Ray."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pytest

from miniagents import MiniAgent
from miniagents.ext.ray import RayPipeline, ray_pipeline
from tests.fakes.pipeline_contract import CASES, Runner

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]


def on_ray(
    agents: MiniAgent[...] | Sequence[MiniAgent[...]],
    items: Iterable[str],
    /,
    *,
    max_in_flight: int = 64,
    ordered: bool = True,
    progress: bool | None = None,
    description: str | None = None,
) -> RayPipeline[str]:
    """``ray_pipeline`` with small tasks (the cluster has 2 CPUs)."""
    return ray_pipeline(
        agents,
        items,
        max_in_flight=max_in_flight,
        ordered=ordered,
        progress=progress,
        description=description,
        num_cpus=0.5,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_ray_pipeline_keeps_the_contract(case: Callable[[Runner], None]) -> None:
    case(on_ray)
