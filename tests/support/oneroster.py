"""OneRoster CSV zips as the published binding lays them out (1.1's CSV Tables, 1.2's CSV
Binding): manifest.csv, orgs.csv, users.csv, classes.csv, enrollments.csv, and 1.2's roles.csv.
Files are UTF-8, comma-separated, lists quoted, CRLF line ends, written by the csv module."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field

USERS_11 = ["sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role",
            "username", "userIds", "givenName", "familyName", "middleName", "identifier",
            "email", "sms", "phone", "agentSourcedIds", "grades", "password"]  # fmt: skip
USERS_12 = ["sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds",
            "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
            "agentSourcedIds", "grades", "password", "userMasterIdentifier",
            "resourceSourcedIds", "preferredGivenName", "preferredMiddleName",
            "preferredFamilyName", "primaryOrgSourcedId", "pronouns"]  # fmt: skip
ROLES_12 = ["sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role",
            "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId"]  # fmt: skip
ORGS = ["sourcedId", "status", "dateLastModified", "name", "type", "identifier",
        "parentSourcedId"]  # fmt: skip
CLASSES = ["sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId",
           "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds",
           "subjects", "subjectCodes", "periods"]  # fmt: skip
ENROLLMENTS = ["sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
               "userSourcedId", "role", "primary", "beginDate", "endDate"]  # fmt: skip
FILES_11 = ["academicSessions", "categories", "classes", "classResources", "courses",
            "courseResources", "demographics", "enrollments", "lineItems", "orgs",
            "resources", "results", "users"]  # fmt: skip
FILES_12 = [*FILES_11, "roles", "userProfiles", "scoreScales", "lineItemScoreScales",
            "resultScoreScales", "lineItemLearningObjectiveIds",
            "resultLearningObjectiveIds"]  # fmt: skip


@dataclass(frozen=True)
class Student:
    sourced_id: str
    given: str
    family: str
    identity: str
    grade: str = "07"
    org: str = "school-1"
    status: str = ""
    modified: str = ""
    email: str = ""


@dataclass
class Roster:
    version: str = "1.1"
    delta: bool = False
    students: list[Student] = field(default_factory=list)
    enrolments: list[tuple[str, str]] = field(default_factory=list)
    """(user sourcedId, class sourcedId)."""
    classes: list[tuple[str, str, str, str]] = field(
        default_factory=lambda: [
            ("class-7a", "7A", "homeroom", "school-1"),
            ("class-ma7", "Matematik 7", "scheduled", "school-1"),
            ("class-8b", "8B", "homeroom", "school-2"),
        ]
    )
    orgs: list[tuple[str, str, str]] = field(
        default_factory=lambda: [
            ("district-1", "Testkommun", "district"),
            ("school-1", "Solbackens skola", "school"),
            ("school-2", "Ekbackens skola", "school"),
        ]
    )

    def to_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, rows in self.files().items():
                archive.writestr(name, _csv(rows))
        return buffer.getvalue()

    def files(self) -> dict[str, list[Sequence[str]]]:
        mode = "delta" if self.delta else "bulk"
        present = {"classes", "enrollments", "orgs", "users"}
        if self.version == "1.2":
            present.add("roles")
        names = FILES_12 if self.version == "1.2" else FILES_11
        manifest: list[Sequence[str]] = [
            ["propertyName", "value"],
            ["manifest.version", "1.0"],
            ["oneroster.version", self.version],
            *[[f"file.{n}", mode if n in present else "absent"] for n in names],
            ["source.systemName", "Testsystem"],
            ["source.systemCode", "test"],
        ]
        teacher = Student("teacher-1", "Karin", "Lärare", "", grade="", org="school-1")
        files: dict[str, list[Sequence[str]]] = {
            "manifest.csv": manifest,
            "orgs.csv": [ORGS, *[[s, "", "", n, t, "", ""] for s, n, t in self.orgs]],
            "classes.csv": [
                CLASSES,
                *[
                    [s, "", "", t, "", "", "", k, "", o, "term-1", "", "", ""]
                    for s, t, k, o in self.classes
                ],
            ],
            "enrollments.csv": [
                ENROLLMENTS,
                *[
                    [f"e-{u}-{c}", "", "", c, "school-1", u, "student", "false", "", ""]
                    for u, c in self.enrolments
                ],
                [
                    "e-teacher",
                    "",
                    "",
                    "class-7a",
                    "school-1",
                    "teacher-1",
                    "teacher",
                    "true",
                    "",
                    "",
                ],
            ],
        }
        people = [(teacher, "teacher"), *((s, "student") for s in self.students)]
        if self.version == "1.1":
            files["users.csv"] = [USERS_11, *[
                [s.sourced_id, s.status, s.modified, "true", s.org, role, s.sourced_id,
                 f"{{LDAP:{s.sourced_id}}},{{SE-PNR:{s.identity}}}" if s.identity else "",
                 s.given, s.family, "", s.identity, s.email, "", "", "", s.grade, ""]
                for s, role in people
            ]]  # fmt: skip
        else:
            files["users.csv"] = [USERS_12, *[
                [s.sourced_id, s.status, s.modified, "true", s.sourced_id,
                 f"{{SE-PNR:{s.identity}}}" if s.identity else "", s.given, s.family, "",
                 s.identity, s.email, "", "", "", s.grade, "", "", "", "", "", "", s.org, ""]
                for s, role in people
            ]]  # fmt: skip
            files["roles.csv"] = [ROLES_12, *[
                [f"r-{s.sourced_id}", "", "", s.sourced_id, "primary", role, "", "", s.org, ""]
                for s, role in people
            ]]  # fmt: skip
        return files


def _csv(rows: list[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue()
