"""Rows as CSV text for COPY, written by pyarrow (no Python row objects)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rosterflow.report import STAGED_COLUMNS


def staged_csv(batch: pa.RecordBatch | pa.Table) -> io.BytesIO:
    """The batch's staged columns as CSV, written by pyarrow (no Python row objects),
    for the COPY into a staging table (``stage_rows``, ``copy_job_rows``)."""
    buffer = io.BytesIO()
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    pacsv.write_csv(
        table.select(list(STAGED_COLUMNS)),
        buffer,
        pacsv.WriteOptions(include_header=False),
    )
    buffer.seek(0)
    return buffer


def identities_csv(column: pa.Array) -> io.BytesIO | None:
    """A column of identity numbers as CSV, its nulls left out; None when none is left."""
    present = pc.drop_null(column)
    if len(present) == 0:
        return None
    buffer = io.BytesIO()
    pacsv.write_csv(
        pa.table({"identity_number": present}),
        buffer,
        pacsv.WriteOptions(include_header=False),
    )
    buffer.seek(0)
    return buffer
