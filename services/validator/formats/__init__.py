"""The format registry: every roster format the validator reads, by the id chosen in the upload.

Adding a format is a module with a RosterFormat (its kinds of file and its
column names, or its own reader, as OneRoster's zip has) and a line here. An
export without a published layout (IST Extens, Tersus Adela, Procapita) needs
no module: its column names are presets (presets.toml) the column mapping
suggests from, and the administrator's mapping is remembered (mapping.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from rosterflow.events import FileFormat
from services.validator import errors
from services.validator.errors import Label
from services.validator.formats import (
    lookalikes,
    oneroster,
    rosterflow_csv,
    rosterflow_xlsx,
    schoolsoft,
    schoolsoft_dat,
    schoolsoft_guardians,
)
from services.validator.formats.base import Lookalike, RosterFormat
from services.validator.header import LABELS, Layout, clean_header, fold, missing_required
from services.validator.mapping import (
    ColumnReport,
    Mappings,
    header_key,
    mapped_aliases,
    presets,
    report,
)
from services.validator.sniff import LABELS as CONTAINER_LABELS
from services.validator.sniff import Container, sniff
from services.validator.source import Reader, Upload

FORMATS: Mapping[FileFormat, RosterFormat] = {
    f.id: f
    for f in (
        rosterflow_csv.FORMAT,
        rosterflow_xlsx.FORMAT,
        schoolsoft.FORMAT,
        schoolsoft_dat.FORMAT,
        schoolsoft_guardians.FORMAT,
        oneroster.FORMAT,
    )
}
LOOKALIKES: tuple[Lookalike, ...] = (schoolsoft_guardians.LOOKALIKE, lookalikes.ONEROSTER_USERS)
"""Files chosen under another format by mistake, told apart before their columns are mapped;
the guardian export's is its own format's: chosen as that, it is no mistake."""

_SAVE_AS_XLSX = Label(
    "Spara den som Excel-arbetsbok (.xlsx) och ladda upp den igen.",
    "Save it as an Excel workbook (.xlsx) and upload it again.",
)
_HINTS: Mapping[Container, Label] = {Container.XLS: _SAVE_AS_XLSX}


def _quoted(label: Label) -> Label:
    return Label(f"”{label.sv}”", f"“{label.en}”")


def _a_file_in(fmt: RosterFormat) -> Label:
    return Label(f"en fil i formatet ”{fmt.label.sv}”", f"a file in the format “{fmt.label.en}”")


@dataclass(frozen=True)
class Opened:
    reader: Reader
    layout: Layout
    columns: ColumnReport
    """The file's columns the format did not recognise, with suggestions."""


def open_roster(
    chosen: FileFormat,
    upload: Upload,
    sample: bytes,
    max_rows: int,
    mappings: Mappings | None = None,
    today: date | None = None,
) -> Opened:
    """The reader for this file and where its columns are, or why the file is rejected.

    A missing-column or no-header error carries the column report
    (``FileError.columns``), so that the administrator can map the columns and
    check the same file again.
    """
    fmt = FORMATS[chosen]
    today = today or date.today()
    container = sniff(sample)
    if container not in fmt.containers:
        raise errors.wrong_format(
            CONTAINER_LABELS[container], _quoted(fmt.label), _HINTS.get(container)
        )
    reader = fmt.reader(container, upload, sample, max_rows)
    # A title or blank rows may stand above the header: the first row that
    # names the required columns (by the format's names or the unit's
    # remembered mapping for that header) is it; else the row naming most of
    # the columns any known system names, else the first row, is judged.
    candidates = reader.header_rows()
    remembered = {
        line: mapped_aliases((mappings or {}).get(header_key(fields)), fields)
        for line, fields in candidates
    }
    line = next(
        (line for line, fields in candidates if fmt.names_required(fields, remembered[line])),
        None,
    )
    if line is None:
        line = max(candidates, key=lambda c: _known(c[1], fmt.aliases))[0]
    reader.use_header(line)
    header = reader.header()
    mapped = remembered[line]
    folded = {fold(h) for h in header}
    # Before the columns: a guardian export has the student columns too.
    for lookalike in LOOKALIKES:
        # A zip is read by its own format; the lookalikes are single files.
        if lookalike.label == fmt.label:
            continue  # the file is what was chosen
        if not mapped and container is not Container.ZIP and lookalike.matches(folded):
            raise errors.wrong_format(lookalike.label, _quoted(fmt.label))
    layout = fmt.layout(header, mapped)
    samples = [fields for at, fields in candidates if at > line]
    columns = report(
        header,
        layout.positions,
        {**fmt.aliases, **mapped},
        samples,
        applied=bool(mapped),
        today=today,
        repeated=layout.repeated,
    )
    if layout.repeated:
        # Which of the columns is meant is the administrator's to say: a mapping can.
        first = min(positions[0] for positions in layout.repeated.values())
        repeated = errors.repeated_column(clean_header(header[first]))
        repeated.columns = {**columns.as_json(), **fmt.extra(reader)}
        raise repeated
    missing = missing_required(layout)
    if not missing:
        try:
            fmt.prepare(reader, (mappings or {}).get(columns.key))
        except errors.FileError as unprepared:
            unprepared.columns = {**columns.as_json(), **fmt.extra(reader)}
            raise
        return Opened(reader, layout, columns)
    fitting = (
        other
        for other in FORMATS.values()
        if other is not fmt and container in other.containers and other.fits(header)
    )
    if (other := next(fitting, None)) is not None:
        error = errors.wrong_format(_a_file_in(other), _quoted(fmt.label))
    elif _known(header, fmt.aliases):
        error = errors.missing_columns([(LABELS[m], fmt.template[m]) for m in missing])
    else:
        error = errors.no_header()
    # Choosing the other format is one way on; mapping the columns is another.
    error.columns = {**columns.as_json(), **fmt.extra(reader)}
    raise error


def _known(header: list[str], aliases: Mapping[str, str]) -> int:
    """How many of a row's names a format or a system's preset knows."""
    names = [fold(clean_header(cell)) for cell in header]
    known = {name for f in FORMATS.values() for name in f.aliases}
    known |= aliases.keys()
    known |= {name for preset in presets() for name in preset.aliases}
    return sum(name in known for name in names)
