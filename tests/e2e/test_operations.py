"""What the on-call engineer sees, from the five services running as processes.

One module-scoped run on the real stack: a roster imported and archived, a
file full of invalid rows (whose report quotes the values) checked and then
cancelled, and a malformed message dead-lettered. While the services run,
every one of them is scraped and probed; afterwards every log line of every
service is searched for personal data.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from rosterflow import db
from rosterflow.kafka.broker import topic_name
from rosterflow.launcher import service_processes
from rosterflow.settings import (
    Settings,
)
from rosterflow.testing import (
    bearer,
    delete_prefixed_topics,
    mint_token,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from rosterflow.topics import JOB_ACCEPTED
from tests.support.database import copy_of
from tests.support.observability import dashboard_queries, every_rule, metric_names
from tests.support.pipeline import process_settings

ADMIN_NAME = "Karin Adminsdotter"
FILE_NAME = "klass-9b-Wilma-Andersson.csv"
ADMIN_EMAIL = f"karin.adminsdotter-{uuid4().hex[:6]}@skolhalsan.example"


@dataclass
class Scrape:
    service: str
    text: str

    def samples(self) -> list[Any]:
        return [s for f in text_string_to_metric_families(self.text) for s in f.samples]


@dataclass
class Run:
    job_ids: list[str]
    secrets: set[str]  # identity numbers, names, addresses and file names in the files
    health: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    ready: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    scrapes: list[Scrape] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)

    def sample_names(self) -> set[str]:
        return {s.name for scrape in self.scrapes for s in scrape.samples()}

    def value(self, name: str, **labels: str) -> float:
        """The sum over every service of the samples with this name and these labels."""
        return float(
            sum(
                s.value
                for scrape in self.scrapes
                for s in scrape.samples()
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
            )
        )


def invalid_file(numbers: list[str]) -> tuple[str, set[str]]:
    """Rows that break every rule whose message or report quotes the value, and two good rows."""
    header = "Personnummer;Förnamn;Efternamn;Årskurs;Klass;E-post"
    people = [
        ("Wilma", "Andersson"),
        ("Astrid", "Lindqvist"),
        ("Nils", "Bergström"),
        ("Elsa", "Håkansson"),
        ("Alva", "Söderberg"),
        ("Maja", "Lundgren"),
    ]
    rows = []
    secrets: set[str] = set()
    for i, number in enumerate(numbers):
        given, family = people[i % len(people)]
        address = f"{given.lower()}.{family.lower()}{i}@skola.example"
        short = f"{number[2:8]}-{number[8:]}"
        kind = i % 6
        if kind == 0:  # wrong check digit
            shown = number[:-1] + str((int(number[-1]) + 1) % 10)
            rows.append(f"{shown};{given};{family};5;5A;{address}")
        elif kind == 1:  # wrong format
            shown = f"{number[2:8]}/{number[8:]}"
            rows.append(f"{shown};{given};{family};5;5A;{address}")
        elif kind == 2:  # grade out of range, address without an @
            shown = short
            rows.append(f"{shown};{given};{family};99;5A;{given}.{family}.skola.example")
            secrets.add(f"{given}.{family}.skola.example")
        elif kind == 3:  # a formula in a name
            shown = short
            rows.append(f'{shown};=HYPERLINK("{given}");{family};4;4B;{address}')
        elif kind == 4:  # names missing: the row is identified by its number only
            shown = number
            rows.append(f"{shown};;;3;3C;{address}")
        else:  # a valid row
            shown = short
            rows.append(f"{shown};{given};{family};6;6A;{address}")
        secrets |= {shown, number, short, number[2:], given, family, address}
    return header + "\r\n" + "\r\n".join(rows) + "\r\n", secrets


@pytest.fixture(scope="module")
async def run(
    template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Run]:
    tmp = tmp_path_factory.mktemp("ops")
    async with copy_of(template_database) as dsn:
        settings = process_settings(dsn, tmp, partitions=2)
        conn = await db.connect(dsn)
        try:
            yield await _exercise(settings, conn, tmp / "logs")
        finally:
            await conn.close()
            await delete_prefixed_topics(settings.kafka)


async def _exercise(settings: Settings, conn: asyncpg.Connection, log_dir: Path) -> Run:
    numbers = school_age_numbers()
    roster = sample_roster(60, numbers, invalid=6)
    leavers = numbers[100:104]
    broken, broken_secrets = invalid_file(numbers[200:236])
    school = await seed_school(conn)
    await seed_active_patients(conn, school, leavers)
    secrets = (
        set(roster.names())
        | {cell for row in roster.rows for cell in row[:1]}
        | set(roster.valid_identities)
        | {f"{n[2:8]}-{n[8:]}" for n in roster.valid_identities + leavers}
        | set(leavers)
        | broken_secrets
        | {FILE_NAME, ADMIN_NAME, ADMIN_EMAIL}
    )
    result = Run(job_ids=[], secrets=secrets)
    params = {
        "organisation_id": str(school.organisation_id),
        "unit_id": str(school.unit_id),
        "file_name": FILE_NAME,
    }

    token = mint_token(
        [school.organisation_id],
        user_id="u-ops",
        name=ADMIN_NAME,
        email=ADMIN_EMAIL,
        language="en",
    )
    headers = bearer(token)
    with service_processes(settings, log_dir) as services:
        async with httpx.AsyncClient(
            base_url=services.base_url, headers=headers, timeout=30
        ) as client:

            async def reach(job_id: str, states: set[str]) -> dict[str, Any]:
                async def probe() -> dict[str, Any] | None:
                    job: dict[str, Any] = (await client.get(f"/v1/imports/{job_id}")).json()
                    return job if job["state"] in states else None

                return await wait_for(probe, within=90, what=f"job reaching {states}")

            # 1. A roster imported, leavers archived.
            response = await client.post(
                "/v1/imports",
                params={**params, "archive_missing": "true"},
                content=roster.to_csv().encode("cp1252"),
            )
            assert response.status_code == 202, response.text
            first = response.json()["id"]
            assert (await reach(first, {"awaiting_confirmation"}))["state"]
            assert (await client.post(f"/v1/imports/{first}/confirm")).status_code == 200
            done = await reach(first, {"completed", "failed", "cancelled"})
            assert done["state"] == "completed", done["error_message"]

            # 2. A file of invalid rows: checked (the report quotes values), then cancelled.
            response = await client.post(
                "/v1/imports", params=params, content=broken.encode("utf-8")
            )
            assert response.status_code == 202, response.text
            second = response.json()["id"]
            checked = await reach(second, {"awaiting_confirmation", "failed"})
            assert checked["state"] == "awaiting_confirmation", checked["error_message"]
            # Six rows each: bad check digit, bad format, grade 99, names missing.
            assert checked["check_result"]["counts"]["invalid"] == 24
            assert (await client.post(f"/v1/imports/{second}/cancel")).status_code == 200
            await reach(second, {"cancelled"})

            # 3. A malformed message for the validator: dead-lettered, its job failed.
            third = str(uuid4())
            producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
            await producer.start()
            try:
                await producer.send_and_wait(
                    topic_name(settings.kafka, JOB_ACCEPTED),
                    json.dumps({"job_id": third, "file": {"name": FILE_NAME}}).encode(),
                    key=third.encode(),
                )
            finally:
                await producer.stop()
            result.job_ids = [first, second, third]

            async def emailed() -> bool:
                sent = await conn.fetchval(
                    "SELECT count(*) FROM notifications WHERE state = 'sent'"
                )
                return bool(sent >= 2)

            await wait_for(emailed, within=60, what="both emails sent")

            async def dead_lettered() -> str | None:
                for service in services.running:
                    text = (await client.get(f"{service.ops_url}/metrics")).text
                    if "rosterflow_dead_letters_total{" in text:
                        return text
                return None

            await wait_for(dead_lettered, within=60, what="the dead letter counted")

            for service in services.running:
                for path, into in (("/health", result.health), ("/ready", result.ready)):
                    got = await client.get(service.ops_url + path)
                    into[service.name] = (got.status_code, got.json())
                scraped = await client.get(service.ops_url + "/metrics")
                assert scraped.status_code == 200
                assert scraped.headers["content-type"].startswith("text/plain")
                result.scrapes.append(Scrape(service.name, scraped.text))
            assert services.alive() == ["ingest", "validator", "importer", "archiver", "notifier"]

    for service in services.running:
        result.logs[service.name] = service.log.read_text(encoding="utf-8").splitlines()
    return result


SERVICES = ["ingest", "validator", "importer", "archiver", "notifier"]


def test_every_service_is_alive_and_ready(run: Run) -> None:
    assert sorted(run.health) == sorted(SERVICES)
    for service in SERVICES:
        assert run.health[service] == (200, {"status": "ok", "service": service})
        status, body = run.ready[service]
        assert status == 200, body
        assert body["checks"] == {
            "broker": "ok",
            "database": "ok",
            "storage": "ok",
            "consumer": "ok",
        }


def test_the_pipeline_metrics_tell_what_happened(run: Run) -> None:
    # Read from the database at scrape time: every service reports the same.
    for scrape in run.scrapes:
        states = {
            s.labels["state"]: s.value for s in scrape.samples() if s.name == "rosterflow_jobs"
        }
        assert states["completed"] == 1, scrape.service
        assert states["cancelled"] == 1
        assert states["awaiting_confirmation"] == 0
        ages = [s for s in scrape.samples() if s.name == "rosterflow_job_oldest_waiting_seconds"]
        assert {s.labels["state"] for s in ages} >= {"received", "validating", "archive_held"}
    assert run.value("rosterflow_jobs_finished_total", outcome="completed") == 1
    assert run.value("rosterflow_jobs_finished_total", outcome="cancelled") == 1
    assert run.value("rosterflow_job_duration_seconds_count", outcome="completed") == 1
    assert run.value("rosterflow_job_state_duration_seconds_count", state="validating") == 2
    assert run.value("rosterflow_job_state_duration_seconds_count", state="importing") == 1
    # 60 + the invalid file's six good rows and six with a formula-like name (a warning).
    assert run.value("rosterflow_rows_validated_total", result="valid") == 60 + 12
    assert run.value("rosterflow_rows_validated_total", result="invalid") == 6 + 24
    assert run.value("rosterflow_rows_imported_total", change="created") == 60
    assert run.value("rosterflow_rows_archived_total") == 4
    assert run.value("rosterflow_rows_skipped_total", reason="identity_bad_check_digit") == 2 + 6
    assert run.value("rosterflow_rows_skipped_total", reason="grade_invalid") == 6
    assert run.value("rosterflow_emails_total", result="sent") == 2
    assert run.value("rosterflow_dead_letters_total", service="validator") == 1
    # FastStream's middleware: every stage received and processed messages (ingest
    # took its requests over HTTP here).
    for service in SERVICES[1:]:
        assert run.value("faststream_received_messages_total", app_name=service) >= 1
        assert (
            run.value(
                "faststream_received_processed_messages_total", app_name=service, status="acked"
            )
            >= 1
        )
    # Lag per group and partition, caught up by now.
    lag = [
        s for scrape in run.scrapes for s in scrape.samples() if s.name == "rosterflow_consumer_lag"
    ]
    groups = {s.labels["group"].rsplit(".", 2)[-2] for s in lag}
    assert groups == {"ingest", "validator", "importer", "archiver", "notifier"}
    assert {s.labels["partition"] for s in lag} == {"0", "1"}


def test_no_label_carries_personal_data_or_ids(run: Run) -> None:
    forbidden = run.secrets | set(run.job_ids)
    values = {v for scrape in run.scrapes for s in scrape.samples() for v in s.labels.values()}
    assert values, "nothing scraped"
    leaks = {v for v in values for secret in forbidden if secret in v}
    assert not leaks
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert not [v for v in values if uuid.search(v)]
    # Bounded: the label values of the pipeline's own metrics are few.
    ours = {
        (s.name, k, v)
        for scrape in run.scrapes
        for s in scrape.samples()
        if s.name.startswith("rosterflow_") and s.name != "rosterflow_consumer_lag"
        for k, v in s.labels.items()
        if k != "le"
    }
    assert len(ours) < 200


def test_logs_are_json_with_the_job_and_no_personal_data(run: Run) -> None:
    assert sorted(run.logs) == sorted(SERVICES)
    needles = sorted(run.secrets, key=len, reverse=True)
    words = re.compile(r"\b(" + "|".join(re.escape(n) for n in needles) + r")\b")
    handled: dict[str, set[str]] = {}
    for service, lines in run.logs.items():
        assert lines, f"{service} logged nothing"
        for line in lines:
            entry = json.loads(line)
            assert entry["service"] == service
            found = words.search(line)
            assert found is None, f"{service} logged {found.group(0)!r}: {line[:300]}"
            if entry.get("msg") == "event handled":
                assert isinstance(entry["duration_s"], float)
                assert entry["stage"] == service
                if "job_id" in entry:  # a message that did not parse has neither
                    assert UUID(entry["event_id"])
                    handled.setdefault(service, set()).add(entry["job_id"])
    # One job followed through every service by its id (ingest took it over HTTP).
    first = run.job_ids[0]
    assert all(first in handled.get(s, set()) for s in SERVICES[1:]), handled


def test_every_metric_in_the_dashboard_and_the_alerts_is_exported(run: Run) -> None:
    exported = run.sample_names()
    # `up` is written by Prometheus itself for every scrape target, the SLIs by the rules.
    recorded = {str(rule["record"]) for rule in every_rule() if "record" in rule}
    synthetic = {"up"} | recorded
    queries = dashboard_queries() + [str(rule["expr"]) for rule in every_rule()]
    assert len(queries) >= 12
    used = {name for query in queries for name in metric_names(query)}
    assert len(used) >= 10
    missing = sorted(used - exported - synthetic)
    assert not missing, f"used in dashboards or alerts but not exported: {missing}"
