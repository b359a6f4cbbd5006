"""Contact data, a protected identity and guardians through the five services,
each its own process, on the real stack: into the journal, and nowhere else."""

from __future__ import annotations

from pathlib import Path
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

# Values only the protected student's row holds: found anywhere, they leaked.
SECRET = ("Hemligvägen 7", "hemlig.adress@example.org", "070-999 88 77", "Gömstaby")
HEADER = (
    "Personnummer;Förnamn;Efternamn;Årskurs;Klass;E-post;Telefon;Telefon 2;Gatuadress;"
    "Postnummer;Postort;Skyddad identitet;Vårdnadshavare 1 namn;Vårdnadshavare 1 personnummer;"
    "Vårdnadshavare 1 e-post;Vårdnadshavare 1 telefon;Vårdnadshavare 1 gatuadress;"
    "Vårdnadshavare 2 namn;Vårdnadshavare 2 telefon"
)


def _roster(students: list[str], guardians: list[str]) -> bytes:
    open_row = "{n};Bo;Berg;3;3A;bo@example.org;070-123 45 67;08-765 43 21;Storgatan 1;12345;Umeå;"
    rows = [
        open_row.format(n=students[0]) + f";Karin Berg;{guardians[0]};karin@example.org;"
        "070-111 22 33;Storgatan 1;Olof Berg;070-222 33 44",
        # Protected: their address, their guardian's; the mark makes both go.
        f"{students[1]};Alva;Ek;4;4B;{SECRET[1]};{SECRET[2]};;{SECRET[0]};54321;{SECRET[3]};ja;"
        f"Eva Ek;{guardians[1]};{SECRET[1]};{SECRET[2]};{SECRET[0]};;",
        f"{students[2]};Cleo;Lund;5;5C;;;;;;;nej;;;;;;;",
    ]
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode("utf-8-sig")


async def test_a_protected_identity_is_stored_flagged_and_its_contact_data_nowhere(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    students = school_age_numbers()[300:303]
    guardians = school_age_numbers(1970, 1985)[10:12]
    school = await seed_school(conn)
    settings = settings.model_copy(update={"http": HttpSettings(port=free_port())})
    admin = f"admin-{uuid4().hex[:8]}@skolhalsan.example"
    headers = bearer(
        mint_token([school.organisation_id], user_id="u-7", email=admin, language="en")
    )
    params = {
        "organisation_id": str(school.organisation_id),
        "unit_id": str(school.unit_id),
        "file_name": "students.csv",
    }
    scraped: list[str] = []
    with service_processes(settings, tmp_path / "logs") as services:
        async with httpx.AsyncClient(
            base_url=services.base_url, headers=headers, timeout=30
        ) as client:
            results = []
            for _ in range(2):  # the same file twice: the second changes nothing
                response = await client.post(
                    "/v1/imports", params=params, content=_roster(students, guardians)
                )
                assert response.status_code == 202, response.text
                job_id = response.json()["id"]
                checked = await poll(client, job_id, {"awaiting_confirmation", "failed"})
                assert checked["state"] == "awaiting_confirmation", checked["error_message"]
                shown = (await client.get(f"/v1/imports/{job_id}/rows/valid")).text
                assert (await client.post(f"/v1/imports/{job_id}/confirm")).status_code == 200
                done = await poll(client, job_id, {"completed", "failed", "cancelled"})
                assert done["state"] == "completed", done["error_message"]
                results.append((checked["check_result"], done["import_counts"], shown))
            for service in services.running:
                scraped.append((await client.get(f"{service.ops_url}/metrics")).text)

    (first, first_counts, shown), (second, second_counts, _) = results
    assert first["counts"]["valid"] == 3
    assert first["counts"]["protected_identities"] == 1
    assert (first["plan"]["create"], first["plan"]["guardians_create"]) == (3, 3)
    assert first_counts["created"] == 3
    assert (first_counts["guardians_created"], first_counts["guardians_updated"]) == (3, 0)
    assert second["plan"]["unchanged"] == 3
    assert (second["plan"]["guardians_create"], second["plan"]["guardians_update"]) == (0, 0)
    assert second_counts == {
        "created": 0, "updated": 0, "unchanged": 3, "reactivated": 0,
        "guardians_created": 0, "guardians_updated": 0, "guardians_unchanged": 3,
    }  # fmt: skip

    patients = {
        r["identity_number"]: r
        for r in await conn.fetch(
            """SELECT p.*, g.name AS g_name, g.identity_number AS g_identity, g.email AS g_email,
                      g.phone AS g_phone, g.street AS g_street
                 FROM patients p LEFT JOIN guardians g ON g.patient_id = p.id AND g.position = 1
                WHERE p.organisation_id = $1""",
            school.organisation_id,
        )
    }
    hidden = patients[students[1]]
    assert hidden["protected_identity"] is True
    contact = ("email", "phone", "phone_2", "phone_3", "street", "postcode", "city")
    assert [hidden[c] for c in contact] == [None] * len(contact)
    assert (hidden["g_name"], hidden["g_identity"]) == ("Eva Ek", guardians[1])
    assert (hidden["g_email"], hidden["g_phone"], hidden["g_street"]) == (None, None, None)
    open_student = patients[students[0]]
    assert (open_student["phone_2"], open_student["postcode"]) == ("08-765 43 21", "123 45")
    assert open_student["protected_identity"] is False
    assert (open_student["g_name"], open_student["g_email"]) == ("Karin Berg", "karin@example.org")
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM guardians g JOIN patients p ON p.id = g.patient_id"
            " WHERE p.organisation_id = $1",
            school.organisation_id,
        )
        == 3
    )

    mails = [m for m in read_mailbox(LOCAL_DIR / "mail") if m["To"] == admin]
    assert len(mails) == 2
    text = mails[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "New guardians: 3" in text
    logs = "\n".join(path.read_text() for path in (tmp_path / "logs").glob("*.log"))
    # Where the leak would be, the open student's data is: the places are looked at.
    assert "Storgatan 1" in shown
    assert "rosterflow_" in scraped[0]
    assert "validator" in logs
    anywhere = {
        "the email": "\n".join(m.as_string() for m in mails),
        "a log line": logs,
        "a metric": "\n".join(scraped),
        "the valid rows shown": shown,
    }
    for where, text in anywhere.items():
        for value in SECRET:
            assert value not in text, f"{value!r} in {where}"
