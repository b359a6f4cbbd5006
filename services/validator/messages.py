"""Row-level codes and their messages: what is wrong, a dash, what to do about it.

Codes are stable identifiers the platform can translate; the report carries
the Swedish and English message beside each.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, Literal, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from services.validator.errors import Lang
from services.validator.identity import IdentityError

Severity = Literal["error", "warning"]


class RowCode(StrEnum):
    GIVEN_NAME_MISSING = "given_name_missing"
    FAMILY_NAME_MISSING = "family_name_missing"
    CELL_FORMULA_LIKE = "cell_formula_like"
    IDENTITY_TEMPORARY = "identity_temporary"
    GRADE_INVALID = "grade_invalid"
    GRADE_NOT_ALLOWED = "grade_not_allowed"
    GRADE_MISSING = "grade_missing"
    EMAIL_INVALID = "email_invalid"
    PHONE_INVALID = "phone_invalid"
    POSTCODE_INVALID = "postcode_invalid"
    DUPLICATE_CONFLICT = "duplicate_conflict"
    DUPLICATE_EXACT = "duplicate_exact"
    ROW_COLUMN_COUNT = "row_column_count"
    CELL_CONTROL_CHARACTER = "cell_control_character"
    ROW_ISSUES_NOT_LISTED = "row_issues_not_listed"
    PROTECTED_IDENTITY_UNCLEAR = "protected_identity_unclear"
    GUARDIAN_IDENTITY_INVALID = "guardian_identity_invalid"
    GUARDIAN_STUDENT_UNKNOWN = "guardian_student_unknown"
    GUARDIANS_TOO_MANY = "guardians_too_many"
    GUARDIAN_CONFLICT = "guardian_conflict"


class Message(NamedTuple):
    severity: Severity
    sv: str
    en: str


MESSAGES: Final[Mapping[str, Message]] = {
    IdentityError.MISSING: Message(
        "error",
        "Personnummer saknas — fyll i personnumret.",
        "The identity number is missing — fill in the personal identity number.",
    ),
    IdentityError.FORMAT: Message(
        "error",
        "Personnumret har fel format — skriv det som ÅÅÅÅMMDD-NNNN eller ÅÅMMDD-NNNN.",
        "The identity number has the wrong format — write it as YYYYMMDD-NNNN or YYMMDD-NNNN.",
    ),
    IdentityError.EXCEL_MANGLED: Message(
        "error",
        "Personnumret verkar ha ändrats av Excel (siffror saknas eller det visas som ett tal) — "
        "formatera kolumnen som text och skriv in numret igen.",
        "The identity number looks changed by Excel (digits lost or shown as a number) — "
        "format the column as text and enter the number again.",
    ),
    IdentityError.BAD_DATE: Message(
        "error",
        "Personnumret innehåller ett datum som inte finns — kontrollera födelsedatumet.",
        "The identity number contains a date that does not exist — check the date of birth.",
    ),
    IdentityError.BAD_CHECK_DIGIT: Message(
        "error",
        "Personnumret har fel kontrollsiffra — kontrollera de sista fyra siffrorna.",
        "The identity number's check digit is wrong — check the last four digits.",
    ),
    IdentityError.BIRTH_NUMBER_000: Message(
        "error",
        "Födelsenumret i personnumret kan inte vara 000 — kontrollera de sista fyra siffrorna.",
        "The birth number in the identity number cannot be 000 — check the last four digits.",
    ),
    IdentityError.FUTURE: Message(
        "error",
        "Personnumret anger ett födelsedatum i framtiden — kontrollera år och sekelsiffror.",
        "The identity number gives a date of birth in the future — check the year and century.",
    ),
    RowCode.IDENTITY_TEMPORARY: Message(
        "warning",
        "Tillfälligt personnummer (reservnummer) — raden importeras, men numret är unikt bara "
        "inom organisationen. Byt till det riktiga personnumret när det finns.",
        "Temporary identity number — the row is imported, but the number is unique only within "
        "the organisation. Replace it with the real identity number when it is known.",
    ),
    RowCode.GIVEN_NAME_MISSING: Message(
        "error",
        "Förnamn saknas — fyll i förnamnet.",
        "The given name is missing — fill in the given name.",
    ),
    RowCode.FAMILY_NAME_MISSING: Message(
        "error",
        "Efternamn saknas — fyll i efternamnet.",
        "The family name is missing — fill in the family name.",
    ),
    RowCode.CELL_FORMULA_LIKE: Message(
        "warning",
        "Cellen börjar som en formel — den sparas som text och beräknas aldrig. "
        "Kontrollera att värdet är rätt.",
        "The cell starts like a spreadsheet formula — it is stored as text and never "
        "evaluated. Check that the value is correct.",
    ),
    RowCode.GRADE_INVALID: Message(
        "error",
        "Årskursen känns inte igen — skriv F, FK, Förskoleklass eller en siffra från 0 till 10.",
        "The grade is not recognised — write F, FK, Förskoleklass or a number from 0 to 10.",
    ),
    RowCode.GRADE_NOT_ALLOWED: Message(
        "error",
        "Årskursen finns inte på enhetens skolform — kontrollera årskursen eller välj rätt "
        "enhet (en gymnasieenhet har årskurs 1–4, en grundskola F–9 och 10).",
        "The grade does not exist at the unit's school level — check the grade or choose the "
        "right unit (upper secondary has grades 1–4, compulsory school F–9 and 10).",
    ),
    RowCode.GRADE_MISSING: Message(
        "warning",
        "Årskurs saknas och kunde inte läsas ut från klassen — raden importeras utan årskurs. "
        "Fyll i årskursen.",
        "The grade is missing and could not be read from the class — the row is imported "
        "without a grade. Fill in the grade.",
    ),
    RowCode.EMAIL_INVALID: Message(
        "warning",
        "E-postadressen är ogiltig — raden importeras utan e-postadress. Rätta adressen.",
        "The email address is invalid — the row is imported without it. Correct the address.",
    ),
    RowCode.PHONE_INVALID: Message(
        "warning",
        "Telefonnumret är ogiltigt — raden importeras utan telefonnummer. Skriv det som "
        "070-123 45 67 eller +46 70 123 45 67.",
        "The phone number is invalid — the row is imported without it. Write it as "
        "070-123 45 67 or +46 70 123 45 67.",
    ),
    RowCode.POSTCODE_INVALID: Message(
        "warning",
        "Postnumret är ogiltigt — raden importeras utan postnummer. Ett svenskt postnummer "
        "har fem siffror, t.ex. 123 45.",
        "The postcode is invalid — the row is imported without it. A Swedish postcode has "
        "five digits, e.g. 123 45.",
    ),
    RowCode.PROTECTED_IDENTITY_UNCLEAR: Message(
        "warning",
        "Markeringen för skyddad identitet är varken ja eller nej — eleven importeras som "
        "skyddad, utan kontaktuppgifter. Skriv ja eller nej.",
        "The protected identity mark is neither yes nor no — the student is imported as "
        "protected, without contact data. Write yes or no.",
    ),
    RowCode.GUARDIAN_IDENTITY_INVALID: Message(
        "warning",
        "Vårdnadshavarens personnummer är ogiltigt — vårdnadshavaren importeras utan det. "
        "Rätta numret.",
        "The guardian's identity number is invalid — the guardian is imported without it. "
        "Correct the number.",
    ),
    RowCode.GUARDIAN_STUDENT_UNKNOWN: Message(
        "error",
        "Eleven med personnumret är inte aktiv i enheten — vårdnadshavaren importeras inte. "
        "Importera eleven först, eller välj rätt enhet.",
        "The student with this identity number is not active in the unit — the guardian is "
        "not imported. Import the student first, or choose the right unit.",
    ),
    RowCode.GUARDIANS_TOO_MANY: Message(
        "error",
        "Eleven har redan två vårdnadshavare på tidigare rader — raden importeras inte. "
        "Ta bort den vårdnadshavare som inte ska vara med.",
        "The student already has two guardians on earlier rows — the row is not imported. "
        "Remove the guardian who should not be there.",
    ),
    RowCode.GUARDIAN_CONFLICT: Message(
        "error",
        "Vårdnadshavaren finns på en tidigare rad för samma elev med andra uppgifter — "
        "raden importeras inte. Ta bort eller rätta dubbletten.",
        "The guardian is on an earlier row for the same student with different data — the "
        "row is not imported. Remove or correct the duplicate.",
    ),
    RowCode.DUPLICATE_CONFLICT: Message(
        "error",
        "Personnumret finns på flera rader med olika uppgifter — ingen av dem importeras. "
        "Ta bort eller rätta dubbletterna.",
        "The identity number appears on several rows with different data — none of them is "
        "imported. Remove or correct the duplicates.",
    ),
    RowCode.DUPLICATE_EXACT: Message(
        "warning",
        "Raden är en exakt kopia av en tidigare rad — personen importeras bara en gång.",
        "The row is an exact copy of an earlier row — the person is imported only once.",
    ),
    RowCode.ROW_COLUMN_COUNT: Message(
        "error",
        "Raden har ett annat antal kolumner än rubrikraden och kunde inte läsas — kontrollera "
        "avgränsare och citattecken på raden.",
        "The row has a different number of columns than the header row and was not read — "
        "check the delimiters and quotes on the row.",
    ),
    RowCode.CELL_CONTROL_CHARACTER: Message(
        "error",
        "Cellen innehåller ett styrtecken (t.ex. NUL) som inte hör hemma i text — radera "
        "cellens innehåll och skriv in värdet igen.",
        "The cell contains a control character (e.g. NUL) that does not belong in text — "
        "clear the cell and type the value again.",
    ),
    RowCode.ROW_ISSUES_NOT_LISTED: Message(
        "warning",
        "Raden har fler fel och varningar än de som visas (antalet står som värde) — rätta "
        "dem som visas och kontrollera filen igen.",
        "The row has more errors and warnings than those shown (the value says how many) — "
        "correct the ones shown and check the file again.",
    ),
}

_CODES: Final = pa.array([str(code) for code in MESSAGES], pa.string())
_SEVERITIES: Final = pa.array([entry.severity for entry in MESSAGES.values()], pa.string())
_TEXTS: Final = {
    "sv": pa.array([entry.sv for entry in MESSAGES.values()], pa.string()),
    "en": pa.array([entry.en for entry in MESSAGES.values()], pa.string()),
}


def message(code: str, lang: Lang = "sv") -> str:
    entry = MESSAGES[code]
    return entry.sv if lang == "sv" else entry.en


def severities(codes: pa.Array) -> pa.Array:
    return pc.take(_SEVERITIES, pc.index_in(codes, value_set=_CODES))


def messages(codes: pa.Array | pa.ChunkedArray, lang: Lang) -> pa.Array:
    return pc.take(_TEXTS[lang], pc.index_in(codes, value_set=_CODES))
