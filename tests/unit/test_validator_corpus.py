"""A corpus of ugly roster files, generated here, each with the result it must give."""

from __future__ import annotations

import codecs
import random
from dataclasses import dataclass, field

import pytest

from rosterflow.events import FileFormat
from rosterflow.testing import school_age_numbers
from services.validator.errors import FileError
from tests.support.checks import Checked, issues_by_line, run_check
from tests.support.workbooks import ROSTERFLOW_HEADER, xlsx

N = school_age_numbers()
HEADER = ";".join(ROSTERFLOW_HEADER)


@dataclass(frozen=True)
class Expect:
    """A file-level error code, or the row-level result."""

    file_error: str | None = None
    valid: list[str] = field(default_factory=list)
    issues: dict[int, list[str]] = field(default_factory=dict)
    empty: int = 0


def rows(*lines: str, header: str = HEADER, newline: str = "\r\n") -> str:
    return newline.join([header, *lines]) + newline


def short(number: str) -> str:
    return f"{number[2:8]}-{number[8:]}"


CORPUS: list[tuple[str, bytes, FileFormat, Expect]] = [
    (
        "excel-windows-1252",
        rows(f"{short(N[0])};Märta;Åberg;3;3A", f"{N[1]};Örjan;Sjögren;4;4B").encode("cp1252"),
        FileFormat.ROSTERFLOW_CSV,
        Expect(valid=[N[0], N[1]]),
    ),
    (
        "utf8-bom",
        codecs.BOM_UTF8 + rows(f"{N[0]};Åsa;Öberg;1;1A").encode(),
        FileFormat.ROSTERFLOW_CSV,
        Expect(valid=[N[0]]),
    ),
    (
        "lf-line-ends",
        rows(f"{N[0]};Alva;Berg;1;1A", f"{N[1]};;Berg;1;1A", newline="\n").encode(),
        FileFormat.ROSTERFLOW_CSV,
        Expect(valid=[N[0]], issues={3: ["given_name_missing"]}),
    ),
    (
        "cr-line-ends",
        rows(f"{N[0]};Alva;Berg;1;1A", f"{N[1]};;Berg;1;1A", newline="\r").encode(),
        FileFormat.ROSTERFLOW_CSV,
        Expect(valid=[N[0]], issues={3: ["given_name_missing"]}),
    ),
    (
        "quoted-newlines-and-delimiters",
        rows(f'{N[0]};"Anna;\r\nMaria";Berg;1;1A', f"{N[1]};;Berg;1;1A").encode(),
        FileFormat.ROSTERFLOW_CSV,
        Expect(valid=[N[0]], issues={4: ["given_name_missing"]}),
    ),
    (
        "tab-delimited-with-quotes",
        rows(f'{N[0]}\t"Alva"\tBerg\t1\t1A', header=HEADER.replace(";", "\t")).encode(),
        FileFormat.ROSTERFLOW_CSV,
        Expect(valid=[N[0]]),
    ),
    (
        "trailing-empty-columns-and-rows",
        rows(f"{N[0]};Alva;Berg;1;1A;;", ";;;;;;", ";;;;;;", header=HEADER + ";;").encode(),
        FileFormat.ROSTERFLOW_CSV,
        Expect(valid=[N[0]], empty=2),
    ),
    (
        "scientific-notation-saved-as-csv",
        rows(
            "2,01801E+11;Alva;Berg;1;1A", f"{N[1]}.0;Bo;Berg;1;1A", "20180101239;Ce;D;1;1A"
        ).encode("cp1252"),
        FileFormat.ROSTERFLOW_CSV,
        Expect(issues={line: ["identity_excel_mangled"] for line in (2, 3, 4)}),
    ),
    (
        "scientific-notation-in-xlsx",
        xlsx(ROSTERFLOW_HEADER, [2.01801e13, "Alva", "Berg", 1, "1A"], [N[1], "Bo", "Ek", 2, "2A"]),
        FileFormat.ROSTERFLOW_XLSX,
        Expect(valid=[N[1]], issues={2: ["identity_excel_mangled"]}),
    ),
    ("zero-bytes", b"", FileFormat.ROSTERFLOW_CSV, Expect("file_empty")),
    ("only-blank-lines", b"\r\n\r\n  \r\n", FileFormat.ROSTERFLOW_CSV, Expect("file_empty")),
    ("header-only", rows().encode(), FileFormat.ROSTERFLOW_CSV, Expect("file_no_rows")),
    (
        "binary-garbage",
        random.Random(3).randbytes(4096),
        FileFormat.ROSTERFLOW_CSV,
        Expect("file_not_text"),
    ),
    (
        "utf16-unicode-text",
        codecs.BOM_UTF16_LE + rows(f"{N[0]};Alva;Berg;1;1A").encode("utf-16-le"),
        FileFormat.ROSTERFLOW_CSV,
        Expect(valid=[N[0]]),
    ),
    (
        "byte-undefined-in-windows-1252",
        rows(f"{N[0]};Alva;B\x81rg;1;1A").encode("latin-1"),
        FileFormat.ROSTERFLOW_CSV,
        Expect("file_unreadable"),
    ),
    (
        "xlsx-chosen-as-csv",
        xlsx(ROSTERFLOW_HEADER, [N[0], "Alva", "Berg", 1, "1A"]),
        FileFormat.ROSTERFLOW_CSV,
        Expect("file_wrong_format"),
    ),
    (
        "schoolsoft-chosen-as-rosterflow",
        rows(f"{N[0]};Alva;Berg", header="socialnumber;fname;lname").encode(),
        FileFormat.ROSTERFLOW_CSV,
        Expect("file_wrong_format"),
    ),
    (
        "header-repeated",
        rows(f"{N[0]};Alva;Berg;Alva", header="Personnummer;Förnamn;Efternamn;Förnamn").encode(),
        FileFormat.ROSTERFLOW_CSV,
        Expect("file_repeated_column"),
    ),
    (
        "no-header-row",
        "\r\n".join(f"{n};Alva;Berg;1;1A" for n in N[:3]).encode(),
        FileFormat.ROSTERFLOW_CSV,
        Expect("file_no_header"),
    ),
]


@pytest.mark.parametrize(
    ("data", "fmt", "expect"),
    [pytest.param(data, fmt, expect, id=name) for name, data, fmt, expect in CORPUS],
)
def test_ugly_file_gives_the_right_result(data: bytes, fmt: FileFormat, expect: Expect) -> None:
    if expect.file_error:
        with pytest.raises(FileError) as raised:
            run_check(data, fmt=fmt)
        assert raised.value.code == expect.file_error
        assert raised.value.message
        assert raised.value.message_sv
        return
    result: Checked = run_check(data, fmt=fmt)
    assert result.valid.column("identity_number").to_pylist() == expect.valid
    assert issues_by_line(result) == expect.issues
    assert result.counts.empty == expect.empty
