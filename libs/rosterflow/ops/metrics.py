"""The pipeline's Prometheus metrics.

Two kinds:

* **events of this process** (counters and histograms on the process-wide
  registry): jobs finished, time spent in each state, rows checked, imported,
  archived and skipped, emails, dead letters. FastStream's Prometheus
  middleware adds ``faststream_*`` (messages received, processed by status,
  handler durations) to the same registry.
* **state read at scrape time** (``scrape``): jobs by state and the age of the
  oldest job waiting in each state, from the database, so they never reset
  with a process; consumer lag per group and partition, from the broker.

Label values come from closed sets only (states, outcomes, reason codes,
topic and group names): never an identity number, a name, a file name or a
job id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# No *_created series beside every counter: they double the series for nothing
# a dashboard uses.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds: a stage takes from well under a second (a small file) to an hour
# (a million rows on a busy node); a job waits for a person for days.
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 86400)

JOBS_FINISHED = Counter(
    "rosterflow_jobs_finished",
    "Jobs that reached a terminal state, by outcome.",
    ["outcome"],
)
STATE_DURATION = Histogram(
    "rosterflow_job_state_duration_seconds",
    "Time a job spent in a state before it left it (the stage's duration; "
    "awaiting_confirmation is the administrator's time).",
    ["state"],
    buckets=STAGE_BUCKETS,
)
JOB_DURATION = Histogram(
    "rosterflow_job_duration_seconds",
    "From the upload to the terminal state, by outcome.",
    ["outcome"],
    buckets=STAGE_BUCKETS,
)
ROWS_VALIDATED = Counter(
    "rosterflow_rows_validated",
    "Data rows checked by the validator, by result (valid, invalid, empty).",
    ["result"],
)
ROWS_SKIPPED = Counter(
    "rosterflow_rows_skipped",
    "Rows not imported, by the first error code of the row.",
    ["reason"],
)
ROWS_IMPORTED = Counter(
    "rosterflow_rows_imported",
    "Rows applied to the journal, by change (created, updated, unchanged, reactivated).",
    ["change"],
)
ROWS_ARCHIVED = Counter("rosterflow_rows_archived", "Patients archived (enrolments ended).")
EMAILS = Counter(
    "rosterflow_emails",
    "Email delivery attempts by result (sent, retrying, refused, abandoned, taken_over).",
    ["result"],
)
# Seconds: sent at once, after a retry or two, or after a relay outage of hours.
EMAIL_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400)
EMAIL_DELAY = Histogram(
    "rosterflow_email_delay_seconds",
    "From the job's outcome recorded for an email to that email sent (the email SLO).",
    buckets=EMAIL_BUCKETS,
)
DEAD_LETTERS = Counter(
    "rosterflow_dead_letters",
    "Messages sent to the dead-letter topic, by the topic they came from and the service.",
    ["topic", "service"],
)
STAGE_ATTEMPTS_EXHAUSTED = Counter(
    "rosterflow_stage_attempts_exhausted",
    "Jobs ended failed because a consumer's attempts at one of their events ran out "
    "(each crashed, aborted, ran out of memory or was stopped).",
    ["service"],
)
JOBS_REDRIVEN = Counter(
    "rosterflow_jobs_redriven",
    "Jobs that no stage worked on past their state's deadline, re-driven by the sweep, "
    "by the state they were stuck in.",
    ["state"],
)
CONSUMER_HALTED = Gauge(
    "rosterflow_consumer_halted",
    "1 while the service has stopped consuming because most recent messages were dead-lettered.",
    ["service"],
)

# Waiting for a person, not for the pipeline: excluded from "stuck" alerts.
HUMAN_WAITS = frozenset({"awaiting_confirmation", "archive_held"})


def on_transition(
    previous: str, to: str, in_state_seconds: float | None, job_seconds: float | None
) -> None:
    """Record a committed job transition (called by rosterflow.jobs)."""
    if in_state_seconds is not None and in_state_seconds >= 0:
        STATE_DURATION.labels(previous).observe(in_state_seconds)
    if to in ("completed", "cancelled", "failed", "rejected"):
        JOBS_FINISHED.labels(to).inc()
        if job_seconds is not None and job_seconds >= 0:
            JOB_DURATION.labels(to).observe(job_seconds)


def on_columns(columns: Mapping[str, Any]) -> None:
    """Rows checked, imported and archived, from what a transition records on the job."""
    check = columns.get("check_result")
    if isinstance(check, dict):
        counts = check.get("counts", {})
        for result in ("valid", "invalid", "empty"):
            if counts.get(result):
                ROWS_VALIDATED.labels(result).inc(int(counts[result]))
    imported = columns.get("import_counts")
    if isinstance(imported, dict):
        for change, n in imported.items():
            if n:
                ROWS_IMPORTED.labels(str(change)).inc(int(n))
    archived = columns.get("archived_count")
    if isinstance(archived, int) and archived > 0:
        ROWS_ARCHIVED.inc(archived)


def skipped_row_counts(rows_by_code: Mapping[str, int]) -> None:
    """Skipped rows by their first error code, counted where the rows were checked."""
    for code, n in rows_by_code.items():
        ROWS_SKIPPED.labels(code).inc(n)


# --- read at scrape time ----------------------------------------------------

JOBS_BY_STATE = """
SELECT state, count(*) AS n FROM jobs GROUP BY state
"""

# The latest transition of each unfinished job says since when it waits where it is.
OLDEST_WAITING = """
SELECT CASE WHEN j.state = 'archiving' AND j.archive_held_at IS NOT NULL
                 AND j.archive_decision IS NULL THEN 'archive_held' ELSE j.state END AS state,
       count(*) AS n,
       max(extract(epoch FROM clock_timestamp() - t.at))::float8 AS oldest
  FROM jobs j
  CROSS JOIN LATERAL (SELECT at FROM job_transitions
                       WHERE job_id = j.id ORDER BY id DESC LIMIT 1) t
 WHERE j.finished_at IS NULL
 GROUP BY 1
"""

ALL_STATES = (
    "received",
    "validating",
    "awaiting_confirmation",
    "importing",
    "archiving",
    "completed",
    "cancelled",
    "failed",
    "rejected",
)
WAITING_STATES = (
    "received",
    "validating",
    "awaiting_confirmation",
    "importing",
    "archiving",
    "archive_held",
)


async def job_families(pool: asyncpg.Pool) -> list[Metric]:
    async with pool.acquire() as conn:
        by_state = {r["state"]: r["n"] for r in await conn.fetch(JOBS_BY_STATE)}
        waiting = {r["state"]: r for r in await conn.fetch(OLDEST_WAITING)}
    jobs = GaugeMetricFamily(
        "rosterflow_jobs", "Jobs by state, from the database.", labels=["state"]
    )
    for state in ALL_STATES:
        jobs.add_metric([state], by_state.get(state, 0))
    oldest = GaugeMetricFamily(
        "rosterflow_job_oldest_waiting_seconds",
        "Seconds the oldest unfinished job has been in its state (0: none waits); "
        "archive_held and awaiting_confirmation wait for a person.",
        labels=["state"],
    )
    for state in WAITING_STATES:
        row = waiting.get(state)
        oldest.add_metric([state], float(row["oldest"]) if row is not None else 0.0)
    return [jobs, oldest]


@dataclass(frozen=True)
class Subscription:
    group: str
    topic: str


class KafkaProbe:
    """The broker seen from the ops endpoints: reachability and consumer lag.

    Lag is the log end offset minus the group's committed offset.
    """

    def __init__(self, bootstrap_servers: str, timeout: float) -> None:
        self._bootstrap = bootstrap_servers
        self._timeout = timeout
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
            await admin.start()
            try:
                await consumer.start()
            except BaseException:
                await admin.close()
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def ping(self) -> None:
        async with self._lock:
            admin, _ = await self._clients()
            await admin.describe_cluster()

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._consumer = None

    async def lag(self, subscriptions: Iterable[Subscription]) -> Metric:
        family = GaugeMetricFamily(
            "rosterflow_consumer_lag",
            "Messages not yet processed (committed) by a consumer group, per partition.",
            labels=["group", "topic", "partition"],
        )
        async with self._lock:
            admin, consumer = await self._clients()
            for sub in subscriptions:
                parts = await _partitions(consumer, sub.topic)
                if not parts:
                    continue
                tps = [TopicPartition(sub.topic, p) for p in parts]
                ends = await consumer.end_offsets(tps)
                committed = await admin.list_consumer_group_offsets(sub.group, partitions=tps)
                for tp in tps:
                    meta = committed.get(tp)
                    done = meta.offset if meta is not None and meta.offset >= 0 else 0
                    family.add_metric(
                        [sub.group, sub.topic, str(tp.partition)], max(ends[tp] - done, 0)
                    )
        return family


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        # Not in the cached metadata yet: ask the broker once.
        with contextlib.suppress(Exception):
            await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
    return sorted(parts or ())


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


SCRAPE_ERRORS = Counter(
    "rosterflow_scrape_errors",
    "Scrape-time readings that failed, by source (database, broker).",
    ["source"],
)

# Known label values start at zero, so rate() and the alerts see a series
# before the first event (and a dashboard shows 0 rather than nothing).
for _outcome in ("completed", "cancelled", "failed", "rejected"):
    JOBS_FINISHED.labels(_outcome)
for _result in ("sent", "retrying", "refused", "abandoned", "taken_over"):
    EMAILS.labels(_result)
for _source in ("database", "broker"):
    SCRAPE_ERRORS.labels(_source)
for _result in ("valid", "invalid", "empty"):
    ROWS_VALIDATED.labels(_result)
for _change in ("created", "updated", "unchanged", "reactivated"):
    ROWS_IMPORTED.labels(_change)
for _state in ("received", "validating", "awaiting_confirmation", "importing", "archiving"):
    STATE_DURATION.labels(_state)
for _outcome in ("completed", "cancelled", "failed", "rejected"):
    JOB_DURATION.labels(_outcome)


async def scrape(
    pool: asyncpg.Pool | None,
    lag: KafkaProbe | None,
    subscriptions: Iterable[Subscription],
    limit_s: float,
) -> bytes:
    """The exposition text: this process's metrics and the state read now."""
    families: list[Metric] = []
    if pool is not None:
        try:
            families += await asyncio.wait_for(job_families(pool), limit_s)
        except Exception as exc:
            SCRAPE_ERRORS.labels("database").inc()
            log.warning("job metrics unavailable", extra={"error": type(exc).__name__})
    subs = list(subscriptions)
    if lag is not None and subs:
        try:
            families.append(await asyncio.wait_for(lag.lag(subs), limit_s))
        except Exception as exc:
            SCRAPE_ERRORS.labels("broker").inc()
            log.warning("consumer lag unavailable", extra={"error": type(exc).__name__})
    now = CollectorRegistry(auto_describe=False)
    now.register(_Families(families))
    return generate_latest(REGISTRY) + generate_latest(now)
