"""Reading a roster file: encoding, delimiter, header mapping, batches of strings."""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv

SAMPLE_BYTES = 1 << 20

CANONICAL = (
    "identity",
    "given_name",
    "family_name",
    "grade",
    "class",
    "email",
    "phone",
    "street",
    "postcode",
    "city",
)
REQUIRED = ("identity", "given_name", "family_name")

# Header names as they appear in files, compared after folding (see fold()).
ALIASES: dict[str, str] = {
    **dict.fromkeys(("personnummer", "personalid", "personnr", "pnr", "socialnumber"), "identity"),
    **dict.fromkeys(("fornamn", "givenname", "firstname"), "given_name"),
    **dict.fromkeys(("efternamn", "familyname", "lastname", "surname"), "family_name"),
    **dict.fromkeys(("arskurs", "grade", "ak"), "grade"),
    **dict.fromkeys(("klass", "class", "classname"), "class"),
    **dict.fromkeys(("epost", "email", "mail"), "email"),
    **dict.fromkeys(("telefon", "phone", "mobil", "mobile"), "phone"),
    **dict.fromkeys(("gatuadress", "street", "address"), "street"),
    **dict.fromkeys(("postnummer", "postcode", "zipcode"), "postcode"),
    **dict.fromkeys(("postort", "city"), "city"),
}


class FileError(Exception):
    """The whole file is rejected; nothing of it is imported."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Layout:
    encoding: str
    delimiter: str
    columns: dict[str, str]  # canonical → header as written in the file
    names: list[str]  # one per field of the header row: canonical name or a placeholder


def fold(header: str) -> str:
    """Header names match regardless of case, spacing and å/ä/ö."""
    decomposed = unicodedata.normalize("NFKD", header.strip().lower())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in letters if c.isalnum())


def detect_encoding(sample: bytes) -> str:
    if not sample.strip():
        raise FileError("file_empty", "The file is empty.")
    if b"\x00" in sample or sample.startswith(b"PK\x03\x04"):
        raise FileError("file_not_text", "The file is not a text (CSV) file.")
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    # The sample may end inside a multi-byte character: a non-final decode
    # accepts an incomplete character at the end, and nothing else.
    try:
        # A sample shorter than SAMPLE_BYTES is the whole file: judge all of it.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) < SAMPLE_BYTES)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def detect_layout(sample: bytes) -> Layout:
    encoding = detect_encoding(sample)
    text = sample.decode(encoding, errors="replace")
    header_line = text.splitlines()[0] if text.strip() else ""
    delimiter = max((";", ",", "\t"), key=header_line.count)
    if header_line.count(delimiter) == 0 and fold(header_line) not in ALIASES:
        raise FileError("file_no_header", "The file has no header row with known column names.")
    fields = [f.strip().strip('"') for f in header_line.split(delimiter)]
    columns: dict[str, str] = {}
    names: list[str] = []
    for position, header in enumerate(fields):
        canonical = ALIASES.get(fold(header))
        if canonical is not None and canonical in columns:
            raise FileError(
                "file_repeated_column",
                f"The column {header!r} appears more than once in the header row.",
            )
        if canonical is None:
            names.append(f"_unused_{position}")
        else:
            columns[canonical] = header
            names.append(canonical)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise FileError(
            "file_missing_column",
            "Required columns are missing: "
            + ", ".join(missing)
            + ". The header row must name the identity number, given name and family name.",
        )
    return Layout(encoding, delimiter, columns, names)


def read_batches(
    source: pa.NativeFile, layout: Layout, block_size: int = 4 << 20
) -> Iterator[pa.RecordBatch]:
    """Stream the data rows as batches of strings, every canonical column present.

    Rows with the wrong number of fields are skipped here; records.scan_records
    finds and reports each of them.
    """
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                encoding="utf8" if layout.encoding.startswith("utf-8") else layout.encoding,
                column_names=layout.names,
                skip_rows=1,
                block_size=block_size,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=layout.delimiter,
                newlines_in_values=True,
                invalid_row_handler=lambda _row: "skip",
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(layout.names, pa.string()),
                strings_can_be_null=False,
                include_columns=[n for n in layout.names if not n.startswith("_unused_")],
            ),
        )
        for batch in reader:
            yield with_all_columns(batch)
    except pa.ArrowInvalid as exc:
        raise FileError(
            "file_unreadable", f"The file could not be read as {layout.encoding} CSV: {exc}"
        ) from exc


def with_all_columns(batch: pa.RecordBatch) -> pa.RecordBatch:
    arrays = [
        batch.column(name) if name in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
        for name in CANONICAL
    ]
    return pa.RecordBatch.from_arrays(arrays, names=list(CANONICAL))
