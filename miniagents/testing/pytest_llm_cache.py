"""A pytest plugin: a test suite replays its recorded calls of models, with no key and no network.

One line in the suite's ``conftest.py``::

    pytest_plugins = ["miniagents.testing.pytest_llm_cache"]

A test marked ``@pytest.mark.llm_cache`` (or one that asks for the ``llm_cache`` fixture)
runs with a :class:`~miniagents.ext.llm.cache.CallCache` set for every call of a model in
the process: by default it only replays, from the recordings of ``llm_calls.sqlite`` in the
suite's root folder, and a call that was not recorded fails the test with an
``LLMCacheMissError`` that shows how its request differs from the nearest recording (a
prompt that changed). To record::

    pytest --llm-cache=record          # make every call again (with the keys), record it
    pytest --llm-cache=read_through    # replay what is recorded, record what is missing

The mode is, in order: the command line's ``--llm-cache``, the marker's ``mode=``, the
ini option ``llm_cache_mode`` (``replay`` by default); the file: the marker's ``path=``,
else the ini option ``llm_cache_path`` (relative to the root folder). The marker's
``namespace=`` keeps a test's recordings apart from the others'.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast, get_args

import pytest

from miniagents.ext.llm.cache import CacheMode, CallCache, SQLiteCallStore
from miniagents.testing.errors import TestingKitError

__all__ = ["llm_cache"]

_MODES: tuple[str, ...] = get_args(CacheMode)
_MARKER_ARGUMENTS = ("mode", "path", "namespace")
"""The keyword arguments the ``llm_cache`` marker takes."""
_STORES: dict[Path, SQLiteCallStore] = {}
"""The recordings' files opened in this session (one connection each)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--llm-cache`` and the ini options ``llm_cache_path`` and ``llm_cache_mode``."""
    group = parser.getgroup("miniagents", "MiniAgents")
    group.addoption(
        "--llm-cache",
        choices=_MODES,
        default=None,
        help="How the llm_cache tests make their calls of models: replay recordings only "
        "(replay), make and record every call (record), or record what is missing "
        "(read_through).",
    )
    parser.addini(
        "llm_cache_path",
        "The SQLite file of the recorded calls of models (relative to the root folder).",
        default="llm_calls.sqlite",
    )
    parser.addini(
        "llm_cache_mode",
        "The llm_cache tests' mode when --llm-cache is not given.",
        default="replay",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``llm_cache`` marker."""
    config.addinivalue_line(
        "markers",
        "llm_cache(mode=None, path=None, namespace=''): replay (or record) the test's calls of "
        "models with a call cache (miniagents.testing.pytest_llm_cache)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked ``llm_cache`` uses the fixture."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        marked = item.get_closest_marker("llm_cache") is not None
        if marked and isinstance(names, list) and "llm_cache" not in names:
            names.append("llm_cache")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close the recordings' files."""
    for store in _STORES.values():
        store.close()
    _STORES.clear()


@pytest.fixture
def llm_cache(request: pytest.FixtureRequest) -> Iterator[CallCache]:
    """A call cache set for every call of a model in the process, for the test's length.

    Yields:
        The cache (its ``stats`` say what it replayed and recorded).

    Raises:
        TestingKitError: if the marker has an argument that is not one of its keywords
            (``mode=``, ``path=``, ``namespace=``), or the mode is not a cache mode.
    """
    marker = request.node.get_closest_marker("llm_cache")
    given = dict(marker.kwargs) if marker is not None else {}
    unknown = [repr(value) for value in marker.args] if marker is not None else []
    unknown += [f"{name}=" for name in given if name not in _MARKER_ARGUMENTS]
    if unknown:
        raise TestingKitError(
            f"The llm_cache marker takes the keyword arguments mode=, path= and namespace=, "
            f'not {", ".join(unknown)}: write e.g. @pytest.mark.llm_cache(mode="record").'
        )
    config = request.config
    mode = config.getoption("--llm-cache") or given.get("mode") or config.getini("llm_cache_mode")
    if mode not in _MODES:
        raise TestingKitError(
            f"The llm_cache mode must be one of {', '.join(_MODES)}, got {mode!r}: fix the "
            "marker's mode= or the ini option llm_cache_mode."
        )
    path = Path(given.get("path") or config.getini("llm_cache_path"))
    if not path.is_absolute():
        path = config.rootpath / path
    store = _STORES.get(path)
    if store is None:
        store = _STORES[path] = SQLiteCallStore(path)
    cache = CallCache(store, mode=cast(CacheMode, mode), namespace=str(given.get("namespace", "")))
    remove = cache.install()
    try:
        yield cache
    finally:
        remove()
