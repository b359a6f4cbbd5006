"""The importer's bulk path against `psql \\copy` and a per-row executemany, side by side.

    make up && .venv/bin/python bench/bench_importer.py [--rows 1000000] [--typical-rows 100000]

All on the local stack's PostgreSQL, each case in a fresh database migrated
like production. Identity numbers are temporary numbers (date + TF + two
digits), which belong to nobody; the rows are seeded and reproducible.

Cases:
- floor: `psql \\copy` of the same rows into the journal's tables (patients,
  enrolments, placements: the same primary, unique and foreign keys); the
  ratios are against it. For reference, also into one table keyed like patients;
- first import: rosterflow's apply (COPY into staging + set-based upserts of
  patients, enrolments and placements, one transaction) into an empty unit;
- re-import: the same unit holding those patients, a file 90 % unchanged,
  5 % changed, 5 % new;
- typical: asyncpg executemany of INSERT … ON CONFLICT DO UPDATE, the same
  three tables a row at a time (on --typical-rows rows; rows/s is what compares);
- archive: archiving 100k of 1M patients (archive set + UPDATE).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pyarrow as pa

from rosterflow import db, report
from rosterflow.journal import archive, merge, staging
from rosterflow.settings import DatabaseSettings

DSN = DatabaseSettings().dsn.get_secret_value()
SCHOOL_YEAR = "2026/2027"
FLOOR_COLUMNS = (
    "identity_number",
    "identity_kind",
    "given_name",
    "family_name",
    "school_form",
    "grade_year",
    "class_name",
)
GIVEN = ["Alva", "Elsa", "Maja", "Nils", "Hugo", "Oskar", "Åsa", "Björn", "Sören", "Märta"]
FAMILY = ["Andersson", "Johansson", "Karlsson", "Nilsson", "Lindström", "Åberg", "Öberg"]


def temporary_numbers(count: int) -> list[str]:
    start = date(2000, 1, 1)
    return [
        f"{(start + timedelta(days=i // 100)).strftime('%Y%m%d')}TF{i % 100:02d}"
        for i in range(count)
    ]


def rows_table(numbers: list[str], seed: int) -> pa.Table:
    rng = random.Random(seed)
    grades = [rng.randint(1, 9) for _ in numbers]
    return pa.table(
        {
            "line": pa.array(range(2, len(numbers) + 2), pa.int64()),
            "identity_number": numbers,
            "identity_kind": ["temporary"] * len(numbers),
            "given_name": [rng.choice(GIVEN) for _ in numbers],
            "family_name": [rng.choice(FAMILY) for _ in numbers],
            "school_form": ["compulsory"] * len(numbers),
            "grade_year": pa.array(grades, pa.int16()),
            "class_name": [f"{g}{rng.choice('ABC')}" for g in grades],
            **{
                name: pa.nulls(len(numbers), pa.string())
                for name in report.VALID_ROWS_SCHEMA.names
                if name in report.CONTACT_COLUMNS or name in report.GUARDIAN_COLUMNS
            },
            "protected_identity": pa.repeat(pa.scalar(False), len(numbers)),
        },
        schema=report.VALID_ROWS_SCHEMA,
    )


def reimport_table(first: pa.Table, extra: list[str], seed: int) -> pa.Table:
    """90 % unchanged, 5 % with a new class, 5 % replaced by new patients."""
    rows = first.num_rows
    changed = rows // 20
    kept = first.slice(0, rows - changed)
    classes = kept.column("class_name").to_pylist()
    for i in range(rows - 2 * changed, rows - changed):
        classes[i] = classes[i] + "X"
    kept = kept.set_column(
        kept.schema.get_field_index("class_name"), "class_name", pa.array(classes, pa.string())
    )
    return pa.concat_tables([kept, rows_table(extra, seed)])


async def fresh_database(admin: asyncpg.Connection) -> str:
    name = f"rf_bench_{uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = DSN.rsplit("/", 1)[0] + "/" + name
    conn = await db.connect(dsn)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    return name


async def seed_unit(conn: asyncpg.Connection) -> tuple[UUID, UUID]:
    org, unit = uuid4(), uuid4()
    await conn.execute("INSERT INTO organisations (id, name) VALUES ($1, 'Bench')", org)
    await conn.execute(
        "INSERT INTO units (id, organisation_id, name, school_level) "
        "VALUES ($1, $2, 'Bench school', 'compulsory')",
        unit,
        org,
    )
    return org, unit


async def apply(conn: asyncpg.Connection, org: UUID, unit: UUID, table: pa.Table) -> object:
    async with conn.transaction():
        await staging.create_staging(conn)
        for batch in table.to_batches(max_chunksize=50_000):
            await staging.stage_rows(conn, batch)
        return await merge.apply_staged(conn, org, unit, SCHOOL_YEAR)


TYPICAL = """
WITH p AS (
    INSERT INTO patients AS p (organisation_id, identity_number, identity_kind, given_name,
                               family_name)
    VALUES ($1, $3, $4, $5, $6)
    ON CONFLICT (organisation_id, identity_number) DO UPDATE
       SET given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name
    RETURNING id
), e AS (
    INSERT INTO enrolments (patient_id, unit_id) SELECT id, $2 FROM p
    ON CONFLICT (unit_id, patient_id) DO UPDATE SET status = 'active'
)
INSERT INTO placements (patient_id, unit_id, school_year, school_form, grade_year, class_name)
SELECT id, $2, $7, $8, $9, $10 FROM p
ON CONFLICT (unit_id, school_year, patient_id) DO UPDATE
   SET school_form = EXCLUDED.school_form, grade_year = EXCLUDED.grade_year,
       class_name = EXCLUDED.class_name
"""


async def typical(conn: asyncpg.Connection, org: UUID, unit: UUID, table: pa.Table) -> None:
    d = table.to_pydict()
    args = [
        (
            org,
            unit,
            d["identity_number"][i],
            d["identity_kind"][i],
            d["given_name"][i],
            d["family_name"][i],
            SCHOOL_YEAR,
            d["school_form"][i],
            d["grade_year"][i],
            d["class_name"][i],
        )
        for i in range(table.num_rows)
    ]
    async with conn.transaction():
        await conn.executemany(TYPICAL, args)


def psql(database: str, *commands: str) -> float:
    """Run psql commands in one session; the seconds they took."""
    base = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", DSN.rsplit("/", 1)[0] + "/" + database]
    start = time.perf_counter()
    subprocess.run([*base, *(arg for c in commands for arg in ("-c", c))], check=True)
    return time.perf_counter() - start


def write_csv(path: Path, rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", newline="") as out:
        csv.writer(out).writerows(rows)


def floor_one_table(database: str, table: pa.Table) -> float:
    """`psql \\copy` of the rows into one table keyed like patients."""
    d = table.to_pydict()
    org = str(uuid4())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.csv"
        write_csv(
            path,
            ((org, *(d[c][i] for c in FLOOR_COLUMNS)) for i in range(table.num_rows)),
        )
        psql(
            database,
            "CREATE TABLE floor_rows (organisation_id uuid, identity_number text, "
            "identity_kind text, given_name text, family_name text, school_form text, "
            "grade_year smallint, class_name text, UNIQUE (organisation_id, identity_number))",
        )
        return psql(database, f"\\copy floor_rows FROM '{path}' WITH (FORMAT csv)")


def floor_journal_tables(database: str, org: UUID, unit: UUID, table: pa.Table) -> float:
    """`psql \\copy` of the same rows into patients, enrolments and placements.

    The journal's own tables, freshly migrated: the same primary, unique and
    foreign keys the import writes through, with the patient ids made in advance.
    """
    d = table.to_pydict()
    ids = [str(uuid4()) for _ in range(table.num_rows)]
    n = range(table.num_rows)
    with tempfile.TemporaryDirectory() as tmp:
        patients, enrolments, placements = (Path(tmp) / f"{t}.csv" for t in ("p", "e", "pl"))
        write_csv(
            patients,
            (
                (ids[i], org, d["identity_number"][i], d["identity_kind"][i],
                 d["given_name"][i], d["family_name"][i])
                for i in n
            ),
        )  # fmt: skip
        write_csv(enrolments, ((ids[i], unit) for i in n))
        write_csv(
            placements,
            (
                (ids[i], unit, SCHOOL_YEAR, d["school_form"][i], d["grade_year"][i],
                 d["class_name"][i])
                for i in n
            ),
        )  # fmt: skip
        return psql(
            database,
            f"\\copy patients (id, organisation_id, identity_number, identity_kind, "
            f"given_name, family_name) FROM '{patients}' WITH (FORMAT csv)",
            f"\\copy enrolments (patient_id, unit_id) FROM '{enrolments}' WITH (FORMAT csv)",
            f"\\copy placements (patient_id, unit_id, school_year, school_form, grade_year, "
            f"class_name) FROM '{placements}' WITH (FORMAT csv)",
        )


async def timed(step: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    start = time.perf_counter()
    result = await step()
    return time.perf_counter() - start, result


async def main(rows: int, typical_rows: int) -> None:
    numbers = temporary_numbers(rows + rows // 20)
    first = rows_table(numbers[:rows], seed=1)
    second = reimport_table(first, numbers[rows:], seed=2)
    admin = await asyncpg.connect(DSN)
    made: list[str] = []
    results: list[tuple[str, int, float]] = []
    try:
        floor_db = await fresh_database(admin)
        made.append(floor_db)
        floor_conn = await db.connect(DSN.rsplit("/", 1)[0] + "/" + floor_db)
        floor_org, floor_unit = await seed_unit(floor_conn)
        await floor_conn.close()
        seconds = floor_journal_tables(floor_db, floor_org, floor_unit, first)
        results.append(("floor: psql \\copy, journal's 3 tables", rows, seconds))
        seconds = floor_one_table(floor_db, first)
        results.append(("floor: psql \\copy, one keyed table", rows, seconds))

        name = await fresh_database(admin)
        made.append(name)
        conn = await db.connect(DSN.rsplit("/", 1)[0] + "/" + name)
        org, unit = await seed_unit(conn)
        seconds, counts = await timed(lambda: apply(conn, org, unit, first))
        results.append(("rosterflow first import (3 tables)", rows, seconds))
        print(f"  first import counts: {counts}")
        seconds, counts = await timed(lambda: apply(conn, org, unit, second))
        results.append(("rosterflow re-import 90/5/5", rows, seconds))
        print(f"  re-import counts: {counts}")

        # The archiver's work: the file names all but a tenth of the unit's patients.
        remaining = second.column("identity_number").to_pylist()
        in_file = remaining[: len(remaining) - len(remaining) // 10]
        start = time.perf_counter()
        async with conn.transaction():
            await staging.create_staging(conn)
            await staging.stage_file_identities(conn, [pa.array(in_file, pa.string())])
            plan = await archive.archive_plan(conn, org, unit, 1.0)
            archived = await archive.archive(conn, unit, plan.patient_ids, uuid4())
        seconds = time.perf_counter() - start
        label = f"archive {archived:,} of {plan.active:,} (set + UPDATE)"
        results.append((label, archived, seconds))
        await conn.close()

        name = await fresh_database(admin)
        made.append(name)
        conn = await db.connect(DSN.rsplit("/", 1)[0] + "/" + name)
        org, unit = await seed_unit(conn)
        sample = first.slice(0, typical_rows)
        seconds, _ = await timed(lambda: typical(conn, org, unit, sample))
        results.append(("typical: executemany upsert (3 tables)", typical_rows, seconds))
        await conn.close()
    finally:
        for name in made:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    floor_rate = results[0][1] / results[0][2]
    typical_rate = results[-1][1] / results[-1][2]
    print(
        f"\n{'case':<44} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'× floor':>8} {'× typical':>9}"
    )
    for label, count, seconds in results:
        rate = count / seconds
        print(
            f"{label:<44} {count:>10,} {seconds:>8.2f} {rate:>10,.0f} "
            f"{rate / floor_rate:>8.2f} {rate / typical_rate:>9.1f}"
        )
    print(f"\nmachine: {os.cpu_count()} cores; PostgreSQL from the local stack (fsync off)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--typical-rows", type=int, default=100_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows, arguments.typical_rows))
