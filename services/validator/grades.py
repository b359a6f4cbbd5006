"""Grade → (school form, year), by the unit's school level.

* F, FK, Förskoleklass, 0 → förskoleklass; 1–9 → compulsory school; 10 →
  special school year 10 — at a compulsory or unspecified unit.
* At an upper-secondary unit (or an unspecified one treated as upper
  secondary) 1–4 are upper-secondary years and 10 the fourth one.
* A grade not allowed at the unit's level is an error: F or 5–9 at an
  upper-secondary unit, any grade at a clinic.
* A missing grade is read from a class name like 7A when that gives a grade
  the unit has; otherwise it is a warning, never a guess.

A file has a handful of distinct grades and classes, so each distinct value
is placed once and the placement is taken back over the column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from services.validator.messages import RowCode

SchoolLevel = Literal["unspecified", "compulsory", "upper_secondary", "clinic"]
Form = Literal["preschool_class", "compulsory", "special", "upper_secondary"]

PRESCHOOL = {"F", "FK", "FÖRSKOLEKLASS", "FORSKOLEKLASS", "0"}
_GRADE = re.compile(r"^(?:ÅRSKURS|ARSKURS|ÅK|AK)?\.?\s*([0-9]{1,2})$")
_CLASS_YEAR = re.compile(r"^([0-9]{1,2})(?![0-9])")


class Placement(NamedTuple):
    school_form: pa.Array
    grade_year: pa.Array
    codes: pa.Array
    """grade_invalid, grade_not_allowed, grade_missing or null, per row."""


def _year(text: str) -> int | None:
    """The grade as a number (0 for förskoleklass), or None when it is no grade."""
    upper = text.strip().upper()
    if upper in PRESCHOOL:
        return 0
    match = _GRADE.match(upper)
    return int(match[1]) if match and int(match[1]) <= 10 else None


def _allowed(year: int, level: SchoolLevel, upper_secondary: bool) -> tuple[Form, int] | None:
    if level == "clinic":
        return None
    if level == "upper_secondary":
        return (
            ("upper_secondary", 4 if year == 10 else year) if 1 <= year <= 4 or year == 10 else None
        )
    if upper_secondary and (1 <= year <= 4 or year == 10):
        return "upper_secondary", 4 if year == 10 else year
    if year == 0:
        return "preschool_class", 0
    return ("compulsory", year) if year <= 9 else ("special", 10)


Placed = tuple[Form | None, int | None, RowCode | None]


def place_one(
    grade: str | None, class_name: str | None, level: SchoolLevel, upper_secondary: bool
) -> Placed:
    if grade:
        year = _year(grade)
        if year is None:
            return None, None, RowCode.GRADE_INVALID
        allowed = _allowed(year, level, upper_secondary)
        if allowed is None:
            return None, None, RowCode.GRADE_NOT_ALLOWED
        return allowed[0], allowed[1], None
    if level == "clinic":
        return None, None, None  # patients of a clinic have no grade
    match = _CLASS_YEAR.match(class_name or "")
    derived = _allowed(int(match[1]), level, upper_secondary) if match else None
    if derived is None:
        return None, None, RowCode.GRADE_MISSING
    return derived[0], derived[1], None


def _place_distinct(
    values: pa.Array, place_text: Callable[[str], Placed]
) -> tuple[pa.Array, pa.Array, pa.Array]:
    encoded = pc.dictionary_encode(values)
    placed = [place_text(str(text)) for text in encoded.dictionary.to_pylist()]
    forms = pa.array([p[0] for p in placed], pa.string())
    years = pa.array([p[1] for p in placed], pa.int16())
    codes = pa.array([None if p[2] is None else p[2].value for p in placed], pa.string())
    indices = encoded.indices
    return pc.take(forms, indices), pc.take(years, indices), pc.take(codes, indices)


def place(
    grade: pa.Array, class_name: pa.Array, *, level: SchoolLevel, upper_secondary: bool
) -> Placement:
    """Columns of cleaned grade and class text (null when blank)."""
    forms, years, codes = _place_distinct(
        grade, lambda text: place_one(text, None, level, upper_secondary)
    )
    missing = pc.is_null(grade)
    if pc.any(missing).as_py():
        # The class matters only where the grade is missing.
        by_class = _place_distinct(
            pc.fill_null(class_name.filter(missing), ""),
            lambda text: place_one(None, text, level, upper_secondary),
        )
        forms, years, codes = (
            pc.replace_with_mask(whole, missing, part)
            for whole, part in zip((forms, years, codes), by_class, strict=True)
        )
    return Placement(forms, years, codes)
