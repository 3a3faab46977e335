"""Ray is optional: check that it is installed, or say how to install it."""

from __future__ import annotations

from miniagents.ext.errors import MissingExtraError

__all__ = ["require_ray"]

_HINT = (
    'Running agents on Ray needs Ray: pip install "miniagents[ray]" '
    "(it installs ray[data] and tqdm)."
)


def require_ray() -> None:
    """Make sure ``import ray`` works.

    Raises:
        MissingExtraError: with the install hint, if Ray is not installed (an ``ImportError``).
    """
    MissingExtraError.unless_importable(["ray"], _HINT)
