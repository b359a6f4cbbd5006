"""The front door's event intake: the platform's requests."""

from __future__ import annotations

from rosterflow import events
from rosterflow.jobs import JobState
from rosterflow.runtime import Runtime
from services.ingest import commands

_UNCHECKED = frozenset({JobState.RECEIVED, JobState.VALIDATING})


def register(rt: Runtime) -> None:
    async def on_upload(event: events.UploadRequested) -> bool:
        await commands.accept_upload(rt, event)
        return True

    async def on_confirm(event: events.ConfirmationRequested) -> bool:
        job = await commands.confirm(rt, event.job_id, event.requested_by)
        # Not yet checked: the same request, delivered again once it is, must still count.
        return job is not None and job.state not in _UNCHECKED

    async def on_cancel(event: events.CancelRequested) -> bool:
        await commands.cancel(rt, event.job_id, event.requested_by, broadcast=False)
        return True

    async def on_archive_decision(event: events.ArchiveDecisionRequested) -> bool:
        await commands.decide_archive(rt, event.job_id, event.approve, event.requested_by)
        return True

    rt.handle(events.UploadRequested, on_upload)
    rt.handle(events.ArchiveDecisionRequested, on_archive_decision)
    rt.handle(events.ConfirmationRequested, on_confirm)
    rt.handle(events.CancelRequested, on_cancel)
