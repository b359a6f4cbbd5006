from __future__ import annotations

import codecs
import io
import zipfile

import pyarrow as pa
import pytest

from services.validator.reading import (
    CANONICAL,
    SAMPLE_BYTES,
    FileError,
    Layout,
    detect_encoding,
    detect_layout,
    read_batches,
)
from services.validator.records import LooseRow, scan_records

# Skatteverket test numbers.
ALVA = "201801012392"
BO = "201801022383"
CE = "201801032390"

SWEDISH_HEADER = "Personnummer;Förnamn;Efternamn;Årskurs;Klass"


def read_all(
    data: bytes, block_size: int = 4 << 20
) -> tuple[Layout, list[dict[str, str | None]], list[LooseRow]]:
    """Detect the layout from the bytes, then read every data row and find the misshapen ones."""
    layout = detect_layout(data)
    batches = list(read_batches(pa.BufferReader(data), layout, block_size=block_size))
    rows = [row for batch in batches for row in batch.to_pylist()]
    return layout, rows, scan_records(pa.BufferReader(data), layout, max_rows=10_000).misshapen


# --- encoding -------------------------------------------------------------


def test_plain_utf8_is_detected() -> None:
    assert detect_encoding(f"{SWEDISH_HEADER}\n{ALVA};Åsa;Öberg;1;1A\n".encode()) == "utf-8"


def test_utf8_with_bom_is_detected_and_the_bom_does_not_reach_the_header() -> None:
    data = codecs.BOM_UTF8 + f"{SWEDISH_HEADER}\r\n{ALVA};Åsa;Öberg;1;1A\r\n".encode()

    layout, rows, _ = read_all(data)

    assert layout.encoding == "utf-8-sig"
    assert layout.columns["identity"] == "Personnummer"
    assert rows[0]["given_name"] == "Åsa"


def test_windows_1252_with_swedish_letters_is_detected_and_decoded() -> None:
    data = f"{SWEDISH_HEADER}\r\n{ALVA};Märta;Åberg;1;1A\r\n{BO};Örjan;Sjögren;2;2B\r\n".encode(
        "cp1252"
    )

    layout, rows, _ = read_all(data)

    assert layout.encoding == "cp1252"
    assert [(r["given_name"], r["family_name"]) for r in rows] == [
        ("Märta", "Åberg"),
        ("Örjan", "Sjögren"),
    ]


def test_utf8_sample_cut_inside_a_character_is_still_utf8() -> None:
    # The validator reads a fixed-size sample; it may end half-way through "ö".
    head = f"{SWEDISH_HEADER}\n{ALVA};Björn;Öberg;1;1A\n{BO};".encode()
    data = head + b"x" * (SAMPLE_BYTES - len(head) - 1) + "ö;Berg;1;1A\n".encode()
    sample = data[:SAMPLE_BYTES]
    assert sample.endswith(b"\xc3")

    assert detect_encoding(sample) == "utf-8"


def test_windows_1252_letter_on_an_unterminated_last_line_is_detected() -> None:
    data = f"personal_id;given_name;family_name\r\n{ALVA};Asa;Berg\r\n{BO};Örjan;Berg".encode(
        "cp1252"
    )

    assert detect_encoding(data) == "cp1252"


@pytest.mark.parametrize("data", [b"", b"   ", b"\r\n\r\n", b"\t \n"])
def test_empty_file_is_rejected_as_empty(data: bytes) -> None:
    with pytest.raises(FileError) as raised:
        detect_layout(data)

    assert raised.value.code == "file_empty"


def _xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"Personnummer;F\x00rnamn;Efternamn\n", id="nul-byte"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", id="png"),
        pytest.param(_xlsx_bytes(), id="xlsx"),
    ],
)
def test_binary_or_workbook_file_is_rejected_as_not_text(data: bytes) -> None:
    with pytest.raises(FileError) as raised:
        detect_layout(data)

    assert raised.value.code == "file_not_text"


# --- delimiter and header ---------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_delimiter_is_detected_and_used(delimiter: str) -> None:
    header = delimiter.join(["Personnummer", "Förnamn", "Efternamn", "Klass"])
    row = delimiter.join([ALVA, "Alva", "Andersson", "1A"])

    layout, rows, misshapen = read_all(f"{header}\n{row}\n".encode())

    assert layout.delimiter == delimiter
    assert misshapen == []
    assert rows[0]["identity"] == ALVA
    assert rows[0]["class"] == "1A"


@pytest.mark.parametrize(
    ("identity", "given", "family", "grade"),
    [
        ("Personnummer", "Förnamn", "Efternamn", "Årskurs"),
        (" PERSONNUMMER ", " FÖRNAMN ", "efternamn", "ARSKURS"),
        ("personal_id", "given_name", "family_name", "grade"),
        ("Personal ID", "Given Name", "FAMILY_NAME", "Grade"),
        ('"Personnummer"', '"Fornamn"', '"Efternamn"', '"Årskurs"'),
    ],
)
def test_headers_match_regardless_of_case_spaces_accents_and_language(
    identity: str, given: str, family: str, grade: str
) -> None:
    layout = detect_layout(f"{identity};{given};{family};{grade}\n".encode())

    assert layout.names == ["identity", "given_name", "family_name", "grade"]
    # The check result shows the administrator the header as they wrote it.
    assert layout.columns["given_name"] == given.strip().strip('"')


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("Förnamn;Efternamn;Klass", "identity"),
        ("Personnummer;Efternamn;Klass", "given_name"),
        ("Personnummer;Förnamn;Klass", "family_name"),
    ],
)
def test_missing_required_column_is_rejected_naming_it(header: str, missing: str) -> None:
    with pytest.raises(FileError) as raised:
        detect_layout(f"{header}\n{ALVA};Alva;1A\n".encode())

    assert raised.value.code == "file_missing_column"
    assert missing in raised.value.message


@pytest.mark.parametrize(
    "header",
    [
        "Personnummer;Förnamn;Efternamn;Förnamn",
        "Personnummer;Förnamn;Efternamn;given_name",
        "Personnummer;personal_id;Förnamn;Efternamn",
    ],
)
def test_repeated_column_is_rejected(header: str) -> None:
    with pytest.raises(FileError) as raised:
        detect_layout(f"{header}\n".encode())

    assert raised.value.code == "file_repeated_column"


def test_header_without_any_known_column_is_rejected() -> None:
    with pytest.raises(FileError) as raised:
        detect_layout(b"Hej och v\xe4lkommen till l\xe4saret\n")

    assert raised.value.code == "file_no_header"


# --- read_batches -----------------------------------------------------------


def test_crlf_line_ends_leave_no_carriage_return_in_values() -> None:
    data = f"{SWEDISH_HEADER}\r\n{ALVA};Alva;Andersson;1;1A\r\n{BO};Bo;Berg;2;2B\r\n".encode()

    _, rows, _ = read_all(data)

    assert [r["class"] for r in rows] == ["1A", "2B"]
    assert [r["identity"] for r in rows] == [ALVA, BO]


def test_quoted_fields_keep_embedded_delimiters_newlines_and_quotes() -> None:
    data = (
        f"{SWEDISH_HEADER}\r\n"
        f'{ALVA};"Anna; Maria";"Berg\r\nSvensson";1;"1""A"""\r\n'
        f"{BO};Bo;Berg;2;2B\r\n"
    ).encode()

    _, rows, misshapen = read_all(data)

    assert misshapen == []
    assert rows[0]["given_name"] == "Anna; Maria"
    assert rows[0]["family_name"] == "Berg\r\nSvensson"
    assert rows[0]["class"] == '1"A"'
    assert rows[1]["identity"] == BO


def test_rows_with_the_wrong_number_of_fields_are_reported_not_dropped_silently() -> None:
    data = (
        f"{SWEDISH_HEADER}\r\n"
        f"{ALVA};Alva;Andersson;1;1A\r\n"
        f"{BO};Bo;Berg;2;2B;extra\r\n"
        f"{CE};Ce;Olsson\r\n"
    ).encode()

    _, rows, misshapen = read_all(data)

    assert [r["identity"] for r in rows] == [ALVA]
    assert [len(m.fields) for m in misshapen] == [6, 3]


def test_misshapen_row_carries_its_line_number() -> None:
    data = f"{SWEDISH_HEADER}\r\n{ALVA};Alva;Andersson;1;1A\r\n{BO};Bo;Berg;2;2B;x\r\n".encode()

    _, _, misshapen = read_all(data)

    assert [m.line for m in misshapen] == [3]


def test_unknown_columns_are_ignored_and_every_canonical_column_is_present() -> None:
    data = (
        "Anteckning;Personnummer;Förnamn;Efternamn;E-post;Skostorlek\r\n"
        f"vegetarian;{ALVA};Alva;Andersson;alva@example.org;34\r\n"
    ).encode()
    layout = detect_layout(data)

    batches = list(read_batches(pa.BufferReader(data), layout))

    assert all(batch.schema.names == list(CANONICAL) for batch in batches)
    assert all(field.type == pa.string() for batch in batches for field in batch.schema)
    row = batches[0].to_pylist()[0]
    assert "vegetarian" not in row.values()
    assert "34" not in row.values()
    assert row["identity"] == ALVA
    assert row["email"] == "alva@example.org"
    assert row["grade"] is None
    assert row["city"] is None


def test_trailing_empty_columns_from_excel_are_harmless() -> None:
    data = f"{SWEDISH_HEADER};;\r\n{ALVA};Alva;Andersson;1;1A;;\r\n".encode()

    _, rows, misshapen = read_all(data)

    assert misshapen == []
    assert rows[0]["class"] == "1A"


def test_every_row_is_read_across_many_small_blocks() -> None:
    lines = [f"{n};Namn{i};Efternamn;1;1A" for i, n in enumerate([ALVA, BO, CE] * 40)]
    data = ("\r\n".join([SWEDISH_HEADER, *lines]) + "\r\n").encode()

    _, rows, _ = read_all(data, block_size=256)

    assert [r["given_name"] for r in rows] == [f"Namn{i}" for i in range(120)]


def test_text_that_is_not_valid_in_the_detected_encoding_is_a_file_error() -> None:
    # The sample said UTF-8; a Windows-1252 "ö" appears beyond it.
    head = f"{SWEDISH_HEADER}\n" + f"{ALVA};Alva;Andersson;1;1A\n" * 50
    data = head.encode() + f"{BO};Björn;Berg;2;2B\n".encode("cp1252")
    layout = detect_layout(head.encode())

    with pytest.raises(FileError) as raised:
        list(read_batches(pa.BufferReader(data), layout, block_size=256))

    assert raised.value.code == "file_unreadable"


def test_bad_bytes_in_the_first_block_are_a_file_error() -> None:
    head = f"{SWEDISH_HEADER}\n{ALVA};Alva;Andersson;1;1A\n"
    data = head.encode() + f"{BO};Björn;Berg;2;2B\n".encode("cp1252")
    layout = detect_layout(head.encode())

    with pytest.raises(FileError) as raised:
        list(read_batches(pa.BufferReader(data), layout))

    assert raised.value.code == "file_unreadable"
