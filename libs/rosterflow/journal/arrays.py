"""A small set's rows passed as one array per column instead of staged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from rosterflow.report import GUARDIAN_COLUMNS, STAGED_COLUMNS, VALID_ROWS_SCHEMA

# Below this many rows a set is not staged but classified and applied from
# arrays (``as_arrays``, ``RowArrays``). Per row the arrays cost more than the
# staging table (Python lists and their encoding in the client; the plan
# cache's generic plan probes the indexes row by row where the staged join,
# planned anew each time, hashes), and the commits they spare cost the same
# whatever the size. Plan + import, backend + client CPU a job against 50,000
# patients (scratch, under the bench lock), new patients / all unchanged:
# 100 rows −9 / −3 ms; 200: −7 / 0…+2.5; 250: −6 / +3; 300: 0 / +5;
# 500: −6 / +12; 1,000: ±10 / +20…35; 4,999: +80…120 / +200.
ARRAY_ROWS = 250

# A small set's rows need no staging table: the statements read them from one
# array per column ($first…, in STAGED_COLUMNS' order), and a transaction that
# touches no temporary table commits without PostgreSQL truncating the
# session's ON COMMIT DELETE ROWS tables (~1.2 ms of backend CPU a commit,
# against 0.04 ms, two commits a job). asyncpg sends the arrays in binary.
_ARRAY_TYPES = {pa.string(): "text", pa.int16(): "int2", pa.bool_(): "bool"}


def rows_from_arrays(first: int, names: Sequence[str] = STAGED_COLUMNS) -> str:
    """The relation of the rows passed as arrays from parameter ``first`` on, one per
    column of ``names``."""
    arrays = ", ".join(
        f"${first + i}::{_ARRAY_TYPES[VALID_ROWS_SCHEMA.field(name).type]}[]"
        for i, name in enumerate(names)
    )
    return f"(SELECT * FROM unnest({arrays}) AS staged_rows ({', '.join(names)}))"


# The staged columns but the guardians'. In a set where no row gives a
# guardian and no student has a protected identity, every guardian stays as
# stored: its statements need neither the guardians' columns nor their join
# (a file without guardian columns pays nothing for them).
WITHOUT_GUARDIANS = tuple(name for name in STAGED_COLUMNS if name not in GUARDIAN_COLUMNS)


def touches_guardians(table: pa.Table) -> bool:
    """Whether the rows give a guardian, or clear one (a protected student's)."""
    given = any(table.column(name).null_count < table.num_rows for name in GUARDIAN_COLUMNS)
    return given or bool(pc.any(table.column("protected_identity")).as_py())


@dataclass(frozen=True)
class RowArrays:
    """A small set's rows, one list per staged column (STAGED_COLUMNS' order, or
    WITHOUT_GUARDIANS' when ``guardians`` is False): classified and applied from
    these, with no staging table."""

    columns: tuple[list[object], ...]
    guardians: bool = True

    @classmethod
    def of(cls, table: pa.Table) -> RowArrays:
        guardians = touches_guardians(table)
        names = STAGED_COLUMNS if guardians else WITHOUT_GUARDIANS
        return cls(tuple(table.column(name).to_pylist() for name in names), guardians)

    def column(self, name: str) -> list[object]:
        names = STAGED_COLUMNS if self.guardians else WITHOUT_GUARDIANS
        return self.columns[names.index(name)]


def as_arrays(rows: int) -> bool:
    """A set of this many rows is classified and applied from arrays (``RowArrays``)."""
    return rows < ARRAY_ROWS


Staged = str | RowArrays
