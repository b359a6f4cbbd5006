"""Topic creation: every registered topic, with its partitions and cleanup policy."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from rosterflow.kafka.broker import topic_name
from rosterflow.settings import KafkaSettings
from rosterflow.topics import ALL_TOPICS


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
