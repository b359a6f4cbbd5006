"""Grade → (school form, year). The full rules by unit level come with the validator issue.

A file has a handful of distinct grades, so each distinct value is mapped
once and the mapping is taken back over the column.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

PRESCHOOL = {"F", "FK", "FÖRSKOLEKLASS", "0"}
_CLASS_YEAR = re.compile(r"^\s*(\d{1,2})")


def _placement(
    grade: str | None, class_name: str | None, upper_secondary: bool
) -> tuple[str | None, int | None]:
    text = (grade or "").strip().upper()
    if not text and class_name:
        # A missing grade may be read from a class name like "7A".
        match = _CLASS_YEAR.match(class_name)
        text = match[1] if match else ""
    if text in PRESCHOOL:
        return "preschool_class", 0
    if text.isdigit():
        year = int(text)
        if upper_secondary and 1 <= year <= 4:
            return "upper_secondary", year
        if 1 <= year <= 9:
            return "compulsory", year
        if year == 10:
            return "special", 10
    return None, None


def school_placement(
    grade: pa.ChunkedArray | pa.Array,
    class_name: pa.ChunkedArray | pa.Array,
    *,
    upper_secondary: bool,
) -> tuple[pa.Array, pa.Array]:
    pairs = pc.binary_join_element_wise(
        pc.fill_null(grade, ""), pc.fill_null(class_name, ""), "\x1f"
    )
    encoded = pc.dictionary_encode(pairs)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    mapped = []
    for pair in encoded.dictionary.to_pylist():
        grade_text, _, class_text = str(pair).partition("\x1f")
        mapped.append(_placement(grade_text, class_text, upper_secondary))
    forms = pa.array([m[0] for m in mapped], pa.string())
    years = pa.array([m[1] for m in mapped], pa.int16())
    return pc.take(forms, encoded.indices), pc.take(years, encoded.indices)
