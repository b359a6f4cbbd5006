"""Publishing an event to its topic, keyed by its job."""

from __future__ import annotations

from aiokafka.errors import MessageSizeTooLargeError
from faststream.kafka import KafkaBroker

from rosterflow import events
from rosterflow.failures import PermanentError
from rosterflow.kafka.broker import topic_name
from rosterflow.settings import KafkaSettings
from rosterflow.topics import topic_for


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
