"""The commonest reasons rows were skipped, as the validator counted them during the check.

The validator keeps every error code it found with the job (``check_result``'s
``reasons``: code, rows, the message in both languages, commonest first); the
email lists the first few. The check report is never read for them: a report
of millions of issues would cost the notifier its memory on every delivery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rosterflow.events import Language
from rosterflow.jobs import Job
from services.notifier.logic import Reason

TOP = 3


def commonest(counted: Sequence[Mapping[str, Any]], lang: Language, top: int = TOP) -> list[Reason]:
    """The ``top`` error codes by the number of rows they stopped, commonest first."""
    ranked = sorted(
        (r for r in counted if int(r.get("rows", 0)) > 0),
        # Ties by code, so the same check always gives the same email.
        key=lambda r: (-int(r["rows"]), str(r["code"])),
    )[:top]
    return [
        Reason(str(r["code"]), str(r.get(f"message_{lang.value}") or r["code"]), int(r["rows"]))
        for r in ranked
    ]


def job_reasons(job: Job, lang: Language) -> list[Reason]:
    """The job's commonest reasons; none when it was not checked or no row had an error."""
    if job.check_result is None:
        return []
    return commonest([r.model_dump() for r in job.check_result.reasons], lang)
