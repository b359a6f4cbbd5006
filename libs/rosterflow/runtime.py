"""The one place a service's dependencies are built (cosmicpython's bootstrap).

Nothing here does I/O at import time: ``Runtime.start`` opens the pool,
applies migrations and creates topics when the service starts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import TracerProvider

from rosterflow import db, events, failures, holds, jobs
from rosterflow.cancellation import CancellationWatch
from rosterflow.events import Outcome
from rosterflow.failures import PermanentError
from rosterflow.jobs import Job, JobState
from rosterflow.journal import job_tables
from rosterflow.kafka.admin import ensure_topics
from rosterflow.kafka.broker import create_broker
from rosterflow.kafka.consuming import Consumer
from rosterflow.kafka.ledger import Delivery, Handled
from rosterflow.kafka.publishing import Publisher
from rosterflow.kafka.retry import TRANSIENT
from rosterflow.ops import tracing
from rosterflow.ops.metrics import KafkaProbe
from rosterflow.outbox import Relay
from rosterflow.settings import Settings
from rosterflow.storage import ObjectStore

log = logging.getLogger(__name__)

E = TypeVar("E", bound=events.Event)

# A job's staging table left behind is swept later; it never fails ending the job.
_NOT_DROPPED: tuple[type[BaseException], ...] = (*TRANSIENT, asyncpg.PostgresError)


class Runtime:
    def __init__(
        self, settings: Settings, service: str, *, tracer_provider: TracerProvider | None = None
    ) -> None:
        self.settings = settings
        self.service = service
        self.tracer_provider = tracer_provider or tracing.tracer_provider(settings.tracing, service)
        self.broker: KafkaBroker = create_broker(settings.kafka, service, self.tracer_provider)
        self.publisher = Publisher(self.broker, settings.kafka)
        self.consumer = Consumer(
            self.broker, settings.kafka, service, self.publisher, self.fail_job, self
        )
        self.relay = Relay(lambda: self.pool, self.publisher, settings.kafka)
        self.cancellations = CancellationWatch()
        self.store = ObjectStore.from_settings(settings.storage)
        self._pool: asyncpg.Pool | None = None
        self.kafka_probe = KafkaProbe(
            settings.kafka.bootstrap_servers, settings.ops.check_timeout_seconds
        )

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the runtime has not been started")
        return self._pool

    @property
    def pool_or_none(self) -> asyncpg.Pool | None:
        """The pool once started (the ops endpoints answer before that too)."""
        return self._pool

    async def start(self) -> None:
        """Open the pool, migrate and create topics; call before the broker starts."""
        self._pool = await db.create_pool(self.settings.db)
        async with self._pool.acquire() as conn:
            await db.migrate(conn)
        await ensure_topics(self.settings.kafka)
        await self.relay.start()

    def handle(
        self, event_type: type[E], handler: Callable[[E], Awaitable[bool]], *, hold: bool = False
    ) -> None:
        """Consume an event: the handler loads the job, does its step and transitions; the
        events its transitions wrote are published right after.

        The handler returns whether the delivery did anything: False when the
        job was not yet where the handler expects it, so the consumer does not
        record the event as processed and a later delivery of it still runs.
        ``hold``: a stage's handler, which holds its job while it works
        (``rosterflow.holds``); the hold is let go after the publish, so the
        next stage hears of the job one round trip sooner.
        """

        async def handled(event: E) -> bool:
            async with holds.holding(self.pool, event.job_id) if hold else contextlib.nullcontext():
                did = await handler(event)
                await self.relay.flush(event.job_id)
            return did

        self.consumer.handle(event_type, handled)

    async def stop(self) -> None:
        if self._pool is not None:
            await self.relay.stop()
        await self.kafka_probe.close()
        if isinstance(self.tracer_provider, SdkTracerProvider):
            self.tracer_provider.force_flush()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def end_job(
        self,
        job_id: UUID,
        outcome: Outcome,
        cause: str,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        **columns: Any,
    ) -> bool:
        """End an active job and announce it; False (and silence) if it had ended already.

        ``columns``: more of the job's columns the ending sets (a failed check's
        ``column_mapping`` keeps what the administrator needs to map the file's columns).
        """
        async with self.pool.acquire() as conn:
            ended = await jobs.finish(
                conn,
                job_id,
                outcome,
                cause,
                error_code=error_code,
                error_message=error_message,
                **columns,
            )
            if ended is not None and ended.has_job_table:
                # The rows its plan staged for the importer are no one's now.
                try:
                    await job_tables.drop_job_table(conn, job_id)
                except _NOT_DROPPED as exc:  # the next large plan's sweep drops it
                    log.warning(
                        "job's staging table not dropped",
                        extra={"job_id": str(job_id), "error": type(exc).__name__},
                    )
        if ended is None:
            return False
        await self.relay.flush(job_id)
        return True

    async def job(self, job_id: UUID) -> Job:
        """The job an event names; an event for an unknown job can never be processed."""
        async with self.pool.acquire() as conn:
            job = await jobs.get(conn, job_id)
        if job is None:
            raise PermanentError("unknown_job", f"no job {job_id} is registered")
        return job

    async def settle(self, job_id: UUID, stage: JobState, cause: str) -> Job:
        """The job after a stage stopped without advancing it.

        Still in the stage with a cancel requested (the cancel won the race for
        the job row): it ends *cancelled* now.
        """
        job = await self.job(job_id)
        if job.state is stage and job.cancel_requested_at is not None:
            await self.end_job(job_id, Outcome.CANCELLED, cause)
            job = await self.job(job_id)
        return job

    async def begin(self, consumer: str, event_id: UUID, job_id: UUID | None) -> Delivery:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(db.BEGIN_DELIVERY, consumer, event_id, job_id)
        assert row is not None
        handled = Handled(row["handled_job"]) if row["handled"] else None
        return Delivery(handled, int(row["attempts"] or 0))

    async def refuse(self, job_id: UUID, code: str, message: str, *, requested: bool) -> None:
        async with self.pool.acquire() as conn:
            known = await jobs.get(conn, job_id)
        if known is not None:
            await self.fail_job(job_id, code, message)
            return
        if not requested:
            return
        # Fresh event ids (not the job's deterministic JobFinished id): a
        # later, valid request for the same job id must still be heard.
        await self.publisher.publish(events.JobRejected(job_id=job_id, code=code, message=message))
        await self.publisher.publish(
            events.JobFinished(
                job_id=job_id,
                outcome=Outcome.REJECTED,
                error_code=code,
                error_message=message,
            )
        )

    async def record(self, consumer: str, event_id: UUID, job_id: UUID | None) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(db.RECORD_EVENT, consumer, event_id, job_id)

    async def fail_job(self, job_id: UUID, code: str, message: str) -> None:
        await self.end_job(
            job_id,
            Outcome.FAILED,
            f"{self.service}:{code}",
            error_code=code,
            error_message=failures.bounded(message),
        )


async def record_progress(
    rt: Runtime, job: Job, stage: JobState, done: int, total: int | None
) -> None:
    """Best effort: progress is for people watching; a lost update is never an error."""
    try:
        async with rt.pool.acquire() as conn:
            await jobs.record_progress(conn, job.id, stage, done, total)
    except TRANSIENT as exc:
        log.warning(
            "progress not recorded", extra={"job_id": str(job.id), "error": type(exc).__name__}
        )
