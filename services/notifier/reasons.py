"""The commonest reasons rows were skipped, from the job's check report.

Only the columns ``code``, ``severity`` and the message in the requester's
language are read: the report's ``value`` and ``identity_number`` columns hold
what the file said, and they never leave object storage.
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.compute as pc

from rosterflow.events import Language
from rosterflow.jobs import Job
from rosterflow.storage import ObjectStore, StorageError
from services.notifier.logic import Reason

log = logging.getLogger(__name__)

TOP = 3


def commonest(issues: pa.Table, lang: Language, top: int = TOP) -> list[Reason]:
    """The ``top`` error codes by the number of rows they stopped, commonest first."""
    errors = issues.filter(pc.equal(issues.column("severity"), "error"))
    if errors.num_rows == 0:
        return []
    counted = pc.value_counts(errors.column("code")).to_pylist()
    ranked = sorted(
        ((str(c["values"]), int(c["counts"])) for c in counted if c["values"] is not None),
        # Ties by code, so the same report always gives the same email.
        key=lambda pair: (-pair[1], pair[0]),
    )[:top]
    message_column = errors.column(f"message_{lang.value}")
    reasons = []
    for code, rows in ranked:
        messages = pc.drop_null(message_column.filter(pc.equal(errors.column("code"), code)))
        reasons.append(Reason(code, str(messages[0]) if len(messages) else code, rows))
    return reasons


def report_to_read(job: Job) -> str | None:
    """The key of the report of invalid rows, when it may hold a reason.

    None when the job has no report (rejected, failed early) or no row had an
    error (warnings are not reasons): then there is nothing to read.
    """
    key = (job.check_result or {}).get("report", {}).get("invalid_rows_key")
    if not key or (job.check_result or {}).get("counts", {}).get("invalid") == 0:
        return None
    return str(key)


def read_reasons(store: ObjectStore, job: Job, lang: Language) -> list[Reason]:
    """The job's commonest reasons; none when there is no report to read (``report_to_read``).

    A report that is gone (retention) or unreadable costs the email its
    reasons, not its delivery. Storage that cannot be reached (OSError) is
    left to the consume loop to retry.
    """
    key = report_to_read(job)
    if key is None:
        return []
    try:
        issues = store.parquet_file(key).read(columns=["code", "severity", f"message_{lang.value}"])
    except (StorageError, pa.ArrowException, KeyError) as exc:
        log.warning(
            "check report unreadable; email without reasons",
            extra={"job_id": str(job.id), "error": type(exc).__name__},
        )
        return []
    return commonest(issues, lang)
