"""The check result, the overview, exclusions and unit options, on a real check."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from rosterflow import events
from rosterflow.settings import Settings
from rosterflow.testing import (
    bearer,
    mint_token,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from tests.support.http import Api, ingest_api
from tests.support.pipeline import pipeline


async def upload(api: Api, org: UUID, unit: UUID, body: bytes, **params: str) -> dict[str, Any]:
    answer = await api.client.post(
        "/v1/imports",
        params={
            "organisation_id": str(org),
            "unit_id": str(unit),
            "file_name": "elever.csv",
            **params,
        },
        content=body,
        headers=bearer(mint_token([org])),
    )
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = answer.json()
    return job


async def reaches(api: Api, org: UUID, job_id: str, state: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        answer = await api.client.get(f"/v1/imports/{job_id}", headers=bearer(mint_token([org])))
        job: dict[str, Any] = answer.json()
        return job if job["state"] == state else None

    return await wait_for(probe, what=f"{job_id} reaching {state}")


async def test_the_check_result_is_paged_and_filtered(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    roster = sample_roster(30, numbers, invalid=6)
    leavers = numbers[100:104]
    school = await seed_school(conn)
    org = school.organisation_id
    await seed_active_patients(conn, school, leavers)
    headers = bearer(mint_token([org]))
    async with pipeline(settings, "validator"), ingest_api(settings) as api:
        job = await upload(
            api, org, school.unit_id, roster.to_csv().encode(), archive_missing="true"
        )
        checked = await reaches(api, org, job["id"], "awaiting_confirmation")
        base = f"/v1/imports/{job['id']}"
        first = (await api.client.get(f"{base}/rows/valid?limit=20", headers=headers)).json()
        second = (
            await api.client.get(f"{base}/rows/valid?offset=20&limit=20", headers=headers)
        ).json()
        invalid = (await api.client.get(f"{base}/rows/invalid", headers=headers)).json()
        digits = (
            await api.client.get(
                f"{base}/rows/invalid?code=identity_bad_check_digit&code=identity_format",
                headers=headers,
            )
        ).json()
        plan = (await api.client.get(f"{base}/plan?limit=2", headers=headers)).json()
    progress = await conn.fetchrow(
        "SELECT progress_stage, progress_done, progress_total FROM jobs WHERE id = $1",
        UUID(job["id"]),
    )
    assert progress is not None
    # A file checked in one chunk records no progress (see check_file).
    assert tuple(progress) == (None, None, None)
    stamps = checked["timestamps"]
    assert stamps["received_at"] <= stamps["validation_started_at"]
    assert stamps["validation_started_at"] <= stamps["validation_finished_at"]
    assert first["total"] == second["total"] == 30
    assert len(first["items"]) == 20
    assert len(second["items"]) == 10
    identities = [r["identity_number"] for r in first["items"] + second["items"]]
    assert sorted(identities) == sorted(roster.valid_identities)
    assert {r["line"]: r["code"] for r in invalid["items"]} == roster.invalid_lines
    expected = {
        line: code
        for line, code in roster.invalid_lines.items()
        if code in {"identity_bad_check_digit", "identity_format"}
    }
    assert digits["total"] == len(expected) == 4
    assert {r["line"]: r["code"] for r in digits["items"]} == expected
    assert plan["create"] == 30
    assert plan["archive"] == 4
    assert plan["archive_held"] is True  # 4 of 4 active patients is over 10 %
    assert plan["archive_candidates"]["total"] == 4
    assert len(plan["archive_candidates"]["items"]) == 2
    assert {c["identity_number"] for c in plan["archive_candidates"]["items"]} <= set(leavers)


# The protected student's own and their guardian's contact data: shown, it leaked.
SECRET = ("Hemligvägen 7", "hemlig@example.org", "070-999 88 77", "Gömstaby")
HOUSEHOLD_HEADER = (
    "Personnummer;Förnamn;Efternamn;Årskurs;Klass;E-post;Telefon;Telefon 2;Telefon 3;"
    "Gatuadress;Postnummer;Postort;Skyddad identitet;Vårdnadshavare 1 namn;"
    "Vårdnadshavare 1 personnummer;Vårdnadshavare 1 e-post;Vårdnadshavare 1 telefon;"
    "Vårdnadshavare 1 telefon 2;Vårdnadshavare 1 gatuadress;Vårdnadshavare 1 postnummer;"
    "Vårdnadshavare 1 postort;Vårdnadshavare 2 namn;Vårdnadshavare 2 telefon 3"
)


async def test_the_valid_rows_show_phones_guardians_and_the_mark_but_no_protected_contact(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    open_student, hidden, lone = school_age_numbers()[200:203]
    karin, eva = school_age_numbers(1970, 1985)[:2]
    rows = [
        f"{open_student};Bo;Berg;3;3A;bo@example.org;070-123 45 67;08-765 43 21;0910-123 45;"
        f"Storgatan 1;12345;Umeå;nej;Karin Berg;{karin};karin@example.org;070-111 22 33;"
        "08-111 22 33;Storgatan 1;12345;Umeå;Olof Berg;070-222 33 44",
        f"{hidden};Alva;Ek;4;4B;{SECRET[1]};{SECRET[2]};{SECRET[2]};{SECRET[2]};{SECRET[0]};"
        f"54321;{SECRET[3]};ja;Eva Ek;{eva};{SECRET[1]};{SECRET[2]};{SECRET[2]};{SECRET[0]};"
        f"54321;{SECRET[3]};Per Ek;{SECRET[2]}",
        f"{lone};Cleo;Lund;5;5C;;;;;;;;;;;;;;;;;;",
    ]
    body = ("\r\n".join([HOUSEHOLD_HEADER, *rows]) + "\r\n").encode()
    school = await seed_school(conn)
    org = school.organisation_id
    headers = bearer(mint_token([org]))
    async with pipeline(settings, "validator"), ingest_api(settings) as api:
        job = await upload(api, org, school.unit_id, body)
        checked = await reaches(api, org, job["id"], "awaiting_confirmation")
        answer = await api.client.get(f"/v1/imports/{job['id']}/rows/valid", headers=headers)
        plan = (await api.client.get(f"/v1/imports/{job['id']}/plan", headers=headers)).json()
    assert answer.status_code == 200, answer.text
    # Bo's two, and Alva's two by name and identity number.
    assert (plan["guardians_create"], plan["guardians_update"]) == (4, 0)
    assert checked["check_result"]["counts"]["protected_identities"] == 1
    shown = {r["identity_number"]: r for r in answer.json()["items"]}
    assert set(shown) == {open_student, hidden, lone}
    bo = shown[open_student]
    assert bo["protected_identity"] is False
    assert (bo["phone"], bo["phone_2"], bo["phone_3"]) == (
        "070-123 45 67", "08-765 43 21", "0910-123 45"
    )  # fmt: skip
    assert bo["guardians"] == [
        {
            "place": 1, "name": "Karin Berg", "identity_number": karin,
            "email": "karin@example.org", "phone": "070-111 22 33", "phone_2": "08-111 22 33",
            "phone_3": None, "street": "Storgatan 1", "postcode": "123 45", "city": "Umeå",
        },
        {
            "place": 2, "name": "Olof Berg", "identity_number": None, "email": None,
            "phone": None, "phone_2": None, "phone_3": "070-222 33 44", "street": None,
            "postcode": None, "city": None,
        },
    ]  # fmt: skip
    alva = shown[hidden]
    assert alva["protected_identity"] is True
    contact = ("email", "phone", "phone_2", "phone_3", "street", "postcode", "city")
    assert [alva[c] for c in contact] == [None] * len(contact)
    # Their guardians keep name and identity number, nothing else.
    assert [(g["place"], g["name"], g["identity_number"]) for g in alva["guardians"]] == [
        (1, "Eva Ek", eva),
        (2, "Per Ek", None),
    ]
    for guardian in alva["guardians"]:
        assert [guardian[c] for c in contact] == [None] * len(contact)
    assert shown[lone]["guardians"] == []
    assert shown[lone]["protected_identity"] is False
    for value in SECRET:
        assert value not in answer.text


async def test_the_overview_lists_the_organisations_imports_newest_first(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    org = school.organisation_id
    other_unit = await conn.fetchval(
        "INSERT INTO units (id, organisation_id, name)"
        " VALUES (gen_random_uuid(), $1, 'Vårdcentral') RETURNING id",
        org,
    )
    theirs = await seed_school(conn, name="Annan skola")
    headers = bearer(mint_token([org, theirs.organisation_id]))
    async with ingest_api(settings) as api:
        a = await upload(api, org, school.unit_id, b"a\r\n", school_year="2025/2026")
        b = await upload(api, org, other_unit, b"b\r\n")
        c = await upload(api, org, school.unit_id, b"c\r\n")
        await upload(api, theirs.organisation_id, theirs.unit_id, b"d\r\n")
        cancelled = await api.client.post(f"/v1/imports/{c['id']}/cancel", headers=headers)
        assert cancelled.json()["state"] == "cancelled"
        path = f"/v1/organisations/{org}/imports"
        everything = (await api.client.get(path, headers=headers)).json()
        by_unit = (
            await api.client.get(path, params={"unit_id": str(school.unit_id)}, headers=headers)
        ).json()
        by_state = (
            await api.client.get(path, params={"state": ["cancelled"]}, headers=headers)
        ).json()
        paged = (
            await api.client.get(path, params={"limit": 1, "offset": 1}, headers=headers)
        ).json()
        later = (
            await api.client.get(
                path, params={"received_from": b["timestamps"]["received_at"]}, headers=headers
            )
        ).json()
    assert [i["id"] for i in everything["items"]] == [c["id"], b["id"], a["id"]]
    assert everything["total"] == 3
    assert [i["id"] for i in by_unit["items"]] == [c["id"], a["id"]]
    assert [i["id"] for i in by_state["items"]] == [c["id"]]
    assert paged["total"] == 3
    assert [i["id"] for i in paged["items"]] == [b["id"]]
    assert [i["id"] for i in later["items"]] == [c["id"], b["id"]]
    item = everything["items"][0]
    assert item["unit_name"] == "Solbackens skola"
    assert item["requested_by"] == {"user_id": "u-1", "name": "Karin Admin"}
    assert item["duration_seconds"] >= 0
    assert item["school_year"] == events.school_year_of(datetime.now().astimezone())


async def test_archive_exclusions_are_listed_added_and_removed(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    school = await seed_school(conn)
    await seed_active_patients(conn, school, numbers[:2])
    headers = bearer(mint_token([school.organisation_id]))
    path = f"/v1/units/{school.unit_id}/archive-exclusions"
    async with ingest_api(settings) as api:
        added = await api.client.post(path, json={"identity_number": numbers[0]}, headers=headers)
        again = await api.client.post(path, json={"identity_number": numbers[0]}, headers=headers)
        unknown = await api.client.post(path, json={"identity_number": numbers[5]}, headers=headers)
        listed = (await api.client.get(path, headers=headers)).json()
        patient = added.json()["patient_id"]
        removed = await api.client.delete(f"{path}/{patient}", headers=headers)
        gone = await api.client.delete(f"{path}/{patient}", headers=headers)
        after = (await api.client.get(path, headers=headers)).json()
    assert added.status_code == 201, added.text
    assert added.json()["identity_number"] == numbers[0]
    assert added.json()["created_by"] == "u-1"
    assert again.status_code == 201
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "patient_not_found"
    assert listed["total"] == 1
    assert listed["items"][0]["patient_id"] == patient
    assert removed.status_code == 204
    assert gone.json()["error"]["code"] == "exclusion_not_found"
    assert after == {"total": 0, "offset": 0, "limit": 100, "items": []}


async def test_unit_options_offer_upper_secondary_only_for_unspecified_levels(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    unspecified = await seed_school(conn, level="unspecified")
    compulsory = await seed_school(conn, level="compulsory")
    headers = bearer(mint_token([unspecified.organisation_id, compulsory.organisation_id]))
    async with ingest_api(settings) as api:
        open_ = (
            await api.client.get(f"/v1/units/{unspecified.unit_id}/options", headers=headers)
        ).json()
        fixed = (
            await api.client.get(f"/v1/units/{compulsory.unit_id}/options", headers=headers)
        ).json()
    assert open_["treat_as_upper_secondary_allowed"] is True
    assert fixed["treat_as_upper_secondary_allowed"] is False
    assert fixed["school_level"] == "compulsory"
    assert set(fixed["formats"]) == {f.value for f in events.FileFormat}
    assert fixed["default_school_year"] in fixed["school_years"]
