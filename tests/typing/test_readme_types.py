"""Every python snippet of the README and of the docs pages passes ``mypy --strict``, as a
user's module would.

Each snippet is checked as a module of its own (``doc_snippet_NNN``, NNN its index among
the pages' python blocks, as in ``tests/test_docs.py``), in the one ``mypy`` run of the
suite (``tests/fakes/typecheck.py``), with the project's ``mypy.ini`` (strict,
``warn_unused_ignores``). A snippet that fails says which block it is, so the fix goes where
it belongs: in the snippet, or in the library when its types are what is wrong (no casts
in snippets to hide a typing gap).
"""

from __future__ import annotations

from tests.fakes.doc_pages import SNIPPETS
from tests.fakes.typecheck import mypy_report, snippet_module


def test_every_snippet_of_the_pages_passes_mypy_strict() -> None:
    report = mypy_report()
    assert report.status != 2, f"mypy could not check the snippets:\n{report.stdout}"
    failing = [
        index
        for index in range(len(SNIPPETS))
        if report.errors_for(report.snippets[snippet_module(index)])
    ]
    shown = "\n\n".join(
        f"{SNIPPETS[index].name}:\n{SNIPPETS[index].code}\n"
        + "\n".join(report.lines_for(report.snippets[snippet_module(index)]))
        for index in failing[:3]
    )
    names = [SNIPPETS[index].name for index in failing]
    assert not failing, f"mypy --strict fails on the snippets {names}:\n{shown}"


def test_a_snippet_with_a_type_error_fails_the_check() -> None:
    """The run is real: the reply of a plain agent has no ``model`` (only LLM replies do)."""
    errors = mypy_report().errors_for(mypy_report().snippets["planted_error"])
    assert len(errors) == 1, errors
    assert '"Message" has no attribute "model"' in errors[0]
