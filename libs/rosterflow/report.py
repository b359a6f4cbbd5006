"""The check report's valid rows as the validator writes them and the importer
stages them. Pure pyarrow: the validator's pure modules import it."""

from __future__ import annotations

import pyarrow as pa

# The check report's valid rows: what the importer stages, column for column.
VALID_ROWS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("identity_number", pa.string()),
        ("identity_kind", pa.string()),
        ("given_name", pa.string()),
        ("family_name", pa.string()),
        ("school_form", pa.string()),
        ("grade_year", pa.int16()),
        ("class_name", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("street", pa.string()),
        ("postcode", pa.string()),
        ("city", pa.string()),
    ]
)
STAGED_COLUMNS = VALID_ROWS_SCHEMA.names[1:]
