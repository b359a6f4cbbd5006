"""Browser tests: Debian's Chromium, driven by Playwright, against the five
services running as processes on the real stack.

The services start once for the module's tests (each test seeds an
organisation of its own, which is all the isolation the pages need); a
session of the browser is signed in the way the platform does it, by posting
its token to /ui/launch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr

from rosterflow import db
from rosterflow.launcher import service_processes
from rosterflow.settings import (
    PlatformSettings,
    UiSettings,
)
from rosterflow.testing import delete_prefixed_topics
from tests.support.browser import Stack
from tests.support.database import copy_of
from tests.support.pipeline import process_settings

CHROMIUM = Path("/usr/bin/chromium")


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
