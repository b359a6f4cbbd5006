"""The rosterflow template as an Excel workbook: the same columns in the first sheet."""

from __future__ import annotations

from rosterflow.events import FileFormat
from services.validator.errors import Label
from services.validator.formats.base import RosterFormat
from services.validator.formats.rosterflow_csv import ALIASES, TEMPLATE
from services.validator.sniff import Container

FORMAT = RosterFormat(
    id=FileFormat.ROSTERFLOW_XLSX,
    label=Label("rosterflow XLSX", "rosterflow XLSX"),
    containers=frozenset({Container.XLSX}),
    aliases=ALIASES,
    template=TEMPLATE,
)
