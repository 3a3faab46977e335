"""Ray's own errors, translated in one place: a worker or mailbox that died, or other failures."""

from __future__ import annotations

from miniagents.ext.ray.errors import RayAgentError, RayWorkerDiedError

__all__ = ["mailbox_died_error", "ray_failure", "worker_died", "worker_died_error"]


def worker_died(error: BaseException) -> bool:
    """Whether ``error`` says that the worker (its process, or its node) died: worth a retry."""
    import ray.exceptions as ray_errors

    return isinstance(
        error,
        (
            ray_errors.WorkerCrashedError,
            ray_errors.NodeDiedError,
            ray_errors.LocalRayletDiedError,
            ray_errors.OutOfMemoryError,
            ray_errors.ObjectLostError,
        ),
    )


def worker_died_error(
    what: str, cause: BaseException, note: str, function: str, fix: str | None = None
) -> RayWorkerDiedError:
    """The error for a worker that died running ``what``, after the retries ``note`` tells of.

    ``fix`` (a sentence) replaces the usual advice (the worker's logs, memory, max_retries).
    """
    if fix is None:
        fix = (
            "Check the worker's logs, give it more memory, or raise max_retries in "
            f"{function}(...)."
        )
    error = RayWorkerDiedError(
        f"The Ray worker running {what} died before it finished ({cause}); {note}. {fix}"
    )
    error.__cause__ = cause
    return error


def ray_failure(
    error: BaseException, what: str, because: BaseException | None = None
) -> RayAgentError:
    """The error for any other failure of Ray's while running ``what``.

    ``because``: the error that made the driver stop the task (what failed was that stop):
    the message says it too, as the caller's to fix.
    """
    message = f"Ray could not run {what}: {error}"
    if because is not None:
        message = f"{message} It was being stopped because of this error: {because}"
    failure = RayAgentError(message)
    failure.__cause__ = error
    return failure


def mailbox_died_error(
    what: str, cause: BaseException, note: str, function: str, fix: str | None = None
) -> RayWorkerDiedError:
    """The error for the driver's mailbox actor dying while ``what`` ran (``note``: what then).

    It is a :class:`RayWorkerDiedError`: the mailbox's worker process died, and the retries
    of ``max_retries`` (of ``function``) count it as they count the death of the worker
    running ``what``. ``fix`` (a sentence) replaces the usual advice (the memory and logs of
    the node, ``max_retries``).
    """
    if fix is None:
        fix = (
            "Check the memory and the logs of the driver's node, where the mailbox runs "
            f"(`ray status`), or raise max_retries in {function}(...)."
        )
    error = RayWorkerDiedError(
        f"The mailbox actor that carries the input messages of {what} to its Ray worker died "
        f"({cause}); {note}. The next interactions use a new mailbox. {fix}"
    )
    error.__cause__ = cause
    return error
