"""Bad input gets a clear 4xx with a code, and nothing is half-created."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from rosterflow import jobs
from rosterflow.settings import Settings, StorageSettings
from rosterflow.testing import bearer, mint_token, seed_school
from tests.support.http import ingest_api

BODY = "Personnummer;Förnamn;Efternamn\r\n201003052387;Alva;Berg\r\n".encode()


def objects(settings: Settings) -> list[Path]:
    root = Path(settings.storage.uri.removeprefix("file://"))
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"unit_id": "unknown"}, 422, "unit_not_found"),
        ({"unit_id": "theirs"}, 422, "unit_not_found"),
        ({"format": "procapita_xml"}, 422, "format_not_supported"),
        ({"school_year": "2026-2027"}, 422, "school_year_malformed"),
        ({"school_year": "2026/2028"}, 422, "school_year_malformed"),
        ({"treat_as_upper_secondary": "true"}, 422, "option_not_allowed"),
        ({"format": "schoolsoft_guardians", "archive_missing": "true"}, 422, "option_not_allowed"),
        ({"archive_missing": "perhaps"}, 422, "invalid_request"),
        ({"file_name": None}, 422, "invalid_request"),
        ({"organisation_id": "not-a-uuid"}, 422, "invalid_request"),
        ({"body": b""}, 422, "file_empty"),
        ({"body": b"x" * 2049}, 413, "file_too_large"),
        ({"body": "stream", "size": 4096}, 413, "file_too_large"),
    ],
)
async def test_a_refused_upload_leaves_no_job_and_no_object(
    settings: Settings,
    conn: asyncpg.Connection,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    settings = settings.model_copy(
        update={"storage": StorageSettings(uri=settings.storage.uri, max_upload_bytes=2048)}
    )
    school = await seed_school(conn, level="compulsory")
    theirs = await seed_school(conn, name="Annan skola")
    params: dict[str, Any] = {
        "organisation_id": str(school.organisation_id),
        "unit_id": str(school.unit_id),
        "file_name": "elever.csv",
    }
    body: Any = BODY
    for name, value in change.items():
        if name == "body":
            body = value
        elif name == "size":
            pass
        elif value is None:
            del params[name]
        else:
            params[name] = {"unknown": str(uuid4()), "theirs": str(theirs.unit_id)}.get(
                value, value
            )
    if body == "stream":
        size = change["size"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            for _ in range(size // 512):
                yield b"y" * 512

        body = chunks()
    headers = bearer(mint_token([school.organisation_id, theirs.organisation_id]))
    async with ingest_api(settings) as api:
        answer = await api.client.post("/v1/imports", params=params, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert await conn.fetchval("SELECT count(*) FROM jobs") == 0
    assert objects(settings) == []


async def test_an_error_never_echoes_the_input(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with ingest_api(settings) as api:
        answer = await api.client.post(
            f"/v1/units/{school.unit_id}/archive-exclusions",
            json={"identity_number": "19121212-1212"},
            headers=bearer(mint_token([school.organisation_id])),
        )
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"
    assert "1212" not in answer.text


async def test_an_upload_while_the_broker_is_down_answers_503_and_the_job_says_why(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with ingest_api(settings) as api:
        # The connection to the broker is gone (what a broker outage looks like to
        # the producer); PostgreSQL and storage are fine.
        await api.runtime.broker.stop()
        answer = await api.client.post(
            "/v1/imports",
            params={
                "organisation_id": str(school.organisation_id),
                "unit_id": str(school.unit_id),
                "file_name": "elever.csv",
            },
            content=BODY,
            headers=bearer(mint_token([school.organisation_id])),
        )
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "30"
        error = answer.json()["error"]
        assert error["code"] == "pipeline_unavailable"
        job = await jobs.get(conn, UUID(error["details"]["job_id"]))
        assert job is not None
        assert job.state is jobs.JobState.FAILED
        assert job.error_code == "pipeline_unavailable"
        assert "upload the file again" in (job.error_message or "")
        assert objects(settings) == []
        # The administrator sees it as such, not as an import stuck in 'received'.
        status = await api.client.get(
            f"/v1/imports/{job.id}", headers=bearer(mint_token([school.organisation_id]))
        )
    assert status.json()["state"] == "failed"
