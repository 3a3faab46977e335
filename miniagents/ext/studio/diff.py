"""Two runs side by side: their trees aligned node by node, and what differs.

A node of one run meets the node of the other at the same place: the same path of names
from the top, each name counted among its siblings of that name (the second ``RESEARCHER``
under ``ORCHESTRATOR``). A pair is ``"same"`` when their replies (a tool call's: its
result) and errors are, else ``"changed"`` (with a word by word diff of the replies); a
node of one run alone is ``"removed"`` (the left's) or ``"added"`` (the right's). Each
call of the model on the right says how it was made: ``"replayed"`` (from the recording,
no request), ``"edited"`` (the fork's edited call) or ``"live"``::

    = ORCHESTRATOR          #1  -> #1
    ~ . RESEARCHER          #2  -> #2    call 3 edited
    = . RESEARCHER          #4  -> #4    call 5 replayed
    ~ . WRITER              #6  -> #6    call 7 live
          - 2.1 million + 3 million
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from miniagents.ext.studio.tree import CallRecord, NodeRecord, RunTree, checked_tree

__all__ = ["DiffStatus", "NodeDiff", "diff_runs", "render_diff"]

DiffStatus: TypeAlias = Literal["same", "changed", "added", "removed"]
"""How a node of two runs compares (see the module)."""

_WORDS = re.compile(r"(\s+)")


@dataclass(frozen=True)
class NodeDiff:
    """A row of two runs side by side: a node of each (or of one), and how they compare.

    Attributes:
        depth: How deep the node is (0: a root).
        kind: ``"agent"`` or ``"tool"``.
        name: The agent's alias, or the tool's name.
        left: The node of the first run, if it has one there.
        right: The node of the second run, if it has one there.
        status: How they compare (see :data:`DiffStatus`).
        text: The replies' word diff: ``("=", same)``, ``("-", left's)``, ``("+", right's)``.
        calls: Each call of the right node: its number, and ``"replayed"``, ``"edited"`` or
            ``"live"``.
    """

    depth: int
    kind: str
    name: str
    left: NodeRecord | None
    right: NodeRecord | None
    status: DiffStatus
    text: tuple[tuple[str, str], ...]
    calls: tuple[tuple[int, str], ...]

    def as_json(self, left_end: float, right_end: float) -> dict[str, Any]:
        """The row as JSON values (``*_end``: when each run ended, for the running nodes)."""
        return {
            "depth": self.depth,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "left": None if self.left is None else _summary(self.left, left_end),
            "right": None if self.right is None else _summary(self.right, right_end),
            "text": [list(piece) for piece in self.text],
            "calls": [list(call) for call in self.calls],
        }


def diff_runs(left: RunTree, right: RunTree) -> list[NodeDiff]:
    """The rows of ``left`` and ``right`` side by side, depth first (see the module).

    Raises:
        StudioConfigurationError: if ``left`` or ``right`` is not a ``RunTree`` (a run's id).
    """
    checked_tree(left, "left", "diff_runs")
    checked_tree(right, "right", "diff_runs")
    edited = (right.run.fork or {}).get("key") if right.run.forked_from == left.run.id else None
    return list(_rows(left.roots, right.roots, 0, edited))


def render_diff(left: RunTree, right: RunTree) -> str:
    """The rows as text, for ``miniagents studio diff`` (the replies' changes under a row)."""
    marks = {"same": "=", "changed": "~", "added": "+", "removed": "-"}
    lines = [f"{left.run.id} -> {right.run.id}"]
    for row in diff_runs(left, right):
        ids = " -> ".join("" if node is None else f"#{node.id}" for node in (row.left, row.right))
        calls = ", ".join(f"call {number} {how}" for number, how in row.calls)
        lines.append(
            f"{marks[row.status]} {'. ' * row.depth}{row.name:<20} {ids:<12} {calls}".rstrip()
        )
        if row.status == "changed":
            changes = " ".join(
                f"{op} {' '.join(text.split())}"
                for op, text in row.text
                if op != "=" and text.strip()
            )
            if changes:
                lines.append(f"      {changes}")
    return "\n".join(lines)


def _rows(
    lefts: Sequence[NodeRecord], rights: Sequence[NodeRecord], depth: int, edited: object
) -> Iterator[NodeDiff]:
    left_keys = _keys(lefts)
    right_keys = _keys(rights)
    for key in _merged(list(left_keys), list(right_keys)):
        left, right = left_keys.get(key), right_keys.get(key)
        yield _row(left, right, depth, edited)
        yield from _rows(
            [] if left is None else left.children,
            [] if right is None else right.children,
            depth + 1,
            edited,
        )


def _keys(nodes: Sequence[NodeRecord]) -> dict[tuple[str, str, int], NodeRecord]:
    """The nodes by their place: kind, name, and how many of that name came before."""
    counts: dict[tuple[str, str], int] = {}
    keyed: dict[tuple[str, str, int], NodeRecord] = {}
    for node in nodes:
        seen = counts.get((node.kind, node.name), 0)
        counts[node.kind, node.name] = seen + 1
        keyed[node.kind, node.name, seen] = node
    return keyed


def _merged(left: list[Any], right: list[Any]) -> list[Any]:
    """The keys of both, each once: the left's in order, the right's own after their predecessor."""
    merged = list(left)
    known = set(left)
    place = 0
    for key in right:
        if key in known:
            place = merged.index(key) + 1
        else:
            merged.insert(place, key)
            known.add(key)
            place += 1
    return merged


def _row(left: NodeRecord | None, right: NodeRecord | None, depth: int, edited: object) -> NodeDiff:
    some = left if left is not None else right
    assert some is not None
    calls = () if right is None else tuple((call.id, _how(call, edited)) for call in right.calls)
    if left is None or right is None:
        status: DiffStatus = "added" if left is None else "removed"
        return NodeDiff(depth, some.kind, some.name, left, right, status, (), calls)
    before, after = left.reply_text, right.reply_text
    same = before == after and _error(left) == _error(right)
    text = _words(before, after)
    return NodeDiff(
        depth, some.kind, some.name, left, right, "same" if same else "changed", text, calls
    )


def _how(call: CallRecord, edited: object) -> str:
    if call.key == edited:
        return "edited"
    return "replayed" if call.replayed else "live"


def _error(node: NodeRecord) -> object:
    return None if node.error is None else node.error.get("type")


def _words(before: str, after: str) -> tuple[tuple[str, str], ...]:
    """A word by word diff of two texts (spaces kept, so that the pieces join back).

    The spaces between two changed words are part of the change: a sentence rewritten is one
    piece removed and one added, not a piece per word.
    """
    old, new = _WORDS.split(before), _WORDS.split(after)
    pieces: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(("=", "".join(old[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("-", "".join(old[i1:i2])))
        if j2 > j1:
            pieces.append(("+", "".join(new[j1:j2])))
    joined: list[tuple[str, str]] = []
    removed, added = "", ""
    for index, (sign, text) in enumerate(pieces):
        between = 0 < index < len(pieces) - 1 and pieces[index + 1][0] != "="
        if sign == "=" and not (text.isspace() and between and (removed or added)):
            if removed or added:
                joined += [piece for piece in (("-", removed), ("+", added)) if piece[1]]
                removed, added = "", ""
            joined.append((sign, text))
        elif sign == "-":
            removed += text
        elif sign == "+":
            added += text
        else:  # spaces between two changes: in both
            removed += text
            added += text
    joined += [piece for piece in (("-", removed), ("+", added)) if piece[1]]
    return tuple(joined)


def _summary(node: NodeRecord, end: float) -> dict[str, Any]:
    return {
        "id": node.id,
        "reply": node.reply_text,
        "error": node.error,
        "seconds": node.duration(end),
        "cost_usd": node.cost_usd(),
    }
