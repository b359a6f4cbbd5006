"""The transactional outbox: the events that follow a job's transitions, and their relay.

A transition writes the event that follows it into ``outbox`` in its own
transaction (``rosterflow.jobs``), so the job's new state and the event that
announces it commit together or not at all. The relay publishes them:

* right after the commit, whoever moved the job calls ``Relay.flush(job_id)``.
  A move that committed by itself (one statement, the event foreseen) left
  its events with this process (``written``) and its rows reserved for it
  for ``INLINE_LEASE_SECONDS``: they are published from memory, no query.
  Rows written inside a caller's transaction are claimed from the table
  first (one query), so only what committed goes out. Published rows are
  deleted, in one statement a sweep;
* every ``kafka.outbox_sweep_seconds`` each instance's sweep takes the rows
  nobody published (a crash between the commit and the publish: after the
  reservation runs out; a broker that was down) with ``FOR UPDATE SKIP
  LOCKED`` under a lease, so instances share them.

Should a relay die between the publish and the delete, the row is published
again, with the event's own deterministic id, which every consumer's ledger
skips: at least once, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from rosterflow import events
from rosterflow.db import Connection
from rosterflow.kafka.publishing import Publisher
from rosterflow.kafka.retry import TRANSIENT
from rosterflow.settings import KafkaSettings
from rosterflow.topics import ALL_TOPICS

log = logging.getLogger(__name__)

# Longer than any publish waits for the broker's acknowledgement.
LEASE_SECONDS = 60.0
# How long a row committed by a move stays its own process's to publish:
# the sweep publishes it after that (the process died before it could).
INLINE_LEASE_SECONDS = 10.0
# Rows a sweep takes at once.
SWEEP_ROWS = 200

_KINDS: dict[str, type[events.Event]] = {
    spec.event.kind: spec.event for spec in ALL_TOPICS if issubclass(spec.event, events.Event)
}

ENQUEUE = """
INSERT INTO outbox (event_id, job_id, kind, payload, claimed_until)
SELECT e, j, k, p::jsonb, clock_timestamp() + make_interval(secs => $5)
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS t(e, j, k, p)
"""

CLAIM_JOB = """
UPDATE outbox SET claimed_until = clock_timestamp() + make_interval(secs => $2)
 WHERE job_id = $1
   AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
RETURNING id, kind, payload
"""

# Rows older than a sweep: a row just committed is its own relay's to publish.
CLAIM_DUE = """
UPDATE outbox SET claimed_until = clock_timestamp() + make_interval(secs => $1)
 WHERE id IN (SELECT id FROM outbox
               WHERE (claimed_until IS NULL OR claimed_until < clock_timestamp())
                 AND created_at < clock_timestamp() - make_interval(secs => $2)
               ORDER BY id LIMIT $3
                 FOR UPDATE SKIP LOCKED)
RETURNING id, kind, payload
"""

DELETE_SENT = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"

# Published from memory: known by job and event id (a job's event ids are its own).
DELETE_PUBLISHED = """
DELETE FROM outbox WHERE (job_id, event_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))
"""

RELEASE = "UPDATE outbox SET claimed_until = NULL WHERE id = ANY($1::bigint[])"

DISCARD = "DELETE FROM outbox WHERE job_id = $1"


# The events this process's moves committed, by job, with when; the events
# written inside a ``transaction`` not yet committed, by connection; and the
# jobs with rows written inside any other transaction of a caller (claimed
# from the table, since only the table knows whether they committed).
_committed: dict[UUID, tuple[float, list[events.Event]]] = {}
_pending: dict[int, list[events.Event]] = {}
_in_table: set[UUID] = set()


def columns(written: Sequence[events.Event]) -> tuple[list[UUID], list[str], list[str]]:
    """Event ids, kinds and payloads, as a statement's arrays."""
    return (
        [e.event_id for e in written],
        [e.kind for e in written],
        [e.model_dump_json() for e in written],
    )


@contextlib.asynccontextmanager
async def transaction(conn: Connection) -> AsyncIterator[None]:
    """A transaction whose moves' events this process publishes from memory once it
    commits, as those of a move that commits by itself: no query afterwards to learn
    which of them committed. A move inside it must not be in a savepoint of its own
    that rolls back while the transaction commits."""
    key = id(conn)
    _pending[key] = []
    try:
        async with conn.transaction():
            yield
        committed = _pending[key]
    finally:
        del _pending[key]
    _remember(committed)


def _remember(events_: Sequence[events.Event]) -> None:
    now = time.monotonic()
    for event in events_:
        _, before = _committed.get(event.job_id, (0.0, []))
        _committed[event.job_id] = (now, [*before, event])


def reserved(conn: Connection) -> bool:
    """Whether rows written on ``conn`` now are this process's to publish from memory: the
    statement commits by itself, or inside a ``transaction``."""
    return not conn.is_in_transaction() or id(conn) in _pending


def lease_seconds(conn: Connection) -> float:
    """The claim a row written on ``conn`` now starts with, from now: reserved for this
    process's relay (``reserved``), else already over."""
    return INLINE_LEASE_SECONDS if reserved(conn) else -INLINE_LEASE_SECONDS


def written(conn: Connection, events_: Sequence[events.Event]) -> None:
    """Note the rows a statement on ``conn`` wrote, once it ran."""
    if not conn.is_in_transaction():
        _remember(events_)
    elif id(conn) in _pending:
        _pending[id(conn)].extend(events_)
    else:
        _in_table.update(e.job_id for e in events_)


async def enqueue(conn: Connection, written_: Sequence[events.Event]) -> None:
    """Write events into the outbox; call in the transaction of the change they announce."""
    if not written_:
        return
    ids, kinds, payloads = columns(written_)
    await conn.execute(
        ENQUEUE, ids, [e.job_id for e in written_], kinds, payloads, lease_seconds(conn)
    )
    written(conn, written_)


async def discard(conn: Connection, job_id: UUID) -> int:
    """Drop the job's unsent events (a job abandoned before anyone heard of it)."""
    status = await conn.execute(DISCARD, job_id)
    return int(status.split()[-1])


async def claim(conn: Connection, job_id: UUID) -> list[Any]:
    """Take the job's unsent rows for publishing (oldest first); release or delete them after."""
    rows = await conn.fetch(CLAIM_JOB, job_id, LEASE_SECONDS)
    return sorted(rows, key=lambda r: r["id"])


async def delete_sent(conn: Connection, ids: Sequence[int]) -> None:
    """Forget rows that were published."""
    if ids:
        await conn.execute(DELETE_SENT, list(ids))


def event_of(row: Any) -> events.Event:
    """The event an outbox row holds."""
    payload = row["payload"]
    return _KINDS[row["kind"]].model_validate(payload)


class Relay:
    """Publishes the outbox: inline after a commit (``flush``) and by a sweep (``start``)."""

    def __init__(
        self, pool: Callable[[], asyncpg.Pool], publisher: Publisher, settings: KafkaSettings
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._settings = settings
        self._sent_rows: list[int] = []  # published, deleted by the next sweep
        self._sent_events: list[tuple[UUID, UUID]] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def flush(self, job_id: UUID, *, raise_errors: bool = False) -> bool:
        """Publish the job's unsent events now: True when every one went out.

        A failure leaves them to the sweep (``raise_errors``: and raises), so a
        step that committed never fails for its announcement.
        """
        _, committed = _committed.pop(job_id, (0.0, []))
        published: list[events.Event] = []
        try:
            for event in committed:
                await self._publisher.publish(event)
                published.append(event)
        except Exception as exc:
            log.warning(
                "events left in the outbox for the sweep",
                extra={"events": len(committed) - len(published), "error": type(exc).__name__},
            )
            if raise_errors:
                raise
            return False
        finally:
            self._sent_events.extend((e.job_id, e.event_id) for e in published)
        if job_id not in _in_table:
            return True
        _in_table.discard(job_id)
        async with self._pool().acquire() as conn:
            rows = await claim(conn, job_id)
        return await self._publish(rows, raise_errors=raise_errors)

    async def _publish(self, rows: Sequence[Any], *, raise_errors: bool = False) -> bool:
        published: list[int] = []
        try:
            for row in rows:
                await self._publisher.publish(event_of(row))
                published.append(row["id"])
        except Exception as exc:
            left = [r["id"] for r in rows if r["id"] not in published]
            log.warning(
                "events left in the outbox for the sweep",
                extra={"events": len(left), "error": type(exc).__name__},
            )
            with contextlib.suppress(*TRANSIENT, asyncpg.PostgresError):
                async with self._pool().acquire() as conn:
                    await conn.execute(RELEASE, left)
            if raise_errors:
                raise
            return False
        finally:
            self._sent_rows.extend(published)
        return True

    async def _forget_published(self, conn: Connection) -> None:
        rows, self._sent_rows = self._sent_rows, []
        sent, self._sent_events = self._sent_events, []
        try:
            await delete_sent(conn, rows)
            if sent:
                await conn.execute(DELETE_PUBLISHED, [j for j, _ in sent], [e for _, e in sent])
        except BaseException:
            self._sent_rows.extend(rows)
            self._sent_events.extend(sent)
            raise

    async def sweep(self) -> int:
        """Forget what was published, then publish what nobody did: the rows published."""
        # What was never flushed is the table's now: the sweep takes it once
        # its reservation runs out.
        stale = time.monotonic() - INLINE_LEASE_SECONDS
        for job_id in [j for j, (at, _) in _committed.items() if at < stale]:
            del _committed[job_id]
        async with self._pool().acquire() as conn:
            await self._forget_published(conn)
            rows = await conn.fetch(
                CLAIM_DUE, LEASE_SECONDS, self._settings.outbox_sweep_seconds, SWEEP_ROWS
            )
        if rows:
            log.info("publishing events nobody published", extra={"events": len(rows)})
        await self._publish(sorted(rows, key=lambda r: r["id"]))
        return len(rows)

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="outbox-sweep")

    async def stop(self) -> None:
        """Stop sweeping; forget what was published (the pool must still be open)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        with contextlib.suppress(*TRANSIENT, asyncpg.PostgresError):
            async with self._pool().acquire() as conn:
                await self._forget_published(conn)

    async def _run(self) -> None:
        interval = self._settings.outbox_sweep_seconds
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
            if self._stopping.is_set():
                return
            try:
                await self.sweep()
            except Exception as exc:  # the next sweep tries again
                log.warning("outbox sweep failed", extra={"error": type(exc).__name__})
