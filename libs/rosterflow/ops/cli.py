"""The operator's command line: ``python -m rosterflow.ops COMMAND``.

    jobs [--state S]… [--limit N]      jobs by state, oldest change first
    timeline JOB_ID                    one job's transitions (job_transitions)
    watch JOB_ID [--interval S] [--timeout S]
                                       follow a job until it ends: its stage's progress
                                       bar, and each state's time as the job leaves it
    cancel JOB_ID [--wait S]           cancel as the platform would (cancellation topic)
    redrive JOB_ID                     re-send (through the outbox) the event that moves the job on
    dead-letters list [--limit N]      the dead-letter topic, oldest first
    dead-letters replay [--topic T] [--job J] [--offset P:O]…
                                       re-publish dead-lettered messages to their topic

It reads the same ROSTERFLOW_* configuration as the services. It prints ids,
states, codes and counts, never a file name, a name or an identity number.
Re-driving (``rosterflow.redrive``) writes the event that moves the job on into
the outbox again, as its transition did, and publishes it; it is safe because
every handler is a compare-and-set on the job's state and the event carries
its original (deterministic) id; the consumers' processed-events entries for
that event are cleared first so the handler runs again and finds where the
job really is.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO
from uuid import UUID, uuid4

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from rosterflow import db, events, jobs
from rosterflow.jobs import Job, JobState
from rosterflow.kafka.admin import ensure_topics
from rosterflow.kafka.broker import topic_name
from rosterflow.redrive import OPERATOR, next_event
from rosterflow.redrive import redrive as redrive_job
from rosterflow.settings import Settings
from rosterflow.topics import DEAD_LETTERS, topic_for


class OpsError(Exception):
    """A refusal the operator must read (exit status 2)."""


@dataclass
class Tools:
    settings: Settings
    conn: asyncpg.Connection
    producer: AIOKafkaProducer
    out: TextIO
    err: TextIO

    async def publish(self, event: events.Message) -> None:
        spec = topic_for(type(event))
        job_id = getattr(event, "job_id", None)
        await self.producer.send_and_wait(
            topic_name(self.settings.kafka, spec),
            event.model_dump_json().encode(),
            key=str(job_id).encode() if job_id else None,
            headers=[
                ("content-type", b"application/json"),
                ("event-kind", spec.event.__name__.encode()),
            ],
        )

    def progress(self, done: int, total: int, what: str) -> None:
        end = "\n" if done == total else ""
        print(f"\r{what}: {done}/{total}", end=end, file=self.err, flush=True)


def _age(at: datetime | None) -> str:
    if at is None:
        return "-"
    seconds = int((datetime.now(UTC) - at).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


LIST_JOBS = """
SELECT id, state, organisation_id, received_at, updated_at, error_code,
       cancel_requested_at IS NOT NULL AS cancel_requested,
       archive_held_at IS NOT NULL AND archive_decision IS NULL AS held
  FROM jobs WHERE state = ANY($1::text[]) ORDER BY updated_at LIMIT $2
"""


async def list_jobs(t: Tools, states: Sequence[str], limit: int) -> int:
    wanted = list(states) or [s.value for s in jobs.ACTIVE]
    rows = await t.conn.fetch(LIST_JOBS, wanted, limit)
    print(f"{'job':36}  {'state':22} {'in state':>8}  {'age':>6}  organisation / notes", file=t.out)
    for r in rows:
        notes = [
            n
            for n, on in (
                ("held for a decision", r["held"]),
                ("cancel requested", r["cancel_requested"]),
                (f"error {r['error_code']}", r["error_code"]),
            )
            if on
        ]
        print(
            f"{r['id']!s:36}  {r['state']:22} {_age(r['updated_at']):>8}  "
            f"{_age(r['received_at']):>6}  {r['organisation_id']} {'; '.join(notes)}",
            file=t.out,
        )
    print(f"{len(rows)} job(s) in {', '.join(wanted)}", file=t.out)
    return 0


async def _job(t: Tools, job_id: UUID) -> Job:
    job = await jobs.get(t.conn, job_id)
    if job is None:
        raise OpsError(f"no job {job_id}")
    return job


async def timeline(t: Tools, job_id: UUID) -> int:
    job = await _job(t, job_id)
    rows = await t.conn.fetch(
        "SELECT at, from_state, to_state, cause FROM job_transitions WHERE job_id = $1 ORDER BY id",
        job_id,
    )
    print(f"job {job.id}  organisation {job.organisation_id}  unit {job.unit_id}", file=t.out)
    previous: datetime | None = None
    for r in rows:
        took = f"+{(r['at'] - previous).total_seconds():.3f}s" if previous else ""
        previous = r["at"]
        print(
            f"{r['at'].isoformat(timespec='milliseconds')}  {took:>11}  "
            f"{r['from_state'] or '-':>21} → {r['to_state']:<22} {r['cause']}",
            file=t.out,
        )
    extra = []
    if job.cancel_requested_at:
        extra.append(f"cancel requested {job.cancel_requested_at.isoformat(timespec='seconds')}")
    if job.awaiting_archive_decision:
        extra.append("archive held for a decision")
    if job.error_code:
        extra.append(f"error {job.error_code}")
    print(f"now: {job.state.value}" + (f" ({'; '.join(extra)})" if extra else ""), file=t.out)
    notification = await t.conn.fetchrow(
        "SELECT state, attempts FROM notifications WHERE job_id = $1 ORDER BY updated_at DESC",
        job_id,
    )
    if notification is not None:
        print(
            f"email: {notification['state']} after {notification['attempts']} attempt(s)",
            file=t.out,
        )
    return 0


TRANSITIONS_SINCE = """
SELECT id, at, from_state, to_state FROM job_transitions
 WHERE job_id = $1 AND id > $2 ORDER BY id
"""
# The stages that report rows done (the validator does not know the total until the end).
PROGRESS_STAGES = ("validating", "importing")


def _rows_of(job: Job, stage: str) -> int | None:
    """The rows a finished stage went through, from what its transition recorded."""
    if stage == "validating" and job.check_result:
        counts = job.check_result.counts
        return counts.valid + counts.invalid + counts.empty
    if stage == "importing" and job.import_counts:
        return sum(int(n) for n in job.import_counts.values())
    return None


class _Bars:
    """One rich progress bar per stage the job passes through, on the error stream."""

    def __init__(self, err: TextIO) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            console=Console(file=err, width=100),
        )
        self.tasks: dict[str, TaskID] = {}

    def enter(self, stage: str) -> None:
        if stage in PROGRESS_STAGES and stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=None)

    def show(self, job: Job) -> None:
        stage = job.state.value
        if job.progress_stage == stage and stage in self.tasks:
            self.progress.update(
                self.tasks[stage], completed=job.progress_done or 0, total=job.progress_total
            )

    def finish(self, stage: str, job: Job) -> None:
        task = self.tasks.get(stage)
        if task is None:
            return
        # Over: the rows the stage went through, as its transition recorded them.
        rows = _rows_of(job, stage)
        if rows is not None:
            self.progress.update(task, completed=rows, total=rows)
        self.progress.stop_task(task)


async def watch(t: Tools, job_id: UUID, interval: float, give_up_after: float) -> int:
    """Follow the job until it ends (0), or until ``give_up_after`` seconds pass (1).

    Each state's time is printed as the job leaves it; the stages' progress bars
    (rows done of the file's rows) go to the error stream.
    """
    job = await _job(t, job_id)
    print(f"job {job.id}  organisation {job.organisation_id}", file=t.out)
    bars = _Bars(t.err)
    seen, waiting_note = 0, ""
    started: datetime | None = None
    previous_at: datetime | None = None
    entered = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    with bars.progress:
        while True:
            moves = await t.conn.fetch(TRANSITIONS_SINCE, job_id, seen)
            job = await _job(t, job_id)  # at least as new as the transitions
            for r in moves:
                seen = r["id"]
                started = started or r["at"]
                if r["from_state"] is not None and previous_at is not None:
                    bars.finish(r["from_state"], job)
                    took = (r["at"] - previous_at).total_seconds()
                    print(f"{r['from_state']:>22}  {took:10.3f} s", file=t.out)
                bars.enter(r["to_state"])
                previous_at, entered = r["at"], r["to_state"]
            bars.show(job)
            note = _waits_for_a_person(job)
            if note and note != waiting_note:
                print(f"{job.state.value:>22}  {note}", file=t.out)
            waiting_note = note
            # Ended once its last transition has been read, so every stage is timed
            # on the audit's one clock (finished_at is another statement's).
            if job.terminal and entered == job.state.value and previous_at and started:
                total = (previous_at - started).total_seconds()
                ending = f"{job.state.value} after {total:.3f} s"
                print(ending + (f" (error {job.error_code})" if job.error_code else ""), file=t.out)
                return 0
            if loop.time() > deadline:
                print(f"still {job.state.value} after {give_up_after:.0f} s", file=t.out)
                return 1
            await asyncio.sleep(interval)


def _waits_for_a_person(job: Job) -> str:
    if job.state is JobState.AWAITING_CONFIRMATION:
        return "waits for the administrator to confirm"
    if job.awaiting_archive_decision:
        return "archive held: waits for the administrator's decision"
    return ""


async def cancel(t: Tools, job_id: UUID, wait: float) -> int:
    job = await _job(t, job_id)
    if job.terminal:
        print(f"job {job_id} has ended already: {job.state.value}", file=t.out)
        return 0
    # A fresh event id: an earlier cancel request of the job may be in the ledger.
    await t.publish(events.CancelRequested(event_id=uuid4(), job_id=job_id, requested_by=OPERATOR))
    print(f"cancel requested for job {job_id} ({job.state.value})", file=t.out)
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline:
        job = await _job(t, job_id)
        if job.terminal:
            print(f"job {job_id}: {job.state.value}", file=t.out)
            return 0
        print(f"\rwaiting: {job.state.value}", end="", file=t.err, flush=True)
        await asyncio.sleep(0.5)
    print(
        f"\njob {job_id} is still {job.state.value}; the stage ends it at its next check",
        file=t.out,
    )
    return 1


async def redrive(t: Tools, job_id: UUID) -> int:
    job = await _job(t, job_id)
    done = await redrive_job(t.conn, t.publish, t.settings.kafka, job)
    if done is None:
        raise OpsError(
            f"job {job_id} is {job.state.value}"
            + (" with its archive held" if job.awaiting_archive_decision else "")
            + ": it waits for an administrator, nothing to re-drive"
        )
    print(
        f"job {job_id} ({job.state.value}): re-published {type(done.event).__name__} "
        f"(event {done.event.event_id}) for {done.service}"
        + (" after clearing its processed entry" if done.cleared else ""),
        file=t.out,
    )
    return 0


async def _dead_letters(t: Tools) -> list[tuple[int, int, events.DeadLetter]]:
    """Every dead letter on the topic, read from the beginning to the end it had now."""
    topic = topic_name(t.settings.kafka, DEAD_LETTERS)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=t.settings.kafka.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    found: list[tuple[int, int, events.DeadLetter]] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        total = sum(ends.values())
        remaining = {tp for tp in tps if ends[tp] > 0}
        read = 0
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    read += 1
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
                    if record.value is None:
                        continue
                    try:
                        letter = events.DeadLetter.model_validate_json(record.value)
                    except ValueError:
                        continue
                    found.append((tp.partition, record.offset, letter))
            if total > 1000:
                t.progress(min(read, total), total, "reading dead letters")
    finally:
        await consumer.stop()
    return sorted(found, key=lambda f: f[2].occurred_at)


async def list_dead_letters(t: Tools, limit: int) -> int:
    letters = await _dead_letters(t)
    for partition, offset, letter in letters[-limit:]:
        print(
            f"{partition}:{offset}  {letter.occurred_at.isoformat(timespec='seconds')}  "
            f"{letter.consumer:<10} {letter.source_topic}@{letter.partition}:{letter.offset}  "
            f"job {letter.job_id or '-'}  {letter.reason[:160]}",
            file=t.out,
        )
    print(f"{len(letters)} dead letter(s)", file=t.out)
    return 0


async def replay_dead_letters(
    t: Tools, topic: str | None, job: UUID | None, offsets: Sequence[str]
) -> int:
    letters = await _dead_letters(t)
    chosen = [
        (p, o, letter)
        for p, o, letter in letters
        if (topic is None or letter.source_topic.endswith(topic))
        and (job is None or letter.job_id == job)
        and (not offsets or f"{p}:{o}" in offsets)
    ]
    if not chosen:
        print("no dead letter matches", file=t.out)
        return 1
    for done, (_, _, letter) in enumerate(chosen, start=1):
        key = base64.b64decode(letter.original_key_b64) if letter.original_key_b64 else None
        await t.producer.send_and_wait(
            letter.source_topic, base64.b64decode(letter.original_value_b64), key=key
        )
        t.progress(done, len(chosen), "replayed")
    print(f"replayed {len(chosen)} message(s) to their topics", file=t.out)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rosterflow.ops", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    j = sub.add_parser("jobs", help="list jobs by state (default: every unfinished state)")
    j.add_argument("--state", action="append", default=[], choices=[s.value for s in JobState])
    j.add_argument("--limit", type=int, default=100)
    sub.add_parser("timeline", help="one job's transitions").add_argument("job", type=UUID)
    w = sub.add_parser("watch", help="follow a job until it ends: progress and stage timings")
    w.add_argument("job", type=UUID)
    w.add_argument("--interval", type=float, default=0.25, help="seconds between looks")
    w.add_argument("--timeout", type=float, default=3600.0, help="give up after seconds")
    c = sub.add_parser("cancel", help="cancel a job")
    c.add_argument("job", type=UUID)
    c.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the end")
    sub.add_parser(
        "redrive", help="re-publish the event that starts the job's next stage"
    ).add_argument("job", type=UUID)
    d = sub.add_parser("dead-letters", help="the dead-letter topic")
    dsub = d.add_subparsers(dest="action", required=True)
    dsub.add_parser("list").add_argument("--limit", type=int, default=100)
    r = dsub.add_parser("replay", help="re-publish dead-lettered messages to their topic")
    r.add_argument("--topic", help="only letters from this topic (its name without prefix)")
    r.add_argument("--job", type=UUID, help="only letters of this job")
    r.add_argument("--offset", action="append", default=[], help="PARTITION:OFFSET of a letter")
    return p


async def run(
    argv: Sequence[str],
    settings: Settings | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    args = parser().parse_args(argv)
    settings = settings or Settings()
    conn = await db.connect(settings.db.dsn.get_secret_value())
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    t = Tools(settings, conn, producer, out, err)
    try:
        if args.command == "dead-letters":
            await ensure_topics(settings.kafka)
        return await _dispatch(t, args)
    except OpsError as exc:
        print(f"refused: {exc}", file=err)
        return 2
    finally:
        await producer.stop()
        await conn.close()


async def _dispatch(t: Tools, args: Any) -> int:
    if args.command == "jobs":
        return await list_jobs(t, args.state, args.limit)
    if args.command == "timeline":
        return await timeline(t, args.job)
    if args.command == "watch":
        return await watch(t, args.job, args.interval, args.timeout)
    if args.command == "cancel":
        return await cancel(t, args.job, args.wait)
    if args.command == "redrive":
        return await redrive(t, args.job)
    if args.action == "list":
        return await list_dead_letters(t, args.limit)
    return await replay_dead_letters(t, args.topic, args.job, args.offset)


def main() -> None:
    sys.exit(asyncio.run(run(sys.argv[1:])))


__all__ = ["main", "next_event", "redrive", "run"]
