"""The numbered migrations build the expected schema from an empty database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from rosterflow import db
from tests.support.database import ADMIN_DSN, with_database

EXPECTED = Path(__file__).with_name("expected_schema.txt")

DESCRIBE = """
SELECT c.table_name || '.' || c.column_name || ' ' || c.data_type
       || CASE WHEN c.is_nullable = 'NO' THEN ' not null' ELSE '' END AS line
  FROM information_schema.columns c
 WHERE c.table_schema = 'public'
UNION ALL
SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ': '
       || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
ORDER BY 1
"""


@pytest.fixture
async def empty_database() -> AsyncIterator[asyncpg.Connection]:
    name = f"rf_empty_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(with_database(ADMIN_DSN, name))
    try:
        yield conn
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrations_build_the_expected_schema_from_empty(
    empty_database: asyncpg.Connection,
) -> None:
    applied = await db.migrate(empty_database)
    assert applied == [m.version for m in db.migrations()]
    schema = "\n".join(r["line"] for r in await empty_database.fetch(DESCRIBE)) + "\n"
    if os.environ.get("ROSTERFLOW_UPDATE_EXPECTED_SCHEMA") == "1":
        EXPECTED.write_text(schema)
    assert schema == EXPECTED.read_text(), (
        "the migrations changed the schema; if on purpose, rerun with "
        "ROSTERFLOW_UPDATE_EXPECTED_SCHEMA=1 and review the diff of expected_schema.txt"
    )


async def test_migrating_again_changes_nothing(empty_database: asyncpg.Connection) -> None:
    await db.migrate(empty_database)
    assert await db.migrate(empty_database) == []
