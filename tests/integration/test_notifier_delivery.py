"""Getting the email delivered: relays that are down, defer, refuse, or want TLS and a login.

Jobs here are rejected by ingest (a unit the organisation does not have):
the quickest way to a JobFinished, so each test is about delivery alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from rosterflow import events
from rosterflow.launcher import environment, free_port
from rosterflow.runtime import Runtime
from rosterflow.settings import REPO_ROOT, Settings
from rosterflow.testing import School, bearer, mint_token, seed_school, wait_for
from services.ingest import api
from services.notifier.retry import RetryLoop
from tests.support.mailserver import self_signed, smtp_server
from tests.support.pipeline import Pipeline, mails_to, new_admin, pipeline


def with_smtp(settings: Settings, **smtp: Any) -> Settings:
    """The test's settings with retries a test can wait for, and ``smtp`` changes."""
    quick = {"retry_initial_seconds": 0.2, "retry_max_seconds": 1.0, "retry_poll_seconds": 0.1}
    return settings.model_copy(update={"smtp": settings.smtp.model_copy(update=quick | smtp)})


async def reject(p: Pipeline, conn: asyncpg.Connection, admin: events.Requester) -> UUID:
    school = await seed_school(conn)
    upload = await p.upload(School(school.organisation_id, uuid4()), b"x", admin=admin)
    return upload.job_id


async def notification_in(conn: asyncpg.Connection, job_id: UUID, *states: str) -> asyncpg.Record:
    async def reached() -> asyncpg.Record | None:
        row = await conn.fetchrow("SELECT * FROM notifications WHERE job_id = $1", job_id)
        return row if row is not None and row["state"] in states else None

    return await wait_for(reached, what=f"the email of {job_id} reaching {states}")


async def job_view(rt: Runtime, job_id: UUID) -> dict[str, Any]:
    """GET /v1/imports/{job_id} from the ingest API."""
    app = FastAPI()
    api.mount(app, rt)
    async with rt.pool.acquire() as conn:
        organisation_id = await conn.fetchval(
            "SELECT organisation_id FROM jobs WHERE id = $1", job_id
        )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://ingest", headers=bearer(mint_token([organisation_id]))
    ) as client:
        response = await client.get(f"/v1/imports/{job_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def test_a_relay_that_is_down_gets_the_email_once_it_is_up(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    port = free_port()  # nobody listens there yet
    settings = with_smtp(settings, port=port)
    admin = new_admin()
    async with pipeline(settings, "ingest", "notifier") as p:
        retries = RetryLoop(p.runtimes["notifier"])
        await retries.start()
        try:
            job_id = await reject(p, conn, admin)
            waiting = await notification_in(conn, job_id, "retrying")
            view = await job_view(p.runtimes["ingest"], job_id)
            async with smtp_server(port) as relay:
                sent = await notification_in(conn, job_id, "sent")
        finally:
            await retries.stop()
    assert waiting["last_error"].startswith("SMTPConnectError")
    assert view["notification"]["state"] in ("retrying", "sending")
    assert view["notification"]["last_error"].startswith("SMTPConnectError")
    assert sent["attempts"] > waiting["attempts"]
    [received] = relay.to(admin.email)
    assert received.message["Subject"] == "Importen avvisades"
    assert str(received.message["Message-ID"]).strip() == sent["message_id"]


async def test_a_deferred_email_does_not_hold_up_the_next_jobs(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    # One partition: both jobs' JobFinished queue behind each other, as they
    # would for any two jobs hashed to the same partition.
    settings = with_smtp(settings, retry_initial_seconds=60.0).model_copy(
        update={"kafka": settings.kafka.model_copy(update={"partitions": 1})}
    )
    deferred = new_admin().model_copy(update={"email": f"a-{uuid4().hex[:8]}@tempfail.invalid"})
    other = new_admin()
    async with pipeline(settings, "ingest", "notifier") as p:
        first = await reject(p, conn, deferred)
        second = await reject(p, conn, other)
        await wait_for(lambda: _some(mails_to(other.email)), what="the second job's email")
        finished = [e.job_id for e in p.tap.of(events.JobFinished)]
    assert finished.index(first) < finished.index(second)
    row = await notification_in(conn, first, "retrying")
    assert row["attempts"] == 1
    assert row["last_error"].startswith("451")


async def test_an_email_deferred_past_the_give_up_time_is_abandoned(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    settings = with_smtp(settings, retry_give_up_seconds=0.0)
    admin = new_admin().model_copy(update={"email": f"a-{uuid4().hex[:8]}@tempfail.invalid"})
    async with pipeline(settings, "ingest", "notifier") as p:
        job_id = await reject(p, conn, admin)
        row = await notification_in(conn, job_id, "abandoned", "retrying")
        view = await job_view(p.runtimes["ingest"], job_id)
    assert row["state"] == "abandoned"
    assert row["next_attempt_at"] is None
    assert view["notification"]["state"] == "abandoned"


@pytest.mark.parametrize(
    ("address", "reason"),
    [("nobody@refused.invalid", "550"), ("x,y@skolhalsan.example", "not a deliverable address")],
)
async def test_a_permanent_refusal_is_recorded_and_shown_on_the_job(
    settings: Settings, conn: asyncpg.Connection, address: str, reason: str
) -> None:
    admin = new_admin().model_copy(update={"email": address})
    async with pipeline(settings, "ingest", "notifier") as p:
        job_id = await reject(p, conn, admin)
        row = await notification_in(conn, job_id, "refused", "retrying", "sent")
        view = await job_view(p.runtimes["ingest"], job_id)
    assert row["state"] == "refused"
    assert reason in row["last_error"]
    assert view["state"] == "rejected"
    assert view["notification"] == {
        "state": "refused",
        "attempts": row["attempts"],
        "last_error": row["last_error"],
    }


async def test_two_instances_retrying_together_send_each_email_once(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    admins = [new_admin() for _ in range(8)]
    async with pipeline(with_smtp(settings, port=free_port()), "ingest", "notifier") as p:
        jobs = [await reject(p, conn, admin) for admin in admins]
        for job_id in jobs:
            await notification_in(conn, job_id, "retrying")
    instances = [Runtime(with_smtp(settings, max_concurrent_sends=2), "notifier") for _ in "ab"]
    loops = [RetryLoop(rt) for rt in instances]
    for rt, loop in zip(instances, loops, strict=True):
        await rt.start()
        await loop.start()
    try:
        sent = [await notification_in(conn, job_id, "sent") for job_id in jobs]
    finally:
        for rt, loop in zip(instances, loops, strict=True):
            await loop.stop()
            await rt.stop()
    # One failed attempt by the handler, then exactly one send by either instance.
    assert [row["attempts"] for row in sent] == [2] * len(jobs)
    assert [len(mails_to(admin.email)) for admin in admins] == [1] * len(admins)


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_the_relay_is_reached_over_tls_with_a_login(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path, security: str
) -> None:
    certificate = self_signed(tmp_path)
    port = free_port()
    settings = with_smtp(
        settings,
        port=port,
        security=security,
        username="rosterflow",
        password=SecretStr("s3cret pass"),
        ca_file=certificate.cert,
    )
    admin = new_admin(events.Language.EN)
    tls = {security: certificate}
    async with (
        smtp_server(port, users={"rosterflow": "s3cret pass"}, **tls) as relay,
        pipeline(settings, "ingest", "notifier") as p,
    ):
        job_id = await reject(p, conn, admin)
        await notification_in(conn, job_id, "sent")
    [received] = relay.to(admin.email)
    assert received.login == "rosterflow"
    assert received.encrypted
    assert received.message["Subject"] == "The import was rejected"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"password": SecretStr("wrong")}, "535"),
        # The system's CAs do not know the test's certificate.
        ({"ca_file": None}, "CERTIFICATE_VERIFY_FAILED"),
    ],
)
async def test_a_wrong_password_or_an_untrusted_certificate_is_retried_not_sent(
    settings: Settings,
    conn: asyncpg.Connection,
    tmp_path: Path,
    change: dict[str, Any],
    reason: str,
) -> None:
    certificate = self_signed(tmp_path)
    port = free_port()
    smtp: dict[str, Any] = {
        "port": port,
        "security": "starttls",
        "username": "rosterflow",
        "password": SecretStr("s3cret"),
        "ca_file": certificate.cert,
    }
    settings = with_smtp(settings, **(smtp | change | {"retry_initial_seconds": 60.0}))
    admin = new_admin()
    async with (
        smtp_server(port, users={"rosterflow": "s3cret"}, starttls=certificate) as relay,
        pipeline(settings, "ingest", "notifier") as p,
    ):
        job_id = await reject(p, conn, admin)
        row = await notification_in(conn, job_id, "retrying", "sent", "refused")
    assert row["state"] == "retrying"
    assert reason in row["last_error"]
    assert relay.received == []


async def test_the_notifier_process_stops_cleanly_on_sigterm_while_retrying(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    admin = new_admin()
    async with pipeline(settings, "ingest") as p:
        job_id = await reject(p, conn, admin)
        await p.tap.next(events.JobFinished, job_id)
    env = {
        **os.environ,
        **environment(settings),
        "ROSTERFLOW_SMTP_PORT": str(free_port()),  # a relay that is down
        "ROSTERFLOW_SMTP_RETRY_INITIAL_SECONDS": "0.1",
        "ROSTERFLOW_SMTP_RETRY_MAX_SECONDS": "0.2",
        "ROSTERFLOW_SMTP_RETRY_POLL_SECONDS": "0.05",
    }
    log = tmp_path / "notifier.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.notifier",
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        async def retried() -> asyncpg.Record | None:
            row = await conn.fetchrow("SELECT * FROM notifications WHERE job_id = $1", job_id)
            return row if row is not None and row["attempts"] >= 3 else None

        await wait_for(retried, within=60, what="the retry loop trying again")
        process.send_signal(signal.SIGTERM)
        # A deadline, not a pause: returns as soon as the process has exited.
        await asyncio.wait_for(process.wait(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = log.read_text()
    assert process.returncode == 0, output[-3000:]
    assert '"msg": "retry loop stopped"' in output
    assert "Traceback" not in output
    row = await conn.fetchrow("SELECT * FROM notifications WHERE job_id = $1", job_id)
    assert row is not None
    assert row["state"] == "retrying"  # nothing left half-sent


async def _some(value: object) -> object:
    return value or None
