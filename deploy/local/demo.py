"""The main job, end to end: import a sample roster through all five services.

Run by `make demo` after the local stack is up. It seeds a school with last
year's students, uploads a roster of a few hundred students (Windows-1252,
`;`, CRLF, a few invalid rows) with *archive missing* on, prints the check
result, confirms, waits for the end and prints the outcome and the email.
"""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import httpx
import pyarrow.compute as pc

from rosterflow import db
from rosterflow.launcher import Services, service_processes
from rosterflow.settings import LOCAL_DIR, Settings
from rosterflow.storage import ObjectStore
from rosterflow.testing import (
    bearer,
    mint_token,
    read_message,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
)
from services.ingest.web.local import demo_link, wizard_settings

STUDENTS = 300
INVALID = 6
LEAVERS = 20
MAILBOX = LOCAL_DIR / "mail"


def poll(
    client: httpx.Client, job_id: str, states: set[str], within: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        job = client.get(f"/v1/imports/{job_id}").raise_for_status().json()
        if job["state"] in states:
            return dict(job)
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not reach {states} within {within} s")


async def seed(settings: Settings, leavers: list[str]) -> tuple[UUID, UUID]:
    conn = await db.connect(settings.db.dsn.get_secret_value())
    try:
        await db.migrate(conn)
        school = await seed_school(conn)
        await seed_active_patients(conn, school, leavers)
        return school.organisation_id, school.unit_id
    finally:
        await conn.close()


def show_invalid_rows(settings: Settings, key: str) -> None:
    store = ObjectStore.from_settings(settings.storage)
    table = store.parquet_file(key).read()
    errors = table.filter(pc.equal(table.column("severity"), "error"))
    for row in errors.slice(0, 5).to_pylist():
        print(
            f"    line {row['line']:>4}  {row['column']:<12} {row['code']:<26} {row['message_en']}"
        )


def main() -> None:
    started = time.monotonic()
    # The demo plays the journal platform: it signs tokens; the email links to the wizard.
    settings = wizard_settings()
    secret = settings.auth.hs256_secret
    assert secret is not None
    numbers = school_age_numbers()
    roster = sample_roster(STUDENTS, numbers, invalid=INVALID)
    leavers = numbers[STUDENTS + INVALID : STUDENTS + INVALID + LEAVERS]
    organisation_id, unit_id = asyncio.run(seed(settings, leavers))
    token = mint_token(
        [organisation_id],
        key=secret.get_secret_value(),
        audience=settings.auth.audience,
        issuer=settings.auth.issuer,
        user_id="demo-admin",
        expires_in=3600,
    )
    print(f"seeded a school with {LEAVERS} active students who are not in the new file")
    before = {p.name for p in MAILBOX.glob("*.eml")}

    with service_processes(settings, LOCAL_DIR / "logs" / "services") as services:
        print(
            f"services running: {', '.join(services.alive())} ({time.monotonic() - started:.1f} s)"
        )
        with httpx.Client(base_url=services.base_url, headers=bearer(token), timeout=30) as client:
            body = roster.to_csv().encode("cp1252")
            response = client.post(
                "/v1/imports",
                params={
                    "organisation_id": str(organisation_id),
                    "unit_id": str(unit_id),
                    "file_name": "elever-ht2026.csv",
                    "archive_missing": "true",
                },
                content=body,
            ).raise_for_status()
            job_id = response.json()["id"]
            print(f"uploaded {len(body)} bytes, {len(roster.rows)} rows: job {job_id}")
            job = poll(client, job_id, {"awaiting_confirmation", "failed", "cancelled"})
            check = job["check_result"]
            print(f"\ncheck result ({job['state']}):")
            print(
                f"  detected: {check['detected']['encoding']}, delimiter "
                f"{check['detected']['delimiter']!r}, columns {check['detected']['columns']}"
            )
            print(
                f"  rows {check['counts']['rows']}: valid {check['counts']['valid']}, "
                f"invalid {check['counts']['invalid']}, empty {check['counts']['empty']}"
            )
            print(f"  plan: {check['plan']}")
            print("  invalid rows:")
            show_invalid_rows(settings, check["report"]["invalid_rows_key"])

            client.post(f"/v1/imports/{job_id}/confirm").raise_for_status()
            job = poll(client, job_id, {"completed", "failed", "cancelled"})
            print(
                f"\noutcome: {job['state']}; imported {job['import_counts']}, "
                f"archived {job['archived_count']}"
            )
            if job["error_message"]:
                print(f"  note: {job['error_message']}")

        mail = _wait_for_mail(before)
        print("\nthe email that arrived:")
        print(f"  From: {mail['From']}\n  To: {mail['To']}\n  Subject: {mail['Subject']}\n")
        body_part = mail.get_body(preferencelist=("plain",))
        assert body_part is not None
        print("  " + body_part.get_content().strip().replace("\n", "\n  "))
        show_metrics(services)
    page = demo_link(settings, [organisation_id], f"/ui/imports/{job_id}")
    print(
        "\nthe job's page in the wizard (start the services with `make wizard`, then open "
        f"this one-time link within {settings.ui.ticket_minutes} minutes):\n    {page}"
    )
    print(
        f"\ndemo finished in {time.monotonic() - started:.1f} s; the stack is still up "
        "(python3 deploy/local/stack.py down stops it)"
    )


# The pipeline's own series worth a look after one import.
SHOWN = (
    "rosterflow_jobs{",
    "rosterflow_jobs_finished_total{",
    "rosterflow_job_state_duration_seconds_count",
    "rosterflow_job_state_duration_seconds_sum",
    "rosterflow_job_duration_seconds_sum",
    "rosterflow_rows_",
    "rosterflow_emails_total{",
    "rosterflow_consumer_lag{",
    "faststream_received_processed_messages_total{",
)


def show_metrics(services: Services) -> None:
    """What Prometheus would scrape from each service now (nonzero pipeline series)."""
    print("\nmetrics (GET /metrics of each service, nonzero pipeline series):")
    for service in services.running:
        text = httpx.get(f"{service.ops_url}/metrics", timeout=10).raise_for_status().text
        lines = [
            line
            for line in text.splitlines()
            if line.startswith(SHOWN) and not line.endswith(" 0.0") and "_created" not in line
        ]
        print(f"  {service.name} ({service.ops_url}/metrics):")
        for line in lines:
            print(f"    {line}")


def _wait_for_mail(before: set[str], within: float = 30) -> EmailMessage:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        new = sorted(p for p in MAILBOX.glob("*.eml") if p.name not in before)
        if new:
            return read_message(new[-1])
        time.sleep(0.1)
    raise TimeoutError(f"no email arrived in {MAILBOX} within {within} s")


if __name__ == "__main__":
    main()
