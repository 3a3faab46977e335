"""What a run manager keeps past a bound: items by principal, oldest first, with their totals.

The run manager keeps ended runs and jobs up to its bounds (``max_ended_runs``,
``max_ended_run_bytes``); past one, it lets go of the oldest item of the principal who
keeps the most. A :class:`Kept` holds those items as they come and go, with each
principal's total and the whole total, so that an end under the bound costs no walk through
what is kept, and one over it costs a look at each principal (not at each item).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

__all__ = ["Kept"]

_Item = TypeVar("_Item")


class _Entry:
    """One item's place: its principal, its size, its order, and whether it is held."""

    __slots__ = ("held", "key", "owner", "size", "stamp")

    def __init__(
        self, owner: str | None, size: int, key: tuple[float, ...], stamp: int, held: bool
    ) -> None:
        self.owner = owner
        self.size = size
        self.key = key
        self.stamp = stamp
        self.held = held


class Kept(Generic[_Item]):
    """Items by principal, each of a size, ordered by a key (the oldest: the least).

    A *held* item (a run a paused job waits on) stays in but counts nothing and is never
    chosen. ``total``: the sizes of the items not held.
    """

    __slots__ = (
        "_candidates",
        "_entries",
        "_heaps",
        "_members",
        "_stamped",
        "_stamps",
        "_totals",
        "total",
    )

    def __init__(self) -> None:
        self._entries: dict[_Item, _Entry] = {}
        # each principal's items' places, oldest first (a heap of (key, stamp); a stamp no
        # item has now is stale, left until it comes up or the heap is compacted: it holds
        # no item, so what is let go of is not kept alive by it)
        self._heaps: dict[str | None, list[tuple[tuple[float, ...], int]]] = {}
        self._stamped: dict[int, _Item] = {}  # the items by their stamps
        self._members: dict[str | None, int] = {}  # the items of each principal (held too)
        self._candidates: dict[str | None, int] = {}  # of them, not held
        self._totals: dict[str | None, int] = {}  # their sizes
        self._stamps = itertools.count()
        self.total = 0

    def __contains__(self, item: object) -> bool:
        return item in self._entries

    def key_of(self, item: _Item) -> tuple[float, ...]:
        """The order ``item`` was added with."""
        return self._entries[item].key

    def add(
        self,
        item: _Item,
        owner: str | None,
        size: int,
        key: tuple[float, ...],
        *,
        held: bool = False,
    ) -> None:
        """Keep ``item``, of ``owner``, at its place ``key`` (added again: its place anew)."""
        self.remove(item)
        stamp = next(self._stamps)
        self._entries[item] = _Entry(owner, size, key, stamp, held)
        self._stamped[stamp] = item
        heapq.heappush(self._heaps.setdefault(owner, []), (key, stamp))
        self._members[owner] = self._members.get(owner, 0) + 1
        if not held:
            self._count(owner, 1, size)

    def remove(self, item: _Item) -> None:
        """Keep ``item`` no more (nothing, if it is not kept)."""
        entry = self._entries.pop(item, None)
        if entry is None:
            return
        del self._stamped[entry.stamp]
        owner = entry.owner
        if not entry.held:
            self._count(owner, -1, -entry.size)
        members = self._members[owner] - 1
        if members == 0:
            del self._members[owner], self._heaps[owner]
            return
        self._members[owner] = members
        heap = self._heaps[owner]
        if len(heap) > 2 * members + 16:  # (mostly stale: compacted, in time of the removals)
            stamped = self._stamped
            heap[:] = [kept for kept in heap if kept[1] in stamped]
            heapq.heapify(heap)

    def resize(self, item: _Item, change: int) -> None:
        """``item`` (kept) is ``change`` larger now."""
        entry = self._entries[item]
        entry.size += change
        if not entry.held:
            self._count(entry.owner, 0, change)

    def hold(self, item: _Item, held: bool) -> None:
        """Hold ``item`` (kept), or let it count again, at its place."""
        entry = self._entries[item]
        if entry.held != held:
            entry.held = held
            sign = -1 if held else 1
            self._count(entry.owner, sign, sign * entry.size)

    def choose(self, over: int) -> list[_Item]:
        """Take out the items to let go of, ``over`` in all: each time the oldest of the
        principal who keeps the most (so that one principal's burst pushes out their own,
        not the others'; with one principal, the oldest first).

        Each item counts its size (one, or its bytes: then ``over`` is in bytes, and "the
        most" is the largest sum). Of principals who keep as much, the one whose oldest
        item was the oldest when the choice began.
        """
        if over <= 0:
            return []
        firsts = [(self._entries[self._oldest(owner)].key, owner) for owner in self._candidates]
        firsts.sort(key=lambda first: first[0])
        totals = {owner: self._totals[owner] for _, owner in firsts}
        chosen: list[_Item] = []
        while over > 0 and totals:
            most = max(totals, key=totals.__getitem__)  # (the first such: the oldest then)
            item = self._oldest(most, take=True)
            size = self._entries[item].size
            chosen.append(item)
            self.remove(item)
            over -= size
            totals[most] -= size
            if most not in self._candidates:
                del totals[most]
        return chosen

    def _count(self, owner: str | None, items: int, size: int) -> None:
        self.total += size
        left = self._candidates.get(owner, 0) + items
        if left:
            self._candidates[owner] = left
            self._totals[owner] = self._totals.get(owner, 0) + size
        else:
            self._candidates.pop(owner, None)
            self._totals.pop(owner, None)

    def _oldest(self, owner: str | None, *, take: bool = False) -> _Item:
        """``owner``'s oldest item not held (it has one); ``take``: off its heap."""
        heap, stamped = self._heaps[owner], self._stamped
        held: list[tuple[tuple[float, ...], int]] = []
        while heap[0][1] not in stamped or self._entries[stamped[heap[0][1]]].held:
            kept = heapq.heappop(heap)
            if kept[1] in stamped:
                held.append(kept)  # (a few: a principal's paused jobs' runs)
        item = stamped[heapq.heappop(heap)[1] if take else heap[0][1]]
        for kept in held:
            heapq.heappush(heap, kept)
        return item
