"""SchoolSoft's guardian export (*Vårdnadshavare*): a row a guardian, keyed by the student's
identity number in ``student_socialnumber``.

Where the layout comes from: no published layout of this export was found
(neither SchoolSoft's documentation nor the journals' import guides that were
searched give one). The file is read by its header row under the names
SchoolSoft uses in its exports: ``student_socialnumber`` for the student,
and for the guardian ``socialnumber``, ``firstname``/``lastname``,
``email``, ``mobile``, ``phone``, ``workphone``, ``address``, ``zipcode``
and ``city``; a remembered column mapping covers an export whose names
differ. SchoolSoft writes it as it writes the student export: Windows-1252 or
UTF-8 with a BOM, ``;`` between fields, CRLF, fields quoted where needed.

The guardian's fields are read into the first guardian's canonical columns
(``guardian1_…``) and the guardian's names into ``given_name`` and
``family_name``, so that the row rules of the template's guardian columns
(contact data dropped with a warning, an identity number dropped where it
is invalid) and of the student's identity number run unchanged; the rows
are then made guardians of their students (``services/validator/guardian_file.py``).
"""

from __future__ import annotations

from rosterflow.events import FileFormat
from services.validator import errors
from services.validator.errors import FileError, Label
from services.validator.formats.base import Lookalike, RosterFormat, aliases
from services.validator.sniff import Container
from services.validator.source import Reader

ALIASES = aliases(
    identity=("studentsocialnumber", "elevpersonnummer"),
    given_name=("firstname", "fname"),
    family_name=("lastname", "lname"),
    guardian1_identity=("socialnumber",),
    guardian1_email=("email",),
    # As in the student export: the mobile reaches the guardian first.
    guardian1_phone=("mobile",),
    guardian1_phone_2=("phone",),
    guardian1_phone_3=("workphone",),
    guardian1_street=("address", "address1"),
    guardian1_postcode=("zipcode", "zip"),
    guardian1_city=("city",),
)


class _GuardianFile(RosterFormat):
    def refuses(self, reader: Reader, archive_missing: bool) -> FileError | None:
        # Ingest refuses the option at upload; this holds for a job registered otherwise.
        if archive_missing:
            return errors.unreadable(
                "En vårdnadshavarfil uppdaterar bara vårdnadshavare; *arkivera saknade* går "
                "inte att välja för den.",
                "A guardian file updates guardians only; *archive missing* cannot be chosen "
                "for it.",
            )
        return None


FORMAT = _GuardianFile(
    id=FileFormat.SCHOOLSOFT_GUARDIANS,
    label=Label("SchoolSoft vårdnadshavarexport", "SchoolSoft guardian export"),
    containers=frozenset({Container.TEXT, Container.XLSX}),
    aliases=ALIASES,
    template={
        "identity": "student_socialnumber",
        "given_name": "firstname",
        "family_name": "lastname",
    },
)

LOOKALIKE = Lookalike(FORMAT.label, frozenset({"studentsocialnumber"}))
"""A guardian file chosen as a student export: it names the student's columns too."""
