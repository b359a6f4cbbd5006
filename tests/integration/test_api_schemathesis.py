"""Schemathesis against the served OpenAPI document: every answer is one the document promises.

No input makes the API answer 5xx, and every response has a documented
status code, content type and headers, and a body that validates against the
documented schema (the error body included).

The real app is served by uvicorn on a free port of this process's event loop,
with PostgreSQL and Kafka behind it; Hypothesis drives requests from a thread.
Each operation is exercised with generated ids and with the ids of a real
organisation, unit, job and patient the token's holder administers.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import uuid4

import asyncpg
import hypothesis
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from rosterflow import events, jobs
from rosterflow.launcher import free_port
from rosterflow.settings import Settings
from rosterflow.testing import bearer, mint_token, seed_active_patients, seed_school
from services.ingest import openapi
from services.ingest.app import create_app

PATIENT = "201003052387"
EXAMPLES = 20
# Every answer: no server error, and status, content type, headers and body as documented.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz(base_url: str, document: dict[str, Any], token: str, ids: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_dict(document)
    headers = bearer(token)
    failures: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document is FastAPI's own: always valid
        operation = result.ok()
        known = {name: ids[name] for name in ids if f"{{{name}}}" in operation.path}
        for path_parameters in ({}, known) if known else ({},):

            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(path_parameters=path_parameters or None))
            def run(case: schemathesis.Case[Any]) -> None:
                response = case.call(base_url=base_url, headers=headers, session=session)
                try:
                    case.validate_response(response, checks=CHECKS)
                except AssertionError:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
                    raise

            try:
                run()
            except Exception as exc:  # Hypothesis re-raises the first failure, shrunk
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    return failures


# Schemathesis's own strategies use the random module; not this test's concern.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_every_generated_request_gets_a_documented_answer(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn, level="unspecified")
    await seed_active_patients(conn, school, [PATIENT])
    patient = await conn.fetchval("SELECT id FROM patients WHERE identity_number = $1", PATIENT)
    job = events.UploadRequested(
        job_id=uuid4(),
        request=events.ImportRequest(
            organisation_id=school.organisation_id, unit_id=school.unit_id, school_year="2026/2027"
        ),
        file=events.StoredFile(
            key="orgs/x/uploads/y/source", name="a.csv", sha256="0" * 64, size_bytes=1
        ),
        requested_by=events.Requester(user_id="u-1", name="Karin", email="k@example.org"),
    )
    await jobs.register(conn, job)
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.05)
        document = await asyncio.to_thread(
            requests_get_json, f"http://127.0.0.1:{port}/openapi.json"
        )
        committed = json.loads(openapi.PATH.read_text())
        assert {p: v for p, v in document["paths"].items() if p.startswith("/v1/")} == committed[
            "paths"
        ]
        failures = await asyncio.to_thread(
            fuzz,
            f"http://127.0.0.1:{port}",
            document,
            mint_token([school.organisation_id]),
            {
                "organisation_id": str(school.organisation_id),
                "unit_id": str(school.unit_id),
                "job_id": str(job.job_id),
                "patient_id": str(patient),
            },
        )
    finally:
        server.should_exit = True
        await serving
    assert not failures, "\n".join(failures)
    # The fuzzing did reach the real job (it is the only one with that id).
    assert (
        await conn.fetchval("SELECT count(*) FROM job_transitions WHERE job_id = $1", job.job_id)
        >= 1
    )


def requests_get_json(url: str) -> dict[str, Any]:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document
