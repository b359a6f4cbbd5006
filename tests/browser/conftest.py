"""Browser tests: Debian's Chromium, driven by Playwright, against the five
services running as processes on the real stack.

The services start once for the module's tests (each test seeds an
organisation of its own, which is all the isolation the pages need); a
session of the browser is signed in the way the platform does it, by posting
its token to /ui/launch.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr

from rosterflow import db
from rosterflow.launcher import Services, service_processes
from rosterflow.settings import (
    LOCAL_DIR,
    REPO_ROOT,
    PlatformSettings,
    Settings,
    UiSettings,
)
from rosterflow.testing import delete_prefixed_topics, mint_token
from tests.support.database import copy_of
from tests.support.pipeline import process_settings

CHROMIUM = Path("/usr/bin/chromium")
# Every screenshot a test takes lands here; with ROSTERFLOW_DOCS_SCREENSHOTS=1
# the ones named for the documentation are copied into docs/screenshots.
SHOTS = LOCAL_DIR / "screenshots"
DOCS_SHOTS = REPO_ROOT / "docs" / "screenshots"


@dataclass
class Stack:
    settings: Settings
    services: Services
    dsn: str

    @property
    def base(self) -> str:
        return self.services.base_url

    def token(self, *organisations: UUID, **claims: object) -> str:
        return mint_token(list(organisations), **claims)  # type: ignore[arg-type]


# Package-wide: the services stop when the browser tests are done, not at the end of the run.
@pytest.fixture(scope="package")
async def stack(
    template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    root = tmp_path_factory.mktemp("browser")
    async with copy_of(template_database, "rf_browser") as dsn:
        base = process_settings(dsn, root, partitions=2)
        settings = base.model_copy(
            update={
                # The email's link is the job page these tests open.
                "platform": PlatformSettings(base_url=f"http://127.0.0.1:{base.http.port}/ui"),
                "ui": UiSettings(session_secret=SecretStr(uuid4().hex)),
            }
        )
        try:
            with service_processes(settings, root / "logs") as services:
                yield Stack(settings, services, dsn)
        finally:
            await delete_prefixed_topics(settings.kafka)


@pytest.fixture
async def conn(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    connection = await db.connect(stack.dsn)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    # Playwright's own browser builds cannot be downloaded here: Debian's Chromium,
    # installed by `make chromium`.
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    opened = await context.new_page()
    try:
        yield opened
    finally:
        await context.close()


async def sign_in(page: Page, stack: Stack, *organisations: UUID, **claims: object) -> None:
    await launch(page, stack, stack.token(*organisations, **claims))


async def launch(page: Page, stack: Stack, token: str) -> None:
    """As the platform does: its token in a form POST, never in an address.

    From a blank page, as from the platform's own site: a cross-site POST."""
    await page.goto("about:blank")
    await page.evaluate(
        """([token, action]) => {
            const form = document.createElement("form");
            form.method = "post"; form.action = action;
            const input = document.createElement("input");
            input.type = "hidden"; input.name = "token"; input.value = token;
            form.append(input); document.body.append(form); form.submit();
        }""",
        [token, f"{stack.base}/ui/launch"],
    )
    await page.wait_for_url(f"{stack.base}/ui/")


async def shot(page: Page, name: str) -> None:
    """The whole page into .local/screenshots; what the window shows into docs/ on request."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    if os.environ.get("ROSTERFLOW_DOCS_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=DOCS_SHOTS / f"{name}.png")


_axe = Axe()


async def accessible(page: Page) -> None:
    """axe-core on the page as it is: no serious or critical violation (WCAG 2.1 AA)."""
    results = await _axe.run(
        page,
        options={
            "runOnly": {
                "type": "tag",
                "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
            }
        },
    )
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: {bad}"
