"""The front door's event intake: the platform's requests."""

from __future__ import annotations

from rosterflow import events
from rosterflow.runtime import Runtime
from services.ingest import commands


def register(rt: Runtime) -> None:
    async def on_upload(event: events.UploadRequested) -> None:
        await commands.accept_upload(rt, event)

    async def on_confirm(event: events.ConfirmationRequested) -> None:
        await commands.confirm(rt, event.job_id, event.requested_by)

    async def on_cancel(event: events.CancelRequested) -> None:
        await commands.cancel(rt, event.job_id, event.requested_by, broadcast=False)

    async def on_archive_decision(event: events.ArchiveDecisionRequested) -> None:
        await commands.decide_archive(rt, event.job_id, event.approve, event.requested_by)

    rt.consumer.handle(events.UploadRequested, on_upload)
    rt.consumer.handle(events.ArchiveDecisionRequested, on_archive_decision)
    rt.consumer.handle(events.ConfirmationRequested, on_confirm)
    rt.consumer.handle(events.CancelRequested, on_cancel)
