"""Running a Kafka-only service: the FastStream app around a Runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from faststream import FastStream

from rosterflow.logs import configure_logging
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings


def stream_app(
    settings: Settings, service: str, register: Callable[[Runtime], None], *, cancellable: bool
) -> FastStream:
    """A Kafka-only service: its handlers and, for a stage that runs jobs, the cancel watch."""
    rt = Runtime(settings, service)
    register(rt)
    if cancellable:
        rt.cancellations.subscribe(rt.broker, settings.kafka)
    # on_startup runs before the broker connects, so the pool and the topics
    # exist before the first message arrives.
    return FastStream(rt.broker, on_startup=[rt.start], after_shutdown=[rt.stop])


def run(create_app: Callable[[Settings], FastStream], service: str) -> None:
    configure_logging(service)
    asyncio.run(create_app(Settings()).run())
