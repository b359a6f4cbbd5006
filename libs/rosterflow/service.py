"""Running a Kafka-only service: the FastStream app around a Runtime."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import uvloop
from faststream import FastStream

from rosterflow.logs import configure_logging
from rosterflow.ops.http import OpsServer
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings


class Background(Protocol):
    """Work a service runs beside its handlers, e.g. the notifier's retry loop."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def stream_app(
    settings: Settings,
    service: str,
    register: Callable[[Runtime], None],
    *,
    cancellable: bool,
    background: Callable[[Runtime], Background] | None = None,
) -> FastStream:
    """A Kafka-only service: its handlers and, for a stage that runs jobs, the cancel watch."""
    rt = Runtime(settings, service)
    register(rt)
    if cancellable:
        rt.cancellations.subscribe(rt.broker, settings.kafka)
    # on_startup runs before the broker connects, so the pool and the topics
    # exist before the first message arrives.
    # The ops endpoints answer from the start (liveness during migrations) to the end.
    ops = OpsServer(rt)
    app = FastStream(
        rt.broker,
        on_startup=[ops.start, rt.start],
        after_shutdown=[rt.stop, ops.stop],
        # Its start and stop lines go through the JSON log like every other line.
        logger=logging.getLogger(f"rosterflow.{service}"),
    )
    # The last handled offsets, committed while the consumers are still there.
    app.on_shutdown(rt.consumer.commits.stop)
    if background is not None:
        work = background(rt)
        # Started once the pool is open; stopped (on SIGTERM too) before the
        # broker and then the pool close, so it can still record what it did.
        app.after_startup(work.start)
        app.on_shutdown(work.stop)
    return app


def run(create_app: Callable[[Settings], FastStream], service: str) -> None:
    configure_logging(service)
    # uvloop: the loop and the socket I/O in C (libuv). A burst of small jobs is
    # CPU-bound, and most of a service's time there is the loop and the sockets.
    uvloop.run(create_app(Settings()).run())
