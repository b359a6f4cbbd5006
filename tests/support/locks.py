"""The organisation's apply lock, held by a test so a stage stops inside its transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

from rosterflow import db
from rosterflow.journal import merge
from rosterflow.settings import Settings
from rosterflow.testing import School, wait_for


@asynccontextmanager
async def organisation_locked(
    settings: Settings, school: School
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold the organisation's apply lock, so a stage stops inside its transaction.

    Yields ``release``; leaving the block releases it too.
    """
    blocker = await db.connect(settings.db.dsn.get_secret_value())
    transaction = blocker.transaction()
    await transaction.start()
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            await transaction.commit()

    try:
        await merge.lock_organisation(blocker, school.organisation_id)
        yield release
    finally:
        await release()
        await blocker.close()


async def someone_waits_for_the_lock(conn: asyncpg.Connection) -> None:
    async def probe() -> bool:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
        return bool(waiting)

    await wait_for(probe, within=60, what="a stage waiting for the organisation's lock")
