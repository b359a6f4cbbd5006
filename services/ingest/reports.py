"""Pages of a job's check report, read from its Parquet objects.

Only the row groups a page touches are read, so a page of a million-row
report costs one row group, not the file.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rosterflow.storage import ObjectStore


def page(store: ObjectStore, key: str, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """Rows offset … offset+limit of a Parquet object, and its row count."""
    parquet = store.parquet_file(key)
    total = parquet.metadata.num_rows
    wanted: list[pa.Table] = []
    start = 0
    for index in range(parquet.num_row_groups):
        rows = parquet.metadata.row_group(index).num_rows
        end = start + rows
        if end > offset and start < offset + limit:
            group = parquet.read_row_group(index)
            low = max(offset - start, 0)
            wanted.append(group.slice(low, offset + limit - start - low))
        start = end
        if start >= offset + limit:
            break
    if not wanted:
        return total, []
    return total, pa.concat_tables(wanted).to_pylist()


def filtered_page(
    store: ObjectStore,
    key: str,
    offset: int,
    limit: int,
    *,
    codes: list[str] | None,
    severity: str | None,
) -> tuple[int, list[dict[str, Any]]]:
    """Issues with one of ``codes`` (and the severity), paged; all of them without filters.

    A row group at a time: its code and severity columns say which rows match
    (and count them all), and only the groups the page falls in are read whole.
    """
    if not codes and severity is None:
        return page(store, key, offset, limit)
    parquet = store.parquet_file(key)
    wanted: list[pa.Table] = []
    total = 0
    for index in range(parquet.num_row_groups):
        group = parquet.read_row_group(index, columns=["code", "severity"])
        mask = pa.repeat(pa.scalar(True), group.num_rows)
        if codes:
            mask = pc.and_(mask, pc.is_in(group.column("code"), pa.array(codes, pa.string())))
        if severity is not None:
            mask = pc.and_(mask, pc.equal(group.column("severity"), severity))
        mask = pc.fill_null(mask, False)
        matched = pc.sum(mask).as_py() or 0
        start, total = total, total + matched
        if matched and total > offset and start < offset + limit:
            chosen = parquet.read_row_group(index).filter(mask)
            low = max(offset - start, 0)
            wanted.append(chosen.slice(low, offset + limit - start - low))
    if not wanted:
        return total, []
    return total, pa.concat_tables(wanted).to_pylist()
