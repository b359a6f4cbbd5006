"""Workbooks as Excel saves them, written with openpyxl for the validator's tests."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

import openpyxl

from rosterflow.testing import school_age_numbers

NUMBERS = school_age_numbers()
ROSTERFLOW_HEADER = ["Personnummer", "Förnamn", "Efternamn", "Årskurs", "Klass"]

Cell = str | int | float | date | None


def xlsx(*rows: Sequence[Cell], first_row: int = 1, second_sheet: bool = False) -> bytes:
    """A workbook as Excel saves it; rows start at ``first_row`` of the first sheet."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for offset, row in enumerate(rows):
        for column, value in enumerate(row, start=1):
            sheet.cell(row=first_row + offset, column=column, value=value)
    if second_sheet:
        other = book.create_sheet("Ignored")
        other.append(["Personnummer", "Förnamn", "Efternamn"])
        other.append([NUMBERS[-1], "Inte", "Denna"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
