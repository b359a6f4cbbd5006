"""Dead letters: the letter kept for a message no handler can use, and their limit."""

from __future__ import annotations

import base64
import json
from collections import deque
from typing import Any
from uuid import UUID

from faststream.kafka.annotations import KafkaMessage

from rosterflow import events
from rosterflow.failures import bounded
from rosterflow.kafka.broker import topic_name
from rosterflow.settings import KafkaSettings
from rosterflow.topics import TopicSpec

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


def letter_for(
    settings: KafkaSettings, service: str, spec: TopicSpec, message: KafkaMessage, reason: str
) -> events.DeadLetter:
    """The dead letter for ``message``: why, where it was, and its original bytes."""
    raw: bytes = message.body
    record: Any = message.raw_message
    kept = raw[:MAX_ORIGINAL_BYTES]
    return events.DeadLetter(
        job_id=_job_id_of(raw),
        source_topic=topic_name(settings, spec),
        partition=record.partition,
        offset=record.offset,
        consumer=service,
        reason=bounded(reason),
        original_key_b64=base64.b64encode(record.key).decode() if record.key else None,
        original_value_b64=base64.b64encode(kept).decode(),
        original_value_truncated=len(kept) < len(raw),
    )


def _job_id_of(raw: bytes) -> UUID | None:
    try:
        value = json.loads(raw)
        return UUID(str(value["job_id"])) if isinstance(value, dict) else None
    except (ValueError, KeyError, TypeError):
        return None
