"""hatchling's build hook: an editable install exposes the ``miniagents`` package alone.

hatchling's editable install is a path entry (a ``.pth`` file naming a folder), which
Python and type checkers (mypy) both follow; an import hook (setuptools, or hatchling's
``dev-mode-exact``) hides the package from mypy in a user's own project. But a path entry
naming the clone's root would expose everything beside the package there (``tests``,
``examples``) as top-level modules of the user's environment. So the entry names
``.editable-install/``, a folder that holds only a link to the package, which this hook
makes when the editable wheel is built (``dev-mode-dirs`` in ``pyproject.toml``): a
symbolic link, or on Windows, where making one may need a privilege, a directory junction.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

FOLDER = ".editable-install"
PACKAGE = "miniagents"


class EditableFolderHook(BuildHookInterface):  # type: ignore[type-arg]
    """Make ``.editable-install/miniagents``, a link to the package, for an editable install."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Make the link before the editable wheel (its ``.pth`` file) is built."""
        if version != "editable":
            return
        folder = Path(self.root) / FOLDER
        folder.mkdir(exist_ok=True)
        link = folder / PACKAGE
        target = Path(self.root) / PACKAGE
        if link.exists() and link.resolve() == target.resolve():
            return
        if link.is_symlink():
            link.unlink()  # it points elsewhere (the clone moved): made again
        try:
            os.symlink(Path("..") / PACKAGE, link, target_is_directory=True)
        except OSError:
            if sys.platform == "win32":
                _junction(link, target)
            else:
                raise


def _junction(link: Path, target: Path) -> None:
    """Make a Windows directory junction (it needs no privilege, unlike a symbolic link)."""
    command = ["cmd", "/c", "mklink", "/J", str(link), str(target)]
    subprocess.run(command, check=True, capture_output=True)
