"""The front door's checks, free of I/O."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from rosterflow.events import FileFormat, ImportRequest, StoredFile
from rosterflow.storage import WrittenObject, under_organisation

SUPPORTED_FORMATS = frozenset(FileFormat)


@dataclass(frozen=True)
class Unit:
    id: UUID
    organisation_id: UUID
    name: str
    school_level: str


@dataclass(frozen=True)
class Rejection:
    code: str
    message: str


def upper_secondary_allowed(unit: Unit) -> bool:
    """*Treat as upper secondary* is offered only where the level is unspecified."""
    return unit.school_level == "unspecified"


def check_request(request: ImportRequest, unit: Unit | None) -> Rejection | None:
    """Why this import may not start, or None when it may."""
    if unit is None or unit.organisation_id != request.organisation_id:
        # The same answer whether the unit is missing or another organisation's:
        # a request must not reveal what exists elsewhere.
        return Rejection("unit_not_found", "The unit does not exist in this organisation.")
    if request.options.treat_as_upper_secondary and not upper_secondary_allowed(unit):
        return Rejection(
            "option_not_allowed",
            "'Treat as upper secondary' is offered only for units whose school level is "
            "unspecified.",
        )
    if request.options.archive_missing and request.format.guardians_only:
        return Rejection(
            "option_not_allowed",
            "'Archive missing' cannot be chosen for a guardian file: it updates the guardians "
            "of the unit's students and archives nobody.",
        )
    if request.format not in SUPPORTED_FORMATS:
        return Rejection(
            "format_not_supported", f"The file format {request.format.value} is not supported yet."
        )
    return None


def check_file_key(request: ImportRequest, file: StoredFile) -> Rejection | None:
    """The platform may name only a file of the organisation the import is for."""
    if not under_organisation(file.key, request.organisation_id):
        return Rejection(
            "file_outside_organisation",
            "The file does not lie under the organisation's own storage prefix.",
        )
    return None


def check_stored_file(file: StoredFile, stored: WrittenObject | None) -> Rejection | None:
    """The stored object is the one the event describes: there, same size, same SHA-256."""
    if stored is None:
        return Rejection("file_missing", "The file named by the request is not in storage.")
    if stored.size_bytes != file.size_bytes:
        return Rejection(
            "file_size_mismatch",
            f"The stored file has {stored.size_bytes} bytes, the request says {file.size_bytes}.",
        )
    if stored.sha256 != file.sha256:
        return Rejection(
            "file_checksum_mismatch", "The stored file's SHA-256 differs from the request's."
        )
    return None
