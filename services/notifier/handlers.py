"""Notifier: email the administrator when a job ends, once per job outcome.

Delivery semantics, and why:

* **One email per job outcome.** The email is rendered once and recorded in
  ``notifications`` (primary key job id + outcome) together with a lease
  before anything is sent. A redelivered JobFinished, or another instance
  hearing it, finds the row and sends nothing.
* **Never blocking other jobs' emails.** The handler makes one attempt. If
  the relay is down or answers 4xx, the row becomes 'retrying' with a backoff
  (``retry_initial_seconds`` doubling up to ``retry_max_seconds``) and the
  handler returns, so its offset is committed and the next job's email goes
  out at once. The row is the durable to-do: the background RetryLoop of any
  instance sends it when it is due (``SELECT … FOR UPDATE SKIP LOCKED`` plus
  a committed lease, so two instances never send the same row at once), and
  marks it 'abandoned' if it still fails ``retry_give_up_seconds`` after the
  job ended.
* **Permanent refusals** (5xx to the recipient or to the message, or an
  address that cannot be written) are recorded as 'refused' with the relay's
  answer and never retried; the job's HTTP view shows the notification's
  state, attempts and last error to operators.
* **The window we accept: at least once.** If the relay accepted the message
  (250 after DATA) and the process died before 'sent' was committed, the
  lease runs out and another attempt sends the email again. SMTP offers no
  idempotency key and no two-phase commit, so exactly once across that
  boundary is impossible; of the two ways to be wrong, an administrator
  never told how an import ended is worse than one told twice. The window is
  the milliseconds between the relay's 250 and our UPDATE. A duplicate is
  byte-for-byte the original: the message, its Message-ID (derived from job
  id and outcome) and its Date are stored before the first attempt, so mail
  clients that deduplicate by Message-ID show it once.
"""

from __future__ import annotations

import logging

from rosterflow import events
from rosterflow.runtime import Runtime
from services.notifier import logic, reasons, smtp, store
from services.notifier.delivery import deliver

log = logging.getLogger(__name__)

SERVICE = "notifier"


def register(rt: Runtime, relay: smtp.Relay | None = None) -> None:
    """The JobFinished handler; ``relay`` is shared with the retry loop in the service."""
    settings = rt.settings
    relay = relay if relay is not None else smtp.Relay(settings.smtp)

    async def on_finished(event: events.JobFinished) -> None:
        job = await rt.job(event.job_id)
        outcome = event.outcome.value
        async with rt.pool.acquire() as conn:
            unit = await store.to_compose(conn, job.id, outcome, job.unit_id, job.organisation_id)
        if unit is None:
            return  # recorded before: sent, refused, or owed to the retry loop
        lang = logic.language_of(job)
        top = reasons.job_reasons(job, lang)
        link = f"{settings.platform.base_url.rstrip('/')}/imports/{job.id}"
        email = logic.compose(job, event, unit, link, top)
        msgid = logic.message_id(job.id, event.outcome, settings.smtp.sender)
        try:
            message = logic.wire_bytes(logic.to_message(email, settings.smtp.sender, msgid))
        except logic.InvalidRecipient as exc:
            async with rt.pool.acquire() as conn:
                await store.record_refused(conn, job.id, outcome, email.recipient, str(exc))
            log.warning("email refused: unusable address", extra={"job_id": str(job.id)})
            return
        async with rt.pool.acquire() as conn:
            pending = await store.record(
                conn,
                job.id,
                outcome,
                email.recipient,
                msgid,
                message,
                settings.smtp.send_lease_seconds,
            )
        if pending is not None:
            await deliver(rt, relay, pending)

    rt.consumer.handle(events.JobFinished, on_finished)
