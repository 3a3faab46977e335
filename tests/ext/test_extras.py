"""The extras: each third-party module an extension package imports is listed in its extra.

A module that a package imports only because a distribution of its extra brings it along
(a dependency of a dependency) goes the day that distribution drops it, and a user's
resolver keeps no floor of ours for it: so each is listed in the extra itself, with a
floor. The few still relied on so are :data:`STILL_TRANSITIVE`, each with the distribution
that brings it (one of them listed at last fails this test, until it is struck off there).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "miniagents" / "ext"

EXTRAS_OF = {
    "a2a": ("a2a",),
    "dbos": ("dbos",),
    "mcp": ("mcp",),
    "otel": ("otel",),
    "ray": ("ray",),
    "realtime": ("realtime", "web"),  # (the voice page, voice_app, is served as a web app)
    "web": ("web",),
}
"""Each extension package with an extra, and the extras its modules may import from."""

STILL_TRANSITIVE: dict[tuple[str, str], str] = {}
"""The distributions a package imports that its extras do not list yet (by package and
distribution), each with the one that brings it along."""


def _name(requirement: str) -> str:
    """The distribution's name of ``requirement`` (``"mcp>=2.2,<3"``: ``"mcp"``), normalized."""
    return _normalized(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0])


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _listed() -> tuple[set[str], dict[str, set[str]]]:
    """The package's dependencies, and each extra's."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    extras = project["optional-dependencies"]
    return (
        {_name(requirement) for requirement in project["dependencies"]},
        {extra: {_name(requirement) for requirement in extras[extra]} for extra in extras},
    )


def _run_time_imports(tree: ast.Module) -> Iterator[str]:
    """The modules that ``tree`` imports when it runs (not for type checkers only)."""
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(inner) for part in node.body for inner in ast.walk(part))
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


@functools.cache
def _holders() -> dict[str, list[str]]:
    """The installed distributions that hold each top-level module (read once: it is slow)."""
    return dict(importlib.metadata.packages_distributions())


@functools.cache
def _distribution(module: str) -> str | None:
    """The installed distribution that holds ``module`` (``None``: none does)."""
    top = module.partition(".")[0]
    holders = _holders().get(top, [])
    if len(holders) > 1:  # (a namespace package: the one that holds the module's folder)
        inner = "/".join(module.split(".")[:2])
        holders = [
            holder
            for holder in holders
            if any(
                str(file).startswith(f"{inner}/") or str(file) == f"{inner}.py"
                for file in importlib.metadata.distribution(holder).files or ()
            )
        ]
    return _normalized(holders[0]) if holders else None


def _imported_distributions(package: str) -> dict[str, set[str]]:
    """The third-party distributions ``package``'s modules import, with the modules."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for module in _run_time_imports(ast.parse(path.read_text(encoding="utf-8"))):
            top = module.partition(".")[0]
            if top in sys.stdlib_module_names or top in ("miniagents", "__future__"):
                continue
            distribution = _distribution(module)
            assert distribution is not None, f"{path.name} imports {module}, installed by none"
            found.setdefault(distribution, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_of_an_extension_is_listed_in_its_extra() -> None:
    core, extras = _listed()
    unlisted: list[str] = []
    struck: list[str] = []
    for package, its_extras in EXTRAS_OF.items():
        allowed = core.union(*(extras[extra] for extra in its_extras))
        imported = _imported_distributions(package)
        struck.extend(
            f"{known}: {distribution} (no longer imported)"
            for known, distribution in STILL_TRANSITIVE
            if known == package and distribution not in imported
        )
        for distribution, modules in sorted(imported.items()):
            known = (package, distribution) in STILL_TRANSITIVE
            if distribution not in allowed and not known:
                unlisted.append(f"{distribution} (imported by {', '.join(sorted(modules))})")
            elif distribution in allowed and known:
                struck.append(f"{package}: {distribution}")
    assert not unlisted, (
        "These distributions are imported by an extension package but listed in none of "
        f"its extras {EXTRAS_OF}: {unlisted}. Add each to the extra in pyproject.toml (and "
        "to `all`), with the floor the distribution that brings it requires."
    )
    assert not struck, (
        f"Strike these off STILL_TRANSITIVE (listed in their extras now, or gone): {struck}."
    )


def test_the_mcp_extra_lists_what_its_code_imports_beside_the_sdk() -> None:
    # (httpx2 and starlette came only with mcp: a user's resolver kept no floor of ours)
    _, extras = _listed()
    assert {"mcp", "httpx2", "starlette"} <= extras["mcp"]
    assert {"httpx2", "starlette"} <= extras["all"]
