"""The whole pipeline (five service processes over Kafka) against a one-process baseline.

    make up && .venv/bin/python bench/bench_pipeline.py [--quick] [--pairs N]

On the local stack (Kafka, PostgreSQL, SMTP sink; objects in a local directory),
in one run, each part in a fresh database and topic prefix of its own:

1. one large job (1,000,000 rows; --quick 100,000): the upload event published
   (the file already stored, as the platform does) until the job is finished,
   confirmed automatically the moment JobValidated arrives; against the
   one-process baseline: the same file read with pyarrow and checked by the
   validator's own check_file (vectorised rules, Parquet report), then COPY into
   staging and the set-based merge (rosterflow.journal) in one transaction — the
   same functions the services run, without Kafka, hand-offs or the plan;
   --pairs N runs the two N times, interleaved (the order alternating), and the
   table gives the medians: the apply alone varies by ±10 % from run to run;
2. 30-row jobs one after another (40; --quick 15): p50 and p95 of upload event →
   validated and confirmation event → finished, from the jobs' own timestamps,
   and the median time from each state to the next (the audit's clock);
3. 500 jobs of 200 rows (--quick 100) submitted at once, auto-confirmed, with one
   and with two processes per service: jobs/s from the first upload event to the
   last job finished.

The file of part 1 is bench_validator's generator (seeded, valid check digits,
about 0.6 % broken rows); parts 2 and 3 use Skatteverket's test numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pyarrow as pa
import pyarrow.fs as pafs
from aiokafka import AIOKafkaConsumer

from bench import proc_cpu
from bench.bench_validator import generate
from rosterflow import db, events
from rosterflow.events import ImportRequest
from rosterflow.journal import merge, staging
from rosterflow.kafka.broker import create_broker, topic_name
from rosterflow.kafka.publishing import Publisher
from rosterflow.launcher import Services, free_port, service_processes
from rosterflow.settings import (
    LOCAL_DIR,
    DatabaseSettings,
    HttpSettings,
    ImportSettings,
    KafkaSettings,
    Settings,
    StorageSettings,
)
from rosterflow.storage import ObjectStore, upload_key
from rosterflow.testing import (
    School,
    delete_prefixed_topics,
    sample_roster,
    school_age_numbers,
    seed_school,
)
from rosterflow.topics import topic_for
from services.validator.check import Limits, check_file
from services.validator.report import ReportWriter
from services.validator.rows import Rules
from services.validator.source import Upload

ADMIN_DSN = DatabaseSettings().dsn.get_secret_value()
MAILBOX = LOCAL_DIR / "mail"
SCHOOL_YEAR = "2026/2027"
PARTITIONS = 4
# An address of this run's own: its emails (one per job) are removed from the local
# SMTP sink's mailbox afterwards, so the shared mailbox does not grow by thousands.
ADMIN = events.Requester(
    user_id="bench",
    name="Bench Admin",
    email=f"bench-{uuid4().hex[:10]}@skolhalsan.example",
    language="en",
)


def dsn_of(database: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + database


@dataclass
class Phase:
    """A database, a topic prefix and an object directory of its own."""

    settings: Settings
    database: str

    @property
    def dsn(self) -> str:
        return self.settings.db.dsn.get_secret_value()


@asynccontextmanager
async def phase(workdir: Path, label: str) -> AsyncIterator[Phase]:
    database = f"rf_pipe_{uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{database}"')
    conn = await db.connect(dsn_of(database))
    await db.migrate(conn)
    await conn.close()
    settings = Settings(
        kafka=KafkaSettings(prefix=f"bench{uuid4().hex[:8]}.", partitions=PARTITIONS),
        db=DatabaseSettings(dsn=dsn_of(database), max_pool_size=10),
        storage=StorageSettings(
            uri=(workdir / label / "objects").as_uri(), max_upload_bytes=512 * 1024 * 1024
        ),
        http=HttpSettings(port=free_port()),
        imports=ImportSettings(max_rows=1_000_000),
    )
    try:
        yield Phase(settings, database)
    finally:
        with contextlib.suppress(Exception):
            await delete_prefixed_topics(settings.kafka)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


@dataclass
class Driver:
    """The journal platform's side: stores files, publishes uploads, confirms at once."""

    phase: Phase
    store: ObjectStore
    publisher: Publisher
    auto_confirm: bool = True
    validated_at: dict[UUID, float] = field(default_factory=dict)
    confirmed_at: dict[UUID, float] = field(default_factory=dict)
    _validated: dict[UUID, asyncio.Event] = field(default_factory=dict)

    async def validated(self, job_id: UUID) -> None:
        await self._validated.setdefault(job_id, asyncio.Event()).wait()

    async def upload(self, school: School, content: bytes) -> tuple[UUID, float]:
        job_id = uuid4()
        key = upload_key(school.organisation_id, job_id)
        written = await asyncio.to_thread(self.store.write_bytes, key, content)
        event = events.UploadRequested(
            job_id=job_id,
            request=events.ImportRequest(
                organisation_id=school.organisation_id,
                unit_id=school.unit_id,
                school_year=SCHOOL_YEAR,
            ),
            file=events.StoredFile(
                key=key, name="elever.csv", sha256=written.sha256, size_bytes=written.size_bytes
            ),
            requested_by=ADMIN,
        )
        sent = time.time()
        await self.publisher.publish(event)
        return job_id, sent

    async def confirm(self, job_id: UUID) -> None:
        self.confirmed_at[job_id] = time.time()
        await self.publisher.publish(
            events.ConfirmationRequested(job_id=job_id, requested_by=ADMIN)
        )

    async def listen(self) -> None:
        """Confirm every job as soon as its JobValidated arrives."""
        kafka = self.phase.settings.kafka
        consumer = AIOKafkaConsumer(
            topic_name(kafka, topic_for(events.JobValidated)),
            bootstrap_servers=kafka.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            async for record in consumer:
                validated = events.JobValidated.model_validate_json(record.value)
                self.validated_at[validated.job_id] = time.time()
                self._validated.setdefault(validated.job_id, asyncio.Event()).set()
                if self.auto_confirm:
                    await self.confirm(validated.job_id)
        finally:
            await consumer.stop()


@asynccontextmanager
async def driver(phase: Phase, *, auto_confirm: bool = True) -> AsyncIterator[Driver]:
    broker = create_broker(phase.settings.kafka, "bench")
    await broker.connect()
    drive = Driver(
        phase,
        ObjectStore.from_settings(phase.settings.storage),
        Publisher(broker, phase.settings.kafka),
    )
    drive.auto_confirm = auto_confirm
    task = asyncio.create_task(drive.listen())
    try:
        yield drive
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await broker.stop()


@contextmanager
def services(phase: Phase, workdir: Path, instances: int = 1) -> Iterator[Services]:
    with service_processes(
        phase.settings, workdir / f"logs-{uuid4().hex[:6]}", instances=instances
    ) as running:
        assert len(running.alive()) == 5 * instances
        yield running


async def wait_ended(
    conn: asyncpg.Connection, job_ids: list[UUID], within: float, poll: float = 0.05
) -> list[asyncpg.Record]:
    deadline = time.monotonic() + within
    while True:
        rows = await conn.fetch(
            "SELECT id, state, error_code, received_at, validation_finished_at, finished_at "
            "FROM jobs WHERE id = ANY($1)",
            job_ids,
        )
        if len(rows) == len(job_ids) and all(
            r["state"] in ("completed", "failed", "cancelled", "rejected") for r in rows
        ):
            return rows
        if time.monotonic() > deadline:
            states = sorted({r["state"] for r in rows})
            raise TimeoutError(f"{len(rows)} of {len(job_ids)} jobs registered, states {states}")
        await asyncio.sleep(poll)


def failures(rows: list[asyncpg.Record]) -> list[str]:
    return [f"{r['id']}: {r['state']} {r['error_code']}" for r in rows if r["state"] != "completed"]


async def settle() -> None:
    """Start a timed million-row part from a clean slate: nothing of the part before.

    Without this, whichever of the large job and the baseline ran second paid
    for the first one's dirty pages (PostgreSQL's checkpoint, forced by the
    DROP DATABASE that ends a part, and the kernel's writeback): ~10 s more,
    in either order.
    """
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute("CHECKPOINT")
    finally:
        await admin.close()
    await asyncio.to_thread(os.sync)


async def seed_schools(phase: Phase, count: int) -> list[School]:
    conn = await db.connect(phase.dsn)
    try:
        return [await seed_school(conn) for _ in range(count)]
    finally:
        await conn.close()


# --- 1. one large job ---------------------------------------------------------------------


@dataclass(frozen=True)
class LargeRun:
    """The large job: upload event → finished, and its two big stages."""

    total: float
    validation: float  # upload event published → validated
    import_: float  # confirmed → import committed

    def __str__(self) -> str:
        return f"{self.total:.2f} s (validation {self.validation:.2f} / import {self.import_:.2f})"


async def large_job(workdir: Path, data: bytes) -> LargeRun:
    async with phase(workdir, "large") as ph:
        (school,) = await seed_schools(ph, 1)
        with services(ph, workdir):
            async with driver(ph) as drive:
                await settle()
                job_id, sent = await drive.upload(school, data)
                conn = await db.connect(ph.dsn)
                try:
                    (row,) = await wait_ended(conn, [job_id], within=1800)
                finally:
                    await conn.close()
            conn = await db.connect(ph.dsn)
            try:
                stamps = await conn.fetchrow(STAGE_TIMES, job_id)
            finally:
                await conn.close()
        if row["state"] != "completed":
            raise RuntimeError(f"the large job ended {row['state']}: {row['error_code']}")
        assert stamps is not None
        print_stages(sent, stamps)
        finished: datetime = row["finished_at"]
        return LargeRun(
            finished.timestamp() - sent,
            stamps["validation_finished_at"].timestamp() - sent,
            (stamps["import_finished_at"] - stamps["confirmed_at"]).total_seconds(),
        )


STAGE_TIMES = """
SELECT received_at, validation_started_at, validation_finished_at, confirmed_at,
       import_started_at, import_finished_at, finished_at
  FROM jobs WHERE id = $1
"""


def print_stages(sent: float, stamps: asyncpg.Record) -> None:
    """Where the large job's time went, from its own per-stage timestamps."""
    previous, label = sent, "upload event published"
    for name, at in stamps.items():
        if at is None:
            continue
        print(f"    {label} → {name}: {at.timestamp() - previous:.2f} s")
        previous, label = at.timestamp(), name


async def baseline(workdir: Path, data: bytes) -> tuple[float, float, float]:
    """One process: check_file on the file, then COPY + merge; (total, check, apply) seconds."""
    async with phase(workdir, "baseline") as ph:
        (school,) = await seed_schools(ph, 1)
        await settle()  # before the file is written, as the large job's upload is
        path = workdir / "baseline.csv"
        path.write_bytes(data)
        store = ObjectStore(pafs.LocalFileSystem(), str(workdir / "baseline-objects"))
        pafs.LocalFileSystem().create_dir(str(workdir / "baseline-objects"), recursive=True)
        start = time.perf_counter()
        check_file(
            Upload(lambda: pa.OSFile(str(path)), path.stat().st_size),
            ImportRequest(
                organisation_id=school.organisation_id,
                unit_id=school.unit_id,
                school_year=SCHOOL_YEAR,
            ),
            Rules(today=date.today(), level="compulsory"),
            limits=Limits(max_rows=1_000_000, max_bytes=1 << 30),
            report=ReportWriter(store, "valid.parquet", "invalid.parquet"),
            stop=lambda: False,
        )
        checked = time.perf_counter()
        parquet = store.parquet_file("valid.parquet")
        conn = await db.connect(ph.dsn)
        try:
            async with conn.transaction():
                await staging.create_staging(conn)
                await staging.stage_row_groups(conn, parquet.num_row_groups, parquet.read_row_group)
                await merge.apply_staged(conn, school.organisation_id, school.unit_id, SCHOOL_YEAR)
        finally:
            await conn.close()
        done = time.perf_counter()
        return done - start, checked - start, done - checked


@dataclass(frozen=True)
class Pair:
    pipeline: LargeRun
    baseline: tuple[float, float, float]  # total, check, apply
    order: str

    @property
    def ratio(self) -> float:
        return self.pipeline.total / self.baseline[0]

    def __str__(self) -> str:
        base, check, apply = self.baseline
        return (
            f"{self.order:<15} pipeline {self.pipeline} | baseline {base:.2f} s"
            f" (check {check:.2f} + apply {apply:.2f}) | {self.ratio:.3f}×"
        )


async def large_pairs(workdir: Path, data: bytes, pairs: int, first: str) -> list[Pair]:
    """``pairs`` runs of the large job and the baseline, interleaved; the order
    alternates from one pair to the next (``first`` starts), so neither side is
    always the one that runs after the other. Each run is printed as it ends."""
    done = []
    stack = [pid for part in ("kafka", "smtp", "postgres", "s3") if (pid := stack_pid(part))]
    roots = {os.getpid(), *stack}
    for index in range(pairs):
        pipeline_first = (first == "pipeline") == (index % 2 == 0)
        # Other work on the machine (e.g. someone's tests) shows how disturbed a
        # pair was; PostgreSQL's backends are not told apart here.
        others = proc_cpu.foreign_seconds(roots)
        busy_before, wall_before = proc_cpu.machine_seconds()
        if pipeline_first:
            run = await large_job(workdir, data)
            base = await baseline(workdir, data)
        else:
            base = await baseline(workdir, data)
            run = await large_job(workdir, data)
        foreign = proc_cpu.foreign_spent(others, proc_cpu.foreign_seconds(roots))
        busy, wall = (
            a - b
            for a, b in zip(proc_cpu.machine_seconds(), (busy_before, wall_before), strict=True)
        )
        pair = Pair(run, base, "pipeline first" if pipeline_first else "baseline first")
        print(f"  pair {index + 1}/{pairs}: {pair}", flush=True)
        print(
            f"    machine busy {100 * busy / wall:.0f} % of {os.cpu_count()} cores;"
            f" processes outside the run and the stack: {foreign:.1f} s CPU",
            flush=True,
        )
        done.append(pair)
    return done


def stack_pid(part: str) -> int | None:
    return proc_cpu.local_pid(LOCAL_DIR, part)


def median_pair(pairs: list[Pair]) -> tuple[float, float, float, float, float, float]:
    """Medians of: pipeline total, its validation, its import, baseline total,
    its check, its apply; and of the pairs' ratios (the figure to compare)."""
    med = statistics.median
    return (
        med(p.pipeline.total for p in pairs),
        med(p.pipeline.validation for p in pairs),
        med(p.pipeline.import_ for p in pairs),
        med(p.baseline[0] for p in pairs),
        med(p.baseline[1] for p in pairs),
        med(p.baseline[2] for p in pairs),
    )


# --- 2. small jobs, one at a time ---------------------------------------------------------


STAGE_MEDIANS = """
SELECT to_state, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50
  FROM (SELECT to_state, id,
               extract(epoch FROM at - lag(at) OVER (PARTITION BY job_id ORDER BY id)) * 1000
                 AS ms
          FROM job_transitions) t
 WHERE ms IS NOT NULL
 GROUP BY to_state ORDER BY min(id)
"""


async def small_jobs(workdir: Path, count: int) -> tuple[list[float], list[float]]:
    roster = sample_roster(30, school_age_numbers()).to_csv().encode()
    async with phase(workdir, "small") as ph:
        schools = await seed_schools(ph, count + 2)
        with services(ph, workdir):
            async with driver(ph, auto_confirm=False) as drive:
                conn = await db.connect(ph.dsn)
                try:
                    # Two warm-up jobs: first connections, first group joins.
                    timings: list[tuple[float, float]] = []
                    for index, school in enumerate(schools):
                        job_id, sent = await drive.upload(school, roster)
                        await asyncio.wait_for(drive.validated(job_id), timeout=120)
                        validated = await conn.fetchval(
                            "SELECT validation_finished_at FROM jobs WHERE id = $1", job_id
                        )
                        await drive.confirm(job_id)
                        (row,) = await wait_ended(conn, [job_id], within=120)
                        if row["state"] != "completed":
                            raise RuntimeError(f"small job ended {row['state']}")
                        if index >= 2:
                            timings.append(
                                (
                                    validated.timestamp() - sent,
                                    row["finished_at"].timestamp() - drive.confirmed_at[job_id],
                                )
                            )
                    # Where the time goes: from each state to the next, on the audit's clock.
                    stages = await conn.fetch(STAGE_MEDIANS)
                    print(
                        "  median ms to reach each state from the one before: "
                        + ", ".join(f"{r['to_state']} {r['p50']:.1f}" for r in stages)
                    )
                finally:
                    await conn.close()
    return [t[0] for t in timings], [t[1] for t in timings]


# --- 3. many jobs at once ----------------------------------------------------------------


def cpu_snapshot(ph: Phase, running: Services) -> proc_cpu.Snapshot:
    pids = {s.name: s.process.pid for s in running.running}
    for part, label in (("kafka", "kafka broker"), ("smtp", "smtp sink")):
        pid = proc_cpu.local_pid(LOCAL_DIR, part)
        if pid is not None:
            pids[label] = pid
    pids["bench driver"] = os.getpid()
    return proc_cpu.snapshot(pids, proc_cpu.local_pid(LOCAL_DIR, "postgres"), ph.database)


async def burst(workdir: Path, jobs: int, instances: int) -> float:
    roster = sample_roster(200, school_age_numbers()).to_csv().encode()
    async with phase(workdir, f"burst{instances}") as ph:
        schools = await seed_schools(ph, jobs)
        with services(ph, workdir, instances=instances) as running:
            async with driver(ph) as drive:
                # Warm every instance's groups: one job through first.
                warm = await seed_schools(ph, 1)
                first, _ = await drive.upload(warm[0], roster)
                conn = await db.connect(ph.dsn)
                try:
                    await wait_ended(conn, [first], within=120)
                    keys = []
                    for school in schools:
                        job_id = uuid4()
                        key = upload_key(school.organisation_id, job_id)
                        keys.append((school, job_id, drive.store.write_bytes(key, roster)))
                    before = cpu_snapshot(ph, running)
                    start = time.time()
                    await asyncio.gather(
                        *(publish_upload(drive, school, job_id, w) for school, job_id, w in keys)
                    )
                    # Polled twice a second: the end is read from the jobs' finished_at,
                    # and looking up 500 jobs every 50 ms took CPU from the burst itself.
                    rows = await wait_ended(
                        conn, [job_id for _, job_id, _ in keys], within=1800, poll=0.5
                    )
                    after = cpu_snapshot(ph, running)
                finally:
                    await conn.close()
        print(f"  CPU during the burst of {jobs} jobs, {instances} instance(s) per service:")
        print("\n".join(proc_cpu.report(before, after, jobs)))
        bad = failures(rows)
        if bad:
            raise RuntimeError(f"{len(bad)} burst jobs did not complete: {bad[:3]}")
        last = max(float(r["finished_at"].timestamp()) for r in rows)
        return jobs / (last - start)


async def publish_upload(drive: Driver, school: School, job_id: UUID, written: object) -> None:
    from rosterflow.storage import WrittenObject

    assert isinstance(written, WrittenObject)
    await drive.publisher.publish(
        events.UploadRequested(
            job_id=job_id,
            request=events.ImportRequest(
                organisation_id=school.organisation_id,
                unit_id=school.unit_id,
                school_year=SCHOOL_YEAR,
            ),
            file=events.StoredFile(
                key=written.key,
                name="elever.csv",
                sha256=written.sha256,
                size_bytes=written.size_bytes,
            ),
            requested_by=ADMIN,
        )
    )


def remove_own_mail() -> int:
    """Delete the emails addressed to this run's administrator from the local mailbox."""
    removed = 0
    header = f"To: {ADMIN.email}".encode()
    for path in MAILBOX.glob("*.eml"):
        with contextlib.suppress(FileNotFoundError):
            headers = path.read_bytes().replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
            if header in headers.split(b"\n"):
                path.unlink()
                removed += 1
    return removed


def print_pairs(pairs: list[Pair]) -> None:
    ratios = [p.ratio for p in pairs]
    print(f"  pipeline ÷ baseline, pair by pair: {', '.join(f'{r:.3f}×' for r in ratios)}")
    print(
        f"  median of {len(pairs)} pair(s): {statistics.median(ratios):.3f}×"
        f" (spread {min(ratios):.3f}–{max(ratios):.3f}×)"
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def partial(quick: bool, only: str, pairs: int, first: str) -> None:
    """One part of the benchmark on its own, printed as it goes (no table)."""
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
        workdir = Path(tmp)
        if only == "large":
            data = generate(100_000 if quick else 1_000_000)
            print(f"  pipeline, one job: {await large_job(workdir, data)}")
        elif only == "pairs":
            data = generate(100_000 if quick else 1_000_000)
            done = await large_pairs(workdir, data, pairs, first)
            print_pairs(done)
        elif only == "baseline":
            data = generate(100_000 if quick else 1_000_000)
            base_s, check_s, apply_s = await baseline(workdir, data)
            print(f"  baseline: {base_s:.2f} s (check {check_s:.2f} s, apply {apply_s:.2f} s)")
        elif only == "small":
            to_validated, to_finished = await small_jobs(workdir, 15 if quick else 40)
            for label, values in (
                ("upload → validated", to_validated),
                ("confirm → finished", to_finished),
            ):
                print(
                    f"  {label}: p50 {statistics.median(values) * 1000:.0f} ms,"
                    f" p95 {percentile(values, 95) * 1000:.0f} ms (n={len(values)})"
                )
        else:
            jobs = 100 if quick else 500
            instances = 2 if only == "burst2" else 1
            rate = await burst(workdir, jobs, instances)
            print(f"  burst of {jobs}, {instances} instance(s) per service: {rate:.1f} jobs/s")
    print(f"  removed this run's {remove_own_mail()} emails from {MAILBOX}")


async def main(quick: bool, pairs: int, first: str) -> None:
    rows = 100_000 if quick else 1_000_000
    small = 15 if quick else 40
    burst_jobs = 100 if quick else 500
    load = os.getloadavg()
    # The launcher passes connection settings only; the services read these limits
    # from the environment they inherit (a 1M-row file is about 78 MB).
    os.environ["ROSTERFLOW_STORAGE_MAX_UPLOAD_BYTES"] = str(512 * 1024 * 1024)
    os.environ["ROSTERFLOW_IMPORT_MAX_ROWS"] = "1000000"
    print(f"bench_pipeline: {rows:,}-row job, {small} small jobs, {burst_jobs}-job bursts")
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
        workdir = Path(tmp)
        data = generate(rows)
        print(f"  generated {len(data) / 1e6:.1f} MB")
        done = await large_pairs(workdir, data, pairs, first)
        print_pairs(done)
        pipeline_s, validation_s, import_s, base_s, check_s, apply_s = median_pair(done)
        ratio = statistics.median(p.ratio for p in done)
        to_validated, to_finished = await small_jobs(workdir, small)
        print("  small jobs done")
        one = await burst(workdir, burst_jobs, 1)
        print(f"  burst, one instance each: {one:.1f} jobs/s")
        two = await burst(workdir, burst_jobs, 2)
        print(f"  burst, two instances each: {two:.1f} jobs/s")
    removed = remove_own_mail()
    print(f"  removed this run's {removed} emails from {MAILBOX}")

    ms = 1000.0
    of = f", median of {pairs} interleaved pairs" if pairs > 1 else ""
    p50_validated, p95_validated = statistics.median(to_validated), percentile(to_validated, 95)
    p50_finished, p95_finished = statistics.median(to_finished), percentile(to_finished, 95)
    table = [
        ("what", "measured", "target", "met"),
        (
            f"{rows:,}-row job, upload event → finished (auto-confirm){of}",
            f"{pipeline_s:.1f} s (validation {validation_s:.1f} / import {import_s:.1f})",
            "",
            "",
        ),
        (
            f"one-process baseline (check_file + COPY/merge), {rows:,} rows{of}",
            f"{base_s:.1f} s (check {check_s:.1f} + apply {apply_s:.1f})",
            "",
            "",
        ),
        (
            f"pipeline ÷ baseline{of.replace('median', 'median ratio')}",
            f"{ratio:.2f}×",
            "≤ 1.0×",
            "yes" if ratio <= 1.0 else "no",
        ),
        (
            f"30-row jobs, upload → validated, p50 / p95 (n={len(to_validated)})",
            f"{p50_validated * ms:.0f} / {p95_validated * ms:.0f} ms",
            "p50 ≤ 150 ms",
            "yes" if p50_validated <= 0.150 else "no",
        ),
        (
            f"30-row jobs, confirm → finished, p50 / p95 (n={len(to_finished)})",
            f"{p50_finished * ms:.0f} / {p95_finished * ms:.0f} ms",
            "p50 ≤ 200 ms",
            "yes" if p50_finished <= 0.200 else "no",
        ),
        (
            f"{burst_jobs} jobs × 200 rows at once, one instance per service",
            f"{one:.1f} jobs/s",
            "≥ 20 jobs/s",
            "yes" if one >= 20 else "no",
        ),
        (
            f"{burst_jobs} jobs × 200 rows at once, two instances per service",
            f"{two:.1f} jobs/s ({two / one:.2f}× one)",
            "≥ 1.6× one",
            "yes" if two / one >= 1.6 else "no",
        ),
    ]
    print()
    print("| " + " | ".join(table[0]) + " |")
    print("|" + "---|" * len(table[0]))
    for line in table[1:]:
        print("| " + " | ".join(line) + " |")
    print(
        f"\nmachine: {os.cpu_count()} cores; load average at start "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="100k rows, 15 small jobs, 100-job bursts"
    )
    parser.add_argument(
        "--only",
        choices=("large", "baseline", "pairs", "small", "burst1", "burst2"),
        help="run one part alone and print its figures (no table); pairs: --pairs"
        " interleaved runs of the large job and the baseline",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="interleaved large-job/baseline pairs; the table gives their medians"
        " (the ratio: the median of the pairs' ratios)",
    )
    parser.add_argument(
        "--first",
        choices=("pipeline", "baseline"),
        default="pipeline",
        help="which of the two runs first in the first pair (the order alternates)",
    )
    args = parser.parse_args()
    if args.only:
        os.environ["ROSTERFLOW_STORAGE_MAX_UPLOAD_BYTES"] = str(512 * 1024 * 1024)
        os.environ["ROSTERFLOW_IMPORT_MAX_ROWS"] = "1000000"
        asyncio.run(partial(args.quick, args.only, args.pairs, args.first))
    else:
        asyncio.run(main(args.quick, args.pairs, args.first))
