from __future__ import annotations

import pyarrow as pa

from rosterflow import report


def staged_table(count: int, **given: pa.Array) -> pa.Table:
    """``count`` staged rows: the columns ``given``, the others empty (no contact data,
    no guardians, no protected identity)."""
    columns: dict[str, pa.Array] = {
        name: pa.nulls(count, report.VALID_ROWS_SCHEMA.field(name).type)
        for name in report.STAGED_COLUMNS
    }
    columns["protected_identity"] = pa.array([False] * count)
    columns.update(given)
    return pa.table({name: columns[name] for name in report.STAGED_COLUMNS})


def staged_rows(count: int) -> pa.Table:
    """``count`` rows as the staging tables take them (dates that exist in no identity number)."""
    return staged_table(
        count,
        identity_number=pa.array([f"2010010{n:05d}" for n in range(count)]),
        identity_kind=pa.array(["personal"] * count),
        given_name=pa.array(["Alva"] * count),
        family_name=pa.array(["Berg"] * count),
        grade_year=pa.array([3] * count, type=pa.int16()),
    )
