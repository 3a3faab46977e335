"""The file operations of ``ChatHistoryMD``: read a regular file, write at its end or not at all.

Every function here blocks: they run in a worker thread, never on the event loop. Errors
are ``ChatHistoryError``\\ s that name the file (and wrap the ``OSError``).

Processes that share a file take turns through an OS file lock, held from the open to
the close: an append holds it alone (it reads the size, takes in what others wrote, and
writes after it), a read shares it with other reads. On POSIX it is ``fcntl.flock`` (an
advisory lock: programs that do not take it are not held back); on Windows,
``msvcrt.locking`` of one byte far past the end of the file (so that reads of the content
are never refused), which has no shared mode: reads take turns too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from pathlib import Path

from miniagents.ext.history.errors import ChatHistoryError

FileId = tuple[int, int]
"""A file's device and inode: the same path may later name another file."""

Stamp = tuple[int, int, int, int]
"""A file's device, inode, size and modification time (in nanoseconds): what a write to it,
or its replacement, changes."""

_WINDOWS = sys.platform == "win32"
_LOCK_AT = 1 << 62
"""Where the one byte that Windows locks lies: past any real content (a lock there refuses
nobody the reading or writing of the file's bytes)."""

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO put in place after the check cannot hang us
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_regular(path: Path) -> tuple[bytes, FileId | None]:
    """The content of the file at ``path`` and its identity (``b""`` and ``None`` if missing).

    A path that is not a regular file (a directory, a FIFO, ``/dev/zero``) is refused
    before it is opened.
    """
    try:
        if not _status(path, "read"):
            return b"", None
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except FileNotFoundError:
        return b"", None
    except OSError as error:
        raise _cannot(path, "read", error) from error
    try:
        identity = _check_regular(path, fd)
        _lock(fd, exclusive=False)  # an append of another process ends before this reads
        return read_from(fd, 0, path), identity
    except OSError as error:
        raise _cannot(path, "read", error) from error
    finally:
        close(fd)


def open_to_read(path: Path, identity: FileId) -> tuple[int, Stamp] | None:
    """The file open for reading, locked (shared, until :func:`close`), and its stamp.

    ``None`` if ``path`` no longer names the file ``identity`` (it was removed, or replaced
    by another file).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _cannot(path, "read", error) from error
    try:
        if _check_regular(path, fd) == identity:
            _lock(fd, exclusive=False)  # an append of another process ends before this reads
            return fd, _stamp(os.fstat(fd))
    except BaseException as error:
        close(fd)
        if isinstance(error, OSError):
            raise _cannot(path, "read", error) from error
        raise
    close(fd)
    return None


def stamp_of(path: Path) -> Stamp | None:
    """The stamp of the file at ``path`` (``None`` if it is missing or cannot be seen)."""
    try:
        return _stamp(os.stat(path))
    except OSError:
        return None


def _stamp(found: os.stat_result) -> Stamp:
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


def open_for_append(path: Path, identity: FileId | None) -> tuple[int, FileId, int]:
    """The file open for reading and writing, locked, its identity and its size.

    The lock (exclusive: see the module's docstring) is held until :func:`close`, so the
    size stays true until then. With ``identity`` (the file was read before), the path
    must still name that file; without, a missing file is created.
    """
    try:
        exists = _status(path, "write to")
        if identity is not None and not exists:
            raise _changed(path, "was removed")
        fd = os.open(path, os.O_RDWR | _NONBLOCK | (os.O_CREAT if identity is None else 0), 0o666)
    except OSError as error:
        raise _cannot(path, "write to", error) from error
    try:
        found = _check_regular(path, fd)
        if identity is not None and found != identity:
            raise _changed(path, "was replaced by another file")
        _lock(fd, exclusive=True)  # waits while another process appends or reads
        return fd, found, os.fstat(fd).st_size
    except BaseException as error:
        close(fd)
        if isinstance(error, OSError):
            raise _cannot(path, "write to", error) from error
        raise


def read_from(fd: int, offset: int, path: Path) -> bytes:
    """What the open file holds from ``offset`` on."""
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError as error:
        raise _cannot(path, "read", error) from error
    return b"".join(chunks)


def write_at(fd: int, offset: int, data: bytes, size: int, path: Path) -> None:
    """Write ``data`` at ``offset`` (cutting off the ``size - offset`` bytes there first), synced.

    On failure (a full disk, a quota, an I/O error), the file is cut back to ``offset``:
    none of ``data`` stays in it.
    """
    try:
        if size > offset:
            os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "the write made no progress")
            view = view[written:]
        os.fsync(fd)
    except OSError as error:
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        except OSError as second:
            outcome = (
                f"the part written could not be cut off again ({second}); it is cut off at "
                "the next append, or dropped at the next load as a torn section"
            )
        else:
            outcome = "the file was cut back to what it held before"
        raise ChatHistoryError(
            f"Cannot write to the chat history file {path}: {error}. The message was not "
            f"written and {outcome}. Free some space (or fix the error), then append again."
        ) from error


def close(fd: int) -> None:
    """Close a file opened here, releasing its lock first (if it holds one)."""
    try:
        if _WINDOWS:
            _unlock_windows(fd)
    finally:
        os.close(fd)


def _lock(fd: int, *, exclusive: bool) -> None:
    """Wait for the file's lock (held until :func:`close`)."""
    if _WINDOWS:
        _lock_windows(fd)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _lock_windows(fd: int) -> None:  # pragma: no cover - the tests run on POSIX
    import msvcrt

    while True:
        os.lseek(fd, _LOCK_AT, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined,unused-ignore]
            return
        except OSError as error:  # LK_LOCK gives up after 10 tries, a second apart
            if error.errno != errno.EDEADLOCK:
                raise


def _unlock_windows(fd: int) -> None:  # pragma: no cover - the tests run on POSIX
    import msvcrt

    os.lseek(fd, _LOCK_AT, os.SEEK_SET)
    with contextlib.suppress(OSError):  # not locked (the open failed before): nothing to undo
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined,unused-ignore]


def _status(path: Path, action: str) -> bool:
    """Whether ``path`` exists; refuses one that is not a regular file, without opening it."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(found.st_mode):
        raise _irregular(path, found.st_mode, action)
    return True


def _check_regular(path: Path, fd: int) -> FileId:
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode):
        raise _irregular(path, found.st_mode, "use")
    return found.st_dev, found.st_ino


def _irregular(path: Path, mode: int, action: str) -> ChatHistoryError:
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return ChatHistoryError(
        f"Cannot {action} the chat history file {path}: it is {kind}, not a regular file, "
        "so it was not opened. Pass the path of a regular file (or of one to be created)."
    )


def _cannot(path: Path, action: str, error: OSError) -> ChatHistoryError:
    hint = (
        "Check the path and its permissions, or pass another file."
        if action == "read"
        else "Check that its directory exists and is writable."
    )
    return ChatHistoryError(f"Cannot {action} the chat history file {path}: {error}. {hint}")


def _changed(path: Path, what: str) -> ChatHistoryError:
    return ChatHistoryError(
        f"The chat history file {path} {what} since it was read, so this message was not "
        "written. Keep one ChatHistoryMD per file at a time; make a new one to read the file "
        "again."
    )
