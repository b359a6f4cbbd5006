"""A finished job as the notifier reads it, for the notifier's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from rosterflow.events import ImportCounts
from rosterflow.jobs import Job, JobState
from rosterflow.testing import school_age_numbers

JOB_ID = UUID("6f1c1e0e-3b7a-4c57-9d2e-2f0c8a1d5b10")
RECEIVED = datetime(2026, 8, 17, 7, 30, tzinfo=UTC)
LINK = f"https://journal.example.org/imports/{JOB_ID}"
SENDER = "rosterflow@example.org"
COUNTS = ImportCounts(created=12, updated=30, unchanged=410, reactivated=2)
# Skatteverket test numbers that a careless composer could leak.
IDENTITIES = school_age_numbers()[:3]


def check_result(**overrides: Any) -> dict[str, Any]:
    """A job's check result as stored, with ``overrides`` in place of its parts."""
    fields: dict[str, Any] = {
        "counts": {"rows": 460, "valid": 454, "invalid": 5, "empty": 1, "warnings": 3},
        "plan": {"create": 12, "update": 30, "unchanged": 410, "reactivate": 2, "archive": 0},
        "detected": {
            "encoding": "utf-8",
            "delimiter": ";",
            "format": "rosterflow_csv",
            "columns": {"identity": "Personnummer"},
        },
        "report": {
            "valid_rows_key": f"orgs/{UUID(int=1)}/reports/{JOB_ID}/valid.parquet",
            "invalid_rows_key": f"orgs/{UUID(int=1)}/reports/{JOB_ID}/invalid.parquet",
        },
        "reasons": [],
        "staging": {"size": "normal", "rows": 454},
    }
    fields.update(overrides)
    return fields


def make_job(**overrides: Any) -> Job:
    fields: dict[str, Any] = {
        "id": JOB_ID,
        "organisation_id": UUID(int=1),
        "unit_id": UUID(int=2),
        "school_year": "2026/2027",
        "format": "rosterflow_csv",
        "archive_missing": True,
        "treat_as_upper_secondary": False,
        "file_key": f"orgs/{UUID(int=1)}/uploads/{JOB_ID}/source",
        "file_name": "elever-ht2026.csv",
        "file_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "file_size_bytes": 48213,
        "requested_by_id": "u-1042",
        "requested_by_name": "Karin Admin",
        "requested_by_email": "karin.admin@example.org",
        "requested_by_language": "sv",
        "state": JobState.COMPLETED,
        "cancel_requested_at": None,
        "received_at": RECEIVED,
        "validation_started_at": None,
        "validation_finished_at": None,
        "confirmed_at": None,
        "import_started_at": None,
        "import_finished_at": None,
        "archived_at": None,
        "finished_at": RECEIVED + timedelta(minutes=2, seconds=5),
        "check_result": check_result(),
        "import_counts": COUNTS.model_dump(),
        "archived_count": 7,
        "error_code": None,
        "error_message": None,
    }
    fields.update(overrides)
    return Job.model_validate(fields)
