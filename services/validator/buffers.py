"""Arrow string columns as numpy views of their buffers, for byte-level fast paths.

A roster's columns are mostly short values of a few fixed shapes (an identity
number is 10 to 13 characters, a postcode 5 or 6). Checking them as byte
matrices costs a few numpy operations per shape instead of a compute kernel,
with its allocation, per rule; values of any other shape go the exact way.
Nothing here copies the column's text: the views read Arrow's own buffers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

Bytes = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
Positions = npt.NDArray[np.int64]


class Strings:
    """One string array's offsets, bytes and nulls, without copying the text."""

    def __init__(self, values: pa.Array) -> None:
        if values.type != pa.string():
            raise TypeError(f"expected a string array, got {values.type}")
        rows = len(values)
        validity, offsets, data = values.buffers()
        self.rows = rows
        self.starts: Positions = np.frombuffer(offsets, np.int32)[
            values.offset : values.offset + rows + 1
        ].astype(np.int64)
        empty = data is None or data.size == 0
        self.data: Bytes = np.zeros(1, np.uint8) if empty else np.frombuffer(data, np.uint8)
        self.lengths: Positions = np.diff(self.starts)
        self.present: Mask = (
            np.ones(rows, np.bool_)
            if values.null_count == 0
            else np.unpackbits(
                np.frombuffer(validity, np.uint8), count=values.offset + rows, bitorder="little"
            )[values.offset :].astype(np.bool_)
        )

    def of_length(self, width: int) -> Positions:
        """The rows holding a value of exactly ``width`` bytes."""
        return np.flatnonzero((self.lengths == width) & self.present)

    def column(self, rows: Positions, position: int) -> Bytes:
        """The byte at ``position`` of each of ``rows`` (all at least that long)."""
        picked: Bytes = self.data[self.starts[rows] + position]
        return picked

    def matrix(self, rows: Positions, width: int) -> Bytes:
        """The bytes of ``rows`` (each ``width`` long) as a rows × width matrix."""
        picked: Bytes = self.data[self.starts[rows, None] + np.arange(width)]
        return picked


def digits(matrix: Bytes) -> Bytes:
    """Each byte's digit value; anything not a digit is 10 or more (uint8 wraps)."""
    values: Bytes = matrix - np.uint8(ord("0"))
    return values


def fixed_width_strings(matrix: Bytes, valid: Mask | None = None) -> pa.Array:
    """A string array of the rows of an ASCII byte matrix; rows not ``valid`` are null."""
    rows, width = matrix.shape
    offsets = pa.py_buffer(np.arange(0, (rows + 1) * width, width, dtype=np.int32))
    data = pa.py_buffer(np.ascontiguousarray(matrix))
    if valid is None or bool(valid.all()):
        return pa.StringArray.from_buffers(rows, offsets, data)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    nulls = rows - int(np.count_nonzero(valid))
    return pa.StringArray.from_buffers(rows, offsets, data, bitmap, nulls)
