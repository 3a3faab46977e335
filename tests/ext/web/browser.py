"""Headless Chromium driven over the DevTools protocol on a pipe (no driver, no websocket).

``chromium --remote-debugging-pipe`` reads commands from its file descriptor 3 and writes
replies and events to its file descriptor 4, each a JSON message ended by a NUL byte.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The Chromium on this machine, if any."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


class Browser:
    """One page of a headless Chromium: navigate, evaluate, reload, screenshot."""

    def __init__(self, writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
        self._writer = writer
        self._reader = reader
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._session: str | None = None
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                raw = await self._reader.readuntil(b"\0")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            message = json.loads(raw[:-1])
            waiter = self._waiting.pop(message.get("id", -1), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("Chromium closed its pipe"))

    async def send(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        """Send one command; its result (an error reply raises)."""
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session and self._session is not None:
            message["sessionId"] = self._session
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = waiter
        self._writer.write(json.dumps(message).encode() + b"\0")
        await self._writer.drain()
        reply = await asyncio.wait_for(waiter, 30)
        if "error" in reply:
            raise RuntimeError(f"{method} failed: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def open(self, url: str) -> None:
        """Open a page at ``url`` and talk to it from now on."""
        target = await self.send("Target.createTarget", session=False, url="about:blank")
        attached = await self.send(
            "Target.attachToTarget", session=False, targetId=target["targetId"], flatten=True
        )
        self._session = attached["sessionId"]
        await self.send("Page.navigate", url=url)

    async def navigate(self, url: str) -> None:
        """Go to ``url`` in the page open now (the page it leaves is unloaded)."""
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, check: Callable[[Any], bool] = bool) -> Any:
        """Evaluate ``expression`` until ``check`` holds for its value (30 s at most)."""

        async def poll() -> Any:
            while True:
                value = await self.evaluate(expression)
                if check(value):
                    return value
                await asyncio.sleep(0.05)  # the page runs in another process: look again

        return await asyncio.wait_for(poll(), 30)

    async def reload(self) -> None:
        """Reload the page."""
        await self.send("Page.reload")

    async def screenshot(self, path: Path) -> None:
        """Save a PNG of the page."""
        shot = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))

    async def aclose(self) -> None:
        """Ask Chromium to close, and stop reading."""
        with contextlib.suppress(RuntimeError, ConnectionError, asyncio.TimeoutError):
            await asyncio.wait_for(self.send("Browser.close", session=False), 10)
        self._writer.close()
        self._reading.cancel()


def _as_fds_3_and_4(commands: int, replies: int) -> None:
    """In the child: the two pipe ends as its fds 3 and 4 (copied high first: no clash)."""
    high_commands = fcntl.fcntl(commands, fcntl.F_DUPFD, 100)
    high_replies = fcntl.fcntl(replies, fcntl.F_DUPFD, 100)
    os.dup2(high_commands, 3)
    os.dup2(high_replies, 4)


@asynccontextmanager
async def headless_chromium(executable: str, profile: Path) -> AsyncIterator[Browser]:
    """A headless Chromium with a fresh profile, driven over its DevTools pipe."""
    commands_read, commands_write = os.pipe()  # its fd 3
    replies_read, replies_write = os.pipe()  # its fd 4
    process = await asyncio.create_subprocess_exec(
        executable,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=900,900",
        f"--user-data-dir={profile}",
        "--remote-debugging-pipe",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        pass_fds=(3, 4),
        preexec_fn=lambda: _as_fds_3_and_4(commands_read, replies_write),
    )
    os.close(commands_read)
    os.close(replies_write)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(replies_read, "rb", 0)
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(commands_write, "wb", 0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    browser = Browser(writer, reader)
    try:
        yield browser
    finally:
        await browser.aclose()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
