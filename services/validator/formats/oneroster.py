"""OneRoster 1.1 and 1.2 CSV: a zip of CSV files, the students of one org.

The layout is IMS (1EdTech) OneRoster's CSV binding: *OneRoster v1.1 CSV
Tables* (imsglobal.org/oneroster-v11-final-csv-tables) and *OneRoster 1.2 CSV
Binding* (imsglobal.org/spec/oneroster/v1p2/bind/csv). The zip holds
``manifest.csv`` (``propertyName,value``: ``oneroster.version`` and, per
file, ``file.<name>`` = ``bulk``, ``delta`` or ``absent``), ``orgs.csv``,
``users.csv``, ``classes.csv`` and ``enrollments.csv``; 1.2 moves a user's
role and orgs from ``users.csv`` (``role``, ``orgSourcedIds``) to
``roles.csv`` (``userSourcedId``, ``role``, ``orgSourcedId``). Files are
UTF-8, comma-separated, RFC 4180 quoting; a list (``orgSourcedIds``,
``grades``, ``userIds``) is comma-separated inside one quoted field, and a
``userIds`` entry is ``{type:identifier}``.

What is read: the students of the org the unit is mapped to (its
``sourcedId``, remembered with the column mapping); their given and family
name, email, phone (``phone``, else ``sms``), grade (the first of ``grades``:
``07`` → 7, ``KG`` → förskoleklass; another code is left empty) and class
(the title of a class of that org they are enrolled in as a student, a
``homeroom`` class first). OneRoster has no national identity number: the
column the administrator maps to the identity number is read (``identifier``,
a ``metadata.*`` column, or ``userIds``, whose first identifier that reads as
an identity number is taken). Until both are mapped the check fails with the
file's columns, suggestions and the file's orgs, for the mapping.

A delta file (``file.users`` = ``delta``) lists only changes: a user or an
enrolment with ``status`` ``tobedeleted`` is left out, a user listed twice
counts by the latest ``dateLastModified``, and *archive missing* is refused
(whoever a delta leaves out is unchanged, not gone).

Memory: the zip is read whole (it is within the upload limit), and each
member's uncompressed size is taken from the archive's directory and capped
as a workbook's parts are (``sheet.MAX_PART``); zipfile stops at that size
and checks the CRC, so a member that unpacks beyond what it declares fails
rather than growing (a zip bomb is refused before anything is expanded).
Line numbers are ``users.csv``'s (its header is line 1).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from rosterflow.events import FileFormat
from services.validator import errors
from services.validator.errors import FileCode, FileError, Label
from services.validator.formats.base import RosterFormat, aliases
from services.validator.header import Layout, clean_header, fold
from services.validator.identity import IdentityError, parse_identity
from services.validator.mapping import Remembered
from services.validator.sheet import MAX_PART
from services.validator.sniff import Container
from services.validator.source import Chunk, Upload, canonical_batch

REQUIRED_FILES = ("manifest.csv", "orgs.csv", "users.csv", "classes.csv", "enrollments.csv")
# Rows handed to the rules at once.
BATCH_ROWS = 10_000
# Orgs listed in the check result for the administrator to choose from.
MAX_ORGS_LISTED = 200
# Everything the reader unpacks, together: the five or six files of a roster.
MAX_UNPACKED = 4 * MAX_PART
_UTF8_BOM = "\ufeff"
_PRESCHOOL = {"KG": "F"}

ALIASES = aliases(
    given_name=("givenname",),
    family_name=("familyname",),
    grade=("grades",),
    email=("email",),
    phone=("phone",),
)


def _unreadable(sv: str, en: str) -> FileError:
    return errors.unreadable(sv, en)


def _read_member(archive: zipfile.ZipFile, name: str) -> pa.Table:
    """One CSV file of the zip, every column a string (blank as empty)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _unreadable(
            f"Zip-filen saknar {name}, som en OneRoster-export har.",
            f"The zip file lacks {name}, which a OneRoster export has.",
        ) from None
    if info.file_size > MAX_PART:
        raise errors.sheet_too_large_part(info.file_size)
    try:
        data = archive.read(info)
    except (zipfile.BadZipFile, NotImplementedError, EOFError, RuntimeError) as exc:
        raise _unreadable(
            f"{name} i zip-filen kunde inte packas upp.",
            f"{name} in the zip file could not be unpacked.",
        ) from exc
    if data.startswith(_UTF8_BOM.encode()):
        data = data[3:]
    first_line = data.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
    header = next(csv.reader([first_line]), [])
    try:
        return pacsv.read_csv(
            pa.BufferReader(data),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _unreadable(
            f"{name} i zip-filen är ingen läsbar CSV-fil (UTF-8, kommatecken).",
            f"{name} in the zip file is no readable CSV file (UTF-8, commas).",
        ) from exc


def _column(table: pa.Table, name: str) -> list[str]:
    """A column's values, or empty strings where the file has no such column."""
    if name in table.column_names:
        return [str(v) for v in table.column(name).to_pylist()]
    return [""] * table.num_rows


def _listed(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _grade(grades: str) -> str:
    first = next(iter(_listed(grades)), "")
    return _PRESCHOOL.get(first.upper(), first if first.isdigit() else "")


def identity_from_user_ids(value: str) -> str:
    """The first ``{type:identifier}`` whose identifier reads as an identity number, else the
    first identifier (which the identity rules then report)."""
    found = []
    for entry in value.split("}"):
        entry = entry.strip().lstrip(",").strip().lstrip("{")
        if not entry:
            continue
        found.append(entry.split(":", 1)[-1].strip())
    for candidate in found:
        if not isinstance(parse_identity(candidate, date.today()), IdentityError):
            return candidate
    return found[0] if found else ""


@dataclass
class OneRosterReader:
    """The students of one org, from a OneRoster zip, as the rules' canonical rows."""

    upload: Upload
    max_rows: int
    encoding: str = "utf-8"
    delimiter: str = ","
    header_line: int = 1
    version: str = ""
    delta: bool = False
    orgs: list[dict[str, str]] = field(default_factory=list)
    _org: str | None = None

    def __post_init__(self) -> None:
        with self.upload.open() as source:
            data = source.read()
        try:
            self._archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise _unreadable(
                "Zip-filen kunde inte öppnas. Exportera den igen.",
                "The zip file could not be opened. Export it again.",
            ) from exc
        infos = {info.filename.rsplit("/", 1)[-1]: info for info in self._archive.infolist()}
        self._names = {name: info.filename for name, info in infos.items()}
        manifest = self._table("manifest.csv")
        properties = dict(
            zip(_column(manifest, "propertyName"), _column(manifest, "value"), strict=True)
        )
        self.version = properties.get("oneroster.version", "").strip()
        if self.version not in ("1.1", "1.2"):
            raise _unreadable(
                "manifest.csv anger ingen OneRoster-version som stöds (1.1 eller 1.2).",
                "manifest.csv names no supported OneRoster version (1.1 or 1.2).",
            )
        needed = (*REQUIRED_FILES, *(("roles.csv",) if self.version == "1.2" else ()))
        declared = sum(infos[n].file_size for n in needed if n in infos)
        if declared > MAX_UNPACKED:
            raise errors.sheet_too_large_part(declared)
        self.delta = properties.get("file.users", "bulk").strip() == "delta"
        self._users = self._table("users.csv")
        if self._users.num_rows > self.max_rows:
            raise errors.too_many_rows(self.max_rows)
        orgs = self._table("orgs.csv")
        self.orgs = [
            {"sourcedId": s, "name": n, "type": t}
            for s, n, t in zip(
                _column(orgs, "sourcedId"), _column(orgs, "name"), _column(orgs, "type"),
                strict=True,
            )
        ]  # fmt: skip

    def _table(self, name: str) -> pa.Table:
        return _read_member(self._archive, self._names.get(name, name))

    @property
    def detected_encoding(self) -> str:
        return self.encoding

    def header(self) -> list[str]:
        return list(self._users.column_names)

    def header_rows(self) -> list[tuple[int, list[str]]]:
        rows = self._users.slice(0, 9).to_pylist()
        return [(1, self.header())] + [
            (2 + i, [str(v) for v in row.values()]) for i, row in enumerate(rows)
        ]

    def use_header(self, line: int) -> None:
        if line != 1:
            raise ValueError("users.csv's header is its first line")

    def use_org(self, org: str | None) -> None:
        known = {o["sourcedId"] for o in self.orgs}
        if not org or org not in known:
            raise FileError(
                FileCode.ORG_NOT_MAPPED,
                "Välj vilken organisation (org) i OneRoster-filen som enheten motsvarar.",
                "Choose which org of the OneRoster file the unit is.",
            )
        self._org = org

    def chunks(self, layout: Layout) -> Iterator[Chunk]:
        users = self._users
        ids = _column(users, "sourcedId")
        students = self._students_of_org(ids)
        classes = self._classes()
        status = _column(users, "status")
        modified = _column(users, "dateLastModified")
        # In a delta a user may come twice: the latest change counts.
        latest: dict[str, int] = {}
        for row, user in enumerate(ids):
            if user not in students:
                continue
            if self.delta and status[row].strip().lower() == "tobedeleted":
                latest.pop(user, None)
                continue
            if user not in latest or modified[row] >= modified[latest[user]]:
                latest[user] = row
        rows = sorted(latest.values())
        header = self.header()
        taken = {
            name: _column(users, header[position]) for name, position in layout.positions.items()
        }
        if (
            "identity" in layout.positions
            and fold(clean_header(header[layout.positions["identity"]])) == "userids"
        ):
            taken["identity"] = [identity_from_user_ids(v) for v in taken["identity"]]
        if "phone" in taken:
            sms = _column(users, "sms")
            taken["phone"] = [p or s for p, s in zip(taken["phone"], sms, strict=True)]
        if "grade" in taken:
            taken["grade"] = [_grade(g) for g in taken["grade"]]
        for start in range(0, max(len(rows), 1), BATCH_ROWS):
            part = rows[start : start + BATCH_ROWS]
            columns = {
                name: pa.array([values[r] for r in part], pa.string())
                for name, values in taken.items()
            }
            columns["class"] = pa.array([classes.get(ids[r], "") for r in part], pa.string())
            lines = pa.array([r + 2 for r in part], pa.int64())
            yield Chunk(canonical_batch(columns), lines)

    def _students_of_org(self, ids: list[str]) -> set[str]:
        if self.version == "1.1":
            users = self._users
            roles, orgs = _column(users, "role"), _column(users, "orgSourcedIds")
            return {
                user
                for user, role, listed in zip(ids, roles, orgs, strict=True)
                if role.strip().lower() == "student" and self._org in _listed(listed)
            }
        table = self._table("roles.csv")
        live = [s.strip().lower() != "tobedeleted" for s in _column(table, "status")]
        return {
            user
            for user, role, org, alive in zip(
                _column(table, "userSourcedId"), _column(table, "role"),
                _column(table, "orgSourcedId"), live, strict=True,
            )
            if alive and role.strip().lower() == "student" and org == self._org
        }  # fmt: skip

    def _classes(self) -> dict[str, str]:
        """Each student's class: the title of a class of the org they are enrolled in."""
        classes = self._table("classes.csv")
        of_org = {
            sourced: (title, kind.strip().lower() == "homeroom")
            for sourced, title, kind, school, status in zip(
                _column(classes, "sourcedId"), _column(classes, "title"),
                _column(classes, "classType"), _column(classes, "schoolSourcedId"),
                _column(classes, "status"), strict=True,
            )
            if school == self._org and status.strip().lower() != "tobedeleted"
        }  # fmt: skip
        enrollments = self._table("enrollments.csv")
        found: dict[str, tuple[str, bool]] = {}
        for user, klass, role, status in zip(
            _column(enrollments, "userSourcedId"), _column(enrollments, "classSourcedId"),
            _column(enrollments, "role"), _column(enrollments, "status"), strict=True,
        ):  # fmt: skip
            if role.strip().lower() != "student" or status.strip().lower() == "tobedeleted":
                continue
            if klass in of_org and (user not in found or (of_org[klass][1] and not found[user][1])):
                found[user] = of_org[klass]
        return {user: title for user, (title, _) in found.items()}


@dataclass(frozen=True)
class OneRosterFormat(RosterFormat):
    """A zip of CSV files, not one table: its own reader, and the org chosen by the mapping."""

    def reader(self, container: Container, upload: Upload, sample: bytes, max_rows: int) -> Any:
        return OneRosterReader(upload, max_rows)

    def prepare(self, reader: Any, remembered: Remembered | None) -> None:
        assert isinstance(reader, OneRosterReader)
        reader.use_org(remembered.org_sourced_id if remembered else None)

    def extra(self, reader: Any) -> Mapping[str, Any]:
        assert isinstance(reader, OneRosterReader)
        return {"orgs": reader.orgs[:MAX_ORGS_LISTED], "oneroster_version": reader.version}

    def refuses(self, reader: Any, archive_missing: bool) -> FileError | None:
        assert isinstance(reader, OneRosterReader)
        if reader.delta and archive_missing:
            return _unreadable(
                "Filen är en delta-export (bara ändringar); *arkivera saknade* kräver en "
                "fullständig (bulk) export.",
                "The file is a delta export (changes only); *archive missing* needs a full "
                "(bulk) export.",
            )
        return None


FORMAT = OneRosterFormat(
    id=FileFormat.ONEROSTER,
    label=Label("OneRoster 1.1/1.2 (CSV i zip)", "OneRoster 1.1/1.2 (CSV in a zip)"),
    containers=frozenset({Container.ZIP}),
    aliases=ALIASES,
    template={"identity": "identifier", "given_name": "givenName", "family_name": "familyName"},
)
