from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import asyncpg

from rosterflow.settings import DatabaseSettings

# The stack's administrative connection: tests create and drop their databases through it.
ADMIN_DSN = DatabaseSettings().dsn.get_secret_value()


def with_database(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


@asynccontextmanager
async def copy_of(template: str, prefix: str = "rf_test") -> AsyncIterator[str]:
    """A database made from the migrated template (its DSN), dropped afterwards."""
    name = f"{prefix}_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield with_database(ADMIN_DSN, name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
