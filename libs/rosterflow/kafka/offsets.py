"""Committing the offsets of handled messages, batched in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka.annotations import KafkaMessage

log = logging.getLogger(__name__)

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
