"""Reading the user's messages from the console, and printing messages as they stream.

On a terminal (stdin and stdout both TTYs) with prompt_toolkit installed, input is edited
with prompt_toolkit: Enter sends, Alt+Enter (or Esc, Enter) starts a new line, Ctrl+D
on an empty message ends the input, Ctrl+C interrupts. Otherwise lines are read plainly,
one message per line, from a thread that reads ``sys.stdin`` (so ``input()`` and the console
share its buffer, each line read once). A read given up on (Ctrl+C, cancellation) never
blocks the program's exit; on a terminal its thread stops waiting, so the next line typed
goes to whoever reads next (``input()``, or the console). On a pipe or a file, where lines
may wait in the buffer of ``sys.stdin`` unseen, the thread reads on, and the line it reads
is kept for the next read of the console's. Bytes that are not text in stdin's encoding are
read as U+FFFD (a strict ``sys.stdin`` is reconfigured with ``errors="replace"``). A line
of more than :data:`MAX_LINE_CHARS` characters (piped: a terminal's own lines are shorter)
is skipped, read on to its end without being kept, and said so on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import os
import select
import sys
import threading
from concurrent.futures import Future
from typing import Any, TextIO

from miniagents.ext.errors import InputEndedError
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.running import ERROR_SEPARATOR
from miniagents.messages.message_promise import MessagePromise
from miniagents.messages.sequence import MessageSequencePromise

EXIT_WORDS = frozenset({"exit", "quit"})
"""What the user types to end a dialog (case and surrounding spaces ignored)."""

MAX_LINE_CHARS = 1_000_000
"""The most characters of a line read as one message (or answer); a longer one is skipped."""

_SKIPPED_CHUNK = 65_536
"""Characters read at once of a line that is skipped (none of them kept)."""


class _LineTooLong(Exception):
    """The line read had more than :data:`MAX_LINE_CHARS` characters: it was skipped."""

    def __init__(self) -> None:
        super().__init__(
            f"The line read has more than {MAX_LINE_CHARS:,} characters, the most the console "
            "takes as one message; it was skipped: send a shorter message."
        )


class _LineRead:
    """One line being read from the stream by a thread, shared by the reads waiting for it.

    On a terminal that the thread can watch (``watch``: its file descriptor), the thread
    first waits for a line to be typed; while it waits, the reads may all give up on it
    (:meth:`_LineReader._give_up`), and it ends without reading, leaving the line to whoever
    reads next. Once it reads (at once on a stream it cannot watch), the line is kept for
    the next read.
    """

    __slots__ = ("abandoned", "line", "readers", "reading", "wake", "watch")

    def __init__(self, watch: int | None, wake: tuple[int, int] | None) -> None:
        self.line: Future[str | None] = Future()
        self.watch = watch
        self.wake = wake
        """The pipe that wakes the watching thread when every read gave up on the line."""
        self.readers = 0
        self.reading = watch is None  # past the point where giving up stops the thread
        self.abandoned = False


class _LineReader:
    """Lines of a text stream (``sys.stdin``), read by a daemon thread one request at a time.

    It reads through the stream itself, so ``input()`` and the console agents share one
    buffer: each line goes to whoever asks for it first. A read given up on (its task was
    cancelled) takes no line that the user types afterwards: on a terminal the thread only
    waits for a line until then, and ends. (Where lines may sit in the stream's buffer
    unseen, on a pipe or a file, or where a terminal cannot be watched, as on Windows, the
    thread reads at once, and a line it reads for a read given up on goes to the next read
    of the console's.)
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._read: _LineRead | None = None

    def _read_line(self) -> str | None:
        stream = self.stream
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            # Bytes that are not text (in a UTF-8 locale, stdin's errors are strict) are read
            # as U+FFFD, not as an error that would lose the lines read with them
            with contextlib.suppress(OSError, ValueError):  # (text decoded already: kept)
                stream.reconfigure(errors="replace")
        limit = MAX_LINE_CHARS + 2  # (the line's characters, "\r\n")
        try:
            line = stream.readline(limit)
            if len(line) == limit and not line.endswith("\n"):  # longer: read to its end
                while (rest := stream.readline(_SKIPPED_CHUNK)) and not rest.endswith("\n"):
                    pass
        except UnicodeDecodeError as error:  # (a ValueError, but stdin is not closed)
            raise InputEndedError(
                f"The console's input is not {stream.encoding} text ({error}); give it text "
                "in that encoding, or set PYTHONIOENCODING (e.g. utf-8:replace)."
            ) from None
        except ValueError:  # sys.stdin was closed: nothing more to read
            return None
        except OSError as error:
            if error.errno == errno.EBADF:  # its file descriptor was closed
                return None
            raise
        if not line:
            return None
        # undecodable bytes (kept as surrogates by some locales) become U+FFFD
        line = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        line = line.removesuffix("\n").removesuffix("\r")
        if len(line) > MAX_LINE_CHARS:
            raise _LineTooLong
        return line

    def _run(self, read: _LineRead) -> None:
        try:
            if read.wake is not None and not self._wait(read, read.wake):
                return  # every read gave up: the line, when typed, goes to whoever reads next
            read.line.set_result(self._read_line())
        except BaseException as error:  # handed to the readers, which raise it
            read.line.set_exception(error)

    def _wait(self, read: _LineRead, wake: tuple[int, int]) -> bool:
        """Wait until a line is typed or every read gave up; whether to read the line."""
        assert read.watch is not None
        with contextlib.suppress(OSError, ValueError):  # not watchable after all: it is read
            _wait_readable(read.watch, wake[0])
        with self._lock:  # decided together with _give_up(): read the line, or end
            read.reading = not read.abandoned
        for end in wake:  # _give_up() writes to it only before the decision
            os.close(end)
        return read.reading

    def _watched(self) -> int | None:
        """The file descriptor of the stream, if it is a terminal a thread can watch."""
        if os.name != "posix":  # e.g. Windows: select() watches sockets only
            return None
        import termios

        try:
            fd = self.stream.fileno()
            if not os.isatty(fd):  # a pipe or a file: a line may wait in the stream's buffer
                return None
            canonical = termios.tcgetattr(fd)[3] & termios.ICANON
        except (AttributeError, OSError, ValueError, termios.error):
            return None
        # A terminal in canonical mode gives one line per read: none is left in the buffer.
        return fd if canonical else None

    def _start(self) -> _LineRead:
        """Start the thread that reads the next line (it first waits, where it can)."""
        watch = self._watched()
        wake = None
        if watch is not None:
            with contextlib.suppress(OSError):  # no pipe (too many open files): read at once
                wake = os.pipe()
        read = _LineRead(watch if wake is not None else None, wake)
        thread = threading.Thread(target=self._run, args=(read,), name=READER_THREAD, daemon=True)
        try:
            thread.start()
        except BaseException:
            for end in wake or ():
                os.close(end)
            raise
        return read

    async def readline(self) -> str | None:
        """The next line without its line break, or ``None`` at the end of input."""
        with self._lock:
            read = self._read
            if read is None:
                read = self._read = self._start()
            read.readers += 1
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake(_: Future[str | None]) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_set_done, waiter)

        read.line.add_done_callback(wake)
        try:
            await waiter
        except BaseException:  # cancelled (e.g. Ctrl+C)
            self._give_up(read)
            raise
        with self._lock:
            read.readers -= 1
            if self._read is read:
                self._read = None
        return read.line.result()

    def _give_up(self, read: _LineRead) -> None:
        """One read gives up on ``read``; if it was the last, its thread stops waiting.

        A line the thread is reading already is kept for the next read.
        """
        with self._lock:
            read.readers -= 1
            if read.readers or read.reading:
                return
            read.abandoned = True
            self._read = None  # the next read starts its own
            assert read.wake is not None  # a thread that waits has its pipe open until then
            os.write(read.wake[1], b"\0")


READER_THREAD = "miniagents-console-input"
"""The name of the thread that reads a line of the console's input."""


def _wait_readable(fd: int, wake: int) -> None:
    """Wait until ``fd`` (a terminal) or ``wake`` (a pipe) can be read, or is closed."""
    if sys.platform == "darwin":  # poll() does not watch terminals on macOS; select() does
        select.select([fd, wake], [], [])
        return
    poller = select.poll()
    for watched in (fd, wake):
        poller.register(watched, select.POLLIN)
    poller.poll()


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _ConsoleInput:
    """The process's console input: one line reader per stdin, one prompt_toolkit session.

    A read given up on keeps its line for the next read of the same stdin (its reader); the
    session keeps the input history of the whole process.
    """

    __slots__ = ("reader", "session")

    def __init__(self) -> None:
        self.reader: _LineReader | None = None
        self.session: Any = None  # None until first asked for; False: there is none to use

    def line_reader(self, stdin: TextIO) -> _LineReader:
        """The reader of ``stdin``: the one kept, or a new one if stdin was replaced."""
        if self.reader is None or self.reader.stream is not stdin:
            self.reader = _LineReader(stdin)
        return self.reader

    def prompt_session(self) -> Any:
        """The prompt_toolkit session (made at the first call), or ``None`` without one."""
        if self.session is None:
            self.session = _new_prompt_session() or False
        return self.session or None


def _new_prompt_session() -> Any:
    """A prompt_toolkit session that sends on Enter, or ``None`` where it cannot work."""
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.key_binding import KeyBindings
    except ImportError:  # not installed: read plain lines
        return None
    bindings = KeyBindings()

    @bindings.add("enter")
    def _send(event: Any) -> None:
        event.current_buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _new_line(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    try:
        return PromptSession(multiline=True, key_bindings=bindings)
    except Exception:  # e.g. a console prompt_toolkit cannot drive: read plain lines
        return None


_console_input = _ConsoleInput()


async def _read_line() -> str | None:
    """The next line of ``sys.stdin`` (see ``_LineReader``), or ``None`` at the end of input."""
    stdin = sys.stdin
    if stdin is None:  # the program started with stdin closed: no input at all
        return None
    return await _console_input.line_reader(stdin).readline()


def _is_tty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except ValueError:  # closed
        return False


async def read_user_text(prompt: str) -> str:
    """The user's next message: a non-empty text read after printing ``prompt``.

    Raises:
        InputEndedError: at the end of input (a closed stdin is one), or when the user
            types ``exit`` (or ``quit``); an ``EOFError``.
        KeyboardInterrupt: when the user presses Ctrl+C in the prompt_toolkit editor.
    """
    typed = _is_tty(sys.stdin)  # else piped: each line read is echoed, for the transcript
    session = _console_input.prompt_session() if typed and _is_tty(sys.stdout) else None
    prompted = False
    while True:
        if session is not None:
            text: str | None = await session.prompt_async(prompt)
        else:
            if typed or not prompted:
                _write(prompt)
                prompted = True
            try:
                text = await _read_line()
            except asyncio.CancelledError:  # e.g. Ctrl+C: end the prompt's line
                _write("\n")
                raise
            except _LineTooLong as error:  # skipped: said, and the next line is read
                print_error(error)
                continue
            if text is not None and text.strip() and not typed:
                _write(text + "\n")  # echoed, so that a piped transcript reads well
        if text is None:
            _write("\n")
            raise InputEndedError("The input ended.")
        if text.strip().lower() in EXIT_WORDS:
            raise InputEndedError(f"The user typed {text.strip()!r}.")
        if text.strip():
            return text


async def print_message(message: MessagePromise, label: str) -> None:
    """Print ``label``, then the message token by token, then a line break.

    The label is printed with the first token, so a message that fails before it prints
    nothing (no empty labelled line before the error).

    A message without text and without tokens (a message of typed fields alone, such as a
    structured answer built in code) is printed as its fields, the JSON ``str()`` gives.

    A tool call or a tool result is labelled as what it is (``TOOL CALL add: `` with the
    arguments, ``TOOL RESULT add: `` with the result, ``TOOL RESULT add (failed): `` with an
    error result) in place of ``label``. A result that fails after its first tokens shows
    its error on a line of its own, labelled as failed.
    """
    started = failed = False
    try:
        async for token in message:
            if not started:  # the label comes with the first token: a message that fails
                _write(_label_of(message, label))  # before it prints nothing (its error
                started = True  # is shown), and a tool's error is known by then
                failed = _failed(message)
            elif not failed and _failed(message):  # a tool that failed after replying
                _write("\n" + _label_of(message, label))
                token = token.removeprefix(ERROR_SEPARATOR)
                failed = True
            _write(token)
        if not started:  # no token: a message of fields alone shows them (its JSON)
            _write(_label_of(message, label))
            started = True
            finished = await message
            if finished.text is None and (fields := str(finished)) != "{}":
                _write(fields)
    finally:  # a message cut short (e.g. by Ctrl+C) still ends its line
        if started:
            _write("\n")


def _label_of(message: MessagePromise, label: str) -> str:
    if issubclass(message.message_class, ToolCallMessage):
        return f"TOOL CALL {message.metadata.get('tool_name')}: "
    if issubclass(message.message_class, ToolResultMessage):
        failed = " (failed)" if _failed(message) else ""
        return f"TOOL RESULT {message.metadata.get('tool_name')}{failed}: "
    return label


def _failed(message: MessagePromise) -> bool:
    """Whether ``message`` is a tool's error result, as far as it is known yet."""
    return issubclass(message.message_class, ToolResultMessage) and bool(
        message.metadata.get("is_error")
    )


def print_error(error: BaseException) -> None:
    """Print ``error``'s own message as one line on stderr (after what stdout shows)."""
    text = " ".join(str(error).split()) or type(error).__name__
    sys.stdout.flush()
    sys.stderr.write(f"ERROR: {text}\n")
    sys.stderr.flush()


async def print_messages(messages: MessageSequencePromise, label: str) -> None:
    """Print every message of ``messages`` with :func:`print_message`.

    A tool call that waits for approval (a pending ``ToolApprovalRequest``) is asked of the
    user (:func:`ask_approval`) before the messages after it.
    """
    async for message in messages:
        await print_message(message, label)
        await ask_approval(message)


async def ask_approval(message: MessagePromise) -> None:
    """If ``message`` is a pending ``ToolApprovalRequest``, ask the user: ``y`` approves.

    Anything else, or the end of input, denies the call (the model is told).
    """
    if not issubclass(message.message_class, ToolApprovalRequest):
        return
    request = await message
    if not isinstance(request, ToolApprovalRequest) or not request.pending:
        return
    typed = _is_tty(sys.stdin)
    session = _console_input.prompt_session() if typed and _is_tty(sys.stdout) else None
    if session is not None:
        answer: str | None = await session.prompt_async(APPROVAL_PROMPT)
    else:
        _write(APPROVAL_PROMPT)
        try:
            answer = await _read_line()
        except _LineTooLong as error:  # (no "y": the call is denied)
            print_error(error)
            answer = None
        if not typed:
            _write((answer or "") + "\n")  # echoed, as the user's messages are
    if answer is not None and answer.strip().lower() in ("y", "yes"):
        request.approve(by=CONSOLE_USER)
    else:
        request.deny("The user said no in the console.", by=CONSOLE_USER)


APPROVAL_PROMPT = "Approve? [y/N] "
"""Asked after a tool call that waits for the user's approval."""

CONSOLE_USER = "console"
"""Who decided a call approved or denied at the console's prompt (in the decision)."""


def _write(text: str) -> None:
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()
