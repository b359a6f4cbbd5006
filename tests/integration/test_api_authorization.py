"""Who may call what: every endpoint against every kind of caller.

No token, a bad signature, an expired token, a token for another audience,
a user who administers no organisation, an administrator of another
organisation, and the organisation's own administrator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rosterflow import events, jobs
from rosterflow.settings import AuthSettings, Settings
from rosterflow.testing import bearer, mint_token, seed_active_patients, seed_school
from services.ingest.api import ROUTERS
from tests.support.http import ingest_api

PATIENT = "201003052387"  # Skatteverket test number


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    ok: int  # the organisation's administrator's answer (the job is still 'received')
    ok_code: str | None = None  # the error code of that answer, when it is a 4xx
    organisation_scoped: bool = False  # names the organisation itself: 403, not 404
    params: dict[str, str] | None = None
    json: dict[str, object] | None = None
    content: bytes | None = None


def calls(org: UUID, unit: UUID, job: UUID, patient: UUID) -> list[Call]:
    return [
        Call(
            "POST",
            "/v1/imports",
            202,
            organisation_scoped=True,
            params={"organisation_id": str(org), "unit_id": str(unit), "file_name": "a.csv"},
            content=b"Personnummer;F\xf6rnamn;Efternamn\r\n",
        ),
        Call("GET", f"/v1/imports/{job}", 200),
        Call("POST", f"/v1/imports/{job}/confirm", 409, "not_awaiting_confirmation"),
        Call("POST", f"/v1/imports/{job}/archive/approve", 409, "archive_not_held"),
        Call("POST", f"/v1/imports/{job}/archive/decline", 409, "archive_not_held"),
        Call("POST", f"/v1/imports/{job}/archive/undo", 409, "undo_not_possible"),
        Call("GET", f"/v1/imports/{job}/rows/valid", 409, "check_not_ready"),
        Call("GET", f"/v1/imports/{job}/rows/invalid", 409, "check_not_ready"),
        Call("GET", f"/v1/imports/{job}/plan", 409, "check_not_ready"),
        Call(
            "POST",
            f"/v1/imports/{job}/column-mapping",
            409,
            "not_remappable",
            json={"columns": {}},
        ),
        Call("GET", f"/v1/organisations/{org}/imports", 200, organisation_scoped=True),
        Call("GET", f"/v1/units/{unit}/options", 200),
        Call("GET", f"/v1/units/{unit}/archive-exclusions", 200),
        Call(
            "POST",
            f"/v1/units/{unit}/archive-exclusions",
            201,
            json={"identity_number": PATIENT},
        ),
        Call("DELETE", f"/v1/units/{unit}/archive-exclusions/{patient}", 204),
        # Last: it ends the job.
        Call("POST", f"/v1/imports/{job}/cancel", 200),
    ]


async def send(client: httpx.AsyncClient, call: Call, headers: dict[str, str]) -> httpx.Response:
    return await client.request(
        call.method,
        call.path,
        params=call.params,
        json=call.json,
        content=call.content,
        headers=headers,
    )


def registered(org: UUID, unit: UUID) -> events.UploadRequested:
    return events.UploadRequested(
        job_id=uuid4(),
        request=events.ImportRequest(organisation_id=org, unit_id=unit, school_year="2026/2027"),
        file=events.StoredFile(
            key=f"orgs/{org}/uploads/x/source", name="a.csv", sha256="0" * 64, size_bytes=1
        ),
        requested_by=events.Requester(user_id="u-1", name="Karin", email="k@example.org"),
    )


def test_the_matrix_covers_every_endpoint() -> None:
    """A new endpoint without a row in the matrix fails here."""
    ids = (uuid4(), uuid4(), uuid4(), uuid4())
    covered = {(c.method, c.path.replace(str(ids[0]), "{organisation_id}")) for c in calls(*ids)}
    normalised = set()
    for method, path in covered:
        for value, name in zip(
            ids, ("organisation_id", "unit_id", "job_id", "patient_id"), strict=True
        ):
            path = path.replace(str(value), "{" + name + "}")
        normalised.add((method, path))
    routes = {
        (method, route.path)  # type: ignore[attr-defined]
        for router in ROUTERS
        for route in router.routes
        for method in route.methods  # type: ignore[attr-defined]
    }
    assert routes == normalised


async def test_every_endpoint_answers_each_kind_of_caller(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    mine = await seed_school(conn, level="unspecified")
    theirs = await seed_school(conn, name="Annan skola")
    await seed_active_patients(conn, mine, [PATIENT])
    patient = await conn.fetchval("SELECT id FROM patients WHERE identity_number = $1", PATIENT)
    event = registered(mine.organisation_id, mine.unit_id)
    await jobs.register(conn, event)
    org = mine.organisation_id
    refused = {
        "no token": ({}, 401, "unauthenticated"),
        "not a JWT": ({"Authorization": "Bearer not-a-token"}, 401, "token_invalid"),
        "bad signature": (
            bearer(mint_token([org], key="another secret, long enough for HS256 keys")),
            401,
            "token_invalid",
        ),
        "expired": (bearer(mint_token([org], expires_in=-3600)), 401, "token_expired"),
        "wrong audience": (
            bearer(mint_token([org], audience="someone-else")),
            401,
            "token_wrong_audience",
        ),
        "no organisation": (bearer(mint_token([])), 403, "not_an_administrator"),
    }
    other_admin = bearer(mint_token([theirs.organisation_id]))
    failures: list[str] = []
    async with ingest_api(settings) as api:
        matrix = calls(org, mine.unit_id, event.job_id, patient)
        for call in matrix:
            for name, (headers, status, code) in refused.items():
                answer = await send(api.client, call, headers)
                if answer.status_code != status or answer.json()["error"]["code"] != code:
                    failures.append(f"{call.method} {call.path} [{name}]: {answer.text}")
                if status == 401 and answer.headers.get("www-authenticate") != "Bearer":
                    failures.append(f"{call.method} {call.path} [{name}]: no WWW-Authenticate")
            answer = await send(api.client, call, other_admin)
            expected = (
                (403, "organisation_forbidden")
                if call.organisation_scoped
                else (404, "unit_not_found" if "/units/" in call.path else "import_not_found")
            )
            got = (answer.status_code, answer.json()["error"]["code"])
            if got != expected:
                failures.append(f"{call.method} {call.path} [other organisation]: {answer.text}")
        # Nobody but the organisation's administrator changed anything.
        job = await jobs.get(conn, event.job_id)
        assert job is not None
        assert job.cancel_requested_at is None
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 1
        assert await conn.fetchval("SELECT count(*) FROM archive_exclusions") == 0

        admin = bearer(mint_token([org, theirs.organisation_id]))
        for call in matrix:
            answer = await send(api.client, call, admin)
            answered = answer.json()["error"]["code"] if answer.status_code >= 400 else None
            if answer.status_code != call.ok or answered != call.ok_code:
                failures.append(f"{call.method} {call.path} [administrator]: {answer.text}")
    assert not failures, "\n".join(failures)
    job = await jobs.get(conn, event.job_id)
    assert job is not None
    assert job.state is jobs.JobState.CANCELLED


async def test_another_organisations_job_answers_like_a_missing_one(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    mine = await seed_school(conn)
    theirs = await seed_school(conn, name="Annan skola")
    event = registered(theirs.organisation_id, theirs.unit_id)
    await jobs.register(conn, event)
    async with ingest_api(settings) as api:
        headers = bearer(mint_token([mine.organisation_id]))
        existing = await api.client.get(f"/v1/imports/{event.job_id}", headers=headers)
        missing = await api.client.get(f"/v1/imports/{uuid4()}", headers=headers)
    assert existing.status_code == missing.status_code == 404
    assert existing.json() == missing.json()


@pytest.fixture
def rsa_key(tmp_path: Path) -> tuple[bytes, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = tmp_path / "platform.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


async def test_rs256_tokens_with_an_issuer(
    settings: Settings, conn: asyncpg.Connection, rsa_key: tuple[bytes, Path]
) -> None:
    private, public = rsa_key
    settings = settings.model_copy(
        update={
            "auth": AuthSettings(
                rs256_public_key_file=public, issuer="https://journal.example", audience="rf"
            )
        }
    )
    school = await seed_school(conn)
    org = [school.organisation_id]
    path = f"/v1/units/{school.unit_id}/options"

    def token(**claims: object) -> dict[str, str]:
        fields: dict[str, object] = {
            "key": private,
            "algorithm": "RS256",
            "audience": "rf",
            "issuer": "https://journal.example",
            **claims,
        }
        return bearer(mint_token(org, **fields))  # type: ignore[arg-type]

    async with ingest_api(settings) as api:
        good = await api.client.get(path, headers=token())
        wrong_issuer = await api.client.get(path, headers=token(issuer="https://evil.example"))
        no_issuer = await api.client.get(path, headers=token(issuer=None))
        # HS256 is not configured here: an HS256 token is refused whatever its secret.
        hs = await api.client.get(path, headers=bearer(mint_token(org, audience="rf")))
    assert good.status_code == 200, good.text
    assert good.json()["name"] == "Solbackens skola"
    assert wrong_issuer.json()["error"]["code"] == "token_wrong_issuer"
    assert no_issuer.status_code == 401
    assert hs.status_code == 401


async def test_the_token_names_the_requester(settings: Settings, conn: asyncpg.Connection) -> None:
    school = await seed_school(conn)
    headers = bearer(
        mint_token(
            [school.organisation_id],
            user_id="u-42",
            name="Åsa Öberg",
            email="asa@skolhalsan.example",
            language="en",
        )
    )
    async with ingest_api(settings) as api:
        answer = await api.client.post(
            "/v1/imports",
            params={
                "organisation_id": str(school.organisation_id),
                "unit_id": str(school.unit_id),
                "file_name": "elever.csv",
            },
            content=b"Personnummer\r\n",
            headers=headers,
        )
    assert answer.status_code == 202, answer.text
    job = await jobs.get(conn, UUID(answer.json()["id"]))
    assert job is not None
    assert (job.requested_by_id, job.requested_by_name, job.requested_by_email) == (
        "u-42",
        "Åsa Öberg",
        "asa@skolhalsan.example",
    )
    assert job.requested_by_language == "en"
