"""The job's record has one writer: ``rosterflow.jobs``.

Every change of a job (its state, its typed fields, its audit) goes through
the state machine's functions, so none of them can skip the allowed
transitions, the audit row or the metrics.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITES = re.compile(
    r"\b(UPDATE|INSERT\s+INTO|DELETE\s+FROM|TRUNCATE)\s+(jobs|job_transitions)\b", re.IGNORECASE
)


def writers() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted([*ROOT.glob("libs/**/*.py"), *ROOT.glob("services/**/*.py")]):
        hits = [" ".join(h) for h in WRITES.findall(path.read_text(encoding="utf-8"))]
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    return found


def test_only_the_state_machine_writes_the_jobs_table_and_its_audit() -> None:
    found = writers()
    assert set(found) == {"libs/rosterflow/jobs.py"}, found


def test_the_search_finds_a_writer() -> None:
    # The pattern must see the statements jobs.py holds, or the test above proves nothing.
    assert len(writers()["libs/rosterflow/jobs.py"]) >= 5
