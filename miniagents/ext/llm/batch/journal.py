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

One run at a time holds a journal file (:meth:`FileJournal.ahold`: a lock on the file
``<journal>.lock`` beside it, which the system lets go of when the process ends, however
it ends): a second run of the same pipeline, in this process or another, while the first
runs, is refused (it would take the first's batches as its own, and the first to end would
clear the other's records). A run started again after a crash holds it at once, and
re-attaches to the batches of the one that died::

    run A:  ahold -> aload | aappend ... | aclear | release
    run B:        ahold -> refused (LLMConfigurationError: A holds it)
    run C:                                          ahold -> aload ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from miniagents.ext.llm.errors import LLMConfigurationError

__all__ = ["FileJournal", "HeldJournal", "JournalHold", "RunHold"]


class RunHold(Protocol):
    """A run's hold of a journal (:class:`JournalHold`, a durable pipeline's)."""

    async def arelease(self) -> None:
        """Let go of the journal; released again: nothing."""
        ...


@runtime_checkable
class HeldJournal(Protocol):
    """A journal that one run at a time holds: a batch run holds it as it opens.

    :class:`FileJournal`, and a durable pipeline's (``miniagents.ext.dbos.SQLRunJournal``):
    a second run of the pipeline while the first holds it is refused.
    """

    async def ahold(self, run: str) -> RunHold:
        """Hold the journal for the run ``run`` (the pipeline's name), or refuse it."""
        ...


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

    async def ahold(self, run: str) -> JournalHold:
        """Hold the journal for one run (see the module), until the hold is released.

        Args:
            run: What the run is (the pipeline's name), for the error of another run.

        Returns:
            The hold: release it when the run ends (a process that ends lets go of it).

        Raises:
            LLMConfigurationError: while another run holds the journal (of this process or
                another), naming the pipeline, the file and how to run both.
        """
        return await asyncio.to_thread(self._hold, run)

    @property
    def lock_path(self) -> Path:
        """The file a run holds the journal by (see :meth:`ahold`)."""
        return self.path.with_name(self.path.name + ".lock")

    def _hold(self, run: str) -> JournalHold:
        lock_path = self.lock_path
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not _locked(descriptor):
                    holder = _holder(descriptor)
                    by = f" (process {holder})" if holder.isdigit() else ""
                    raise LLMConfigurationError(
                        f"Another run of the pipeline {run!r}{by} is using its batch journal "
                        f"{str(self.path)!r}: two runs of one pipeline at once would take each "
                        "other's batches, and the first to end would clear the other's records. "
                        "Wait for the other run to end, or give this one a journal of its own: "
                        "BatchMode(journal='other.jsonl'), or journal=None for none."
                    )
                same = os.path.samestat(os.fstat(descriptor), os.stat(lock_path))
            except FileNotFoundError:  # let go of (and removed) as this opened it: again
                same = False
            except BaseException:
                os.close(descriptor)
                raise
            if same:
                break
            os.close(descriptor)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        return JournalHold(self, descriptor)

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


class JournalHold:
    """A run's hold of a :class:`FileJournal` (see :meth:`FileJournal.ahold`)."""

    def __init__(self, journal: FileJournal, descriptor: int) -> None:
        self.journal = journal
        self._descriptor: int | None = descriptor

    async def arelease(self) -> None:
        """Let go of the journal; released again: nothing.

        Its lock file is removed, and its folder with ``remove_folder``, if that leaves it
        empty.
        """
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            await asyncio.to_thread(self._release, descriptor)

    def _release(self, descriptor: int) -> None:
        journal = self.journal
        with contextlib.suppress(OSError):  # (gone; or, on Windows, open elsewhere)
            journal.lock_path.unlink()  # removed while held: the next run makes its own
        os.close(descriptor)  # (which lets go of the lock)
        if journal.remove_folder:
            with contextlib.suppress(OSError):  # not empty (other journals), or gone
                journal.path.parent.rmdir()


def _holder(descriptor: int) -> str:
    """What the lock file says of the run that holds it: its process's id ("" if unread)."""
    try:
        return os.read(descriptor, 100).decode(errors="replace").strip()
    except OSError:  # (on Windows, a byte another process locked cannot be read)
        return ""


if sys.platform == "win32":
    import msvcrt

    def _locked(descriptor: int) -> bool:
        """Lock the file's first byte for this descriptor; whether it could be."""
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _locked(descriptor: int) -> bool:
        """Lock the file for this descriptor; whether it could be.

        ``flock``: its lock holds against this process's other descriptors of the file too.
        """
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1)
