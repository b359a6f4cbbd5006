"""What kind of file this is, from its first bytes: text, a workbook, or something else."""

from __future__ import annotations

import codecs
import re
from enum import StrEnum

from services.validator import errors
from services.validator.errors import Label


class Container(StrEnum):
    TEXT = "text"
    XLSX = "xlsx"
    XLS = "xls"
    ZIP = "zip"


LABELS = {
    Container.TEXT: Label("en textfil (CSV)", "a text (CSV) file"),
    Container.XLSX: Label("en Excel-arbetsbok (XLSX)", "an Excel workbook (XLSX)"),
    Container.XLS: Label("en äldre Excel-arbetsbok (XLS)", "an old Excel workbook (XLS)"),
    Container.ZIP: Label("en zip-fil", "a zip file"),
}

_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Control characters no roster text contains (tab, line ends, form feed and
# escape aside); a few may be stray, many mean a binary file.
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def sniff(sample: bytes) -> Container:
    if not sample.strip():
        raise errors.empty()
    if sample.startswith(_ZIP):
        # An XLSX names its parts xl/…; the local file headers with those
        # names come first in the archive.
        return Container.XLSX if b"xl/" in sample else Container.ZIP
    if sample.startswith(_OLE2):
        return Container.XLS
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text": its NUL bytes are half of each character.
        return Container.TEXT
    head = sample[:65_536]
    if b"\x00" in head or len(_CONTROL.findall(head)) * 100 > len(head):
        raise errors.not_text()
    return Container.TEXT
