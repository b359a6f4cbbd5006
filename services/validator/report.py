"""The check report as Parquet, written a batch at a time as the file is checked.

``valid.parquet`` holds the rows to import (rosterflow.report.VALID_ROWS_SCHEMA), one
row group per batch, which is how the importer stages them; ``invalid.parquet``
every issue (REPORT_SCHEMA) in line order. Duplicates across batches are known
only at the end: then the valid rows are rewritten without them and their
issues merged into the issue file in line order, both streaming row group by
row group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rosterflow.report import VALID_ROWS_SCHEMA
from rosterflow.storage import ObjectStore
from services.validator.duplicates import Resolution
from services.validator.messages import messages
from services.validator.rows import ISSUE_SCHEMA

REPORT_SCHEMA = ISSUE_SCHEMA.append(pa.field("message_sv", pa.string())).append(
    pa.field("message_en", pa.string())
)
ARCHIVE_SCHEMA = pa.schema(
    [("identity_number", pa.string()), ("given_name", pa.string()), ("family_name", pa.string())]
)
_VALID_DICTIONARY = [
    "identity_kind", "given_name", "family_name", "school_form", "grade_year", "class_name",
    "city",
]  # fmt: skip
_REPORT_DICTIONARY = ["column", "code", "severity", "message_sv", "message_en"]
# Row groups small enough that a page of the report (ingest reads the groups a
# page touches, a filtered page one group at a time) costs a bounded amount:
# a batch of valid rows is staged a group at a time too.
VALID_ROW_GROUP = 65_536
ISSUE_ROW_GROUP = 16_384


def with_messages(issues: pa.Table) -> pa.Table:
    codes = issues.column("code")
    return issues.append_column("message_sv", messages(codes, "sv")).append_column(
        "message_en", messages(codes, "en")
    )


class _Files:
    """The report's Parquet objects, written as they are produced."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def writer(self, key: str, schema: pa.Schema, dictionary: list[str]) -> pq.ParquetWriter:
        # Measured on a million rows: LZ4, dictionaries only for columns with
        # few distinct values and no statistics write in 0.6 s what Parquet's
        # defaults write in 1.4 s; the importer reads it once, whole.
        return self._store.parquet_writer(
            key,
            schema,
            compression="lz4",
            use_dictionary=dictionary,
            write_statistics=False,
        )

    def row_groups(self, key: str) -> Iterator[pa.Table]:
        parquet = self._store.parquet_file(key)
        for index in range(parquet.num_row_groups):
            yield parquet.read_row_group(index)


class ValidRowsMirror(Protocol):
    """Told the valid rows as the report gets them (e.g. to stage them meanwhile):
    each written batch, a restart, and the duplicates dropped at the end."""

    def rows(self, valid: pa.Table) -> None: ...

    def restart(self) -> None: ...

    def resolved(self, resolution: Resolution) -> None: ...


class ReportWriter:
    def __init__(
        self,
        store: ObjectStore,
        valid_key: str,
        invalid_key: str,
        mirror: ValidRowsMirror | None = None,
    ) -> None:
        self.valid_key = valid_key
        self.invalid_key = invalid_key
        self._store = store
        self._mirror = mirror
        self._files = _Files(store)
        self._valid = self._files.writer(valid_key, VALID_ROWS_SCHEMA, _VALID_DICTIONARY)
        self._issues = self._files.writer(invalid_key, REPORT_SCHEMA, _REPORT_DICTIONARY)

    def write(self, valid: pa.Table, issues: pa.Table) -> None:
        if valid.num_rows:
            self._valid.write_table(valid, row_group_size=VALID_ROW_GROUP)
            if self._mirror is not None:
                self._mirror.rows(valid)
        if issues.num_rows:
            self._issues.write_table(with_messages(issues), row_group_size=ISSUE_ROW_GROUP)

    def restart(self) -> None:
        """Start the report over (the file is being read again)."""
        self.close()
        self._valid = self._files.writer(self.valid_key, VALID_ROWS_SCHEMA, _VALID_DICTIONARY)
        self._issues = self._files.writer(self.invalid_key, REPORT_SCHEMA, _REPORT_DICTIONARY)
        if self._mirror is not None:
            self._mirror.restart()

    def close(self) -> None:
        self._valid.close()
        self._issues.close()

    def discard(self) -> None:
        """Remove what was written (the check failed or was cancelled)."""
        self.close()
        for key in (self.valid_key, self.invalid_key):
            self._store.delete(key)
            self._store.delete(key + ".partial")

    def valid_parts(self) -> Iterator[pa.Table]:
        return self._files.row_groups(self.valid_key)

    def apply(self, resolution: Resolution) -> None:
        """Rewrite the closed report without the dropped rows and with the duplicates' issues."""
        self._rewrite(
            self.valid_key,
            VALID_ROWS_SCHEMA,
            _VALID_DICTIONARY,
            VALID_ROW_GROUP,
            lambda part: part.filter(
                pc.invert(pc.is_in(part.column("line"), value_set=resolution.dropped))
            ),
        )
        if self._mirror is not None:
            self._mirror.resolved(resolution)
        pending = with_messages(resolution.issues)

        def merge(part: pa.Table) -> pa.Table:
            nonlocal pending
            last = pc.max(part.column("line")).as_py()
            due = pc.less_equal(pending.column("line"), last)
            merged = pa.concat_tables([part, pending.filter(due)])
            pending = pending.filter(pc.invert(due))
            # Stable: on one line, the row's own issues come before the duplicate's.
            return merged.take(pc.sort_indices(merged, [("line", "ascending")]))

        self._rewrite(
            self.invalid_key,
            REPORT_SCHEMA,
            _REPORT_DICTIONARY,
            ISSUE_ROW_GROUP,
            merge,
            tail=lambda: pending,
        )

    def _rewrite(
        self,
        key: str,
        schema: pa.Schema,
        dictionary: list[str],
        row_group: int,
        change: Callable[[pa.Table], pa.Table],
        tail: Callable[[], pa.Table] | None = None,
    ) -> None:
        partial = key + ".partial"
        self._store.move(key, partial)
        with self._files.writer(key, schema, dictionary) as out:
            for part in self._files.row_groups(partial):
                changed = change(part)
                if changed.num_rows:
                    out.write_table(changed, row_group_size=row_group)
            rest = tail() if tail else None
            if rest is not None and rest.num_rows:
                out.write_table(rest, row_group_size=row_group)
        self._store.delete(partial)
