from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any, cast
from uuid import UUID, uuid5

import pytest
from pydantic import ValidationError

from rosterflow.db import Connection
from rosterflow.events import ImportCounts, ImportRequest, Outcome, school_year_of
from rosterflow.jobs import (
    ACTIVE,
    NEXT,
    OUTCOME_STATE,
    TERMINAL,
    IllegalTransition,
    Job,
    JobState,
    transition,
)

S = JobState
HAPPY_PATH = [
    S.RECEIVED,
    S.VALIDATING,
    S.AWAITING_CONFIRMATION,
    S.IMPORTING,
    S.ARCHIVING,
    S.COMPLETED,
]
JOB_ID = UUID("6f1c1e0e-3b7a-4c57-9d2e-2f0c8a1d5b10")
RECEIVED = datetime(2026, 8, 17, 7, 30, tzinfo=UTC)


def allowed(source: JobState, target: JobState) -> bool:
    return target in NEXT.get(source, frozenset())


def make_job(state: JobState, **overrides: Any) -> Job:
    fields: dict[str, Any] = {
        "id": JOB_ID,
        "organisation_id": UUID(int=1),
        "unit_id": UUID(int=2),
        "school_year": "2026/2027",
        "format": "rosterflow_csv",
        "archive_missing": False,
        "treat_as_upper_secondary": False,
        "file_key": "orgs/1/uploads/job/source",
        "file_name": "elever.csv",
        "file_sha256": "0" * 64,
        "file_size_bytes": 100,
        "requested_by_id": "u-1",
        "requested_by_name": "Karin Admin",
        "requested_by_email": "karin.admin@example.org",
        "requested_by_language": "sv",
        "state": state,
        "cancel_requested_at": None,
        "received_at": RECEIVED,
        "validation_started_at": None,
        "validation_finished_at": None,
        "confirmed_at": None,
        "import_started_at": None,
        "import_finished_at": None,
        "archived_at": None,
        "finished_at": RECEIVED + timedelta(minutes=1),
        "check_result": None,
        "import_counts": None,
        "archived_count": None,
        "error_code": None,
        "error_message": None,
    }
    fields.update(overrides)
    return Job.model_validate(fields)


# --- the state machine --------------------------------------------------------


def test_the_happy_path_is_allowed_step_by_step() -> None:
    for source, target in pairwise(HAPPY_PATH):
        assert allowed(source, target), f"{source} → {target}"


def test_no_step_of_the_happy_path_can_be_skipped() -> None:
    # Above all, nothing reaches importing without the administrator's confirmation.
    for i, source in enumerate(HAPPY_PATH):
        for target in HAPPY_PATH[i + 2 :]:
            assert not allowed(source, target), f"{source} → {target}"


def test_no_state_goes_backwards_on_the_happy_path() -> None:
    for i, source in enumerate(HAPPY_PATH):
        for target in HAPPY_PATH[: i + 1]:
            assert not allowed(source, target), f"{source} → {target}"


@pytest.mark.parametrize("state", sorted(ACTIVE))
def test_every_active_state_can_be_cancelled_or_fail(state: JobState) -> None:
    assert allowed(state, S.CANCELLED)
    assert allowed(state, S.FAILED)


def test_only_a_received_job_can_be_rejected() -> None:
    assert [s for s in JobState if allowed(s, S.REJECTED)] == [S.RECEIVED]


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_go_nowhere(state: JobState) -> None:
    assert [s for s in JobState if allowed(state, s)] == []


def test_active_and_terminal_states_cover_every_state_once() -> None:
    assert frozenset(JobState) == ACTIVE | TERMINAL
    assert not ACTIVE & TERMINAL
    assert set(OUTCOME_STATE.values()) == TERMINAL


async def test_transition_refuses_a_move_the_state_machine_forbids() -> None:
    # Refused before the database is touched, so no connection is needed.
    nowhere = cast(Connection, None)

    with pytest.raises(IllegalTransition):
        await transition(nowhere, JOB_ID, S.VALIDATING, S.IMPORTING, "skip confirmation")
    with pytest.raises(IllegalTransition):
        await transition(nowhere, JOB_ID, S.COMPLETED, S.CANCELLED, "cancel after the end")


# --- Job.finished_event ----------------------------------------------------------


@pytest.mark.parametrize(("outcome", "state"), list(OUTCOME_STATE.items()))
def test_finished_event_carries_the_outcome_of_the_state(outcome: Outcome, state: JobState) -> None:
    assert make_job(state).finished_event().outcome is outcome


def test_finished_event_has_the_same_id_every_time_for_the_same_job() -> None:
    job = make_job(S.COMPLETED)

    first, again = job.finished_event(), job.finished_event()

    assert first.event_id == again.event_id == uuid5(JOB_ID, "job_finished")
    assert first.job_id == JOB_ID
    other = make_job(S.COMPLETED, id=UUID(int=99)).finished_event()
    assert other.event_id != first.event_id


def test_finished_event_carries_counts_and_error() -> None:
    counts = ImportCounts(created=3, updated=2, unchanged=1, reactivated=0)
    completed = make_job(S.COMPLETED, import_counts=counts.model_dump(), archived_count=4)
    failed = make_job(S.FAILED, error_code="file_empty", error_message="The file is empty.")

    assert completed.finished_event().imported == counts
    assert completed.finished_event().archived == 4
    assert failed.finished_event().imported is None
    assert failed.finished_event().archived == 0
    assert failed.finished_event().error_code == "file_empty"
    assert failed.finished_event().error_message == "The file is empty."


# --- school years ------------------------------------------------------------------

STOCKHOLM_SUMMER = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("moment", "school_year"),
    [
        (datetime(2026, 6, 30, 23, 59, 59, tzinfo=STOCKHOLM_SUMMER), "2025/2026"),
        (datetime(2026, 7, 1, 0, 0, tzinfo=STOCKHOLM_SUMMER), "2026/2027"),
        (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "2025/2026"),
        (datetime(2026, 12, 31, 12, 0, tzinfo=UTC), "2026/2027"),
    ],
)
def test_school_year_starts_on_1_july(moment: datetime, school_year: str) -> None:
    assert school_year_of(moment) == school_year


def request(school_year: str) -> ImportRequest:
    return ImportRequest(organisation_id=UUID(int=1), unit_id=UUID(int=2), school_year=school_year)


def test_import_request_accepts_consecutive_years() -> None:
    assert request("2026/2027").school_year == "2026/2027"


@pytest.mark.parametrize(
    "school_year", ["2026/2028", "2027/2026", "2026/2026", "2026-2027", "26/27"]
)
def test_import_request_rejects_a_school_year_that_is_not_two_consecutive_years(
    school_year: str,
) -> None:
    with pytest.raises(ValidationError, match="school_year"):
        request(school_year)
