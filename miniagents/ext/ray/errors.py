"""Errors of running agents on Ray; the whole hierarchy is drawn in :mod:`miniagents.errors`.

An error raised by an agent in a Ray worker is not one of these: it reaches the driver's
consumers with its own type and message (its remote traceback is its ``__cause__``, a
:class:`RemoteTraceback`). These errors are about the way there.
"""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "MessageSerializationError",
    "RayAgentArgumentError",
    "RayAgentError",
    "RayCancelTimeoutError",
    "RayPipelineArgumentError",
    "RayPipelineLinkError",
    "RayPipelineRerunError",
    "RayWorkerDiedError",
    "RemoteError",
    "RemoteTraceback",
]


class RayAgentError(MiniAgentsError):
    """Running an agent on Ray failed for a reason of Ray's, not of the agent's own code."""


class RayAgentArgumentError(RayAgentError, ArgumentError):
    """``ray_agent`` was given something that is not an agent, or an option it cannot use."""


class RayWorkerDiedError(RayAgentError):
    """The Ray worker (or its node) running an interaction died before the interaction ended.

    So does the mailbox actor carrying an interaction's input messages to its worker: its
    process died, and ``max_retries`` counts it as the death of the worker.
    """


class RayCancelTimeoutError(RayAgentError, TimeoutError):
    """Stopping remote work (Ray's cancel and what follows it) took too long.

    The work: an interaction of a ``ray_agent``, or a batch of items of a ``ray_pipeline``.
    The driver waits at most their ``cancel_timeout`` (10 s by default) in all; the worker
    waits as long for its agents to end once cancelled. The message names the step that
    did not end.
    """


class RemoteError(RayAgentError):
    """An error raised in a Ray worker that could not travel as itself (it cannot be pickled).

    Its message names the original error's type and message.
    """


class RemoteTraceback(MiniAgentsError):
    """The traceback of an error raised in a Ray worker: the ``__cause__`` of that error.

    It is never raised; it shows, under the error, where the error happened remotely.
    """

    def __init__(self, traceback: str) -> None:
        """Keep the formatted remote traceback."""
        super().__init__(traceback)
        self.traceback = traceback

    def __str__(self) -> str:
        """The remote traceback, set off from the local one."""
        return f'\n"""\n{self.traceback.rstrip()}\n"""'


class MessageSerializationError(MiniAgentsError, TypeError):
    """A message, an argument or an item cannot be pickled to travel to or from a Ray worker.

    The error names the field (or argument) holding the value that cannot be pickled.
    """


class RayPipelineArgumentError(ArgumentError):
    """``ray_pipeline`` was given arguments it cannot use (no agent, items, a limit...)."""


class RayPipelineRerunError(MiniAgentsError, RuntimeError):
    """A ``RayPipeline`` was run a second time (each one runs once)."""


class RayPipelineLinkError(MiniAgentsError, RuntimeError):
    """``ray_pipeline`` was run where state that must stay live applies (e.g. a budget).

    Its batches run on the workers without a way back to the caller while they run, so a
    budget of the caller (``charged_to``, ``with_budget``) could not hold there; the
    message says what to do instead.
    """
