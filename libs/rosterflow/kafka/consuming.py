"""The consume loop: a service's handlers registered under the consume contract.

The consume contract every service relies on:

* offsets are committed only after the handler returned, i.e. after its
  database transaction committed (with the event that follows, in the
  outbox) and the relay published that event; they are committed in the
  background, at most once a second per consumer (``OffsetCommitter``), so
  a crash can redeliver up to a second of handled messages, which the
  ledger (``processed_events``) skips; a delivery that changed nothing (the
  job was not yet in the state its handler expects) is not recorded there;
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
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from aiokafka import AIOKafkaConsumer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from rosterflow import events, failures
from rosterflow.failures import PermanentError
from rosterflow.kafka.broker import group_name, the_message, topic_name
from rosterflow.kafka.dead_letters import ConsumerHalted, DeadLetterLimit, letter_for
from rosterflow.kafka.ledger import Ledger
from rosterflow.kafka.offsets import OffsetCommitter
from rosterflow.kafka.publishing import Publisher
from rosterflow.kafka.retry import retry_transient
from rosterflow.logs import log_context
from rosterflow.ops import metrics
from rosterflow.settings import KafkaSettings
from rosterflow.topics import PLATFORM, TopicSpec, topic_for

log = logging.getLogger(__name__)

E = TypeVar("E", bound=events.Message)

FailJob = Callable[[UUID, str, str], Awaitable[None]]

INVALID_EVENT = "invalid_event"
EVENT_ID_REUSED = "event_id_reused"
UNPROCESSABLE_EVENT = "unprocessable_event"


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

    def handle(self, event_type: type[E], handler: Callable[[E], Awaitable[bool | None]]) -> None:
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
        handler: Callable[[E], Awaitable[bool | None]],
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
        handler: Callable[[E], Awaitable[bool | None]],
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
        handler: Callable[[E], Awaitable[bool | None]],
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
            delivery = await self._ledger.begin(consumer, event_id, job_id)
            handled = delivery.handled
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
            else:
                attempt[0] = delivery.attempt

        async def run() -> None:
            # Recorded only after the handler's effects and publications, so a
            # crash in between means the handler runs again (and finds its
            # job already advanced). A delivery that did nothing (False: the
            # job was not yet where the handler expects it) is not recorded:
            # the same event delivered later, when it can act, still runs.
            try:
                did = await handler(event)
            except PermanentError as exc:
                if job_id is None:
                    raise
                await self._fail_job(job_id, exc.code, exc.message)
                did = True
            if did is False:
                log.info("event changed nothing; not recorded", extra={"topic": spec.name})
                return
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
        letter = letter_for(self._settings, self._service, spec, message, reason)
        job_id = letter.job_id

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
