"""Local pipelines: an agent, or a chain of agents, over many items in this process.

:func:`pipeline` runs each item as its own interaction, concurrently and lazily, and
gives an :class:`ItemResult` per item (the same results as ``ray_pipeline`` on Ray);
:mod:`miniagents.pipeline.progress` is the progress bar both show,
:mod:`miniagents.pipeline.item_runner` what runs an item's try if not its chain (a durable
run, an eval's case), :mod:`miniagents.pipeline.durability` where
``pipeline(..., durable=True)`` finds DBOS, and
:mod:`miniagents.pipeline.batching` what ``pipeline(..., batch=...)`` is given (batch mode,
from ``miniagents.ext.llm.batch``).
``miniagents.operators.map_agent`` is the same as an operator on an observable.
"""

from miniagents.pipeline.errors import PipelineArgumentError as PipelineArgumentError
from miniagents.pipeline.errors import PipelineRerunError as PipelineRerunError
from miniagents.pipeline.errors import PipelineTimeoutError as PipelineTimeoutError
from miniagents.pipeline.errors import ProgressBarMissingError as ProgressBarMissingError
from miniagents.pipeline.item_result import ItemResult as ItemResult
from miniagents.pipeline.local import Pipeline as Pipeline
from miniagents.pipeline.local import pipeline as pipeline

__all__ = [
    "ItemResult",
    "Pipeline",
    "PipelineArgumentError",
    "PipelineRerunError",
    "PipelineTimeoutError",
    "ProgressBarMissingError",
    "pipeline",
]
