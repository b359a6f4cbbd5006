"""Pages of a Parquet report read row group by row group."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from rosterflow.storage import ObjectStore
from services.ingest.reports import filtered_page, page

ROWS = 50


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    store = ObjectStore(pafs.LocalFileSystem(), str(tmp_path))
    table = pa.table(
        {
            "line": pa.array(range(2, ROWS + 2), pa.int64()),
            "code": pa.array(["a", "b", "c"][i % 3] for i in range(ROWS)),
            "severity": pa.array("error" if i % 5 else "warning" for i in range(ROWS)),
        }
    )
    store.write_table("r.parquet", table, row_group_size=7)  # pages cross row groups
    return store


@pytest.mark.parametrize(("offset", "limit"), [(0, 10), (5, 9), (6, 1), (7, 7), (45, 10), (50, 5)])
def test_a_page_is_the_slice_of_the_whole(store: ObjectStore, offset: int, limit: int) -> None:
    total, rows = page(store, "r.parquet", offset, limit)
    assert total == ROWS
    assert [r["line"] for r in rows] == list(range(2, ROWS + 2))[offset : offset + limit]


def test_filters_count_and_page_the_matching_rows(store: ObjectStore) -> None:
    total, rows = filtered_page(store, "r.parquet", 2, 3, codes=["b", "c"], severity="error")
    every = [i + 2 for i in range(ROWS) if ["a", "b", "c"][i % 3] in {"b", "c"} and i % 5 != 0]
    assert total == len(every)
    assert [r["line"] for r in rows] == every[2:5]


def test_without_filters_every_row_counts(store: ObjectStore) -> None:
    assert filtered_page(store, "r.parquet", 0, 1, codes=None, severity=None)[0] == ROWS


@pytest.mark.parametrize(("offset", "limit"), [(0, 4), (3, 5), (9, 20), (30, 5)])
def test_a_filtered_page_crossing_row_groups_is_the_slice_of_the_matches(
    store: ObjectStore, offset: int, limit: int
) -> None:
    every = [i + 2 for i in range(ROWS) if i % 3 == 1]

    total, rows = filtered_page(store, "r.parquet", offset, limit, codes=["b"], severity=None)

    assert total == len(every)
    assert [r["line"] for r in rows] == every[offset : offset + limit]
