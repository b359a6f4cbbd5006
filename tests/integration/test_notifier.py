"""The email of every job outcome, through the real pipeline and the local SMTP sink.

Each test's administrator has an address of their own, so a test reads only
its own messages from the shared mailbox.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from uuid import UUID, uuid4

import asyncpg
import pyarrow.compute as pc
import pytest

from rosterflow import events
from rosterflow.events import Language
from rosterflow.settings import Settings
from rosterflow.storage import ObjectStore, upload_key
from rosterflow.testing import (
    School,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from services.ingest import commands
from tests.support.pipeline import Pipeline, final_job, mails_to, new_admin, pipeline


async def one_mail(address: str) -> EmailMessage:
    async def arrived() -> list[EmailMessage] | None:
        return mails_to(address) or None

    return (await wait_for(arrived, what=f"an email to {address}"))[0]


def readable(message: EmailMessage) -> str:
    """What a reader can see: every header and every text part, decoded."""
    seen = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            assert isinstance(part, EmailMessage)
            seen.append(str(part.get_content()))
    return "\n".join(seen)


def text_of(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def assert_no_personal_data(message: EmailMessage, numbers: list[str], names: set[str]) -> None:
    seen, raw = readable(message), message.as_string()
    for number in numbers:
        for form in (number, f"{number[2:8]}-{number[8:]}", f"{number[:8]}-{number[8:]}"):
            assert form not in seen
            assert form not in raw
    for name in names:
        assert name not in seen


@dataclass
class Ended:
    job_id: UUID
    numbers: list[str]  # every identity number in the file or the unit, as 12 digits
    names: set[str]  # every name in the file


Scenario = Callable[[Settings, asyncpg.Connection, events.Requester], Awaitable[Ended]]
NUMBERS = school_age_numbers()


async def confirm(p: Pipeline, job_id: UUID, admin: events.Requester) -> None:
    await p.tap.next(events.JobValidated, job_id)
    await p.any.publisher.publish(events.ConfirmationRequested(job_id=job_id, requested_by=admin))


async def completed(settings: Settings, conn: asyncpg.Connection, admin: events.Requester) -> Ended:
    roster = sample_roster(30, NUMBERS, invalid=4)
    school = await seed_school(conn)
    await seed_active_patients(conn, school, NUMBERS[100:102])  # 2 of 32: under the hold
    async with pipeline(settings) as p:
        upload = await p.upload(school, roster.to_csv().encode(), archive_missing=True, admin=admin)
        await confirm(p, upload.job_id, admin)
        await one_mail(admin.email)
    return Ended(upload.job_id, NUMBERS[:34] + NUMBERS[100:102], roster.names())


async def archive_not_approved(
    settings: Settings, conn: asyncpg.Connection, admin: events.Requester
) -> Ended:
    roster = sample_roster(20, NUMBERS)
    school = await seed_school(conn)
    await seed_active_patients(conn, school, NUMBERS[100:110])  # 10 of 30: over the hold
    async with pipeline(settings) as p:
        upload = await p.upload(school, roster.to_csv().encode(), archive_missing=True, admin=admin)
        await confirm(p, upload.job_id, admin)
        # A held archive waits for a decision; declined here.
        await p.tap.next(events.ArchiveHeld, upload.job_id)
        await p.any.publisher.publish(
            events.ArchiveDecisionRequested(job_id=upload.job_id, approve=False, requested_by=admin)
        )
        await one_mail(admin.email)
    return Ended(upload.job_id, NUMBERS[:20] + NUMBERS[100:110], roster.names())


async def failed(settings: Settings, conn: asyncpg.Connection, admin: events.Requester) -> Ended:
    numbers = NUMBERS[:3]
    names = {"Märta", "Öberg", "Liam", "Sjögren"}
    # Identity numbers and names under headers the validator does not know.
    content = f"Namn;Klass;Nummer\r\nMärta Öberg;7A;{numbers[0]}\r\n"
    content += f"Liam Sjögren;7B;{numbers[1][2:8]}-{numbers[1][8:]}\r\n;;{numbers[2]}\r\n"
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator", "notifier") as p:
        upload = await p.upload(school, content.encode(), admin=admin)
        await one_mail(admin.email)
    return Ended(upload.job_id, numbers, names)


async def cancelled_before_import(
    settings: Settings, conn: asyncpg.Connection, admin: events.Requester
) -> Ended:
    roster = sample_roster(10, NUMBERS, invalid=2)
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator", "notifier") as p:
        upload = await p.upload(school, roster.to_csv().encode(), admin=admin)
        await p.tap.next(events.JobValidated, upload.job_id)
        await p.any.publisher.publish(
            events.CancelRequested(job_id=upload.job_id, requested_by=admin)
        )
        await one_mail(admin.email)
    return Ended(upload.job_id, NUMBERS[:12], roster.names())


async def cancelled_after_import(
    settings: Settings, conn: asyncpg.Connection, admin: events.Requester
) -> Ended:
    roster = sample_roster(25, NUMBERS, invalid=1)
    school = await seed_school(conn)
    await seed_active_patients(conn, school, NUMBERS[100:102])
    async with pipeline(settings, "ingest", "validator", "importer", "notifier") as p:
        upload = await p.upload(school, roster.to_csv().encode(), archive_missing=True, admin=admin)
        await confirm(p, upload.job_id, admin)
        await p.tap.next(events.ImportApplied, upload.job_id)
        # The import committed; the cancel lands before the archiver runs.
        await commands.cancel(p.runtimes["ingest"], upload.job_id, admin, broadcast=True)
        async with pipeline(settings, "archiver"):
            await one_mail(admin.email)
    return Ended(upload.job_id, NUMBERS[:26] + NUMBERS[100:102], roster.names())


async def rejected(settings: Settings, conn: asyncpg.Connection, admin: events.Requester) -> Ended:
    mine = await seed_school(conn)
    theirs = await seed_school(conn, name="Annan skola")
    async with pipeline(settings, "ingest", "notifier") as p:
        upload = await p.upload(
            School(mine.organisation_id, theirs.unit_id), b"Personnummer\r\n", admin=admin
        )
        await one_mail(admin.email)
    # Another organisation's unit: the email must not even name it.
    return Ended(upload.job_id, [], {"Annan skola"})


SCENARIOS: dict[str, Scenario] = {
    "completed": completed,
    "archive_not_approved": archive_not_approved,
    "failed": failed,
    "cancelled_before_import": cancelled_before_import,
    "cancelled_after_import": cancelled_after_import,
    "rejected": rejected,
}

# The subject (start) and lines or sentences each email must hold.
EXPECTED: dict[str, dict[Language, tuple[str, list[str]]]] = {
    "completed": {
        Language.SV: (
            "Importen är klar",
            ["Alla giltiga rader har sparats i journalen.", "Nya: 30", "Uppdaterade: 0",
             "Oförändrade: 0", "Återaktiverade: 0", "Arkiverade: 2", "Överhoppade rader: 4"],
        ),
        Language.EN: (
            "The import is complete",
            ["Every valid row has been saved to the journal.", "Created: 30", "Updated: 0",
             "Unchanged: 0", "Re-activated: 0", "Archived: 2", "Skipped rows: 4"],
        ),
    },
    "archive_not_approved": {
        Language.SV: (
            "Importen är klar – arkiveringen",
            ["Alla giltiga rader har sparats i journalen.", "Ingen patient har arkiverats.",
             "Nya: 20", "Arkiverade: 0"],
        ),
        Language.EN: (
            "The import is complete – archiving",
            ["Every valid row has been saved to the journal.", "Nobody has been archived.",
             "Created: 20", "Archived: 0"],
        ),
    },
    "failed": {
        Language.SV: (
            "Importen misslyckades",
            ["Orsak: Obligatoriska kolumner saknas: rubrikraden måste ha personnummer, förnamn "
             "och efternamn.", "Ingenting importerades; journalen är oförändrad."],
        ),
        Language.EN: (
            "The import failed",
            ["Reason: Required columns are missing: the header row must name the identity "
             "number, given name and family name.",
             "Nothing was imported; the journal is unchanged."],
        ),
    },
    "cancelled_before_import": {
        Language.SV: (
            "Importen avbröts",
            ["Importen avbröts innan något sparades.",
             "Ingenting importerades; journalen är oförändrad.", "Rader med fel: 2"],
        ),
        Language.EN: (
            "The import was cancelled",
            ["The import was cancelled before anything was saved.",
             "Nothing was imported; the journal is unchanged.", "Rows with errors: 2"],
        ),
    },
    "cancelled_after_import": {
        Language.SV: (
            "Importen avbröts – raderna hade redan sparats",
            ["Importen avbröts efter att de giltiga raderna sparats i journalen; de finns kvar "
             "där. Arkiveringen gjordes inte: ingen patient har arkiverats.",
             "Nya: 25", "Arkiverade: 0", "Överhoppade rader: 1"],
        ),
        Language.EN: (
            "The import was cancelled – the rows had already been saved",
            ["The import was cancelled after the valid rows had been saved to the journal; they "
             "remain there. Archiving did not happen: nobody has been archived.",
             "Created: 25", "Archived: 0", "Skipped rows: 1"],
        ),
    },
    "rejected": {
        Language.SV: (
            "Importen avvisades",
            ["Orsak: Enheten finns inte i organisationen.",
             "Ingenting importerades; journalen är oförändrad."],
        ),
        Language.EN: (
            "The import was rejected",
            ["Reason: The unit does not exist in this organisation.",
             "Nothing was imported; the journal is unchanged."],
        ),
    },
}  # fmt: skip

COMMON = {
    Language.SV: ["Läsår: 2026/2027", "Fil: elever.csv", "Tid: "],
    Language.EN: ["School year: 2026/2027", "File: elever.csv", "Duration: "],
}


def expected_reasons(settings: Settings, key: str | None, lang: Language) -> list[str]:
    """The report's three commonest error codes, counted here independently."""
    if key is None:
        return []
    issues = ObjectStore.from_settings(settings.storage).parquet_file(key).read()
    errors = issues.filter(pc.equal(issues.column("severity"), "error"))
    codes = errors.column("code").to_pylist()
    messages = dict(zip(codes, errors.column(f"message_{lang.value}").to_pylist(), strict=True))
    top = sorted(Counter(codes).items(), key=lambda item: (-item[1], item[0]))[:3]
    unit = {Language.SV: ("rad", "rader"), Language.EN: ("row", "rows")}[lang]
    return [f"- {messages[c]} ({n} {unit[n != 1]})" for c, n in top]


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("kind", list(SCENARIOS))
async def test_every_outcome_is_emailed_once_in_the_requesters_language(
    settings: Settings, conn: asyncpg.Connection, kind: str, language: Language
) -> None:
    admin = new_admin(language)

    ended = await SCENARIOS[kind](settings, conn, admin)

    [mail] = mails_to(admin.email)
    subject, wanted = EXPECTED[kind][language]
    assert str(mail["Subject"]).startswith(subject)
    text = text_of(mail)
    lines = text.splitlines()
    assert lines[0] == mail["Subject"]
    for line in wanted + COMMON[language]:
        assert line in text, line
    link = f"{settings.platform.base_url}/imports/{ended.job_id}"
    assert link in text
    assert f'href="{link}"' in text_of(mail, "html")
    job = await final_job(conn, ended.job_id)
    key = job.check_result.report.invalid_rows_key if job.check_result else None
    reasons = expected_reasons(settings, key, language)
    if reasons:
        heading = lines.index({Language.SV: "Vanligaste orsakerna:", Language.EN:
                               "Commonest reasons:"}[language])  # fmt: skip
        assert lines[heading + 1 : heading + 1 + len(reasons)] == reasons
    assert_no_personal_data(mail, ended.numbers, ended.names)
    row = await conn.fetchrow("SELECT * FROM notifications WHERE job_id = $1", ended.job_id)
    assert row is not None
    assert row["state"] == "sent"
    assert row["message_id"] == str(mail["Message-ID"]).strip()


async def test_names_users_typed_cannot_add_headers_recipients_or_markup(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    spy = "spy@evil.example"
    unit = f"Skolan\r\nBcc: {spy}\r\n<img src=x onerror=alert(1)>"
    file_name = (
        f"elever.csv\r\nBcc: {spy}\r\nSubject: hacked\r\n\r\n"
        '<script>alert(1)</script><a href="http://evil.example/">klicka</a>'
    )
    school = await seed_school(conn, name=unit)
    admin = new_admin()
    async with pipeline(settings, "ingest", "validator", "notifier") as p:
        job_id = uuid4()
        key = upload_key(school.organisation_id, job_id)
        written = p.any.store.write_bytes(key, b"Namn;Klass\r\nAnna;7A\r\n")
        await p.any.publisher.publish(
            events.UploadRequested(
                job_id=job_id,
                request=events.ImportRequest(
                    organisation_id=school.organisation_id,
                    unit_id=school.unit_id,
                    school_year="2026/2027",
                ),
                file=events.StoredFile(
                    key=key, name=file_name, sha256=written.sha256, size_bytes=written.size_bytes
                ),
                requested_by=admin,
            )
        )
        mail = await one_mail(admin.email)

    assert sorted(mail.keys()) == sorted(
        ["X-Envelope-From", "X-Envelope-To", "From", "To", "Subject", "Date", "Message-ID",
         "Auto-Submitted", "MIME-Version", "Content-Type"]
    )  # fmt: skip
    assert mail.get_all("To") == [admin.email]
    assert mail.get_all("Subject") == ["Importen misslyckades"]
    # What the relay was asked to deliver to: the administrator and nobody else.
    assert mail["X-Envelope-To"] == admin.email
    lines = text_of(mail).splitlines()
    assert (
        f"Fil: elever.csv Bcc: {spy} Subject: hacked "
        '<script>alert(1)</script><a href="http://evil.example/">klicka</a>'
    ) in lines
    assert f"Enhet: Skolan Bcc: {spy} <img src=x onerror=alert(1)>" in lines
    page = text_of(mail, "html")
    for markup in ("<script", "<img", '<a href="http://evil', "onerror=alert(1)>"):
        assert markup not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
