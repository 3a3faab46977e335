"""A durable agent given to Ray is refused at once, naming the fix (not at its first call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from miniagents.ext.dbos import durable
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.ray import MessageSerializationError, ray_agent, ray_pipeline

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]


def test_a_durable_agent_is_refused_by_ray_agent_and_ray_pipeline(tmp_path: Path) -> None:
    made = durable(
        offline_agent.fork(alias="ON_RAY", reply="never", token_delay=0),
        database_url=f"sqlite:///{tmp_path / 'runs.sqlite'}",
    )
    with pytest.raises(MessageSerializationError, match="The agent ON_RAY cannot be sent") as sent:
        ray_agent(made, num_cpus=0.5)
    assert "A durable agent (miniagents.ext.dbos) never is" in str(sent.value)
    assert "run it on the driver" in str(sent.value)
    with pytest.raises(MessageSerializationError, match="The agent ON_RAY cannot be sent"):
        ray_pipeline([offline_agent, made], ["an item"])
    assert not (tmp_path / "runs.sqlite").exists()  # nothing ran
