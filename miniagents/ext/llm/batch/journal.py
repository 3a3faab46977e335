"""Where a batch run keeps its batches across a crash: a JSON Lines file (the default).

A run of batch mode notes each batch it submits before and after the provider creates it
(the requests it holds, by their keys, then the batch's id), so that a process killed with
batches in flight, started again, re-attaches to them: the calls it makes again find their
requests in the journal and wait for those batches' results instead of paying again::

    run 1:   submitting {tag, requests: [[key, custom_id], ...]} | submitted {tag, batch}
             ... kill -9 ...
    run 2:   the same call (same key) -> the batch of run 1 -> its result

A run that completes clears its journal. :class:`FileJournal` writes each record with an
``fsync`` before it returns; a record cut short by a crash (the last line) is skipped when
read. A durable pipeline keeps its journal in the database of durable runs instead
(``miniagents.ext.dbos``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["FileJournal"]


class FileJournal:
    """A run's journal in a JSON Lines file (see the module); a ``RunJournal``.

    Args:
        path: The file (made with its folder at the first record).
        remove_folder: Also remove the file's folder when the journal is cleared, if that
            leaves it empty (the default journal's folder, made for it).
    """

    def __init__(self, path: str | os.PathLike[str], *, remove_folder: bool = False) -> None:
        self.path = Path(path)
        self.remove_folder = remove_folder
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"FileJournal({str(self.path)!r})"

    async def aload(self) -> list[dict[str, object]]:
        """The records of the file, in order (none if there is no file)."""
        async with self._lock:
            return await asyncio.to_thread(self._load)

    async def aappend(self, record: Mapping[str, object]) -> None:
        """Add a record, flushed to the disk before this returns."""
        line = json.dumps(dict(record), separators=(",", ":"), ensure_ascii=False) + "\n"
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    async def aclear(self) -> None:
        """Delete the file (and its folder, with ``remove_folder``, if it is left empty)."""
        async with self._lock:
            await asyncio.to_thread(self._clear)

    def _clear(self) -> None:
        self.path.unlink(missing_ok=True)
        if self.remove_folder:
            with contextlib.suppress(OSError):  # not empty (other journals), or gone
                self.path.parent.rmdir()

    def _load(self) -> list[dict[str, object]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        records: list[dict[str, object]] = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by a crash: its write did not return
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as file:
            if file.tell() and _last_byte(self.path) != b"\n":  # a record cut short before
                line = "\n" + line
            file.write(line.encode())
            file.flush()
            os.fsync(file.fileno())


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1)
