"""Headless Chromium driven by Playwright: Debian's ``chromium``, never a browser download.

Playwright's Python package talks to the browser through its own driver (installed with the
package, ``pip install playwright``); ``executable_path`` makes it launch the machine's
Chromium (``.ci/setup`` installs it), so ``playwright install`` is never needed and nothing
is downloaded. The browser is told not to reach the network on its own (updates, sync,
safe browsing): a test's pages reach only the servers the test starts on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from playwright.async_api import Page, async_playwright

from tests.fakes.fixtures import WAIT

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


def chromium_path() -> str | None:
    """The Chromium on this machine, if any."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


@asynccontextmanager
async def chromium_page(width: int = 900, height: int = 900) -> AsyncIterator[Page]:
    """A page of a fresh headless Chromium (a new profile), closed with the browser after.

    Raises:
        AssertionError: if the machine has no Chromium (the test fails: CI installs it).
    """
    executable = chromium_path()
    assert executable is not None, "Chromium is missing: apt-get install -y chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS)
        )
        try:
            context = await browser.new_context(viewport={"width": width, "height": height})
            page = await context.new_page()
            page.set_default_timeout(WAIT * 1000)
            yield page
        finally:
            await browser.close()


async def wait_for(page: Page, expression: str, check: Callable[[Any], bool] = bool) -> Any:
    """Evaluate ``expression`` in the page until ``check`` holds for its value; the value.

    For a condition the page signals no event for (a value the test's code checks). Not
    ``page.wait_for_function`` for a condition of the page alone: Playwright evaluates its
    expression with ``eval`` at each poll after the first, which our pages' policy refuses
    (an ``EvalError`` whenever the condition did not hold at the first look); have the page
    set an attribute and wait with ``expect(...).to_have_attribute``, or poll here
    (``page.evaluate`` runs outside the page's policy). Fails after WAIT seconds.
    """

    async def poll() -> Any:
        while True:
            value = await page.evaluate(expression)
            if check(value):
                return value
            await asyncio.sleep(0.05)  # the page runs in another process: look again

    return await asyncio.wait_for(poll(), WAIT)
