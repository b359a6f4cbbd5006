"""What the consume loop asks of the database: which events were handled, and attempts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class Handled:
    job_id: UUID | None


class Ledger(Protocol):
    """Which events a consumer has fully handled (processed_events), and its attempts."""

    async def seen(self, consumer: str, event_id: UUID) -> Handled | None:
        """The record of a handled event (with the job it was for), None when not handled."""
        ...

    async def refuse(self, job_id: UUID, code: str, message: str, *, requested: bool) -> None:
        """End the job an unusable message names: a known active job fails; a job never
        registered gets JobRejected and JobFinished (``requested``: only when the message
        was the platform's request, so that no pipeline event starts a loop)."""
        ...

    async def record(self, consumer: str, event_id: UUID, job_id: UUID | None) -> None: ...

    async def attempt(self, consumer: str, event_id: UUID, job_id: UUID) -> int:
        """Count one more attempt, committed before the work: this one's number (0: no job)."""
        ...
