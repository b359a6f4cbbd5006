"""What the consume loop asks of the database: which events were handled, and attempts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class Handled:
    job_id: UUID | None


@dataclass(frozen=True)
class Delivery:
    """What the ledger knows of an event as it arrives."""

    handled: Handled | None
    """The record of the event handled before, with the job it was for."""
    attempt: int
    """This delivery's attempt, counted and committed: 0 when handled before or no job."""


class Ledger(Protocol):
    """Which events a consumer has fully handled (processed_events), and its attempts."""

    async def begin(self, consumer: str, event_id: UUID, job_id: UUID | None) -> Delivery:
        """Whether the event was handled before; if not, and it names a known job, count
        one more attempt, committed before the work (one round trip for both)."""
        ...

    async def refuse(self, job_id: UUID, code: str, message: str, *, requested: bool) -> None:
        """End the job an unusable message names: a known active job fails; a job never
        registered gets JobRejected and JobFinished (``requested``: only when the message
        was the platform's request, so that no pipeline event starts a loop)."""
        ...

    async def record(self, consumer: str, event_id: UUID, job_id: UUID | None) -> None: ...
