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
  with capped exponential backoff, never dead-lettered;
* every delivery of an event of a job is counted (``job_attempts``) before
  the handler starts: a process that crashed, aborted, ran out of memory or
  was stopped on it leaves the count behind, and the delivery after
  ``max_attempts`` ends the job *failed* (``stage_attempts_exhausted``)
  instead of running it again, so the partition moves on;
* an event too large for the broker is a permanent error (``event_too_large``);
* dead-lettering has a limit (``DeadLetterLimit``): when most recent messages
  fail, the service stops consuming and says so instead of failing every
  job in flight.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.trace import TracerProvider
from prometheus_client import REGISTRY
from pydantic import ValidationError

from rosterflow import events, failures
from rosterflow.logs import log_context
from rosterflow.ops import metrics
from rosterflow.settings import KafkaSettings
from rosterflow.topics import ALL_TOPICS, DEAD_LETTERS, PLATFORM, TopicSpec, topic_for

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
        try:
            await self._broker.publish(
                event.model_dump_json().encode(),
                topic=topic_name(self._settings, spec),
                key=str(job_id).encode() if job_id else None,
                headers={"content-type": "application/json", "event-kind": spec.event.__name__},
            )
        except MessageSizeTooLargeError as exc:
            # A KafkaError, but no retry makes the event smaller.
            raise PermanentError(
                "event_too_large",
                f"The job's {spec.event.__name__} event is larger than the broker accepts.",
            ) from exc


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

INVALID_EVENT = "invalid_event"
EVENT_ID_REUSED = "event_id_reused"
UNPROCESSABLE_EVENT = "unprocessable_event"


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


# A dead letter keeps at most this much of the original message: base64 makes
# it a third larger, and the letter must still fit the broker's 1 MiB.
MAX_ORIGINAL_BYTES = 512 * 1024


class ConsumerHalted(Exception):
    """The dead-letter limit tripped: the message is kept, the service consumes no more."""


class DeadLetterLimit:
    """Whether most of the last messages a service handled were dead-lettered.

    One bad message is the message's fault; most messages failing is the
    service's (a bad deployment, a schema change, a broken dependency), and
    dead-lettering on would fail every job in flight. The service then stops
    consuming and says so; a restart after the fix consumes from where it
    stopped, the message that tripped the limit included.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._outcomes: deque[bool] = deque(maxlen=settings.dead_letter_window)
        self._min_failures = settings.dead_letter_min_failures
        self._ratio = settings.dead_letter_ratio
        self.halted: str | None = None

    def handled(self) -> None:
        self._outcomes.append(False)

    def would_trip(self) -> bool:
        """Whether one more failure reaches the limit (then it halts, remembering why)."""
        outcomes = [*self._outcomes, True][-(self._outcomes.maxlen or 1) :]
        failures = sum(outcomes)
        if failures >= self._min_failures and failures >= self._ratio * len(outcomes):
            self.halted = (
                f"halted: {failures} of the last {len(outcomes)} messages could not be processed"
            )
            return True
        self._outcomes.append(True)
        return False


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
        self.limit = DeadLetterLimit(settings)
        # Exported at 0 from the start, so alerts on them have a series to read.
        metrics.CONSUMER_HALTED.labels(service).set(0)
        metrics.STAGE_ATTEMPTS_EXHAUSTED.labels(service)
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
        if self.limit.halted is not None:
            await self._hold(message)
            return
        try:
            with log_context(stage=self._service, topic=spec.name):
                await self._consume_logged(spec, event_type, handler, message)
        except ConsumerHalted:
            log.critical(
                "most recent messages were dead-lettered; this service stops consuming",
                extra={"topic": spec.name, "why": self.limit.halted},
            )
            metrics.CONSUMER_HALTED.labels(self._service).set(1)
            await self._hold(message)
            return
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

    async def _hold(self, message: KafkaMessage) -> None:
        """Keep this message for after a restart, and fetch nothing more."""
        with contextlib.suppress(Exception):  # a stopped consumer starts from the commit anyway
            await message.nack()
        consumer = getattr(message, "consumer", None)
        if isinstance(consumer, AIOKafkaConsumer):
            consumer.pause(*consumer.assignment())

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
            # The platform hears of it (JobRejected or JobFinished) whenever
            # the job id can be read; the operators get the dead letter.
            await self._dead_letter(
                spec,
                message,
                f"not a valid {spec.event.__name__}: {problems}",
                code=INVALID_EVENT,
                job_message=f"The {spec.event.__name__} event for this import is not valid: "
                f"{problems}.",
            )
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
        event_id: UUID = event.event_id
        # -1: handled before; 0: not counted (no job); n: this delivery's attempt.
        attempt = [0]

        async def begin() -> None:
            # A recorded event is skipped outright; any other delivery is
            # counted, committed, before the handler can crash the process.
            handled = await self._ledger.seen(consumer, event_id)
            if handled is not None and job_id is not None and handled.job_id not in (None, job_id):
                # Another job's event id: skipping it would drop this job's
                # request in silence.
                attempt[0] = -1
                log.warning("event id reused for another job; refused", extra={"topic": spec.name})
                await self._ledger.refuse(
                    job_id,
                    EVENT_ID_REUSED,
                    f"The event id {event_id} was used before by a request for another "
                    "import; every request needs an id of its own.",
                    requested=PLATFORM in spec.producers,
                )
            elif handled is not None:
                attempt[0] = -1
            elif job_id is not None:
                attempt[0] = await self._ledger.attempt(consumer, event_id, job_id)

        async def run() -> None:
            # Recorded only after the handler's effects and publications, so a
            # crash in between means the handler runs again (and finds its
            # job already advanced).
            try:
                await handler(event)
            except PermanentError as exc:
                if job_id is None:
                    raise
                await self._fail_job(job_id, exc.code, exc.message)
            await self._ledger.record(consumer, event_id, job_id)

        async def exhausted() -> None:
            assert job_id is not None
            await self._fail_job(job_id, STAGE_ATTEMPTS_EXHAUSTED, exhausted_message(self._service))
            await self._ledger.record(consumer, event_id, job_id)

        try:
            await retry_transient(begin, f"{self._service}:{spec.name}:attempt")
            if attempt[0] < 0:
                return
            if attempt[0] > self._settings.max_attempts:
                log.error(
                    "attempts exhausted; the job ends failed",
                    extra={"topic": spec.name, "attempts": attempt[0] - 1},
                )
                metrics.STAGE_ATTEMPTS_EXHAUSTED.labels(self._service).inc()
                await retry_transient(exhausted, f"{self._service}:{spec.name}:exhausted")
                self.limit.handled()
                return
            await retry_transient(run, f"{self._service}:{spec.name}")
            self.limit.handled()
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            # A bug or a state the code cannot handle: retrying would block the
            # partition forever. Keep the message for a replay after the fix.
            # The exception's own text stays out (failures.describe).
            log.exception("handler failed; dead-lettering", extra={"topic": spec.name})
            failure = failures.describe(exc)
            await self._dead_letter(
                spec,
                message,
                f"handler error: {failure.code}: {failure.message}",
                code=UNPROCESSABLE_EVENT,
                job_message=f"{failure.message} The operators have the message in the "
                "dead-letter topic.",
            )

    async def _dead_letter(
        self, spec: TopicSpec, message: KafkaMessage, reason: str, *, code: str, job_message: str
    ) -> None:
        if self.limit.would_trip():
            raise ConsumerHalted
        raw: bytes = message.body
        record: Any = message.raw_message
        job_id = _job_id_of(raw)
        kept = raw[:MAX_ORIGINAL_BYTES]
        letter = events.DeadLetter(
            job_id=job_id,
            source_topic=topic_name(self._settings, spec),
            partition=record.partition,
            offset=record.offset,
            consumer=self._service,
            reason=failures.bounded(reason),
            original_key_b64=base64.b64encode(record.key).decode() if record.key else None,
            original_value_b64=base64.b64encode(kept).decode(),
            original_value_truncated=len(kept) < len(raw),
        )

        async def publish_and_fail() -> None:
            await self._publisher.publish(letter)
            if job_id is not None:
                await self._ledger.refuse(
                    job_id,
                    code,
                    failures.bounded(job_message),
                    requested=PLATFORM in spec.producers,
                )

        log.error("dead letter", extra={"topic": spec.name, "job_id": str(job_id)})
        metrics.DEAD_LETTERS.labels(spec.name, self._service).inc()
        await retry_transient(publish_and_fail, f"{self._service}:dead-letter")


STAGE_ATTEMPTS_EXHAUSTED = "stage_attempts_exhausted"

# What the stage a consumer runs is called in an administrator's words.
_STAGE_WORDS = {
    "validator": "The check of the file",
    "importer": "The import",
    "archiver": "The archiving",
    "notifier": "The email",
    "ingest": "The intake",
}


def exhausted_message(service: str) -> str:
    stage = _STAGE_WORDS.get(service, "A step of the import")
    return (
        f"{stage} stopped before it finished, every time it was tried (the service crashed, "
        "ran out of memory or took too long), so the import was stopped to let other imports "
        "go on. The file may be damaged or unusually built: check it, or save it again as CSV, "
        "and upload it again; if it happens again, contact support."
    )


__all__ = [
    "DEAD_LETTERS",
    "Consumer",
    "PermanentError",
    "Publisher",
    "create_broker",
    "ensure_topics",
    "retry_transient",
]
