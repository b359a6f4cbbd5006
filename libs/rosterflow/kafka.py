"""Kafka wiring: the broker, topic creation, publishing and the consume loop.

The consume contract every service relies on:

* offsets are committed only after the handler returned, i.e. after its
  database transaction committed and its next event was published (the
  handler awaits the broker's acknowledgement); they are committed in the
  background, at most once a second per consumer (``OffsetCommitter``), so
  a crash can redeliver up to a second of handled messages, which the
  ledger (``processed_events``) skips;
* a message that does not parse or violates its schema goes to the dead-letter
  topic with the reason and its original bytes, and its job (if the id can be
  read) ends *failed*;
* a transient failure (database, storage or broker unreachable) is retried
  with capped exponential backoff, never dead-lettered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.trace import TracerProvider
from prometheus_client import REGISTRY
from pydantic import ValidationError

from rosterflow import events
from rosterflow.logs import log_context
from rosterflow.ops import metrics
from rosterflow.settings import KafkaSettings
from rosterflow.topics import ALL_TOPICS, DEAD_LETTERS, TopicSpec, topic_for

log = logging.getLogger(__name__)

E = TypeVar("E", bound=events.Message)


class PermanentError(Exception):
    """The job cannot go on, whatever the retries; it ends *failed* with this code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TransientError(Exception):
    """A failure worth retrying that the libraries do not already signal as one."""


TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    OSError,
    TimeoutError,
    KafkaError,
    asyncpg.PostgresConnectionError,
    # Class 57: the server shut the session down (restart, failover, terminate).
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)


def topic_name(settings: KafkaSettings, spec: TopicSpec) -> str:
    return settings.prefix + spec.name


def group_name(settings: KafkaSettings, service: str, spec: TopicSpec) -> str:
    # One group per service and topic: a subscriber's consumer joins and
    # rebalances alone instead of disturbing the service's other subscribers.
    return f"{settings.prefix}rosterflow.{service}.{spec.event.kind}"


def create_broker(
    settings: KafkaSettings, service: str, tracer_provider: TracerProvider | None = None
) -> KafkaBroker:
    # Outermost first: the consume span encloses the metrics and the handler,
    # so what the handler publishes carries the span's trace context.
    middlewares: list[Any] = []
    if tracer_provider is not None:
        middlewares.append(
            KafkaTelemetryMiddleware(
                tracer_provider=tracer_provider, include_messages_counters=False
            )
        )
    middlewares.append(KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service))
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=f"{settings.client_id}-{service}",
        acks="all",
        enable_idempotence=True,
        logger=logging.getLogger(f"rosterflow.{service}.kafka"),
        # FastStream's own "Received" and "Processed" lines for every message:
        # debug only. The consume loop logs "event handled" with the job, the
        # event and the duration, and any failure at warning or above.
        log_level=logging.DEBUG,
        # No dependency injection per message: every subscriber takes the
        # message itself (see ``the_message``) and parses its body with the
        # event's model. FastDepends resolved that one argument in a worker
        # thread, a thread hand-off for every message.
        apply_types=False,
        middlewares=middlewares,
    )


async def the_message(message: KafkaMessage) -> KafkaMessage:
    """The subscribers' decoder: the message as it came, for the handler to parse.

    FastStream's own decoder would parse the JSON body into a dict that no
    handler uses (each validates the raw bytes with its pydantic model).
    """
    return message


async def ensure_topics(settings: KafkaSettings) -> None:
    """Create every registered topic that does not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=topic_name(settings, spec),
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for spec in ALL_TOPICS
            if topic_name(settings, spec) not in existing
        ]
        if wanted:
            # Another service may have created them a moment ago.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


class Publisher:
    def __init__(self, broker: KafkaBroker, settings: KafkaSettings) -> None:
        self._broker = broker
        self._settings = settings

    async def publish(self, event: events.Message) -> None:
        """Publish and wait until the broker has it (acks=all)."""
        spec = topic_for(type(event))
        job_id = getattr(event, "job_id", None)
        await self._broker.publish(
            event.model_dump_json().encode(),
            topic=topic_name(self._settings, spec),
            key=str(job_id).encode() if job_id else None,
            headers={"content-type": "application/json", "event-kind": spec.event.__name__},
        )


def _job_id_of(raw: bytes) -> UUID | None:
    try:
        value = json.loads(raw)
        return UUID(str(value["job_id"])) if isinstance(value, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


async def retry_transient(
    step: Callable[[], Awaitable[None]], what: str, *, max_delay: float = 30.0
) -> None:
    delay = 0.2
    while True:
        try:
            await step()
            return
        except TRANSIENT as exc:
            log.warning(
                "transient failure, retrying",
                extra={"step": what, "error": type(exc).__name__, "retry_in_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


FailJob = Callable[[UUID, str, str], Awaitable[None]]


class Ledger(Protocol):
    """Which events a consumer has fully handled (the processed_events table)."""

    async def seen(self, consumer: str, event_id: UUID) -> bool: ...

    async def record(self, consumer: str, event_id: UUID, job_id: UUID | None) -> None: ...


# Seconds between a handled message and the commit of its offset, at most. A
# commit per message was one OffsetCommit request per handler call (seven per
# job); batched, a burst commits once a second per consumer.
COMMIT_INTERVAL_SECONDS = 1.0


class OffsetCommitter:
    """Commits the offsets of handled messages in the background, batched.

    Only offsets of messages whose handler returned are ever recorded, and a
    consumer handles one message at a time, so the committed offset never
    passes a message that was not handled. What a crash or a rebalance loses
    is only the commit: those messages are delivered again and skipped by the
    ledger, as a redelivery always was.
    """

    def __init__(self, interval: float = COMMIT_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._pending: dict[AIOKafkaConsumer, dict[TopicPartition, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def handled(self, message: KafkaMessage) -> None:
        record: Any = message.raw_message
        consumer = getattr(message, "consumer", None)
        if not isinstance(consumer, AIOKafkaConsumer):
            return  # not from a grouped consumer (e.g. a test's fake): nothing to commit
        offsets = self._pending.setdefault(consumer, {})
        offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if self._task is None:
            self._task = asyncio.create_task(self._commit_soon())

    async def _commit_soon(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(self._interval)
                await self.flush()
        finally:
            self._task = None

    async def flush(self) -> None:
        """Commit what is pending now (also on shutdown, before the consumers stop)."""
        pending, self._pending = self._pending, {}
        for consumer, offsets in pending.items():
            assigned = consumer.assignment()
            mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
            if not mine:
                continue
            try:
                await consumer.commit(mine)
            except Exception as exc:  # a rebalance or a stopped consumer: redelivered, skipped
                log.warning(
                    "offsets not committed; the messages will be delivered again and skipped",
                    extra={"error": type(exc).__name__},
                )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class Consumer:
    """Registers a service's handlers with the broker under the consume contract."""

    def __init__(
        self,
        broker: KafkaBroker,
        settings: KafkaSettings,
        service: str,
        publisher: Publisher,
        fail_job: FailJob,
        ledger: Ledger,
    ) -> None:
        self._broker = broker
        self._settings = settings
        self._service = service
        self._publisher = publisher
        self._fail_job = fail_job
        self._ledger = ledger
        self.commits = OffsetCommitter()
        # The consumer groups this service reads, for the lag metric.
        self.subscriptions: list[metrics.Subscription] = []

    def handle(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        spec = topic_for(event_type)

        async def consume(message: KafkaMessage) -> None:
            await self._consume(spec, event_type, handler, message)

        consume.__name__ = f"{self._service}_{spec.event.__name__}"
        # At zero from the start, so the first dead letter shows in increase() and the alert.
        metrics.DEAD_LETTERS.labels(spec.name, self._service)
        self.subscriptions.append(
            metrics.Subscription(
                group_name(self._settings, self._service, spec), topic_name(self._settings, spec)
            )
        )
        self._broker.subscriber(
            topic_name(self._settings, spec),
            group_id=group_name(self._settings, self._service, spec),
            auto_offset_reset="earliest",
            # Committed by self.commits once the handler returned (never on an error).
            ack_policy=AckPolicy.MANUAL,
            max_poll_interval_ms=self._settings.max_poll_interval_ms,
            decoder=the_message,
        )(consume)

    async def _consume(
        self,
        spec: TopicSpec,
        event_type: type[E],
        handler: Callable[[E], Awaitable[None]],
        message: KafkaMessage,
    ) -> None:
        try:
            with log_context(stage=self._service, topic=spec.name):
                await self._consume_logged(spec, event_type, handler, message)
        except Exception:
            # Neither handled nor dead-lettered: back to this message, so that no
            # later commit passes it (what NACK_ON_ERROR did).
            try:
                await message.nack()
            except Exception as exc:  # a stopped consumer: it starts from the commit anyway
                log.warning("could not seek back", extra={"error": type(exc).__name__})
            raise
        # Handled, or dead-lettered: either way the message is done with.
        self.commits.handled(message)

    async def _consume_logged(
        self,
        spec: TopicSpec,
        event_type: type[E],
        handler: Callable[[E], Awaitable[None]],
        message: KafkaMessage,
    ) -> None:
        raw: bytes = message.body
        try:
            event = event_type.model_validate_json(raw)
        except ValidationError as exc:
            # Name the fields, never echo their values: they may be personal data.
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(message)'}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            await self._dead_letter(spec, message, f"not a valid {spec.event.__name__}: {problems}")
            return
        job_id: UUID | None = getattr(event, "job_id", None)
        consumer = group_name(self._settings, self._service, spec)
        started = time.perf_counter()
        with log_context(job_id=str(job_id) if job_id else None, event_id=str(event.event_id)):
            await self._run(spec, handler, message, event, job_id, consumer)
            log.info(
                "event handled",
                extra={"duration_s": round(time.perf_counter() - started, 4)},
            )

    async def _run(
        self,
        spec: TopicSpec,
        handler: Callable[[E], Awaitable[None]],
        message: KafkaMessage,
        event: E,
        job_id: UUID | None,
        consumer: str,
    ) -> None:
        async def run() -> None:
            # Recorded only after the handler's effects and publications, so a
            # crash in between means the handler runs again (and finds its
            # job already advanced); a recorded event is skipped outright.
            event_id: UUID = event.event_id
            if await self._ledger.seen(consumer, event_id):
                return
            try:
                await handler(event)
            except PermanentError as exc:
                if job_id is None:
                    raise
                await self._fail_job(job_id, exc.code, exc.message)
            await self._ledger.record(consumer, event_id, job_id)

        try:
            await retry_transient(run, f"{self._service}:{spec.name}")
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            # A bug or a state the code cannot handle: retrying would block the
            # partition forever. Keep the message for a replay after the fix.
            log.exception("handler failed; dead-lettering", extra={"topic": spec.name})
            await self._dead_letter(
                spec,
                message,
                f"handler error: {type(exc).__name__}: {exc}",
                job_message=f"An internal error ({type(exc).__name__}) stopped the job; "
                "the operators have the message in the dead-letter topic.",
            )

    async def _dead_letter(
        self, spec: TopicSpec, message: KafkaMessage, reason: str, job_message: str | None = None
    ) -> None:
        raw: bytes = message.body
        record: Any = message.raw_message
        job_id = _job_id_of(raw)
        letter = events.DeadLetter(
            job_id=job_id,
            source_topic=topic_name(self._settings, spec),
            partition=record.partition,
            offset=record.offset,
            consumer=self._service,
            reason=reason[:2000],
            original_key_b64=base64.b64encode(record.key).decode() if record.key else None,
            original_value_b64=base64.b64encode(raw).decode(),
        )

        async def publish_and_fail() -> None:
            await self._publisher.publish(letter)
            if job_id is not None:
                await self._fail_job(job_id, "unprocessable_event", job_message or reason[:500])

        log.error("dead letter", extra={"topic": spec.name, "job_id": str(job_id)})
        metrics.DEAD_LETTERS.labels(spec.name, self._service).inc()
        await retry_transient(publish_and_fail, f"{self._service}:dead-letter")


__all__ = [
    "DEAD_LETTERS",
    "Consumer",
    "PermanentError",
    "Publisher",
    "create_broker",
    "ensure_topics",
    "retry_transient",
]
