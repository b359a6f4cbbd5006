"""The validator as a service: the unit's level from the database, the plan's archive list,
formats, file-level errors in the requester's language, size limit, cancellation mid-file.
Real broker, database and object storage."""

from __future__ import annotations

import io

import asyncpg
import openpyxl
import pyarrow.compute as pc
import pytest

from rosterflow import events
from rosterflow.jobs import JobState
from rosterflow.settings import Settings, StorageSettings
from rosterflow.storage import StorageError, archive_key, report_keys
from rosterflow.testing import (
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from services.validator import reading
from tests.support.gates import GatedStorage
from tests.support.pipeline import final_job, new_admin, pipeline

NUMBERS = school_age_numbers()
HEADER = "Personnummer;Förnamn;Efternamn;Årskurs;Klass"


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode("cp1252")


async def test_grades_are_checked_against_the_units_school_level(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn, name="Gymnasiet", level="upper_secondary")
    content = csv(f"{NUMBERS[0]};Alva;Berg;2;NA24b", f"{NUMBERS[1]};Bo;Ek;7;7A")
    async with pipeline(settings, "ingest", "validator") as p:
        sent = await p.upload(school, content)
        validated = await p.tap.next(events.JobValidated, sent.job_id)
        store = p.any.store
    valid = store.parquet_file(validated.report.valid_rows_key).read()
    assert valid.select(["identity_number", "school_form", "grade_year"]).to_pylist() == [
        {"identity_number": NUMBERS[0], "school_form": "upper_secondary", "grade_year": 2}
    ]
    issues = store.parquet_file(validated.report.invalid_rows_key).read()
    assert issues.select(["line", "code"]).to_pylist() == [{"line": 3, "code": "grade_not_allowed"}]
    assert (validated.counts.valid, validated.counts.invalid) == (1, 1)


async def test_the_plan_lists_who_would_be_archived(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    roster = sample_roster(20, NUMBERS)
    typo = NUMBERS[20]
    roster.rows.append([typo, "", "Berg", "3", "3A"])  # an invalid row: its patient stays
    leaving = NUMBERS[21:23]
    school = await seed_school(conn)
    await seed_active_patients(conn, school, [typo, *leaving])
    async with pipeline(settings, "ingest", "validator") as p:
        sent = await p.upload(school, roster.to_csv().encode(), archive_missing=True)
        validated = await p.tap.next(events.JobValidated, sent.job_id)
        store = p.any.store
    assert validated.plan.archive == 2
    key = archive_key(school.organisation_id, sent.job_id)
    assert validated.report.archive_candidates_key == key
    assert key.startswith(f"orgs/{school.organisation_id}/reports/{sent.job_id}/")
    archived = store.parquet_file(key).read()
    assert archived.column_names == ["identity_number", "given_name", "family_name"]
    assert sorted(archived.column("identity_number").to_pylist()) == sorted(leaving)
    assert set(archived.column("given_name").to_pylist()) == {"Tidigare"}
    job = await final_job(conn, sent.job_id)
    assert job.check_result is not None
    assert job.check_result.report.archive_candidates_key == key


async def test_without_archive_missing_there_is_no_archive_list(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator") as p:
        sent = await p.upload(school, sample_roster(3, NUMBERS).to_csv().encode())
        validated = await p.tap.next(events.JobValidated, sent.job_id)
    assert validated.report.archive_candidates_key is None
    assert validated.plan.archive == 0


async def test_an_xlsx_roster_is_checked_and_its_contact_data_imported(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Personnummer", "Förnamn", "Efternamn", "Årskurs", "Klass", "Gatuadress",
                  "Postnummer", "Postort"])  # fmt: skip
    sheet.append([NUMBERS[0], "Alva", "Berg", 7, "7A", "Storgatan 1", 12345, "Umeå"])
    sheet.append([20180101239, "Bo", "Ek", 7, "7A", "", "", ""])  # a number that lost a digit
    buffer = io.BytesIO()
    book.save(buffer)
    school = await seed_school(conn)
    async with pipeline(settings) as p:
        sent = await p.upload(school, buffer.getvalue(), fmt=events.FileFormat.ROSTERFLOW_XLSX)
        validated = await p.tap.next(events.JobValidated, sent.job_id)
        await p.any.publisher.publish(
            events.ConfirmationRequested(job_id=sent.job_id, requested_by=new_admin())
        )
        finished = await p.tap.next(events.JobFinished, sent.job_id)
    assert (validated.counts.valid, validated.counts.invalid) == (1, 1)
    assert validated.detected.format is events.FileFormat.ROSTERFLOW_XLSX
    assert finished.outcome is events.Outcome.COMPLETED
    patient = await conn.fetchrow(
        "SELECT street, postcode, city FROM patients WHERE identity_number = $1", NUMBERS[0]
    )
    assert patient is not None
    assert dict(patient) == {"street": "Storgatan 1", "postcode": "123 45", "city": "Umeå"}


async def test_a_file_in_the_wrong_format_fails_in_the_requesters_language(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    schoolsoft = csv(f"{NUMBERS[0]};Alva;Berg", header="socialnumber;fname;lname")
    async with pipeline(settings, "ingest", "validator") as p:
        swedish = await p.upload(school, schoolsoft, admin=new_admin(events.Language.SV))
        english = await p.upload(school, schoolsoft, admin=new_admin(events.Language.EN))
        in_swedish = await p.tap.next(events.JobFinished, swedish.job_id)
        in_english = await p.tap.next(events.JobFinished, english.job_id)
    for finished in (in_swedish, in_english):
        assert finished.outcome is events.Outcome.FAILED
        assert finished.error_code == "file_wrong_format"
        assert not p.tap.of(events.JobValidated, finished.job_id)
    assert in_swedish.error_message is not None
    assert "SchoolSoft elevexport" in in_swedish.error_message
    assert in_english.error_message is not None
    assert "SchoolSoft student export" in in_english.error_message


async def test_a_file_over_the_size_limit_is_rejected_unread(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    small = settings.model_copy(
        update={"storage": StorageSettings(uri=settings.storage.uri, max_upload_bytes=1_000)}
    )
    school = await seed_school(conn)
    async with pipeline(small, "ingest", "validator") as p:
        sent = await p.upload(school, sample_roster(100, NUMBERS).to_csv().encode())
        finished = await p.tap.next(events.JobFinished, sent.job_id)
    assert finished.outcome is events.Outcome.FAILED
    assert finished.error_code == "file_too_large"


async def test_a_cancel_while_a_large_file_is_checked_ends_the_job_cancelled(
    settings: Settings, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 300,000 rows (about 20 MB) read in blocks of 1 MB, so that there are many batches.
    monkeypatch.setattr(reading, "BLOCK_BYTES", 1 << 20)
    rows = [
        f"{NUMBERS[i % len(NUMBERS)]};Namn{i};Efternamn;5;5A;elev{i}@skolan.se;070-1234567"
        for i in range(300_000)
    ]
    content = csv(*rows, header=HEADER + ";E-post;Telefon")
    gated = GatedStorage(gate=3 << 20)
    school = await seed_school(conn)
    admin = new_admin()
    async with pipeline(settings, "ingest", "validator") as p:
        validator = p.runtimes["validator"]
        gated.install(validator, monkeypatch)
        sent = await p.upload(school, content, admin=admin)

        async def checking() -> bool:
            state = await conn.fetchval("SELECT state FROM jobs WHERE id = $1", sent.job_id)
            return state == "validating" and gated.waiting.is_set()

        await wait_for(checking, what="the validator reading the file")
        await p.any.publisher.publish(
            events.CancelRequested(job_id=sent.job_id, requested_by=admin)
        )
        finished = await p.tap.next(events.JobFinished, sent.job_id, within=60)
        store = p.any.store
    assert finished.outcome is events.Outcome.CANCELLED
    assert not p.tap.of(events.JobValidated, sent.job_id)
    job = await final_job(conn, sent.job_id)
    assert job.state is JobState.CANCELLED
    assert job.validation_finished_at is None
    cause = await conn.fetchval(
        "SELECT cause FROM job_transitions WHERE job_id = $1 ORDER BY id DESC LIMIT 1",
        sent.job_id,
    )
    assert cause == "cancelled during validation"
    # It stopped part-way: a finished check would have left its report behind.
    assert all(stream.closed for stream in gated.streams)
    for key in report_keys(school.organisation_id, sent.job_id):
        with pytest.raises(StorageError):
            store.parquet_file(key)


async def test_the_report_holds_messages_for_the_platform_to_show(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator") as p:
        sent = await p.upload(school, csv(f"{NUMBERS[0]};;Berg;1;1A", f"{NUMBERS[1]};Bo;Ek;1;1A"))
        validated = await p.tap.next(events.JobValidated, sent.job_id)
        store = p.any.store
    issues = store.parquet_file(validated.report.invalid_rows_key).read()
    missing = issues.filter(pc.equal(issues.column("code"), "given_name_missing"))
    assert missing.column("identity_number").to_pylist() == [NUMBERS[0]]
    assert missing.column("message_sv").to_pylist() == ["Förnamn saknas — fyll i förnamnet."]
