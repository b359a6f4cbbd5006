"""Fixtures for tests against the real local stack (deploy/local/stack.py up).

Each test gets its own database, created from a migrated template database,
its own topic prefix and consumer groups, and its own object-storage
directory. A stack that is not running fails the test; nothing is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from pydantic import SecretStr

from rosterflow import db
from rosterflow.settings import (
    AuthSettings,
    DatabaseSettings,
    KafkaSettings,
    OpsSettings,
    Settings,
    StorageSettings,
)
from rosterflow.testing import TEST_AUTH_SECRET, delete_prefixed_topics
from tests.support.database import ADMIN_DSN, copy_of, with_database


@pytest.fixture(scope="session")
async def template_database() -> str:
    """A database with every migration applied, named after their content."""
    digest = hashlib.sha256("".join(m.sql for m in db.migrations()).encode()).hexdigest()[:12]
    name = f"rf_template_{digest}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
            conn = await asyncpg.connect(with_database(ADMIN_DSN, name))
            try:
                await db.migrate(conn)
            finally:
                await conn.close()
            await admin.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
    finally:
        await admin.close()
    return name


@pytest.fixture
async def database_dsn(template_database: str) -> AsyncIterator[str]:
    async with copy_of(template_database) as dsn:
        yield dsn


@pytest.fixture
async def conn(database_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await db.connect(database_dsn)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def settings(database_dsn: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings for one test: its own database, topics, groups and storage.

    The test's topics are deleted afterwards, so a full run does not leave the
    broker carrying thousands of partitions.
    """
    test_settings = Settings(
        kafka=KafkaSettings(prefix=f"t{uuid4().hex[:10]}.", partitions=2),
        db=DatabaseSettings(dsn=database_dsn),
        storage=StorageSettings(uri=(tmp_path / "objects").as_uri()),
        auth=AuthSettings(hs256_secret=SecretStr(TEST_AUTH_SECRET)),
        # An in-process ingest serves its ops endpoints too: on a port of its own.
        ops=OpsSettings(port=0),
    )
    yield test_settings
    await delete_prefixed_topics(test_settings.kafka)
