"""The HTTP API answers as its OpenAPI document says, where generated requests found it did not."""

from __future__ import annotations

import re

import asyncpg
import pytest

from rosterflow import events
from rosterflow.settings import Settings
from rosterflow.testing import seed_school
from services.ingest import openapi
from tests.support.http import ingest_api


async def test_a_body_that_is_not_json_gets_a_documented_400(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    url = f"/v1/units/{school.unit_id}/archive-exclusions"
    async with ingest_api(settings) as api:
        headers = {**api.admin_of(school.organisation_id), "content-type": "application/json"}
        answers = [
            await api.client.post(url, content=body, headers=headers)
            for body in (b"\xff\xfe{", b'{"identity_number": ', b"{'a': 1}")
        ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "body_unparsable"
    documented = openapi.document()["paths"]["/v1/units/{unit_id}/archive-exclusions"]["post"]
    assert "400" in documented["responses"]


async def test_a_method_not_allowed_lists_every_method_of_the_path(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with ingest_api(settings) as api:
        answer = await api.client.options(
            f"/v1/units/{school.unit_id}/archive-exclusions",
            headers=api.admin_of(school.organisation_id),
        )
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "method_not_allowed"
    assert set(answer.headers["allow"].split(", ")) == {"GET", "POST"}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2026/2027", True),
        ("2000/2001", True),
        ("2099/2100", True),
        ("0000/0000", False),
        ("0000/0001", False),
        ("2026/2028", False),
        ("1999/2000", False),
        ("2026/2026", False),
    ],
)
def test_the_documented_school_year_pattern_accepts_exactly_what_the_api_accepts(
    value: str, valid: bool
) -> None:
    documented = next(
        p["schema"]["anyOf"][0]["pattern"] if "anyOf" in p["schema"] else p["schema"]["pattern"]
        for p in openapi.document()["paths"]["/v1/imports"]["post"]["parameters"]
        if p["name"] == "school_year"
    )
    assert (re.fullmatch(documented, value) is not None) is valid
    assert events.is_consecutive_school_year(value) is valid


def test_the_document_names_its_server_and_licence() -> None:
    document = openapi.document()
    assert document["servers"] == [
        {"url": "/", "description": "The ingest service that serves this document"}
    ]
    assert document["info"]["license"]["name"]
