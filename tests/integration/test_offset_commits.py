"""Offsets are committed batched, in the background, and never past an unhandled message."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream.kafka.annotations import KafkaMessage

from rosterflow.kafka.admin import ensure_topics
from rosterflow.kafka.broker import topic_name
from rosterflow.kafka.offsets import OffsetCommitter
from rosterflow.settings import Settings
from rosterflow.topics import JOB_FINISHED


def _message(consumer: AIOKafkaConsumer, record: object) -> KafkaMessage:
    return cast(KafkaMessage, SimpleNamespace(consumer=consumer, raw_message=record))


async def test_handled_offsets_are_committed_together_and_only_those(settings: Settings) -> None:
    await ensure_topics(settings.kafka)
    topic = topic_name(settings.kafka, JOB_FINISHED)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, f"{n}".encode(), partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=f"{settings.kafka.prefix}offsets",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    committer = OffsetCommitter(interval=60)  # nothing commits unless flushed
    try:
        records = [await consumer.getone() for _ in range(3)]
        tp = TopicPartition(topic, 0)
        committer.handled(_message(consumer, records[0]))
        committer.handled(_message(consumer, records[1]))
        # The third was fetched but not handled: its offset is not committed.
        assert await consumer.committed(tp) is None
        await committer.stop()
        assert await consumer.committed(tp) == records[1].offset + 1
    finally:
        await consumer.stop()
