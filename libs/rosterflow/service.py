"""Running a Kafka-only service: the FastStream app around a Runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from faststream import FastStream

from rosterflow.logs import configure_logging
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings


def stream_app(rt: Runtime) -> FastStream:
    # on_startup runs before the broker connects, so the pool and the topics
    # exist before the first message arrives.
    return FastStream(rt.broker, on_startup=[rt.start], after_shutdown=[rt.stop])


def run(create_app: Callable[[Settings], FastStream], service: str) -> None:
    configure_logging(service)
    asyncio.run(create_app(Settings()).run())
