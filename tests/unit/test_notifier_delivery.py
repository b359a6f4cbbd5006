"""The notifier's decisions that need no server: SMTP answers, backoff, report reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import patch
from uuid import UUID

import aiosmtplib
import pyarrow as pa
import pytest

from rosterflow.events import Language
from rosterflow.jobs import Job
from rosterflow.settings import StorageSettings
from rosterflow.storage import ObjectStore
from services.notifier.delivery import retry_delay
from services.notifier.logic import Reason
from services.notifier.reasons import commonest, read_reasons
from services.notifier.smtp import Deferred, Refused, classify
from tests.support.jobs import make_job


def refused_recipient(code: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(code, "answer", "karin@example.org")]
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (refused_recipient(550), Refused),
        (refused_recipient(553), Refused),
        (refused_recipient(451), Deferred),
        (refused_recipient(452), Deferred),
        (aiosmtplib.SMTPDataError(554, "message rejected"), Refused),
        (aiosmtplib.SMTPDataError(451, "try later"), Deferred),
        # The notifier's own configuration: fixed by an operator, then sent.
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), Deferred),
        (aiosmtplib.SMTPSenderRefused(550, "sender denied", "no-reply@x"), Deferred),
        (aiosmtplib.SMTPHeloError(554, "go away"), Deferred),
        (aiosmtplib.SMTPConnectError("refused"), Deferred),
        (aiosmtplib.SMTPServerDisconnected("gone"), Deferred),
        (aiosmtplib.SMTPNotSupported("no STARTTLS"), Deferred),
        (ConnectionRefusedError(111, "Connection refused"), Deferred),
        (TimeoutError(), Deferred),
    ],
)
def test_only_a_refusal_of_this_email_is_permanent(error: Exception, kind: type) -> None:
    assert type(classify(error)) is kind


def test_the_relays_answer_is_kept_as_the_reason() -> None:
    assert classify(refused_recipient(550)).reason == "550 answer"
    assert classify(aiosmtplib.SMTPDataError(451, "x" * 900)).reason == "451 " + "x" * 496


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    delays = [retry_delay(n, 30, 1800) for n in range(1, 10)]

    assert delays == [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]
    assert retry_delay(10_000, 30, 1800) == 1800


def report(rows: list[tuple[str, str]], **extra: list[Any]) -> pa.Table:
    """A check report's issue rows: (code, severity), messages made from the code."""
    return pa.table(
        {
            "code": [c for c, _ in rows],
            "severity": [s for _, s in rows],
            "message_sv": [f"sv {c}" for c, _ in rows],
            "message_en": [f"en {c}" for c, _ in rows],
            **extra,
        }
    )


def test_the_three_commonest_error_codes_come_first_ties_by_code() -> None:
    rows = [
        *[("identity_bad_check_digit", "error")] * 4,
        *[("given_name_missing", "error")] * 2,
        *[("family_name_missing", "error")] * 2,
        ("identity_format", "error"),
        # Warnings did not stop a row, however many there are.
        *[("cell_formula_like", "warning")] * 9,
    ]

    assert commonest(report(rows), Language.EN) == [
        Reason("identity_bad_check_digit", "en identity_bad_check_digit", 4),
        Reason("family_name_missing", "en family_name_missing", 2),
        Reason("given_name_missing", "en given_name_missing", 2),
    ]
    assert commonest(report(rows), Language.SV)[0].message == "sv identity_bad_check_digit"


def test_no_reasons_without_errors() -> None:
    assert commonest(report([("duplicate_exact", "warning")]), Language.SV) == []
    assert commonest(report([]), Language.SV) == []


def stored_job(check_result: dict[str, Any] | None) -> Job:
    return make_job(organisation_id=UUID(int=1), check_result=check_result)


def test_reasons_are_read_without_the_reports_cell_values(tmp_path: Path) -> None:
    store = ObjectStore.from_settings(StorageSettings(uri=tmp_path.as_uri()))
    key = "orgs/1/reports/j/invalid.parquet"
    # No value or identity_number column at all: reading them would fail.
    store.write_table(key, report([("given_name_missing", "error")] * 2))
    job = stored_job({"report": {"invalid_rows_key": key, "valid_rows_key": "v"}})

    assert read_reasons(store, job, Language.SV) == [
        Reason("given_name_missing", "sv given_name_missing", 2)
    ]


def test_a_missing_report_costs_the_reasons_not_the_email(tmp_path: Path) -> None:
    store = ObjectStore.from_settings(StorageSettings(uri=tmp_path.as_uri()))
    gone = stored_job({"report": {"invalid_rows_key": "orgs/1/reports/j/gone.parquet"}})

    assert read_reasons(store, gone, Language.SV) == []
    assert read_reasons(store, stored_job(None), Language.SV) == []


def test_a_check_without_invalid_rows_reads_no_report(tmp_path: Path) -> None:
    store = ObjectStore.from_settings(StorageSettings(uri=tmp_path.as_uri()))
    # The key names no object: reading it would log the report as unreadable.
    job = stored_job(
        {
            "counts": {"rows": 2, "valid": 2, "invalid": 0, "empty": 0, "warnings": 1},
            "report": {"invalid_rows_key": "orgs/1/reports/j/none.parquet"},
        }
    )

    with patch.object(ObjectStore, "parquet_file", side_effect=AssertionError("read")):
        assert read_reasons(store, job, Language.SV) == []
