"""Notifier: email the administrator when a job ends, once per outcome."""

from __future__ import annotations

from uuid import UUID

import aiosmtplib

from rosterflow import events
from rosterflow.kafka import TransientError
from rosterflow.runtime import Runtime
from services.notifier import logic, store

SERVICE = "notifier"


def register(rt: Runtime) -> None:
    smtp = rt.settings.smtp

    async def on_finished(event: events.JobFinished) -> None:
        job = await rt.job(event.job_id)
        async with rt.pool.acquire() as conn:
            # If the process dies after the SMTP server accepted the message but
            # before it is marked sent, the redelivery sends it again: a rare
            # duplicate is better than an administrator never told.
            if not await store.claim(conn, job.id, event.outcome.value, job.requested_by_email):
                return
            unit = await store.unit_name(conn, job.unit_id)
        link = f"{rt.settings.platform.base_url.rstrip('/')}/imports/{job.id}"
        message = logic.to_message(logic.compose(job, event, unit, link), smtp.sender)
        try:
            await aiosmtplib.send(
                message,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password.get_secret_value() if smtp.password else None,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                timeout=smtp.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await _refused(rt, job.id, event.outcome.value, str(exc))
            return
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                await _refused(rt, job.id, event.outcome.value, f"{exc.code} {exc.message}")
                return
            raise TransientError(f"SMTP {exc.code}") from exc
        async with rt.pool.acquire() as conn:
            await store.mark_sent(conn, job.id, event.outcome.value, message["Message-ID"])

    rt.consumer.handle(events.JobFinished, on_finished)


async def _refused(rt: Runtime, job_id: UUID, outcome: str, reason: str) -> None:
    """A permanent refusal (bad address): recorded for operators, not retried."""
    async with rt.pool.acquire() as conn:
        await store.mark_refused(conn, job_id, outcome, reason[:500])
