"""Retrying what failed for a reason that passes: a server unreachable, a lock lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    KafkaError,
    asyncpg.PostgresConnectionError,
    # Class 57: the server shut the session down (restart, failover, terminate).
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)


async def retry_transient(
    step: Callable[[], Awaitable[None]], what: str, *, max_delay: float = 30.0
) -> None:
    delay = 0.2
    while True:
        try:
            await step()
            return
        except TRANSIENT as exc:
            log.warning(
                "transient failure, retrying",
                extra={"step": what, "error": type(exc).__name__, "retry_in_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
