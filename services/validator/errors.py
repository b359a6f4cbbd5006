"""File-level errors: the whole file is rejected and nothing of it is imported.

Each has a stable code the platform can translate and a sentence for the
administrator in Swedish and English; the job keeps the requester's language.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, NamedTuple

Lang = Literal["sv", "en"]


class FileCode(StrEnum):
    EMPTY = "file_empty"
    NOT_TEXT = "file_not_text"
    WRONG_FORMAT = "file_wrong_format"
    NO_HEADER = "file_no_header"
    MISSING_COLUMN = "file_missing_column"
    REPEATED_COLUMN = "file_repeated_column"
    TOO_LARGE = "file_too_large"
    TOO_MANY_ROWS = "file_too_many_rows"
    NO_ROWS = "file_no_rows"
    UNREADABLE = "file_unreadable"
    MISSING = "file_missing"
    SHEET_TOO_LARGE = "file_sheet_too_large"
    FIELD_TOO_LONG = "file_field_too_long"
    ORG_NOT_MAPPED = "file_org_not_mapped"


# Text from the file quoted in a message or an event: a header name is short,
# and whatever is longer is cut (an event must stay far below the broker's limit).
SHOWN_CHARS = 60


def shown(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


class Label(NamedTuple):
    """A name for something in a file (a format, a kind of file) in both languages."""

    sv: str
    en: str


class FileError(Exception):
    """The whole file is rejected; nothing of it is imported."""

    def __init__(self, code: FileCode, sv: str, en: str) -> None:
        super().__init__(en)
        self.code = code.value
        self.message = en
        self.message_sv = sv
        self.columns: dict[str, Any] | None = None
        """The file's columns and suggestions for the unmatched ones, when the header was
        read but not matched (mapping.ColumnReport as JSON)."""

    def text(self, lang: Lang) -> str:
        return self.message_sv if lang == "sv" else self.message


def empty() -> FileError:
    return FileError(
        FileCode.EMPTY,
        "Filen är tom. Ladda upp filen med eleverna igen.",
        "The file is empty. Upload the file with the students again.",
    )


def not_text() -> FileError:
    return FileError(
        FileCode.NOT_TEXT,
        "Filen är varken en textfil (CSV) eller en Excel-arbetsbok. "
        "Spara elevlistan som CSV eller XLSX och ladda upp den igen.",
        "The file is neither a text (CSV) file nor an Excel workbook. "
        "Save the roster as CSV or XLSX and upload it again.",
    )


def wrong_format(found: Label, chosen: Label, hint: Label | None = None) -> FileError:
    return FileError(
        FileCode.WRONG_FORMAT,
        f"Filen ser ut att vara {found.sv}, men formatet {chosen.sv} valdes. "
        + (hint.sv if hint else "Välj rätt format och ladda upp filen igen."),
        f"The file looks like {found.en}, but the format {chosen.en} was chosen. "
        + (hint.en if hint else "Choose the right format and upload the file again."),
    )


def no_header() -> FileError:
    return FileError(
        FileCode.NO_HEADER,
        "Filen saknar en rubrikrad med kända kolumnnamn. Den första raden ska namnge "
        "kolumnerna, t.ex. Personnummer, Förnamn och Efternamn.",
        "The file has no header row with known column names. The first row must name the "
        "columns, e.g. Personnummer, Förnamn and Efternamn.",
    )


def missing_columns(missing: list[tuple[Label, str]]) -> FileError:
    """The missing columns, each by what it holds and the header the format names it by."""
    return FileError(
        FileCode.MISSING_COLUMN,
        "Obligatoriska kolumner saknas: "
        + ", ".join(f"{label.sv} ({header})" for label, header in missing)
        + ". Rubrikraden måste ha personnummer, förnamn och efternamn.",
        "Required columns are missing: "
        + ", ".join(f"{label.en} ({header})" for label, header in missing)
        + ". The header row must name the identity number, given name and family name.",
    )


def repeated_column(header: str) -> FileError:
    header = shown(header)
    return FileError(
        FileCode.REPEATED_COLUMN,
        f"Kolumnen {header!r} finns mer än en gång i rubrikraden. Koppla vilken av dem "
        "som ska läsas, eller ta bort den ena.",
        f"The column {header!r} appears more than once in the header row. Map which of them "
        "to read, or remove one of them.",
    )


def too_large(size: int, limit: int) -> FileError:
    mb = f"{limit / 1_048_576:.0f}"
    return FileError(
        FileCode.TOO_LARGE,
        f"Filen är {size} byte, större än gränsen {limit} byte ({mb} MB). "
        "Dela upp den i flera filer.",
        f"The file is {size} bytes, larger than the limit of {limit} bytes ({mb} MB). "
        "Split it into several files.",
    )


def too_many_rows(limit: int) -> FileError:
    return FileError(
        FileCode.TOO_MANY_ROWS,
        f"Filen har fler än {limit} rader, gränsen för en import. Dela upp den i flera filer.",
        f"The file has more than {limit} rows, the limit for one import. "
        "Split it into several files.",
    )


def sheet_too_large(rows: int, columns: int, max_columns: int, max_cells: int) -> FileError:
    return FileError(
        FileCode.SHEET_TOO_LARGE,
        f"Arbetsbokens första blad sträcker sig över {rows} rader och {columns} kolumner, "
        f"mer än en import läser (högst {max_columns} kolumner och {max_cells} celler). "
        "Ta bort tomma rader och kolumner efter elevlistan och spara arbetsboken igen, "
        "eller spara elevlistan som CSV.",
        f"The workbook's first sheet spans {rows} rows and {columns} columns, more than an "
        f"import reads (at most {max_columns} columns and {max_cells} cells). Delete the "
        "empty rows and columns after the roster and save the workbook again, or save the "
        "roster as CSV.",
    )


def sheet_too_large_part(size: int) -> FileError:
    return FileError(
        FileCode.SHEET_TOO_LARGE,
        f"Arbetsboken packas upp till {size} byte, mer än en import läser. "
        "Spara elevlistan som CSV och ladda upp den igen.",
        f"The workbook unpacks to {size} bytes, more than an import reads. "
        "Save the roster as CSV and upload it again.",
    )


def no_rows() -> FileError:
    return FileError(
        FileCode.NO_ROWS,
        "Filen har en rubrikrad men inga elever. Fyll i eleverna under rubrikraden.",
        "The file has a header row but no students. Fill in the students below the header row.",
    )


def unreadable(sv: str, en: str) -> FileError:
    return FileError(FileCode.UNREADABLE, sv, en)


def bad_text(encoding: str, position: int | None = None) -> FileError:
    where_sv = f" (nära position {position})" if position is not None else ""
    where_en = f" (near position {position})" if position is not None else ""
    return unreadable(
        f"Filen är inte giltig {encoding}-text{where_sv}. "
        "Spara den igen som CSV i UTF-8 eller Windows-1252.",
        f"The file is not valid {encoding} text{where_en}. "
        "Save it again as UTF-8 or Windows-1252 CSV.",
    )


def bad_quoting() -> FileError:
    return unreadable(
        'Filens citattecken kunde inte läsas entydigt — kontrollera att varje " avslutas.',
        "The file's quoting could not be read consistently — check for unbalanced quotes.",
    )


def field_too_long(line: int, column: str | None) -> FileError:
    where_sv = f"i kolumnen {shown(column)!r} " if column else ""
    where_en = f"in the column {shown(column)!r} " if column else ""
    return FileError(
        FileCode.FIELD_TOO_LONG,
        f"Rad {line} har ett fält {where_sv}som är längre än någon elevlistas cell "
        "(mer än en miljon tecken), ofta ett citattecken som inte avslutas eller inklistrad "
        "text. Rätta raden och ladda upp filen igen.",
        f"Line {line} has a field {where_en}longer than any roster cell (over a million "
        "characters), often a quote that is never closed or pasted text. Correct the line "
        "and upload the file again.",
    )


def missing_upload() -> FileError:
    return FileError(
        FileCode.MISSING,
        "Den uppladdade filen finns inte längre. Ladda upp den igen.",
        "The uploaded file is no longer in storage. Upload it again.",
    )
