"""No file stalls the pipeline: the hostile corpus through the five services as processes.

Each service runs as its own process, held to its Kubernetes manifest's memory
limit (a watcher SIGKILLs a process whose resident memory passes it, as the
OOM killer would, and keeps the kernel's high-water mark). Every file of the
corpus (tests/support/hostile.py, generated here) is uploaded through the API,
one after the other on a single partition: each ends failed with its code, or
is checked with its bad rows reported (then a filtered page of the report is
read, and the job cancelled), within a deadline. Then a normal roster on the
same partition is imported to the end. No process may have passed its limit,
the validator not 400 MB, and every service must still be running.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from rosterflow import db
from rosterflow.launcher import MemoryWatch, manifest_memory_limit, service_processes
from rosterflow.testing import (
    bearer,
    delete_prefixed_topics,
    mint_token,
    sample_roster,
    school_age_numbers,
    seed_school,
    wait_for,
)
from tests.support.hostile import CORPUS
from tests.support.pipeline import process_settings

# The slowest file of the corpus (a million misshapen rows walked to the row
# limit) takes 40-120 s on two busy shared cores; a stalled stage takes forever.
DEADLINE = 300
VALIDATOR_BUDGET = 400 << 20
ENDED = {"failed", "rejected", "cancelled", "completed", "awaiting_confirmation"}


async def test_every_hostile_file_ends_its_job_and_the_next_job_completes(
    database_dsn: str, tmp_path: Path
) -> None:
    # One partition: every job after a hostile one waits behind it.
    settings = process_settings(database_dsn, tmp_path, partitions=1)
    conn = await db.connect(database_dsn)
    try:
        school = await seed_school(conn)
    finally:
        await conn.close()
    token = mint_token(
        [school.organisation_id], user_id="u-h", name="Admin", email="a@x.example", language="en"
    )
    params = {"organisation_id": str(school.organisation_id), "unit_id": str(school.unit_id)}
    outcomes: dict[str, dict[str, Any]] = {}
    try:
        with service_processes(settings, tmp_path / "logs") as services:
            limits = {s.process.pid: manifest_memory_limit(s.name) for s in services.running}
            with MemoryWatch(limits) as watch:
                async with httpx.AsyncClient(
                    base_url=services.base_url, headers=bearer(token), timeout=60
                ) as client:

                    async def reach(job_id: str, states: set[str]) -> dict[str, Any]:
                        async def probe() -> dict[str, Any] | None:
                            job: dict[str, Any] = (await client.get(f"/v1/imports/{job_id}")).json()
                            return job if job["state"] in states else None

                        return await wait_for(probe, within=DEADLINE, what=f"{job_id} in {states}")

                    async def upload(name: str, fmt: str, content: bytes) -> str:
                        query = {**params, "file_name": name, "format": fmt}
                        response = await client.post("/v1/imports", params=query, content=content)
                        assert response.status_code == 202, response.text
                        return str(response.json()["id"])

                    for hostile in CORPUS:
                        job_id = await upload(hostile.name, hostile.fmt.value, hostile.make())
                        job = await reach(job_id, ENDED)
                        outcomes[hostile.name] = job
                        if hostile.code is not None:
                            continue
                        page = await client.get(
                            f"/v1/imports/{job_id}/rows/invalid",
                            params={"code": "cell_control_character", "limit": 10},
                        )
                        assert page.status_code == 200, page.text
                        outcomes[hostile.name]["control_rows"] = page.json()["total"]
                        assert (await client.post(f"/v1/imports/{job_id}/cancel")).is_success
                        await reach(job_id, {"cancelled"})

                    roster = sample_roster(40, school_age_numbers()).to_csv().encode("cp1252")
                    normal = await upload("elever.csv", "rosterflow_csv", roster)
                    await reach(normal, {"awaiting_confirmation"})
                    assert (await client.post(f"/v1/imports/{normal}/confirm")).status_code == 200
                    done = await reach(normal, {"completed", "failed", "cancelled"})
            alive = services.alive()
            names = {s.process.pid: s.name for s in services.running}
    finally:
        await delete_prefixed_topics(settings.kafka)

    for hostile in CORPUS:
        job = outcomes[hostile.name]
        if hostile.code is None:
            assert job["state"] == "awaiting_confirmation", (hostile.name, job["error_message"])
            assert job["check_result"]["counts"]["invalid"] > 0, hostile.name
        else:
            assert (job["state"], job["error_code"]) == ("failed", hostile.code), hostile.name
            assert job["error_message"], hostile.name
            assert len(job["error_message"]) < 500, hostile.name
    assert outcomes["nul_late"]["control_rows"] == 1
    assert done["state"] == "completed", done["error_message"]
    assert watch.killed == [], [names[pid] for pid in watch.killed]
    assert sorted(alive) == sorted(names.values())
    for pid, peak in watch.peaks.items():
        assert 0 < peak <= limits[pid], (names[pid], peak)
        if names[pid] == "validator":
            assert peak <= VALIDATOR_BUDGET, peak
