"""Readiness: can this process reach the broker, the database and object storage?"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import asyncpg

from rosterflow.storage import ObjectStore


class Broker(Protocol):
    async def ping(self) -> None: ...


async def _database(pool: asyncpg.Pool | None) -> None:
    if pool is None:
        raise RuntimeError("not started")
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


async def _storage(store: ObjectStore) -> None:
    await asyncio.to_thread(store.check)


async def readiness(
    broker: Broker, pool: asyncpg.Pool | None, store: ObjectStore, limit_s: float
) -> dict[str, str]:
    """Each dependency: "ok" or what failed (an error type, never a message with data)."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "broker": broker.ping,
        "database": lambda: _database(pool),
        "storage": lambda: _storage(store),
    }

    async def run(check: Callable[[], Awaitable[None]]) -> str:
        try:
            await asyncio.wait_for(check(), limit_s)
        except TimeoutError:
            return f"timed out after {limit_s:g} s"
        except Exception as exc:
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    results = await asyncio.gather(*(run(c) for c in checks.values()))
    return dict(zip(checks, results, strict=True))
