from __future__ import annotations

import email
import email.policy
import random
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from rosterflow.events import JobFinished, Language, Outcome
from rosterflow.jobs import OUTCOME_STATE, JobState
from services.notifier import logic
from services.notifier.logic import (
    Email,
    InvalidRecipient,
    Reason,
    compose,
    message_id,
    wire_bytes,
)
from services.notifier.logic import to_message as to_message_with_id
from tests.support.jobs import COUNTS, IDENTITIES, JOB_ID, LINK, SENDER, check_result, make_job


def to_message(mail: Email, sender: str) -> EmailMessage:
    return to_message_with_id(mail, sender, message_id(JOB_ID, Outcome.COMPLETED, sender))


def finished(outcome: Outcome, **payload: Any) -> JobFinished:
    event = JobFinished.for_job(JOB_ID, outcome=outcome, **payload)
    assert isinstance(event, JobFinished)
    return event


def completed() -> JobFinished:
    return finished(Outcome.COMPLETED, imported=COUNTS, archived=7)


def parsed(message: EmailMessage) -> EmailMessage:
    """The message as a mail client would see it after transport."""
    result = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    return result


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def test_completed_email_is_in_swedish_by_default_with_every_count() -> None:
    mail = compose(make_job(), completed(), "Solbackens skola", LINK)

    assert mail.recipient == "karin.admin@example.org"
    assert mail.subject == "Importen är klar"
    for line in [
        "Enhet: Solbackens skola",
        "Läsår: 2026/2027",
        "Fil: elever-ht2026.csv",
        "Nya: 12",
        "Uppdaterade: 30",
        "Oförändrade: 410",
        "Återaktiverade: 2",
        "Arkiverade: 7",
        "Överhoppade rader: 5",
        "Tid: 2 min 5 s",
        f"Visa importen: {LINK}",
    ]:
        assert line in mail.text.splitlines(), line
    assert "<td>410</td>" in mail.html


def test_guardians_are_counted_only_when_the_import_touched_any() -> None:
    without = compose(make_job(), completed(), "Solbackens skola", LINK)
    counts = COUNTS.model_copy(update={"guardians_created": 40, "guardians_updated": 0})
    event = finished(Outcome.COMPLETED, imported=counts, archived=7)
    english = compose(make_job(requested_by_language="en"), event, "Solbacken School", LINK)

    assert "vårdnadshavare" not in without.text
    assert "New guardians: 40" in english.text.splitlines()
    assert "Updated guardians: 0" in english.text.splitlines()


def test_email_is_in_english_when_the_requester_chose_english() -> None:
    mail = compose(make_job(requested_by_language="en"), completed(), "Solbacken School", LINK)

    assert mail.subject == "The import is complete"
    for line in ["Unit: Solbacken School", "School year: 2026/2027", "Created: 12", "Archived: 7"]:
        assert line in mail.text.splitlines(), line
    assert "Enhet" not in mail.text
    assert "Visa importen" not in mail.html


@pytest.mark.parametrize(
    ("outcome", "swedish", "english"),
    [
        (Outcome.COMPLETED, "Importen är klar", "The import is complete"),
        (Outcome.FAILED, "Importen misslyckades", "The import failed"),
        (Outcome.CANCELLED, "Importen avbröts", "The import was cancelled"),
        (Outcome.REJECTED, "Importen avvisades", "The import was rejected"),
    ],
)
def test_subject_says_the_outcome(outcome: Outcome, swedish: str, english: str) -> None:
    job = make_job(state=OUTCOME_STATE[outcome])

    sv = to_message(compose(job, finished(outcome), "Solbackens skola", LINK), SENDER)
    en = to_message(
        compose(
            job.model_copy(update={"requested_by_language": "en"}), finished(outcome), "X", LINK
        ),
        SENDER,
    )

    assert parsed(sv)["Subject"] == swedish
    assert parsed(en)["Subject"] == english


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.REJECTED])
def test_failed_or_rejected_job_says_nothing_was_imported(outcome: Outcome) -> None:
    job = make_job(state=OUTCOME_STATE[outcome], import_counts=None, archived_count=None)
    event = finished(outcome, error_code="file_empty", error_message="The file is empty.")

    sv = compose(job, event, "Solbackens skola", LINK)
    en = compose(job.model_copy(update={"requested_by_language": "en"}), event, "X", LINK)

    assert "Ingenting importerades; journalen är oförändrad." in sv.text
    assert "Ingenting importerades" in sv.html
    assert "Nothing was imported; the journal is unchanged." in en.text
    assert "Orsak: Filen är tom." in sv.text.splitlines()
    assert "Reason: The file is empty." in en.text.splitlines()
    # No import counts that could be read as "this many were imported".
    assert "Nya:" not in sv.text
    assert "Created:" not in en.text


def test_completed_job_does_not_say_nothing_was_imported() -> None:
    mail = compose(make_job(), completed(), "Solbackens skola", LINK)

    assert "Ingenting importerades" not in mail.text


INJECTION = "elever.csv\r\nBcc: x@y\r\nSubject: hacked"


def test_line_breaks_in_file_or_unit_name_cannot_add_headers() -> None:
    job = make_job(file_name=INJECTION)
    event = finished(Outcome.FAILED, error_message="boom\nBcc: x@y")

    message = parsed(to_message(compose(job, event, "Skola\nBcc: x@y", LINK), SENDER))

    assert message["Bcc"] is None
    assert message.get_all("Subject") == ["Importen misslyckades"]
    assert message.get_all("To") == ["karin.admin@example.org"]
    assert sorted(message.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Auto-Submitted",
            "MIME-Version",
            "Content-Type",
        ]
    )
    for subtype in ("plain", "html"):
        part = body(message, subtype)
        assert not any(line.startswith("Bcc:") for line in part.splitlines()), subtype
    text = body(message, "plain").splitlines()
    assert "Fil: elever.csv Bcc: x@y Subject: hacked" in text
    assert "Enhet: Skola Bcc: x@y" in text


def test_html_special_characters_in_names_are_escaped() -> None:
    job = make_job(file_name='<img src=x onerror="alert(1)">&.csv')

    mail = compose(job, completed(), "<b>Solbacken</b> & Co", LINK)
    html_part = body(parsed(to_message(mail, SENDER)), "html")

    assert "<img" not in html_part
    assert "<b>" not in html_part
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;.csv" in html_part
    assert "&lt;b&gt;Solbacken&lt;/b&gt; &amp; Co" in html_part
    # The plain-text part shows the names as typed.
    assert "Enhet: <b>Solbacken</b> & Co" in mail.text.splitlines()


def test_message_has_a_plain_text_and_an_html_part_and_a_message_id() -> None:
    message = parsed(to_message(compose(make_job(), completed(), "Solbackens skola", LINK), SENDER))

    assert message["From"] == SENDER
    assert message["Message-ID"]
    assert message.get_content_type() == "multipart/alternative"
    assert "Nya: 12" in body(message, "plain")
    assert LINK in body(message, "html")


@pytest.mark.parametrize("outcome", list(Outcome))
def test_no_identity_number_appears_in_the_email(outcome: Outcome) -> None:
    # The job carries what the pipeline knows about the file; none of the
    # patients' numbers may travel by email, even where a key or result holds one.
    job = make_job(
        state=OUTCOME_STATE[outcome],
        file_key=f"orgs/x/uploads/{IDENTITIES[0]}/source",
        check_result=check_result(
            counts={"rows": 3, "valid": 2, "invalid": 1, "empty": 0, "warnings": 0},
            report={
                "valid_rows_key": f"orgs/x/reports/{IDENTITIES[1]}/valid.parquet",
                "invalid_rows_key": f"orgs/x/reports/{IDENTITIES[2]}/invalid.parquet",
            },
        ),
    )
    mail = compose(job, finished(outcome, imported=COUNTS), "Solbackens skola", LINK)

    message = parsed(to_message(mail, SENDER))
    headers = " ".join(f"{k}: {v}" for k, v in message.items())
    everything = [headers, body(message, "plain"), body(message, "html")]
    for number in IDENTITIES:
        short = f"{number[2:8]}-{number[8:]}"
        for text in everything:
            assert number not in text
            assert short not in text


def held(code: str) -> JobFinished:
    return finished(Outcome.COMPLETED, imported=COUNTS, archived=0, error_code=code)


@pytest.mark.parametrize(
    ("code", "subject_sv", "subject_en", "says_sv", "says_en"),
    [
        (
            "archive_held",
            "Importen är klar – arkiveringen hölls inne",
            "The import is complete – archiving was held",
            "Arkiveringen hölls inne",
            "Archiving was held",
        ),
        (
            "archive_not_approved",
            "Importen är klar – arkiveringen godkändes inte",
            "The import is complete – archiving was not approved",
            "Arkiveringen godkändes inte.",
            "Archiving was not approved.",
        ),
    ],
)
def test_completed_without_archiving_says_nobody_was_archived(
    code: str, subject_sv: str, subject_en: str, says_sv: str, says_en: str
) -> None:
    job = make_job(archived_count=0, error_code=code)
    sv = compose(job, held(code), "Solbackens skola", LINK)
    en = compose(job.model_copy(update={"requested_by_language": "en"}), held(code), "X", LINK)

    assert (sv.subject, en.subject) == (subject_sv, subject_en)
    assert says_sv in sv.text
    assert "Ingen patient har arkiverats." in sv.text
    assert "Alla giltiga rader har sparats i journalen." in sv.text
    assert says_en in en.text
    assert "Nobody has been archived." in en.text
    assert "Arkiverade: 0" in sv.text.splitlines()
    assert "Nya: 12" in sv.text.splitlines()


def test_cancelled_after_the_import_says_the_rows_were_applied_and_nothing_archived() -> None:
    job = make_job(state=JobState.CANCELLED, archived_count=0, error_code="cancelled_after_import")
    event = finished(
        Outcome.CANCELLED,
        imported=COUNTS,
        error_code="cancelled_after_import",
        error_message="The import was applied; archiving did not happen.",
    )

    sv = compose(job, event, "Solbackens skola", LINK)
    en = compose(job.model_copy(update={"requested_by_language": "en"}), event, "X", LINK)

    assert sv.subject == "Importen avbröts – raderna hade redan sparats"
    assert en.subject == "The import was cancelled – the rows had already been saved"
    assert "ingen patient har arkiverats" in sv.text
    assert "nobody has been archived" in en.text
    assert "Ingenting importerades" not in sv.text
    for line in ["Nya: 12", "Uppdaterade: 30", "Återaktiverade: 2", "Arkiverade: 0"]:
        assert line in sv.text.splitlines(), line
    # The operators' English sentence never replaces the Swedish wording.
    assert "archiving did not happen" not in sv.text


def test_cancelled_before_the_import_says_nothing_was_applied() -> None:
    job = make_job(state=JobState.CANCELLED, import_counts=None, archived_count=None)
    mail = compose(job, finished(Outcome.CANCELLED), "Solbackens skola", LINK)

    assert mail.subject == "Importen avbröts"
    assert "Importen avbröts innan något sparades." in mail.text
    assert "Ingenting importerades; journalen är oförändrad." in mail.text
    assert "Nya:" not in mail.text
    assert "Rader med fel: 5" in mail.text.splitlines()


def test_a_superseded_job_says_a_newer_file_replaced_it() -> None:
    job = make_job(state=JobState.CANCELLED, import_counts=None, error_code="superseded")
    event = finished(Outcome.CANCELLED, error_code="superseded", error_message="import 7 …")

    mail = compose(job.model_copy(update={"requested_by_language": "en"}), event, "X", LINK)

    assert mail.subject == "The import was cancelled"
    assert "A newer file was uploaded for the same unit and school year" in mail.text
    assert "before anything was saved" in mail.text
    assert "import 7" not in mail.text


def test_a_failure_after_the_import_says_the_rows_remain() -> None:
    job = make_job(state=JobState.FAILED, error_code="report_missing")
    event = finished(Outcome.FAILED, imported=COUNTS, error_code="report_missing")

    mail = compose(job.model_copy(update={"requested_by_language": "en"}), event, "X", LINK)

    assert mail.subject == "The import failed – the rows had already been saved"
    assert "they remain there" in mail.text
    assert "Reason: The import's check report is missing." in mail.text.splitlines()
    assert "Created: 12" in mail.text.splitlines()


def test_the_reason_is_chosen_by_code_never_copied_from_the_error_message() -> None:
    # A CSV parser's complaint can quote the row it choked on.
    number = IDENTITIES[0]
    leaky = f"CSV parse error: Expected 5 columns, got 6: {number};Märta;Öberg;7;7A;x"
    job = make_job(state=JobState.FAILED, import_counts=None, error_message=leaky)
    for code, expected in [
        ("file_unreadable", "Orsak: Filen kunde inte läsas som CSV."),
        ("some_new_code", "Orsak: Ett fel stoppade importen (felkod some_new_code)."),
        ("x\nBcc: <b>", "Orsak: Ett fel stoppade importen (felkod xccb)."),
    ]:
        event = finished(Outcome.FAILED, error_code=code, error_message=leaky)
        mail = compose(job, event, "Solbackens skola", LINK)
        assert any(line.startswith(expected) for line in mail.text.splitlines()), code
        for text in (mail.text, mail.html):
            assert number not in text
            assert "Märta" not in text
            assert "CSV parse error" not in text


def test_the_commonest_reasons_are_listed_with_their_row_counts() -> None:
    reasons = [
        Reason("identity_bad_check_digit", "Personnumret har fel kontrollsiffra.", 3),
        Reason("given_name_missing", "Förnamn saknas <b>.", 1),
    ]
    mail = compose(make_job(), completed(), "Solbackens skola", LINK, reasons)

    lines = mail.text.splitlines()
    at = lines.index("Vanligaste orsakerna:")
    assert lines[at + 1 : at + 3] == [
        "- Personnumret har fel kontrollsiffra. (3 rader)",
        "- Förnamn saknas <b>. (1 rad)",
    ]
    assert "<li>Förnamn saknas &lt;b&gt;. (1 rad)</li>" in mail.html


def test_no_reasons_heading_when_no_row_was_skipped() -> None:
    mail = compose(make_job(), completed(), "Solbackens skola", LINK, [])

    assert "Vanligaste orsakerna" not in mail.text
    assert "<h2>" not in mail.html


def test_control_and_bidi_characters_in_names_are_removed_and_long_names_cut() -> None:
    job = make_job(file_name="elever\u202egpj.csv\x00\x1b[31m")
    mail = compose(job, completed(), "S" * 500, LINK)

    lines = mail.text.splitlines()
    assert "Fil: elever gpj.csv [31m" in lines
    unit = next(line for line in lines if line.startswith("Enhet: "))
    assert len(unit) == len("Enhet: ") + 200
    assert unit.endswith("…")


@pytest.mark.parametrize(
    "address", ["x,y@example.org", "a b@example.org", "a\r\nBcc: x@y", "a@b@c", "<a>@b"]
)
def test_an_address_that_is_not_one_mailbox_is_refused_before_sending(address: str) -> None:
    mail = compose(make_job(requested_by_email=address), completed(), "S", LINK)

    with pytest.raises(InvalidRecipient):
        to_message(mail, SENDER)


def test_every_attempt_at_one_outcome_carries_the_same_message_id() -> None:
    first = message_id(JOB_ID, Outcome.COMPLETED, "rosterflow <no-reply@mail.example.org>")

    assert first == message_id(JOB_ID, Outcome.COMPLETED, "no-reply@mail.example.org")
    assert first == f"<{JOB_ID.hex}.completed@mail.example.org>"
    assert first != message_id(JOB_ID, Outcome.CANCELLED, "no-reply@mail.example.org")


def test_the_stored_message_uses_crlf_and_seven_bit_headers() -> None:
    job = make_job(file_name="förteckning åk 7–9.csv")
    raw = wire_bytes(to_message(compose(job, completed(), "Skolan i Åre", LINK), SENDER))

    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_wire_bytes_are_the_stdlib_default_policys(
    language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The notifier's policy only makes each header's class once: every byte
    # (headers folded and encoded, parts, transfer encodings) stays the same.
    mail = compose(
        make_job(requested_by_language=language, file_name="Åk 7–9, höst.csv"),
        completed(),
        "Solbackens skola – Ölands södra " * 8,
        LINK,
        [Reason("identity_bad_check_digit", "Kontrollsiffran stämmer inte " * 6, 3)],
    )
    date = datetime(2026, 8, 17, 9, 0, tzinfo=UTC)

    def wire() -> bytes:
        random.seed(7)  # the same MIME boundary both times
        return wire_bytes(
            to_message_with_id(mail, SENDER, message_id(JOB_ID, Outcome.COMPLETED, SENDER), date)
        )

    ours = wire()
    monkeypatch.setattr(logic, "_POLICY", email.policy.default)
    monkeypatch.setattr(logic, "_SMTP", email.policy.SMTP)
    assert ours == wire()
    assert b"\r\nSubject: " in ours


@pytest.mark.parametrize(
    "code",
    [
        "stage_attempts_exhausted",
        "event_too_large",
        "file_outside_organisation",
        "file_missing",
        "file_size_mismatch",
        "file_checksum_mismatch",
        "event_id_reused",
        "invalid_event",
    ],
)
def test_every_code_the_pipeline_ends_a_job_with_has_a_reason_in_both_languages(
    code: str,
) -> None:
    swedish = logic.failure_reason(code, Language.SV)
    english = logic.failure_reason(code, Language.EN)
    assert code not in swedish
    assert code not in english  # a text of its own, not the unknown-code fallback
    assert swedish != english
