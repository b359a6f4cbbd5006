"""One import through the five services, each its own process, on the real stack."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import httpx

from rosterflow.launcher import free_port, service_processes
from rosterflow.settings import LOCAL_DIR, HttpSettings, Settings
from rosterflow.testing import (
    bearer,
    mint_token,
    read_mailbox,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
)
from tests.support.http import poll


async def test_a_roster_is_checked_confirmed_applied_archived_and_emailed(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    numbers = school_age_numbers()
    roster = sample_roster(120, numbers, invalid=3)
    leavers = numbers[200:205]
    school = await seed_school(conn)
    await seed_active_patients(conn, school, leavers + roster.valid_identities[:10])
    settings = settings.model_copy(update={"http": HttpSettings(port=free_port())})
    admin = f"admin-{uuid4().hex[:8]}@skolhalsan.example"
    headers = bearer(
        mint_token([school.organisation_id], user_id="u-7", email=admin, language="en")
    )

    with service_processes(settings, tmp_path / "logs") as services:
        async with httpx.AsyncClient(
            base_url=services.base_url, headers=headers, timeout=30
        ) as client:
            response = await client.post(
                "/v1/imports",
                params={
                    "organisation_id": str(school.organisation_id),
                    "unit_id": str(school.unit_id),
                    "file_name": "students.csv",
                    "archive_missing": "true",
                },
                content=roster.to_csv().encode("utf-8-sig"),
            )
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            checked = await poll(client, job_id, {"awaiting_confirmation", "failed"})
            assert checked["state"] == "awaiting_confirmation", checked["error_message"]
            result = checked["check_result"]
            assert result["counts"]["valid"] == 120
            assert result["counts"]["invalid"] == 3
            assert result["plan"] == {
                "create": 110,
                "update": 10,
                "unchanged": 0,
                "reactivate": 0,
                "archive": 5,
                "archive_held": False,
                "guardians_create": 0,
                "guardians_update": 0,
                "guardians_unchanged": 0,
            }

            assert (await client.post(f"/v1/imports/{job_id}/confirm")).status_code == 200
            done = await poll(client, job_id, {"completed", "failed", "cancelled"})
            assert services.alive() == ["ingest", "validator", "importer", "archiver", "notifier"]

    assert done["state"] == "completed", done["error_message"]
    assert done["import_counts"] == {
        "created": 110,
        "updated": 10,
        "unchanged": 0,
        "reactivated": 0,
        "guardians_created": 0,
        "guardians_updated": 0,
        "guardians_unchanged": 0,
    }
    assert done["archived_count"] == 5
    archived = await conn.fetch(
        """SELECT p.identity_number FROM enrolments e JOIN patients p ON p.id = e.patient_id
            WHERE e.unit_id = $1 AND e.status = 'archived' AND e.archived_by_job = $2""",
        school.unit_id,
        UUID(job_id),
    )
    assert sorted(r["identity_number"] for r in archived) == sorted(leavers)
    active = await conn.fetchval(
        "SELECT count(*) FROM enrolments WHERE unit_id = $1 AND status = 'active'", school.unit_id
    )
    assert active == 120

    mails = [m for m in read_mailbox(LOCAL_DIR / "mail") if m["To"] == admin]
    assert len(mails) == 1
    assert mails[0]["Subject"] == "The import is complete"
    text = mails[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Created: 110" in text
    assert "Archived: 5" in text
    everything = mails[0].as_string()
    for number in roster.valid_identities + leavers:
        assert number not in everything
        assert f"{number[2:8]}-{number[8:]}" not in everything
    for name in roster.names():
        assert name not in everything
