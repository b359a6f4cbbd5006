"""The wizard's pages on a 1,000,000-row job, served by ingest over HTTP.

    .venv/bin/python bench/bench_wizard.py [--rows 1000000] [--leavers 100000]

Runs the five services as processes on the local stack, seeds a school whose
``--leavers`` active patients are not in the file, uploads a generated roster
(bench_validator's: ``;``, CRLF, about 0.6 % rows with an error or a warning)
with *archive missing* on and waits for the check. Then, signed in as the
administrator, it times whole page loads (server render, one HTTP GET, the
body read) of the job page: the first page of *Giltiga rader* (the page also
holds the plan and the first page of the archive list), the first page of
*Tomma/ogiltiga rader*, the invalid rows filtered by one reason, a later page
of the archive list, and the organisation overview. Each is the median and
the slowest of ``--repeat`` loads after one warm-up load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
from pydantic import SecretStr

from bench.bench_pipeline import phase
from bench.bench_validator import generate
from rosterflow.launcher import service_processes
from rosterflow.settings import AuthSettings
from rosterflow.testing import TEST_AUTH_SECRET, School, mint_token, seed_school

# Leavers: synthetic 12-character numbers that no generated roster row has.
SEED_LEAVERS = """
WITH p AS (
  INSERT INTO patients (organisation_id, identity_number, identity_kind, given_name, family_name)
  SELECT $1, '1950' || lpad(i::text, 8, '0'), 'personnummer', 'Tidigare', 'Elev'
    FROM generate_series(1, $3::int) AS i
  RETURNING id)
INSERT INTO enrolments (patient_id, unit_id) SELECT id, $2 FROM p
"""


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    client.get(path).raise_for_status()  # warm-up: the first read of the report's footer
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        response.raise_for_status()
        size = len(response.content)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, max(times) * 1000, size


async def main(rows: int, leavers: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with phase(workdir, "wizard") as ph:
            settings = ph.settings.model_copy(
                update={"auth": AuthSettings(hs256_secret=SecretStr(TEST_AUTH_SECRET))}
            )
            conn = await asyncpg.connect(ph.dsn)
            school: School = await seed_school(conn)
            started = time.perf_counter()
            await conn.execute(SEED_LEAVERS, school.organisation_id, school.unit_id, leavers)
            await conn.close()
            print(f"seeded {leavers} active patients in {time.perf_counter() - started:.1f} s")
            data = generate(rows)
            # A million rows are about 70 MB: over the default upload limit, which the
            # launcher does not pass on, so ingest's process reads it from here.
            os.environ["ROSTERFLOW_STORAGE_MAX_UPLOAD_BYTES"] = str(512 * 1024 * 1024)
            token = mint_token([school.organisation_id], expires_in=3600)
            with service_processes(settings, workdir / "logs") as services:
                job_id = await asyncio.to_thread(
                    upload_and_check, services.base_url, school, data, token
                )
                await asyncio.to_thread(report, services.base_url, token, job_id, repeat)


def upload_and_check(base: str, school: School, data: bytes, token: str) -> UUID:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=300) as api:
        started = time.perf_counter()
        job = (
            api.post(
                "/v1/imports",
                params={
                    "organisation_id": str(school.organisation_id),
                    "unit_id": str(school.unit_id),
                    "file_name": "bench.csv",
                    "archive_missing": "true",
                },
                content=data,
            )
            .raise_for_status()
            .json()
        )
        while job["state"] not in ("awaiting_confirmation", "failed", "rejected", "cancelled"):
            time.sleep(0.5)
            job = api.get(f"/v1/imports/{job['id']}").raise_for_status().json()
        assert job["state"] == "awaiting_confirmation", job["error_message"]
        counts = job["check_result"]["counts"]
        plan = job["check_result"]["plan"]
        took = time.perf_counter() - started
        print(
            f"uploaded {len(data) / 1e6:.0f} MB and checked in {took:.1f} s: "
            f"{counts['rows']} rows, {counts['valid']} valid, {counts['invalid']} invalid, "
            f"{counts['warnings']} warnings; plan archives {plan['archive']}"
        )
        return UUID(job["id"])


def report(base: str, token: str, job_id: UUID, repeat: int) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        client.post("/ui/launch", data={"token": token}).raise_for_status()
        time_pages(client, job_id, repeat)


def time_pages(client: httpx.Client, job_id: UUID, repeat: int) -> None:
    page = f"/ui/imports/{job_id}"
    cases = [
        ("job page: first page of Giltiga rader + plan + archive list", page),
        ("first page of Tomma/ogiltiga rader", f"{page}?tab=invalid"),
        ("invalid rows filtered by a reason", f"{page}?tab=invalid&code=identity_bad_check_digit"),
        ("a later page of the archive list", f"{page}?aoffset=50000"),
        ("a later page of Giltiga rader", f"{page}?offset=600000"),
        ("organisation overview", "/ui/"),
    ]
    print(f"\n{'page':<62} {'median ms':>10} {'max ms':>8} {'bytes':>8}")
    for label, path in cases:
        median, slowest, size = timed(client, path, repeat)
        print(f"{label:<62} {median:>10.1f} {slowest:>8.1f} {size:>8}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--leavers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.leavers, args.repeat))
