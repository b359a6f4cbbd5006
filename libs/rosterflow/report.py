"""The check report's valid rows as the validator writes them and the importer
stages them. Pure pyarrow: the validator's pure modules import it."""

from __future__ import annotations

import pyarrow as pa

CONTACT_COLUMNS = ("email", "phone", "phone_2", "phone_3", "street", "postcode", "city")
# Up to two guardians a student, in the order the file names them.
GUARDIANS = ("guardian1", "guardian2")
GUARDIAN_FIELDS = ("name", "identity_number", *CONTACT_COLUMNS)
GUARDIAN_COLUMNS = tuple(f"{g}_{name}" for g in GUARDIANS for name in GUARDIAN_FIELDS)

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
        *((name, pa.string()) for name in CONTACT_COLUMNS),
        # A student with a protected identity: none of their contact data, nor
        # their guardians', is in the row.
        ("protected_identity", pa.bool_()),
        *((name, pa.string()) for name in GUARDIAN_COLUMNS),
    ]
)
STAGED_COLUMNS = VALID_ROWS_SCHEMA.names[1:]
