"""The session's staging tables: kept per connection, always empty between uses."""

from __future__ import annotations

import pyarrow as pa
import pytest

from rosterflow import db
from rosterflow.journal import merge, staging
from rosterflow.settings import DatabaseSettings
from rosterflow.testing import seed_school
from tests.support.staging import staged_rows


async def _counts(conn: db.Connection) -> tuple[int, int, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM staged) AS s, (SELECT count(*) FROM file_identities) AS f,"
        " (SELECT count(*) FROM resolved) AS r"
    )
    assert row is not None
    return row["s"], row["f"], row["r"]


async def test_staging_tables_outlive_the_transaction_and_are_empty_after_a_commit(
    database_dsn: str,
) -> None:
    conn = await db.connect(database_dsn)
    try:
        for _ in range(2):
            async with staging.staging(conn), conn.transaction():
                await staging.stage_rows(conn, staged_rows(5))
                await staging.stage_file_identities(conn, [pa.array(["201001010000"])])
                assert await _counts(conn) == (5, 1, 0)
            assert await _counts(conn) == (0, 0, 0)
        # Created once: the same table, not a new one per transaction.
        oid = await conn.fetchval("SELECT 'pg_temp.staged'::regclass::oid")
        async with staging.staging(conn), conn.transaction():
            assert await conn.fetchval("SELECT 'pg_temp.staged'::regclass::oid") == oid
    finally:
        await conn.close()


async def test_a_failed_transaction_leaves_no_rows_live_or_dead(database_dsn: str) -> None:
    conn = await db.connect(database_dsn)
    try:

        async def stage_then_fail() -> None:
            async with staging.staging(conn), conn.transaction():
                await staging.stage_rows(conn, staged_rows(50))
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await stage_then_fail()
        assert await _counts(conn) == (0, 0, 0)
        async with staging.staging(conn), conn.transaction():
            await staging.stage_rows(conn, staged_rows(3))
            assert await _counts(conn) == (3, 0, 0)
    finally:
        await conn.close()


async def test_staging_refuses_to_start_inside_a_transaction(database_dsn: str) -> None:
    conn = await db.connect(database_dsn)
    try:
        async with conn.transaction():
            with pytest.raises(RuntimeError):
                async with staging.staging(conn):
                    pass
    finally:
        await conn.close()


async def test_row_groups_are_staged_in_order_with_progress_and_a_stop(database_dsn: str) -> None:
    conn = await db.connect(database_dsn)
    groups = [staged_rows(4), staged_rows(3), staged_rows(2)]
    read: list[int] = []
    progress: list[int] = []

    def read_group(index: int) -> pa.Table:
        read.append(index)
        return groups[index]

    async def after(rows: int) -> None:
        progress.append(rows)

    try:
        async with staging.staging(conn), conn.transaction():
            staged = await staging.stage_row_groups(conn, 3, read_group, after=after)
            assert staged == 9
            assert await _counts(conn) == (9, 0, 0)
        assert read == [0, 1, 2]
        assert progress == [4, 7, 9]

        copies = 0

        def stop_after_one() -> None:
            nonlocal copies
            copies += 1
            if copies == 2:
                raise LookupError("cancelled")

        async def stage_then_stop() -> None:
            async with staging.staging(conn), conn.transaction():
                await staging.stage_row_groups(conn, 3, read_group, before=stop_after_one)

        with pytest.raises(LookupError):
            await stage_then_stop()
        assert await _counts(conn) == (0, 0, 0)
    finally:
        await conn.close()


def _creates(queries: list[str]) -> int:
    return sum("CREATE TEMPORARY TABLE" in q for q in queries)


async def test_a_pooled_connection_creates_the_tables_once_and_a_new_one_again(
    database_dsn: str,
) -> None:
    pool = await db.create_pool(
        DatabaseSettings(dsn=database_dsn, min_pool_size=1, max_pool_size=1)
    )
    queries: list[str] = []
    try:
        for expected in (5, 0):  # the second use finds the first one's rows gone
            async with pool.acquire() as conn:
                conn.add_query_logger(lambda record: queries.append(record.query))
                async with staging.staging(conn), conn.transaction():
                    assert await _counts(conn) == (0, 0, 0)
                    await staging.stage_rows(conn, staged_rows(5 if expected else 2))
                    assert (await _counts(conn))[0] == (5 if expected else 2)
        assert _creates(queries) == 1
        # A failed transaction keeps the tables (they were created outside it).

        async def stage_then_fail() -> None:
            async with pool.acquire() as conn, staging.staging(conn), conn.transaction():
                await staging.stage_rows(conn, staged_rows(4))
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await stage_then_fail()
        async with pool.acquire() as conn, staging.staging(conn), conn.transaction():
            assert await _counts(conn) == (0, 0, 0)
            await staging.stage_rows(conn, staged_rows(1))
        assert _creates(queries) == 1
        # The pool replaces its connection: the new session has no tables yet.
        await pool.expire_connections()
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: queries.append(record.query))
            async with staging.staging(conn), conn.transaction():
                await staging.stage_rows(conn, staged_rows(3))
                assert await _counts(conn) == (3, 0, 0)
        assert _creates(queries) == 2
    finally:
        await pool.close()


async def test_the_tables_survive_a_full_connection_reset(
    database_dsn: str,
) -> None:
    conn = await db.connect(database_dsn)
    try:
        async with staging.staging(conn), conn.transaction():
            await staging.stage_rows(conn, staged_rows(2))
        # asyncpg's full reset (what a pool does by default): RESET ALL, UNLISTEN, …
        await conn.reset()
        async with staging.staging(conn), conn.transaction():
            await staging.stage_rows(conn, staged_rows(2))
            assert await _counts(conn) == (2, 0, 0)
    finally:
        await conn.close()


def _patients(count: int) -> pa.Table:
    """Rows the journal takes (a kind of number it knows)."""
    rows = staged_rows(count)
    kinds = pa.array(["personnummer"] * count)
    return rows.set_column(rows.schema.get_field_index("identity_kind"), "identity_kind", kinds)


async def test_small_staged_sets_are_joined_without_analyze_and_large_ones_with_it(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "ANALYZE_FROM_ROWS", 20)
    conn = await db.connect(database_dsn)
    queries: list[str] = []
    conn.add_query_logger(lambda record: queries.append(record.query))
    school = await seed_school(conn)
    year = "2026/2027"

    def analyzed() -> list[str]:
        found = [q for q in queries if q.startswith("ANALYZE")]
        queries.clear()
        return found

    try:
        # Below the threshold: the plan and the import, no statistics taken.
        for _ in range(2):
            async with staging.staging(conn), conn.transaction():
                await staging.stage_rows(conn, _patients(19))
                plan = await merge.classify_staged(
                    conn, school.organisation_id, school.unit_id, year
                )
            async with staging.staging(conn), conn.transaction():
                await staging.stage_row_groups(conn, 1, lambda _: _patients(19))
                applied = await merge.apply_staged(
                    conn, school.organisation_id, school.unit_id, year
                )
            assert plan == applied
            assert analyzed() == []
        assert applied.unchanged == 19
        # From the threshold on, both tables are analysed before they are joined.
        async with staging.staging(conn), conn.transaction():
            await staging.stage_rows(conn, _patients(12))
            await staging.stage_rows(conn, _patients(20).slice(12))
            plan = await merge.classify_staged(conn, school.organisation_id, school.unit_id, year)
        assert analyzed() == ["ANALYZE staged"]
        async with staging.staging(conn), conn.transaction():
            await staging.stage_rows(conn, _patients(20))
            applied = await merge.apply_staged(conn, school.organisation_id, school.unit_id, year)
        assert analyzed() == ["ANALYZE staged", "ANALYZE resolved"]
        assert plan == applied
        assert (applied.created, applied.unchanged) == (1, 19)
        # Rows staged outside a staging() block are not counted: analysed, as before.
        await staging.create_staging(conn)
        async with conn.transaction():
            await staging.stage_rows(conn, _patients(3))
            await merge.classify_staged(conn, school.organisation_id, school.unit_id, year)
        assert analyzed() == ["ANALYZE staged"]
    finally:
        await conn.close()
