"""The outbox's relay with no broker and no database: what it publishes is kept here."""

from __future__ import annotations

from typing import cast
from uuid import UUID

import asyncpg

from rosterflow import events, outbox
from rosterflow.db import Connection
from rosterflow.kafka.publishing import Publisher
from rosterflow.settings import KafkaSettings


class RecordingPublisher:
    """A publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.published: list[events.Event] = []

    async def publish(self, event: events.Event) -> None:
        self.published.append(event)


def _no_pool() -> asyncpg.Pool:
    raise AssertionError("the relay asked the database")


def memory_relay(kafka: KafkaSettings) -> tuple[outbox.Relay, RecordingPublisher]:
    """A relay that may publish only what this process remembers (asking the database
    fails the test), and what it published."""
    recorder = RecordingPublisher()
    return outbox.Relay(_no_pool, cast(Publisher, recorder), kafka), recorder


async def lose_events(conn: Connection, kafka: KafkaSettings, job_id: UUID) -> None:
    """The job's events this process wrote, published and lost on the way: gone from
    memory and from the outbox."""
    relay, _ = memory_relay(kafka)
    await relay.flush(job_id)
    await conn.execute("DELETE FROM outbox WHERE job_id = $1", job_id)
