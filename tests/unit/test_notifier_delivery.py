"""The notifier's decisions that need no server: SMTP answers, backoff, report reasons."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch
from uuid import UUID

import aiosmtplib
import pytest

from rosterflow.events import Language
from rosterflow.jobs import Job
from rosterflow.storage import ObjectStore
from services.notifier.delivery import retry_delay
from services.notifier.logic import Reason
from services.notifier.reasons import commonest, job_reasons
from services.notifier.smtp import Deferred, Refused, classify
from tests.support.jobs import check_result, make_job


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


def counted(*codes: tuple[str, int]) -> list[dict[str, Any]]:
    """Reasons as the validator keeps them with the job, messages made from the code."""
    return [
        {"code": c, "rows": n, "message_sv": f"sv {c}", "message_en": f"en {c}"} for c, n in codes
    ]


def test_the_three_commonest_error_codes_come_first_ties_by_code() -> None:
    reasons = counted(
        ("identity_format", 1),
        ("given_name_missing", 2),
        ("identity_bad_check_digit", 4),
        ("family_name_missing", 2),
    )

    assert commonest(reasons, Language.EN) == [
        Reason("identity_bad_check_digit", "en identity_bad_check_digit", 4),
        Reason("family_name_missing", "en family_name_missing", 2),
        Reason("given_name_missing", "en given_name_missing", 2),
    ]
    assert commonest(reasons, Language.SV)[0].message == "sv identity_bad_check_digit"


def test_no_reasons_without_errors() -> None:
    assert commonest([], Language.SV) == []


def stored_job(checked: dict[str, Any] | None) -> Job:
    return make_job(organisation_id=UUID(int=1), check_result=checked)


def test_reasons_come_from_the_job_and_no_report_is_read() -> None:
    job = stored_job(check_result(reasons=counted(("given_name_missing", 2))))

    with patch.object(ObjectStore, "parquet_file", side_effect=AssertionError("read")):
        assert job_reasons(job, Language.SV) == [
            Reason("given_name_missing", "sv given_name_missing", 2)
        ]


def test_a_job_that_was_never_checked_has_no_reasons() -> None:
    assert job_reasons(stored_job(None), Language.SV) == []
    assert job_reasons(stored_job(check_result(reasons=[])), Language.SV) == []
