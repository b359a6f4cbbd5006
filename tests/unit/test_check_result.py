"""The check result kept with a job: typed, with the staging decision as a part of it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from rosterflow import events
from rosterflow.jobs import CheckResult, Job, Staging, StagingPlan
from tests.support.jobs import JOB_ID, check_result, make_job


def test_a_check_result_survives_its_json_round_trip() -> None:
    stored = CheckResult.model_validate(
        check_result(
            staging={"size": "large", "rows": 20_000},
            reasons=[{"code": "identity_invalid", "rows": 3, "message_sv": "s", "message_en": "e"}],
        )
    )
    again = CheckResult.model_validate_json(stored.model_dump_json())
    assert again == stored
    assert again.staging == StagingPlan(size=Staging.LARGE, rows=20_000)
    assert again.reasons[0].rows == 3
    job = make_job(check_result=stored.model_dump(mode="json"))
    assert job.check_result == stored
    assert job.has_job_table


def test_the_published_part_is_the_job_validated_event() -> None:
    stored = CheckResult.model_validate(check_result())
    event = stored.validated(JOB_ID)
    assert isinstance(event, events.JobValidated)
    expected = events.JobValidated.for_job(
        JOB_ID,
        counts=stored.counts,
        plan=stored.plan,
        detected=stored.detected,
        report=stored.report,
    )
    assert event.model_dump(exclude={"occurred_at"}) == expected.model_dump(exclude={"occurred_at"})
    assert "staging" not in event.model_dump()
    assert "reasons" not in event.model_dump()


@pytest.mark.parametrize(
    ("legacy", "staging"),
    [
        ({"staged_rows": 12_000}, StagingPlan(size=Staging.LARGE, rows=12_000)),
        ({}, StagingPlan(size=Staging.NORMAL, rows=454)),
    ],
)
def test_a_result_stored_before_the_decision_was_typed_still_reads(
    legacy: dict[str, Any], staging: StagingPlan
) -> None:
    stored = check_result(**legacy)
    del stored["staging"]
    assert CheckResult.model_validate(stored).staging == staging


def test_an_unknown_part_is_refused() -> None:
    with pytest.raises(ValidationError):
        CheckResult.model_validate(check_result(surprise=1))


def test_a_small_or_normal_plan_keeps_no_table_of_its_own() -> None:
    for size in (Staging.SMALL, Staging.NORMAL):
        job = make_job(check_result=check_result(staging={"size": size, "rows": 3}))
        assert not job.has_job_table
    assert not Job.model_validate({**make_job().model_dump(), "check_result": None}).has_job_table
    assert make_job().organisation_id == UUID(int=1)
