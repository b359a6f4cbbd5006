"""The background loop that sends the emails still owed.

It takes rows whose time has come: 'retrying' ones after their backoff, and
'sending' ones whose lease ran out because the instance holding them died.
Each runs as its own task, at most ``max_concurrent_sends`` at a time, so a
relay that hangs on one recipient does not hold up the others. The Kafka
handler never waits for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from rosterflow.kafka.retry import TRANSIENT
from rosterflow.runtime import Runtime
from services.notifier import smtp, store
from services.notifier.delivery import Result, deliver

log = logging.getLogger(__name__)


class RetryLoop:
    def __init__(self, rt: Runtime, relay: smtp.Relay | None = None) -> None:
        self._rt = rt
        # Shared with the handler in the service (which closes it); else its own.
        self._owns_relay = relay is None
        self._relay = relay if relay is not None else smtp.Relay(rt.settings.smtp)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[Result]] = set()

    async def start(self) -> None:
        """Start taking due emails; the runtime's pool must be open."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="notifier-retries")

    async def stop(self) -> None:
        """Take nothing more; let the sends in flight finish (or give them up), then return.

        A send given up mid-conversation stays 'sending' under its lease and
        is taken over when the lease runs out: at least once, never lost.
        """
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._owns_relay:
            await self._relay.close()

    async def _run(self) -> None:
        settings = self._rt.settings.smtp
        log.info("retry loop started")
        try:
            while not self._stopping.is_set():
                free = settings.max_concurrent_sends - len(self._sending)
                if free <= 0:
                    await self._until_stopping(settings.retry_poll_seconds, self._sending)
                    continue
                taken = await self._take(free)
                for pending in taken:
                    task = asyncio.create_task(deliver(self._rt, self._relay, pending))
                    self._sending.add(task)
                    task.add_done_callback(self._sent)
                if len(taken) < free:
                    # Nothing else is due: look again after a pause.
                    await self._until_stopping(settings.retry_poll_seconds)
        finally:
            await self._finish_in_flight(settings.timeout_seconds)
            log.info("retry loop stopped")

    async def _take(self, limit: int) -> list[store.Pending]:
        settings = self._rt.settings.smtp
        try:
            async with self._rt.pool.acquire() as conn:
                return await store.take_due(conn, limit, settings.send_lease_seconds)
        except TRANSIENT as exc:
            # The database is away: the rows wait there, nothing is lost.
            log.warning("cannot look for due emails", extra={"error": type(exc).__name__})
            return []

    def _sent(self, task: asyncio.Task[Result]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A bug, not an SMTP answer: the row keeps its lease and is tried
            # again when it runs out; the log says why.
            log.error("email delivery crashed", exc_info=task.exception())

    async def _until_stopping(
        self, seconds: float, tasks: set[asyncio.Task[Result]] | None = None
    ) -> None:
        """Wait for the stop, ``seconds``, or (when given) any of the tasks to finish."""
        stop = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait(
                {stop, *(tasks or ())}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stop

    async def _finish_in_flight(self, grace: float) -> None:
        if not self._sending:
            return
        _, unfinished = await asyncio.wait(set(self._sending), timeout=grace)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
