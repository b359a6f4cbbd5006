"""Prompt cancellation: every instance hears every cancel.

The job's ``cancel_requested_at`` in PostgreSQL is the truth and is checked
under the job row's lock before anything commits. This watch only makes a
running stage stop promptly: each instance reads the compacted cancellation
topic without a consumer group, so whichever instance holds the job hears it.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from rosterflow.events import CancelRequested
from rosterflow.kafka.broker import the_message, topic_name
from rosterflow.settings import KafkaSettings
from rosterflow.topics import CANCELLATIONS

# Jobs run for minutes; a cancel older than the last few thousand can no
# longer concern a running stage, and the database still has it.
_REMEMBERED = 10_000


class JobCancelled(Exception):
    def __init__(self, job_id: UUID) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


class CancellationWatch:
    def __init__(self) -> None:
        self._cancelled: OrderedDict[UUID, None] = OrderedDict()

    def subscribe(self, broker: KafkaBroker, settings: KafkaSettings) -> None:
        broker.subscriber(
            topic_name(settings, CANCELLATIONS),
            group_id=None,
            auto_offset_reset="latest",
            decoder=the_message,
        )(self._on_message)

    async def _on_message(self, message: KafkaMessage) -> None:
        try:
            event = CancelRequested.model_validate_json(message.body)
        except ValidationError:
            return  # the ingest's grouped consumer dead-letters it; here it can only be ignored
        self.mark(event.job_id)

    def mark(self, job_id: UUID) -> None:
        self._cancelled[job_id] = None
        while len(self._cancelled) > _REMEMBERED:
            self._cancelled.popitem(last=False)

    def is_cancelled(self, job_id: UUID) -> bool:
        return job_id in self._cancelled

    def check(self, job_id: UUID) -> None:
        if job_id in self._cancelled:
            raise JobCancelled(job_id)
