"""``miniagents.errors`` exports every error of the package and draws it in its hierarchy."""

from __future__ import annotations

import importlib
import pkgutil

import miniagents
import miniagents.errors
from miniagents.errors import MiniAgentsError


def all_subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for subclass in cls.__subclasses__():
        found |= {subclass, *all_subclasses(subclass)}
    return found


def test_every_error_of_the_package_is_exported_and_drawn_in_the_hierarchy() -> None:
    for module in pkgutil.walk_packages(miniagents.__path__, "miniagents."):
        importlib.import_module(module.name)
    errors = {
        error
        for error in all_subclasses(MiniAgentsError)
        if error.__module__.startswith("miniagents.")
    }
    assert len(errors) >= 20
    hierarchy = miniagents.errors.__doc__ or ""
    for error in errors:
        assert getattr(miniagents.errors, error.__name__, None) is error, error
        assert error.__name__ in miniagents.errors.__all__, error
        assert f"── {error.__name__}" in hierarchy, error
