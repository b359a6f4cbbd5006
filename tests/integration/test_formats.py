"""Each format beyond the template through the real services into the journal."""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg

from rosterflow import events
from rosterflow.settings import Settings
from rosterflow.testing import school_age_numbers, seed_school
from tests.support.formats import import_file, placed
from tests.support.http import Api, ingest_api
from tests.support.oneroster import Roster, Student
from tests.support.pipeline import final_job, new_admin, pipeline

NUMBERS = school_age_numbers()


async def test_a_schoolsoft_dat_export_is_imported_with_grades_from_the_class_names(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    content = "\r\n".join(
        [
            "Elevlista Solbackens skola",
            "Personnummer\tEfternamn\tFörnamn\tKlass",
            f"{NUMBERS[0]}\tÅberg\tMärta\t7A",
            f"{NUMBERS[1]}\tÖst\tBo\tResurs",
            f"{NUMBERS[2]}\t\tSiv\t8B",
            "",
        ]
    ).encode("cp1252")
    school = await seed_school(conn)
    async with pipeline(settings) as p:
        validated, finished = await import_file(
            p, school, content, events.FileFormat.SCHOOLSOFT_DAT
        )
    assert (validated.counts.valid, validated.counts.invalid) == (2, 1)
    assert validated.counts.warnings == 1  # Resurs: no grade to read
    assert validated.detected.header_line == 2
    assert finished.outcome is events.Outcome.COMPLETED
    expected: dict[str, dict[str, object]] = {
        NUMBERS[0]: {"given_name": "Märta", "family_name": "Åberg", "grade_year": 7,
                     "class_name": "7A"},
        NUMBERS[1]: {"given_name": "Bo", "family_name": "Öst", "grade_year": None,
                     "class_name": "Resurs"},
    }  # fmt: skip
    assert await placed(conn, school) == [
        {"identity_number": n, **expected[n]} for n in sorted(expected)
    ]


TERSUS_HEADER = "Elevens personnr,Förnamn,Efternamn,Grupp,Telefon mobil"


def tersus(*rows: str) -> bytes:
    """A Tersus Adela export: comma-separated, names the template does not use."""
    return ("\r\n".join([TERSUS_HEADER, *rows]) + "\r\n").encode("cp1252")


async def test_a_column_mapping_rechecks_the_file_and_is_applied_to_the_next_upload(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    first = tersus(f"{NUMBERS[0]},Märta,Åberg,7A,070-123 45 67", f"{NUMBERS[1]},Bo,Öst,8B,")
    second = tersus(f"{NUMBERS[2]},Siv,Ek,9C,")
    admin = Api.admin_of(school.organisation_id)
    async with pipeline(settings) as p, ingest_api(settings) as api:
        sent = await p.upload(school, first)
        failed = await p.tap.next(events.JobFinished, sent.job_id)
        view = (await api.client.get(f"/v1/imports/{sent.job_id}", headers=admin)).json()
        found = view["column_mapping"]
        suggested = {c["name"]: c["suggestion"] for c in found["unmatched"]}

        answer = await api.client.post(
            f"/v1/imports/{sent.job_id}/column-mapping",
            json={"columns": suggested},
            headers=admin,
        )
        assert answer.status_code == 202, answer.text
        again = UUID(answer.json()["id"])
        validated = await p.tap.next(events.JobValidated, again)
        twice = await api.client.post(
            f"/v1/imports/{sent.job_id}/column-mapping",
            json={"columns": suggested},
            headers=admin,
        )
        await p.any.publisher.publish(
            events.ConfirmationRequested(job_id=again, requested_by=new_admin())
        )
        assert (await p.tap.next(events.JobFinished, again)).outcome is events.Outcome.COMPLETED

        # The next file with the same header is read with the remembered mapping.
        _, finished = await import_file(p, school, second, events.FileFormat.ROSTERFLOW_CSV)
        latest = await final_job(conn, finished.job_id)

    assert failed.error_code == "file_missing_column"
    assert found["missing"] == ["identity"]
    assert found["unmatched"] == [
        {"name": "Elevens personnr", "position": 0, "suggestion": "identity",
         "reason": "preset:tersus_adela"},
        {"name": "Grupp", "position": 3, "suggestion": "class", "reason": "preset:tersus_adela"},
        {"name": "Telefon mobil", "position": 4, "suggestion": "phone",
         "reason": "preset:tersus_adela"},
    ]  # fmt: skip
    assert (validated.counts.valid, validated.counts.invalid) == (2, 0)
    assert validated.detected.columns["identity"] == "Elevens personnr"
    assert (await final_job(conn, sent.job_id)).superseded_by == again
    assert twice.status_code == 409  # the failed job was checked again already
    assert finished.outcome is events.Outcome.COMPLETED
    assert latest.column_mapping is not None
    assert latest.column_mapping["applied"] is True
    assert [(r["identity_number"], r["class_name"]) for r in await placed(conn, school)] == sorted(
        [(NUMBERS[0], "7A"), (NUMBERS[1], "8B"), (NUMBERS[2], "9C")]
    )
    phone = await conn.fetchval("SELECT phone FROM patients WHERE identity_number = $1", NUMBERS[0])
    assert phone is not None


async def test_a_mapping_names_only_the_files_columns_each_once(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    admin = Api.admin_of(school.organisation_id)
    async with pipeline(settings, "ingest", "validator") as p, ingest_api(settings) as api:
        sent = await p.upload(school, tersus(f"{NUMBERS[0]},Märta,Åberg,7A,"))
        await p.tap.next(events.JobFinished, sent.job_id)
        path = f"/v1/imports/{sent.job_id}/column-mapping"
        foreign = await api.client.post(
            path, json={"columns": {"Födelsedag": "identity"}}, headers=admin
        )
        twice = await api.client.post(
            path,
            json={"columns": {"Elevens personnr": "identity", "Grupp": "identity"}},
            headers=admin,
        )
        other = await api.client.post(
            path,
            json={"columns": {"Elevens personnr": "identity"}},
            headers=Api.admin_of(uuid4()),
        )
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (422, "column_not_in_header")
    assert (twice.status_code, twice.json()["error"]["code"]) == (422, "column_mapped_twice")
    assert other.status_code == 404


async def test_a_repeated_column_is_mapped_to_the_one_to_read_and_the_file_checked_again(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    content = (
        "Personnummer;Förnamn;Efternamn;Klass;Klass\r\n"
        f"{NUMBERS[0]};Märta;Åberg;Grupp 1;7A\r\n{NUMBERS[1]};Bo;Öst;Grupp 2;8B\r\n"
    ).encode("cp1252")
    admin = Api.admin_of(school.organisation_id)
    async with pipeline(settings, "ingest", "validator") as p, ingest_api(settings) as api:
        sent = await p.upload(school, content)
        failed = await p.tap.next(events.JobFinished, sent.job_id)
        view = (await api.client.get(f"/v1/imports/{sent.job_id}", headers=admin)).json()
        path = f"/v1/imports/{sent.job_id}/column-mapping"
        both = await api.client.post(path, json={"columns": {"Klass": "class"}}, headers=admin)
        short = await api.client.post(path, json={"columns": {"Klass": ["class"]}}, headers=admin)
        answer = await api.client.post(
            path, json={"columns": {"Klass": [None, "class"]}}, headers=admin
        )
        assert answer.status_code == 202, answer.text
        again = UUID(answer.json()["id"])
        validated = await p.tap.next(events.JobValidated, again)
        rows = (await api.client.get(f"/v1/imports/{again}/rows/valid", headers=admin)).json()

    assert failed.outcome is events.Outcome.FAILED
    assert failed.error_code == "file_repeated_column"
    assert view["error_code"] == "file_repeated_column"
    found = view["column_mapping"]
    assert found["header"] == ["Personnummer", "Förnamn", "Efternamn", "Klass", "Klass"]
    assert found["missing"] == []
    assert found["unmatched"] == [
        {"name": "Klass", "position": 3, "suggestion": "class", "reason": "repeated"},
        {"name": "Klass", "position": 4, "suggestion": None, "reason": "repeated"},
    ]
    # Read twice as the class, or a list that leaves a column out: refused, nothing saved.
    assert (both.status_code, both.json()["error"]["code"]) == (422, "column_mapped_twice")
    assert (short.status_code, short.json()["error"]["code"]) == (422, "column_count_mismatch")
    assert (validated.counts.valid, validated.counts.invalid) == (2, 0)
    assert validated.detected.columns["class"] == "Klass"
    assert {r["identity_number"]: r["class_name"] for r in rows["items"]} == {
        NUMBERS[0]: "7A",
        NUMBERS[1]: "8B",
    }
    assert (await final_job(conn, sent.job_id)).superseded_by == again
    saved = await conn.fetchval(
        "SELECT columns FROM column_mappings WHERE unit_id = $1", school.unit_id
    )
    assert saved == {"Klass": [None, "class"]}


async def test_a_oneroster_zip_is_imported_once_its_org_and_identity_column_are_mapped(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    roster = Roster(
        version="1.2",
        students=[
            Student("s1", "Märta", "Åberg", NUMBERS[0], grade="07"),
            Student("s2", "Siv", "Ek", NUMBERS[2], grade="08", org="school-2"),
        ],
        enrolments=[("s1", "class-7a"), ("s2", "class-8b")],
    )
    school = await seed_school(conn)
    admin = Api.admin_of(school.organisation_id)
    async with pipeline(settings) as p, ingest_api(settings) as api:
        sent = await p.upload(school, roster.to_zip(), fmt=events.FileFormat.ONEROSTER)
        failed = await p.tap.next(events.JobFinished, sent.job_id)
        view = (await api.client.get(f"/v1/imports/{sent.job_id}", headers=admin)).json()
        answer = await api.client.post(
            f"/v1/imports/{sent.job_id}/column-mapping",
            json={"columns": {"identifier": "identity"}, "org_sourced_id": "school-1"},
            headers=admin,
        )
        assert answer.status_code == 202, answer.text
        again = UUID(answer.json()["id"])
        validated = await p.tap.next(events.JobValidated, again)
        await p.any.publisher.publish(
            events.ConfirmationRequested(job_id=again, requested_by=new_admin())
        )
        finished = await p.tap.next(events.JobFinished, again)
    assert failed.error_code == "file_missing_column"
    assert "school-1" in {o["sourcedId"] for o in view["column_mapping"]["orgs"]}
    assert (validated.counts.valid, validated.counts.invalid) == (1, 0)
    assert finished.outcome is events.Outcome.COMPLETED
    assert [(r["identity_number"], r["grade_year"], r["class_name"])
            for r in await placed(conn, school)] == [(NUMBERS[0], 7, "7A")]  # fmt: skip
