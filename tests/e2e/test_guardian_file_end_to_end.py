"""SchoolSoft's guardian file through the five services, each its own process, on the
real stack, after a student import: into the journal's guardians and nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx

from rosterflow.launcher import free_port, service_processes
from rosterflow.settings import LOCAL_DIR, HttpSettings, Settings
from rosterflow.testing import (
    bearer,
    mint_token,
    read_mailbox,
    school_age_numbers,
    seed_school,
)
from tests.support.http import poll

# Values only the protected student's guardian's row holds: found anywhere, they leaked.
SECRET = ("Hemligvägen 7", "hemlig.adress@example.org", "070-999 88 77", "Gömstaby")


def _students(students: list[str]) -> bytes:
    header = "Personnummer;Förnamn;Efternamn;Årskurs;Klass;Skyddad identitet"
    rows = [
        f"{students[0]};Bo;Berg;3;3A;nej",
        f"{students[1]};Alva;Ek;4;4B;ja",
        f"{students[2]};Cleo;Lund;5;5C;",
    ]
    return ("\r\n".join([header, *rows]) + "\r\n").encode("cp1252")


def _guardians(students: list[str], guardians: list[str], unknown: str) -> bytes:
    """As SchoolSoft writes its guardian export: Windows-1252, ``;``, CRLF, quoted fields."""
    header = (
        "student_socialnumber;socialnumber;firstname;lastname;email;mobile;phone;workphone;"
        "address;zipcode;city"
    )

    def dashed(n: str) -> str:
        return f"{n[:8]}-{n[8:]}"

    rows = [
        f"{dashed(students[0])};{dashed(guardians[0])};Karin;Berg;karin@example.org;"
        f'070-111 22 33;;;"Storgatan 1; lgh 1102";12345;Umeå',
        f"{dashed(students[1])};{dashed(guardians[1])};Eva;Ek;{SECRET[1]};{SECRET[2]};;;"
        f"{SECRET[0]};54321;{SECRET[3]}",
        f"{dashed(students[0])};;Olof;Berg;inte-en-adress;070-222 33 44;;;;;",
        f"{dashed(unknown)};{dashed(guardians[2])};Nils;Okänd;;;;;;;",
        f"{dashed(students[2])};{dashed(guardians[3])};Åsa;Lund;;;;08-123 456;;;",
    ]
    return ("\r\n".join([header, *rows]) + "\r\n").encode("cp1252")


async def _import(
    client: httpx.AsyncClient, params: dict[str, str], data: bytes
) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """Upload, check, confirm: the check result, the counts, the valid and invalid rows shown."""
    response = await client.post("/v1/imports", params=params, content=data)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    checked = await poll(client, job_id, {"awaiting_confirmation", "failed"})
    assert checked["state"] == "awaiting_confirmation", checked["error_message"]
    valid = (await client.get(f"/v1/imports/{job_id}/rows/valid")).text
    invalid = (await client.get(f"/v1/imports/{job_id}/rows/invalid")).text
    assert (await client.post(f"/v1/imports/{job_id}/confirm")).status_code == 200
    done = await poll(client, job_id, {"completed", "failed", "cancelled"})
    assert done["state"] == "completed", done["error_message"]
    return checked["check_result"], done["import_counts"], valid, invalid


async def _versions(conn: asyncpg.Connection, organisation_id: object) -> dict[str, str]:
    """Each journal row's xmin: a row written again gets a new one."""
    rows = await conn.fetch(
        """SELECT 'p' || p.identity_number AS key, p.xmin::text AS v
             FROM patients p WHERE p.organisation_id = $1
           UNION ALL
           SELECT 'e' || p.identity_number, e.xmin::text
             FROM enrolments e JOIN patients p ON p.id = e.patient_id
            WHERE p.organisation_id = $1
           UNION ALL
           SELECT 'g' || p.identity_number || '/' || g.position, g.xmin::text
             FROM guardians g JOIN patients p ON p.id = g.patient_id
            WHERE p.organisation_id = $1""",
        organisation_id,
    )
    return {r["key"]: r["v"] for r in rows}


async def test_a_guardian_file_after_a_student_import_updates_the_guardians_only(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    students = school_age_numbers()[310:313]
    unknown = school_age_numbers()[320]
    guardians = school_age_numbers(1970, 1985)[20:24]
    school = await seed_school(conn)
    settings = settings.model_copy(update={"http": HttpSettings(port=free_port())})
    admin = f"admin-{uuid4().hex[:8]}@skolhalsan.example"
    headers = bearer(
        mint_token([school.organisation_id], user_id="u-8", email=admin, language="en")
    )
    params = {
        "organisation_id": str(school.organisation_id),
        "unit_id": str(school.unit_id),
        "file_name": "vardnadshavare.csv",
    }
    guardian_params = {**params, "format": "schoolsoft_guardians"}
    scraped: list[str] = []
    with service_processes(settings, tmp_path / "logs") as services:
        async with httpx.AsyncClient(
            base_url=services.base_url, headers=headers, timeout=30
        ) as client:
            await _import(client, params, _students(students))
            before = await _versions(conn, school.organisation_id)

            runs = []
            for _ in range(2):  # the same file twice: the second changes nothing
                data = _guardians(students, guardians, unknown)
                checked, counts, valid, invalid = await _import(client, guardian_params, data)
                versions = await _versions(conn, school.organisation_id)
                runs.append((checked, counts, valid, invalid, versions))
            for service in services.running:
                scraped.append((await client.get(f"{service.ops_url}/metrics")).text)
        # On a connection of its own: a refused upload's body is not read, and the
        # server closes the connection it came on.
        async with httpx.AsyncClient(
            base_url=services.base_url, headers=headers, timeout=30
        ) as client:
            refused = await client.post(
                "/v1/imports",
                params={**guardian_params, "archive_missing": "true"},
                content=_guardians(students, guardians, unknown),
            )

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "option_not_allowed"
    assert "guardian file" in refused.json()["error"]["message"]

    (first, first_counts, shown, invalid, after_first) = runs[0]
    (second, second_counts, _, _, after) = runs[1]
    assert first["counts"]["valid"] == 4
    assert first["counts"]["invalid"] == 1
    assert first["counts"]["protected_identities"] == 1
    assert first["detected"]["format"] == "schoolsoft_guardians"
    assert [r["code"] for r in first["reasons"]] == ["guardian_student_unknown"]
    assert "guardian_student_unknown" in invalid
    assert "email_invalid" in invalid  # Olof's, dropped with a warning
    plan = first["plan"]
    assert (plan["create"], plan["update"], plan["unchanged"], plan["archive"]) == (0, 0, 0, 0)
    assert (plan["guardians_create"], plan["guardians_update"]) == (4, 0)
    assert first_counts == {
        "created": 0, "updated": 0, "unchanged": 0, "reactivated": 0,
        "guardians_created": 4, "guardians_updated": 0, "guardians_unchanged": 0,
    }  # fmt: skip
    assert (second["plan"]["guardians_create"], second["plan"]["guardians_unchanged"]) == (0, 4)
    assert second_counts["guardians_unchanged"] == 4
    assert second_counts["guardians_created"] == second_counts["guardians_updated"] == 0

    # Nothing but guardians was written, and the second file wrote nothing at all.
    assert {k: v for k, v in after_first.items() if not k.startswith("g")} == before
    assert after == after_first

    stored = {
        (r["student"], r["position"]): r
        for r in await conn.fetch(
            """SELECT p.identity_number AS student, g.*
                 FROM guardians g JOIN patients p ON p.id = g.patient_id
                WHERE p.organisation_id = $1""",
            school.organisation_id,
        )
    }
    assert set(stored) == {(students[0], 1), (students[0], 2), (students[1], 1), (students[2], 1)}
    karin, olof = stored[(students[0], 1)], stored[(students[0], 2)]
    assert (karin["name"], karin["identity_number"], karin["street"], karin["postcode"]) == (
        "Karin Berg", guardians[0], "Storgatan 1; lgh 1102", "123 45",
    )  # fmt: skip
    assert (olof["name"], olof["email"], olof["phone"]) == ("Olof Berg", None, "070-222 33 44")
    eva = stored[(students[1], 1)]
    contact = ("email", "phone", "phone_2", "phone_3", "street", "postcode", "city")
    assert (eva["name"], eva["identity_number"]) == ("Eva Ek", guardians[1])
    assert [eva[c] for c in contact] == [None] * len(contact)
    assert stored[(students[2], 1)]["phone_3"] == "08-123 456"

    mails = [m for m in read_mailbox(LOCAL_DIR / "mail") if m["To"] == admin]
    assert len(mails) == 3  # the students, then the guardian file twice
    texts = [m.get_body(preferencelist=("plain",)).get_content() for m in mails]  # type: ignore[union-attr]
    assert any("New guardians: 4" in t for t in texts)
    assert any("Unchanged guardians: 4" in t for t in texts)
    logs = "\n".join(path.read_text() for path in (tmp_path / "logs").glob("*.log"))
    assert "Storgatan 1; lgh 1102" in shown  # where the leak would be, the open guardian's data is
    assert "inte-en-adress" in invalid
    anywhere = {
        "the email": "\n".join(m.as_string() for m in mails),
        "a log line": logs,
        "a metric": "\n".join(scraped),
        "the valid rows shown": shown,
        "the invalid rows shown": invalid,
    }
    for where, text in anywhere.items():
        for value in SECRET:
            assert value not in text, f"{value!r} in {where}"
