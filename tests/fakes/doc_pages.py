"""The python blocks of the README and of the docs pages, as the tests run and type-check them.

``tests/test_docs.py`` runs each block and compares what it prints with its page;
``tests/fakes/typecheck.py`` checks each with ``mypy --strict``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root."""

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
"""Every page whose python blocks run: the README, then the site's pages (``docs/``)."""

BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
STDIN = re.compile(r"<!-- stdin\n(.*?)-->", re.DOTALL)
INCLUDED = re.compile(r'\s*--8<-- "([^"]+)"\s*')
"""A block that is a file of the repository (an example), which mkdocs puts in its place."""
SHOWN = re.compile(r"<!-- example: (\S+) -->\s*$")
"""The comment right before a block that shows an example whole (the file itself, as it is:
it runs as the example, and ``test_a_block_that_shows_an_example_is_that_example`` keeps
the two the same), so that the page reads whole wherever it is read, GitHub included."""


@dataclass(frozen=True)
class Snippet:
    """A python block of a page, with its expected output and piped input, if any."""

    code: str
    expected: str | None
    """The text block right after it (only prose may come between), if there is one."""
    stdin: str
    """The lines of a ``<!-- stdin ... -->`` comment between the two blocks."""
    page: str = "README.md"
    """The page it is on, relative to the repository root."""
    number: int = 1
    """Its place among the page's python blocks (from 1)."""

    @property
    def name(self) -> str:
        """Where it is, as the test ids and failures say: ``docs/tools.md-2``."""
        return f"{self.page}-{self.number}"


def page_snippets(path: Path) -> list[Snippet]:
    """Each python block of the page at ``path``, with what it prints and what it reads."""
    text = path.read_text(encoding="utf-8")
    page = path.relative_to(ROOT).as_posix()
    blocks = list(BLOCK.finditer(text))
    snippets: list[Snippet] = []
    for index, block in enumerate(blocks):
        before = text[blocks[index - 1].end() if index else 0 : block.start()]
        if block.group(1) != "python" or INCLUDED.fullmatch(block.group(2)) or SHOWN.search(before):
            continue  # (an example it shows runs as one: see test_an_included_file_is_an_example)
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        between = text[block.end() : following.start() if following else len(text)]
        stdin = STDIN.search(between)
        expected = None
        if following is not None and following.group(1) == "text":
            expected = following.group(2)
        snippets.append(
            Snippet(
                block.group(2),
                expected,
                stdin.group(1) if stdin else "",
                page=page,
                number=len(snippets) + 1,
            )
        )
    return snippets


def doc_snippets() -> list[Snippet]:
    """Each python block of every page (:data:`PAGES`), in order."""
    return [snippet for path in PAGES for snippet in page_snippets(path)]


SNIPPETS = doc_snippets()
