"""Peak resident memory of each service, as processes, for hostile files and a large normal one.

    flock /work/bench.lock .venv/bin/python bench/bench_memory.py [--rows 1000000]

Each case runs the five services as processes (rosterflow.launcher) on a
database, topics and objects of its own, each process held to its
Kubernetes manifest's memory limit (launcher.MemoryWatch: SIGKILL above it,
as the OOM killer would; the kernel's high-water mark VmHWM is the figure).
Every file of a case is uploaded through the API, checked, a page of its
valid rows and a filtered page of its issues read, then cancelled, so that the
notifier composes and sends its email; a file the check refuses ends failed,
and its email is sent too. The cases:

- ``many_issues``: the corpus's worst file for the validator (300,000 rows of
  ten issues each; tests/support/hostile.py);
- ``corpus``: every file of the hostile corpus, one after another;
- ``normal``: ``--rows`` generated valid rows (bench_validator's generator).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from pydantic import SecretStr

from bench.bench_pipeline import phase, seed_schools
from bench.bench_validator import generate
from rosterflow.launcher import MemoryWatch, manifest_memory_limit, service_processes
from rosterflow.settings import AuthSettings
from rosterflow.testing import TEST_AUTH_SECRET, bearer, mint_token, wait_for
from tests.support.hostile import CORPUS, many_issues

STAGES = ("validator", "notifier", "ingest", "importer", "archiver")
ENDED = {"failed", "rejected", "cancelled", "completed", "awaiting_confirmation"}
Files = list[tuple[str, str, Callable[[], bytes]]]


async def run_case(workdir: Path, label: str, files: Files) -> dict[str, Any]:
    async with phase(workdir, label) as ph:
        (school,) = await seed_schools(ph, 1)
        settings = ph.settings.model_copy(
            update={"auth": AuthSettings(hs256_secret=SecretStr(TEST_AUTH_SECRET))}
        )
        token = mint_token(
            [school.organisation_id], user_id="bench", name="Bench", email="b@x.example"
        )
        params = {"organisation_id": str(school.organisation_id), "unit_id": str(school.unit_id)}
        seconds: list[float] = []
        sizes: list[int] = []
        states: list[str] = []
        with service_processes(settings, workdir / label / "logs") as running:
            limits = {s.process.pid: manifest_memory_limit(s.name) for s in running.running}
            names = {s.process.pid: s.name for s in running.running}
            with MemoryWatch(limits) as watch:
                async with httpx.AsyncClient(
                    base_url=running.base_url, headers=bearer(token), timeout=600
                ) as client:
                    for name, fmt, make in files:
                        data = make()
                        sizes.append(len(data))
                        started = time.monotonic()
                        query = {**params, "file_name": name, "format": fmt}
                        response = await client.post("/v1/imports", params=query, content=data)
                        del data
                        response.raise_for_status()
                        job_id = response.json()["id"]
                        job = await _reach(client, job_id, ENDED)
                        seconds.append(time.monotonic() - started)
                        states.append(str(job["error_code"] or job["state"]))
                        if job["state"] == "awaiting_confirmation":
                            await _read_pages(client, job_id)
                            (await client.post(f"/v1/imports/{job_id}/cancel")).raise_for_status()
                            job = await _reach(client, job_id, {"cancelled"})
                        await _reach_email(client, job_id)
            alive = running.alive()
    peaks = {names[pid]: peak for pid, peak in watch.peaks.items()}
    return {
        "case": label,
        "files": len(files),
        "mb": sum(sizes) / 1e6,
        "seconds": seconds,
        "ended": states,
        "peaks": peaks,
        "limits": {names[pid]: limit for pid, limit in limits.items()},
        "killed": [names[pid] for pid in watch.killed],
        "alive": len(alive),
    }


async def _reach(client: httpx.AsyncClient, job_id: str, states: set[str]) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await client.get(f"/v1/imports/{job_id}")).json()
        return job if job["state"] in states else None

    return await wait_for(probe, within=1800, what=f"{job_id} in {states}")


async def _reach_email(client: httpx.AsyncClient, job_id: str) -> None:
    async def sent() -> bool | None:
        job = (await client.get(f"/v1/imports/{job_id}")).json()
        notification = job.get("notification") or {}
        return True if notification.get("state") in {"sent", "refused"} else None

    await wait_for(sent, within=300, what=f"the email of {job_id}")


async def _read_pages(client: httpx.AsyncClient, job_id: str) -> None:
    """What an administrator reads of a checked file: a page of each kind, one filtered."""
    pages: list[tuple[str, dict[str, str | int]]] = [
        ("rows/valid", {"limit": 100}),
        ("rows/invalid", {"limit": 100, "offset": 50_000}),
        ("rows/invalid", {"code": "cell_formula_like", "limit": 100, "offset": 1000}),
    ]
    for path, query in pages:
        (await client.get(f"/v1/imports/{job_id}/{path}", params=query)).raise_for_status()


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | files | MB | " + " | ".join(f"{s} peak MiB (limit)" for s in STAGES) + " | s |",
        "|---|---|---|" + "---|" * len(STAGES) + "---|",
    ]
    for r in results:
        cells = [f"{r['peaks'][s] / 2**20:.0f} ({r['limits'][s] / 2**20:.0f})" for s in STAGES]
        lines.append(
            f"| {r['case']} | {r['files']} | {r['mb']:.1f} | "
            + " | ".join(cells)
            + f" | {sum(r['seconds']):.1f} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cases", nargs="*", default=["many_issues", "corpus", "normal"])
    args = parser.parse_args()
    # Every process reads these: a million rows are above the default upload size.
    os.environ["ROSTERFLOW_STORAGE_MAX_UPLOAD_BYTES"] = str(512 * 1024 * 1024)
    os.environ["ROSTERFLOW_IMPORT_MAX_ROWS"] = str(max(args.rows, 1_000_000))
    cases: dict[str, Files] = {
        "many_issues": [("many_issues", "rosterflow_csv", lambda: many_issues(300_000))],
        "corpus": [(h.name, h.fmt.value, h.make) for h in CORPUS],
        "normal": [("normal", "rosterflow_csv", lambda: generate(args.rows))],
    }
    results = []
    with TemporaryDirectory() as tmp:
        for label in args.cases:
            result = await run_case(Path(tmp), label, cases[label])
            print(label, result, flush=True)
            results.append(result)
    print(table(results))


if __name__ == "__main__":
    asyncio.run(main())
