from __future__ import annotations

import pyarrow as pa

from rosterflow import report


def staged_rows(count: int) -> pa.Table:
    """``count`` rows as the staging tables take them (dates that exist in no identity number)."""
    numbers = [f"2010010{n:05d}" for n in range(count)]
    columns = {name: pa.array([None] * count, type=pa.string()) for name in report.STAGED_COLUMNS}
    columns.update(
        identity_number=pa.array(numbers),
        identity_kind=pa.array(["personal"] * count),
        given_name=pa.array(["Alva"] * count),
        family_name=pa.array(["Berg"] * count),
        grade_year=pa.array([3] * count, type=pa.int16()),
    )
    return pa.table({name: columns[name] for name in report.STAGED_COLUMNS})
