"""The format registry: every roster format the validator reads, by the id chosen in the upload.

Adding a format (OneRoster, IST, Procapita) is a module with a RosterFormat
(its kinds of file and its column names, or its own reader) and a line here.
"""

from __future__ import annotations

from collections.abc import Mapping

from rosterflow.events import FileFormat
from services.validator import errors
from services.validator.errors import Label
from services.validator.formats import (
    lookalikes,
    rosterflow_csv,
    rosterflow_xlsx,
    schoolsoft,
    schoolsoft_dat,
)
from services.validator.formats.base import Lookalike, RosterFormat
from services.validator.header import LABELS, Layout, fold, missing_required
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
    )
}
LOOKALIKES: tuple[Lookalike, ...] = (schoolsoft.GUARDIANS, lookalikes.ONEROSTER_USERS)

_SAVE_AS_XLSX = Label(
    "Spara den som Excel-arbetsbok (.xlsx) och ladda upp den igen.",
    "Save it as an Excel workbook (.xlsx) and upload it again.",
)
_HINTS: Mapping[Container, Label] = {Container.XLS: _SAVE_AS_XLSX}


def _quoted(label: Label) -> Label:
    return Label(f"”{label.sv}”", f"“{label.en}”")


def _a_file_in(fmt: RosterFormat) -> Label:
    return Label(f"en fil i formatet ”{fmt.label.sv}”", f"a file in the format “{fmt.label.en}”")


def open_roster(
    chosen: FileFormat, upload: Upload, sample: bytes, max_rows: int
) -> tuple[Reader, Layout]:
    """The reader for this file and where its columns are, or why the file is rejected."""
    fmt = FORMATS[chosen]
    container = sniff(sample)
    if container not in fmt.containers:
        raise errors.wrong_format(
            CONTAINER_LABELS[container], _quoted(fmt.label), _HINTS.get(container)
        )
    reader = fmt.reader(container, upload, sample, max_rows)
    # A title or blank rows may stand above the header: the first row that
    # names the required columns is it; else the first row is judged.
    candidates = reader.header_rows()
    line = next((line for line, fields in candidates if fmt.names_required(fields)), None)
    reader.use_header(candidates[0][0] if line is None else line)
    header = reader.header()
    folded = {fold(h) for h in header}
    # Before the columns: a guardian export has the student columns too.
    for lookalike in LOOKALIKES:
        if lookalike.matches(folded):
            raise errors.wrong_format(lookalike.label, _quoted(fmt.label))
    layout = fmt.layout(header)
    missing = missing_required(layout)
    if not missing:
        return reader, layout
    for other in FORMATS.values():
        if other is not fmt and container in other.containers and other.fits(header):
            raise errors.wrong_format(_a_file_in(other), _quoted(fmt.label))
    if not any(name in f.aliases for f in FORMATS.values() for name in folded):
        raise errors.no_header()
    raise errors.missing_columns([(LABELS[m], fmt.template[m]) for m in missing])
