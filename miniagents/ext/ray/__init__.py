"""Agents on a Ray cluster: remote interactions that stream, and pipelines over data.

:func:`ray_agent` runs each interaction of an agent in a Ray worker, its replies
streaming back token by token; :func:`ray_pipeline` runs an agent (or a chain of agents)
over many items, or the rows of a ``ray.data.Dataset``, with a bounded number of items in
flight, retries of items whose worker died, and a progress bar. Importing this package
does not import Ray; using it needs ``pip install "miniagents[ray]"``.
"""

from miniagents.ext.ray.agent import RayOptions as RayOptions
from miniagents.ext.ray.agent import ray_agent as ray_agent
from miniagents.ext.ray.errors import MessageSerializationError as MessageSerializationError
from miniagents.ext.ray.errors import RayAgentError as RayAgentError
from miniagents.ext.ray.errors import RayCancelTimeoutError as RayCancelTimeoutError
from miniagents.ext.ray.errors import RayWorkerDiedError as RayWorkerDiedError
from miniagents.ext.ray.errors import RemoteError as RemoteError
from miniagents.ext.ray.errors import RemoteTraceback as RemoteTraceback
from miniagents.ext.ray.pipeline import ItemResult as ItemResult
from miniagents.ext.ray.pipeline import RayPipeline as RayPipeline
from miniagents.ext.ray.pipeline import ray_pipeline as ray_pipeline

__all__ = [
    "ItemResult",
    "MessageSerializationError",
    "RayAgentError",
    "RayCancelTimeoutError",
    "RayOptions",
    "RayPipeline",
    "RayWorkerDiedError",
    "RemoteError",
    "RemoteTraceback",
    "ray_agent",
    "ray_pipeline",
]
