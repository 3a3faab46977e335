"""A recorded run as a tree: its nodes (interactions, tool calls), their messages and model calls.

:meth:`RunTree.of` reads a run's events (see :mod:`miniagents.ext.studio.recorder`) and
puts them together: each node with its children, its input and reply messages, the calls
of the model it made (each with its request, the pieces it streamed with their times, its
``Finish`` and cost), its timing and its error. The sums (time, tokens, cost) of a branch
are its node's and everything under it; :meth:`RunTree.slowest_path` and
:meth:`RunTree.costliest_path` follow, from the top, the child that took longest or cost
most. ``miniagents studio show`` prints :meth:`RunTree.render`; the page of the studio
builds the same tree from the same events as they come.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from miniagents.ext.studio.errors import StudioNotFoundError, _checked
from miniagents.ext.studio.events import RunEvent
from miniagents.ext.studio.store import RunInfo, RunStore, checked_store

__all__ = ["CallRecord", "NodeRecord", "RunTree", "checked_tree"]


@dataclass
class CallRecord:
    """A recorded call of a model.

    Attributes:
        id: Its number in the run (from 1, shared with the nodes' numbers).
        node: The node (interaction) that made it.
        provider: The provider, as the request names it.
        model: The model asked for.
        key: The request's key (the call cache's); ``None``: the cache cannot key it (see
            ``unkeyed``), so a fork cannot replay it.
        request: The full request (see ``canonical_request``).
        started: When it was sent.
        items: What it streamed, in order, each with its time: a text piece (``str``), or
            a tool call's start or arguments piece, or a refusal piece (the call cache's
            JSON form of an event).
        ended: When it ended, if it has.
        finish: Its ``Finish`` as JSON values (tokens, reason, ``replayed``), if it ended well.
        cost_usd: What it cost (0: replayed), if known.
        error: Its error (``type``, ``message``), if it failed.
        unkeyed: Why the call cache cannot key it, if it cannot.
    """

    id: int
    node: int | None
    provider: str
    model: str
    key: str | None
    request: Mapping[str, Any]
    started: float
    items: list[tuple[float, Any]] = field(default_factory=list)
    ended: float | None = None
    finish: Mapping[str, Any] | None = None
    cost_usd: float | None = None
    error: Mapping[str, str] | None = None
    unkeyed: str | None = None

    @property
    def text(self) -> str:
        """The text it streamed."""
        return "".join(item for _, item in self.items if isinstance(item, str))

    @property
    def tools_called(self) -> list[str]:
        """The names of the tools it called, in order."""
        return [
            str(item[2]) for _, item in self.items if isinstance(item, list) and item[0] == "call"
        ]

    @property
    def first_token(self) -> float | None:
        """When its first piece came, if one has."""
        return self.items[0][0] if self.items else None

    @property
    def replayed(self) -> bool:
        """Whether a call cache replayed it (no request was made)."""
        return bool(self.finish and self.finish.get("replayed"))

    def tokens(self) -> tuple[int, int]:
        """Its input and output tokens, as reported (0 where not)."""
        finish = self.finish or {}
        return int(finish.get("input_tokens") or 0), int(finish.get("output_tokens") or 0)


@dataclass
class NodeRecord:
    """A node of a recorded run: an interaction of an agent, or a tool call.

    Attributes:
        id: Its number in the run (from 1).
        parent: The node it started under (``None``: a root).
        kind: ``"agent"`` or ``"tool"``.
        name: The agent's alias, or the tool's name.
        started: When it started.
        ended: When it ended, if it has.
        error: Its error (``type``, ``message``), if it failed.
        inputs: Its input messages, as recorded (``class``, ``text``, ``fields``).
        replies: Its reply messages, as recorded, with when each entered the replies.
        calls: The calls of the model it made, in order.
        children: The nodes started under it, in order.
        arguments: A tool call's arguments (JSON text).
        result: A tool call's result message, as recorded.
        decision: The decision on a tool call that waited for approval, if one came.
    """

    id: int
    parent: int | None
    kind: str
    name: str
    started: float
    ended: float | None = None
    error: Mapping[str, str] | None = None
    inputs: list[Mapping[str, Any]] = field(default_factory=list)
    replies: list[Mapping[str, Any]] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    children: list[NodeRecord] = field(default_factory=list)
    arguments: str | None = None
    result: Mapping[str, Any] | None = None
    decision: Mapping[str, Any] | None = None

    @property
    def reply_text(self) -> str:
        """The texts of its replies (a tool call's: its result), a line each."""
        if self.kind == "tool":
            return str((self.result or {}).get("text", ""))
        return "\n".join(
            str((reply.get("message") or {}).get("text", "")) for reply in self.replies
        )

    @property
    def first_token(self) -> float | None:
        """When its first token (or first reply message) came, if one has."""
        times = [call.first_token for call in self.calls if call.first_token is not None]
        times += [float(reply["entered"]) for reply in self.replies if "entered" in reply]
        return min(times, default=None)

    def duration(self, now: float) -> float:
        """Seconds from its start to its end (to ``now``, while it runs)."""
        return (self.ended if self.ended is not None else now) - self.started

    def walk(self) -> Iterator[NodeRecord]:
        """This node and every node under it, depth first, in order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def cost_usd(self) -> float:
        """What the calls of this branch cost (those of unknown cost count 0)."""
        return sum(call.cost_usd or 0.0 for node in self.walk() for call in node.calls)

    def tokens(self) -> tuple[int, int]:
        """The input and output tokens of this branch's calls."""
        counts = [call.tokens() for node in self.walk() for call in node.calls]
        return sum(count[0] for count in counts), sum(count[1] for count in counts)


class RunTree:
    """A recorded run's nodes, put together from its events (see the module).

    Args:
        run: The run.
        events: Its events, in order.
    """

    def __init__(self, run: RunInfo, events: Iterable[RunEvent]) -> None:
        self.run = run
        self.nodes: dict[int, NodeRecord] = {}
        self.calls: dict[int, CallRecord] = {}
        self.roots: list[NodeRecord] = []
        self.last = run.started
        for event in events:
            self._add(event)

    @classmethod
    def of(cls, store: RunStore, run_id: str, max_events: int | None = None) -> RunTree:
        """The tree of the run ``run_id`` of ``store`` (``"last"``: the latest run).

        ``max_events``: the most events read (``None``: no limit).

        Raises:
            StudioNotFoundError: if the store has no such run.
            StudioDamagedRunError: if its row cannot be read.
            StudioRunTooLargeError: if it has more than ``max_events`` events.
            StudioConfigurationError: if ``store`` is not a ``RunStore`` (its file's path).
        """
        run = checked_store(store, "RunTree.of").run(run_id)
        return cls(run, store.all_events(run.id, max_events))

    @property
    def ended(self) -> float:
        """When the run ended (while it runs: its last event)."""
        return self.run.ended if self.run.ended is not None else self.last

    def agents(self) -> list[NodeRecord]:
        """Its interactions (the nodes of agents), in order."""
        return [node for node in self.nodes.values() if node.kind == "agent"]

    def call_with(self, text: str) -> CallRecord:
        """The first call of the run (by number) whose reply has ``text``.

        Raises:
            StudioNotFoundError: if no call's reply has it.
        """
        for number in sorted(self.calls):
            if text in self.calls[number].text:
                return self.calls[number]
        raise StudioNotFoundError(
            f"No call of the run {self.run.id} replied with {text!r}; see its calls' replies "
            f"with miniagents studio show {self.run.id}."
        )

    def slowest_path(self) -> list[NodeRecord]:
        """From the slowest root down, each time the child that took longest."""
        return _path(self.roots, lambda node: node.duration(self.ended))

    def costliest_path(self) -> list[NodeRecord]:
        """From the costliest root down, each time the child whose branch cost most."""
        return _path(self.roots, NodeRecord.cost_usd)

    def render(self, width: int = 60) -> str:
        """The tree as text: a line per node (time, cost) and per call of the model.

        ``width``: the most characters of a reply's text shown on its line.
        """
        run = self.run
        lines = [f"run {run.id}  {run.name}  ({run.status}{', ' + run.error if run.error else ''})"]
        if run.forked_from:
            call = (run.fork or {}).get("call")
            lines.append(f"  a fork of {run.forked_from} at call {call}")
        for root in self.roots:
            lines += self._render(root, 1, width)
        return "\n".join(lines)

    def _render(self, node: NodeRecord, depth: int, width: int) -> list[str]:
        pad = "  " * depth
        seconds = node.duration(self.ended)
        cost = node.cost_usd()
        shown = f"{pad}{node.kind} {node.name} #{node.id}  {seconds:.2f}s"
        if cost:
            shown += f"  ${cost:.6f}"
        if node.error:
            shown += f"  ! {node.error.get('type')}: {node.error.get('message', '')}"[: width + 40]
        lines = [shown]
        for call in node.calls:
            how = "replayed" if call.replayed else "live"
            text = " ".join(call.text.split())
            text = text if len(text) <= width else text[: width - 3] + "..."
            said = (
                repr(text)
                if text or not call.tools_called
                else "calls " + ", ".join(call.tools_called)
            )
            lines.append(f"{pad}  call {call.id} {call.model} ({how}): {said}")
        for child in node.children:
            lines += self._render(child, depth + 1, width)
        return lines

    # -- the events ----------------------------------------------------------------------

    def _add(self, event: RunEvent) -> None:
        data = event.data
        kind = event.kind
        self.last = max(self.last, event.t)
        if kind == "node":
            node = NodeRecord(
                id=int(data["id"]),
                parent=data.get("parent"),
                kind=str(data["kind"]),
                name=str(data["name"]),
                started=event.t,
                arguments=data.get("arguments"),
            )
            self.nodes[node.id] = node
            parent = self.nodes.get(node.parent) if node.parent is not None else None
            (self.roots if parent is None else parent.children).append(node)
        elif kind in ("input", "reply"):
            node_of = self.nodes.get(int(data["node"]))
            if node_of is not None:
                (node_of.inputs if kind == "input" else node_of.replies).append(
                    {**data, "done": event.t}
                )
        elif kind == "end":
            ended = self.nodes.get(int(data["id"]))
            if ended is not None:
                ended.ended = event.t
                ended.error = data.get("error")
                ended.result = data.get("result")
        elif kind == "call":
            call = CallRecord(
                id=int(data["id"]),
                node=data.get("node"),
                provider=str(data["provider"]),
                model=str(data["model"]),
                key=None if data["key"] is None else str(data["key"]),
                request=data["request"],
                started=event.t,
                unkeyed=None if data.get("unkeyed") is None else str(data["unkeyed"]),
            )
            self.calls[call.id] = call
            maker = self.nodes.get(call.node) if call.node is not None else None
            if maker is not None:
                maker.calls.append(call)
        elif kind == "token":
            streamed = self.calls.get(int(data["call"]))
            if streamed is not None:
                streamed.items.append((event.t, data["piece"]))
        elif kind == "call_end":
            done = self.calls.get(int(data["id"]))
            if done is not None:
                done.ended = event.t
                done.finish = data.get("finish")
                done.cost_usd = data.get("cost_usd")
                done.error = data.get("error")
        elif kind == "decision":
            decided = self.nodes.get(int(data["node"]))
            if decided is not None:
                decided.decision = data


def _path(nodes: Sequence[NodeRecord], measure: Any) -> list[NodeRecord]:
    path: list[NodeRecord] = []
    level = list(nodes)
    while level:
        top = max(level, key=measure)
        path.append(top)
        level = top.children
    return path


def checked_tree(tree: object, name: str, owner: str) -> RunTree:
    """``tree``, if it is a :class:`RunTree` (the argument ``name`` of ``owner``).

    Raises:
        StudioConfigurationError: for anything else (a run's id, say), naming ``owner``.
    """
    return _checked(tree, RunTree, name, owner, "Read the run", "RunTree.of(store, run_id)")
