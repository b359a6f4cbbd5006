"""One attempt at one leased email, and what it leaves in ``notifications``."""

from __future__ import annotations

import logging
from typing import Literal

from rosterflow.kafka.retry import retry_transient
from rosterflow.ops import metrics
from rosterflow.runtime import Runtime
from services.notifier import smtp, store
from services.notifier.logic import envelope_sender
from services.notifier.store import Pending

log = logging.getLogger(__name__)

Result = Literal["sent", "refused", "retrying", "abandoned", "taken_over"]


def retry_delay(attempts: int, initial: float, maximum: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: initial, ×2, ×4, … capped."""
    # The exponent is bounded so that a long outage cannot overflow the float.
    return float(min(maximum, initial * 2 ** min(max(attempts - 1, 0), 60)))


async def deliver(rt: Runtime, relay: smtp.Relay, pending: Pending) -> Result:
    """Try to send one email (see ``_deliver``), counted in the email metric by result."""
    result = await _deliver(rt, relay, pending)
    metrics.EMAILS.labels(result).inc()
    return result


async def _deliver(rt: Runtime, relay: smtp.Relay, pending: Pending) -> Result:
    """Send a leased email and record the outcome.

    The records after the relay answered are retried until the database
    takes them: a 'sent' lost here would mean the email goes out again when
    the lease runs out.
    """
    settings = rt.settings.smtp
    context = {"job_id": str(pending.job_id), "outcome": pending.outcome}
    try:
        await relay.send(pending.message, envelope_sender(settings.sender), pending.recipient)
    except smtp.Refused as exc:
        reason = exc.reason

        async def refused() -> None:
            async with rt.pool.acquire() as conn:
                await store.mark_refused(conn, pending, reason)

        await retry_transient(refused, "notifier:record-refused")
        log.warning("email refused for good", extra={**context, "attempt": pending.attempts})
        return "refused"
    except smtp.Deferred as exc:
        reason = exc.reason
        delay = retry_delay(
            pending.attempts, settings.retry_initial_seconds, settings.retry_max_seconds
        )
        state: str | None = None

        async def deferred() -> None:
            nonlocal state
            async with rt.pool.acquire() as conn:
                state = await store.mark_deferred(
                    conn, pending, reason, delay, settings.retry_give_up_seconds
                )

        await retry_transient(deferred, "notifier:record-deferred")
        log.warning(
            "email not sent; will retry" if state == "retrying" else "email not sent",
            extra={**context, "attempt": pending.attempts, "state": state, "retry_in_s": delay},
        )
        if state == "retrying":
            return "retrying"
        return "abandoned" if state == "abandoned" else "taken_over"

    waited: float | None = None

    async def sent() -> None:
        nonlocal waited
        async with rt.pool.acquire() as conn:
            waited = await store.mark_sent(conn, pending)

    await retry_transient(sent, "notifier:record-sent")
    if waited is not None:
        metrics.EMAIL_DELAY.observe(waited)
    log.info("email sent", extra={**context, "attempt": pending.attempts})
    return "sent"
