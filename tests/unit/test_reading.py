from __future__ import annotations

import codecs
import io
import zipfile

import pyarrow as pa
import pytest

from services.validator.errors import FileError
from services.validator.formats.rosterflow_csv import ALIASES
from services.validator.header import CANONICAL, Layout, fold, map_header
from services.validator.reading import (
    SAMPLE_BYTES,
    CsvReader,
    detect_encoding,
    header_fields,
)
from services.validator.records import RecordWalk
from services.validator.sniff import Container, sniff
from services.validator.source import Chunk, ReadAgain, Upload

# Skatteverket test numbers.
ALVA = "201801012392"
BO = "201801022383"
CE = "201801032390"

SWEDISH_HEADER = "Personnummer;Förnamn;Efternamn;Årskurs;Klass"


def reader_for(data: bytes, block_size: int | None = None) -> tuple[CsvReader, Layout]:
    upload = Upload(lambda: pa.BufferReader(data), len(data))
    reader = CsvReader(upload, data[:SAMPLE_BYTES], block_size)
    return reader, map_header(reader.header(), ALIASES)


def read_all(data: bytes, block_size: int | None = None) -> tuple[CsvReader, list[Chunk]]:
    """Every chunk of the file, read again the exact way if the fast way asks for it."""
    reader, layout = reader_for(data, block_size)
    try:
        return reader, list(reader.chunks(layout))
    except ReadAgain:
        return reader, list(reader.chunks(layout))


def rows_of(chunks: list[Chunk]) -> list[dict[str, str | None]]:
    return [row for chunk in chunks for row in chunk.rows.to_pylist()]


def lines_of(chunks: list[Chunk]) -> list[int]:
    return [line for chunk in chunks for line in chunk.lines.to_pylist()]


def misshapen_of(chunks: list[Chunk]) -> list[dict[str, object]]:
    return [row for chunk in chunks for row in chunk.misshapen.to_pylist()]


# --- what kind of file ---------------------------------------------------------


def _zip_bytes(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "container"),
    [
        pytest.param(f"{SWEDISH_HEADER}\r\n".encode(), Container.TEXT, id="csv"),
        pytest.param(_zip_bytes(["[Content_Types].xml", "xl/workbook.xml"]), Container.XLSX),
        pytest.param(_zip_bytes(["users.csv"]), Container.ZIP, id="zip"),
        pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, Container.XLS),
    ],
)
def test_kind_of_file_is_recognised_from_its_first_bytes(data: bytes, container: Container) -> None:
    assert sniff(data) is container


@pytest.mark.parametrize("data", [b"", b"   ", b"\r\n\r\n", b"\t \n"])
def test_empty_file_is_rejected_as_empty(data: bytes) -> None:
    with pytest.raises(FileError) as raised:
        sniff(data)

    assert raised.value.code == "file_empty"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"Personnummer;F\x00rnamn;Efternamn\n", id="nul-byte"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", id="png"),
        pytest.param(bytes(range(256)) * 40, id="random-bytes"),
    ],
)
def test_binary_file_is_rejected_as_not_text(data: bytes) -> None:
    with pytest.raises(FileError) as raised:
        sniff(data)

    assert raised.value.code == "file_not_text"


def test_utf16_with_a_byte_order_mark_is_text() -> None:
    assert sniff(codecs.BOM_UTF16_LE + SWEDISH_HEADER.encode("utf-16-le")) == Container.TEXT


# --- encoding -------------------------------------------------------------


def test_plain_utf8_is_detected() -> None:
    assert detect_encoding(f"{SWEDISH_HEADER}\n{ALVA};Åsa;Öberg;1;1A\n".encode()) == "utf-8"


def test_utf8_with_bom_is_detected_and_the_bom_does_not_reach_the_header() -> None:
    data = codecs.BOM_UTF8 + f"{SWEDISH_HEADER}\r\n{ALVA};Åsa;Öberg;1;1A\r\n".encode()

    reader, chunks = read_all(data)

    assert reader.encoding == "utf-8-sig"
    assert reader.header()[0] == "Personnummer"
    assert rows_of(chunks)[0]["given_name"] == "Åsa"


def test_windows_1252_with_swedish_letters_is_detected_and_decoded() -> None:
    data = f"{SWEDISH_HEADER}\r\n{ALVA};Märta;Åberg;1;1A\r\n{BO};Örjan;Sjögren;2;2B\r\n".encode(
        "cp1252"
    )

    reader, chunks = read_all(data)

    assert reader.encoding == "cp1252"
    assert [(r["given_name"], r["family_name"]) for r in rows_of(chunks)] == [
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


@pytest.mark.parametrize("block_size", [None, 256])
def test_text_that_is_not_valid_in_the_detected_encoding_is_a_file_error(
    block_size: int | None,
) -> None:
    # The sample said UTF-8; a Windows-1252 "ö" appears after it.
    head = f"{SWEDISH_HEADER}\n" + f"{ALVA};Alva;Andersson;1;1A\n" * 50
    data = head.encode() + f"{BO};Björn;Berg;2;2B\n".encode("cp1252")
    upload = Upload(lambda: pa.BufferReader(data), len(data))
    reader = CsvReader(upload, head.encode(), block_size)

    with pytest.raises(FileError) as raised:
        list(reader.chunks(map_header(reader.header(), ALIASES)))

    assert raised.value.code == "file_unreadable"


# --- delimiter and header ---------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_delimiter_is_detected_and_used(delimiter: str) -> None:
    header = delimiter.join(["Personnummer", "Förnamn", "Efternamn", "Klass"])
    row = delimiter.join([ALVA, "Alva", "Andersson", "1A"])

    reader, chunks = read_all(f"{header}\n{row}\n".encode())

    assert reader.delimiter == delimiter
    assert misshapen_of(chunks) == []
    assert rows_of(chunks)[0]["identity"] == ALVA
    assert rows_of(chunks)[0]["class"] == "1A"


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
    _, fields = header_fields(f"{identity};{given};{family};{grade}\n".encode(), "utf-8")

    layout = map_header(fields, ALIASES)

    assert layout.names() == ["identity", "given_name", "family_name", "grade"]
    # The check result shows the administrator the header as they wrote it.
    assert layout.columns["given_name"] == given.strip().strip('"').strip()


def test_fold_ignores_case_spacing_and_swedish_accents() -> None:
    assert fold(" Å r s k u r s ") == fold("ARSKURS") == "arskurs"
    assert fold("E-post") == "epost"


@pytest.mark.parametrize(
    ("header", "repeated"),
    [
        ("Personnummer;Förnamn;Efternamn;Förnamn", {"given_name": [1, 3]}),
        ("Personnummer;Förnamn;Efternamn;given_name", {"given_name": [1, 3]}),
        ("Personnummer;personal_id;Förnamn;Efternamn", {"identity": [0, 1]}),
    ],
)
def test_a_repeated_column_is_read_from_none_of_its_columns(
    header: str, repeated: dict[str, list[int]]
) -> None:
    _, fields = header_fields(f"{header}\n".encode(), "utf-8")

    layout = map_header(fields, ALIASES)

    assert layout.repeated == repeated
    assert not set(repeated) & set(layout.positions)


# --- rows -------------------------------------------------------------------


def test_crlf_line_ends_leave_no_carriage_return_in_values() -> None:
    data = f"{SWEDISH_HEADER}\r\n{ALVA};Alva;Andersson;1;1A\r\n{BO};Bo;Berg;2;2B\r\n".encode()

    _, chunks = read_all(data)

    assert [r["class"] for r in rows_of(chunks)] == ["1A", "2B"]
    assert [r["identity"] for r in rows_of(chunks)] == [ALVA, BO]
    assert lines_of(chunks) == [2, 3]


def test_quoted_fields_keep_embedded_delimiters_newlines_and_quotes() -> None:
    data = (
        f"{SWEDISH_HEADER}\r\n"
        f'{ALVA};"Anna; Maria";"Berg\r\nSvensson";1;"1""A"""\r\n'
        f"{BO};Bo;Berg;2;2B\r\n"
    ).encode()

    _, chunks = read_all(data)

    rows = rows_of(chunks)
    assert misshapen_of(chunks) == []
    assert rows[0]["given_name"] == "Anna; Maria"
    assert rows[0]["family_name"] == "Berg\r\nSvensson"
    assert rows[0]["class"] == '1"A"'
    assert rows[1]["identity"] == BO
    assert lines_of(chunks) == [2, 4]


@pytest.mark.parametrize("quoted", [False, True], ids=["unquoted", "quoted"])
def test_rows_with_the_wrong_number_of_fields_are_reported_with_their_lines(quoted: bool) -> None:
    name = '"Alva"' if quoted else "Alva"
    data = (
        f"{SWEDISH_HEADER}\r\n"
        f"{ALVA};{name};Andersson;1;1A\r\n"
        f"{BO};Bo;Berg;2;2B;extra\r\n"
        f"{CE};Ce;Olsson\r\n"
    ).encode()

    _, chunks = read_all(data)

    assert [r["identity"] for r in rows_of(chunks)] == [ALVA]
    assert misshapen_of(chunks) == [
        {"line": 3, "fields": 6, "identity": BO},
        {"line": 4, "fields": 3, "identity": CE},
    ]


def test_a_misshapen_row_makes_the_fast_way_ask_for_the_exact_one() -> None:
    data = f"{SWEDISH_HEADER}\r\n{ALVA};Alva;Andersson;1;1A\r\n{BO};Bo;Berg;2;2B;x\r\n".encode()
    reader, layout = reader_for(data)

    with pytest.raises(ReadAgain):
        list(reader.chunks(layout))
    chunks = list(reader.chunks(layout))

    assert lines_of(chunks) == [2]
    assert [m["line"] for m in misshapen_of(chunks)] == [3]


def test_unknown_columns_are_ignored_and_known_ones_are_named_canonically() -> None:
    data = (
        "Anteckning;Personnummer;Förnamn;Efternamn;E-post;Skostorlek\r\n"
        f"vegetarian;{ALVA};Alva;Andersson;alva@example.org;34\r\n"
    ).encode()

    _, chunks = read_all(data)

    assert all(set(chunk.rows.schema.names) <= set(CANONICAL) for chunk in chunks)
    assert all(field.type == pa.string() for chunk in chunks for field in chunk.rows.schema)
    row = rows_of(chunks)[0]
    assert row == {
        "identity": ALVA,
        "given_name": "Alva",
        "family_name": "Andersson",
        "email": "alva@example.org",
    }


def test_trailing_empty_columns_from_excel_are_harmless() -> None:
    data = f"{SWEDISH_HEADER};;\r\n{ALVA};Alva;Andersson;1;1A;;\r\n".encode()

    _, chunks = read_all(data)

    assert misshapen_of(chunks) == []
    assert rows_of(chunks)[0]["class"] == "1A"


@pytest.mark.parametrize("quote", ["", '"'], ids=["unquoted", "quoted"])
def test_every_row_is_read_across_many_small_blocks(quote: str) -> None:
    lines = [f"{n};{quote}Namn{i}{quote};Efternamn;1;1A" for i, n in enumerate([ALVA, BO, CE] * 40)]
    data = ("\r\n".join([SWEDISH_HEADER, *lines]) + "\r\n").encode()

    _, chunks = read_all(data, block_size=256)

    assert len(chunks) > 10
    assert [r["given_name"] for r in rows_of(chunks)] == [f"Namn{i}" for i in range(120)]
    assert lines_of(chunks) == list(range(2, 122))


def test_walk_of_records_counts_lines_of_quoted_line_breaks() -> None:
    data = (
        f'{SWEDISH_HEADER}\r\n{ALVA};"A\r\nB";C;1;1A\r\n\r\n{BO};Bo;Berg;2;2B;x\r\n{CE};C;D;3;3C\r\n'
    ).encode()
    _, layout = reader_for(data)

    walk = RecordWalk(pa.BufferReader(data), "utf-8", ";", layout)
    [span] = walk.take(2)

    assert list(span.good_lines) == [2, 6]
    assert span.blank == 1
    assert span.misshapen == [(5, 6, BO)]
    assert [rest.good_lines.tolist() for rest in walk.take(None)] == [[]]
