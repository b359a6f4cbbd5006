"""Signing in, another organisation's job, forged and expired tokens, CSRF, and what
never appears in an address or a log line."""

from __future__ import annotations

import asyncio

import asyncpg
from playwright.async_api import Page, Request, expect

from rosterflow.storage import ObjectStore
from rosterflow.testing import mint_token, sample_roster, school_age_numbers, seed_school
from services.ingest.web import store
from tests.support.browser import Stack, accessible, launch, sign_in, upload_and_check


async def test_another_organisations_job_is_not_found(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    ours, theirs = await seed_school(conn), await seed_school(conn)
    await sign_in(page, stack, theirs.organisation_id)
    job_url = await upload_and_check(
        page, stack, theirs, sample_roster(3, school_age_numbers()).to_csv()
    )
    await page.context.clear_cookies()

    await sign_in(page, stack, ours.organisation_id)
    response = await page.goto(job_url)
    assert response is not None
    assert response.status == 404
    await expect(page.get_by_role("alert")).to_have_text("Det finns ingen sådan import.")
    await accessible(page)
    nowhere = await page.goto(f"{stack.base}/ui/no-such-page")
    assert nowhere is not None
    assert nowhere.status == 404
    await expect(page.get_by_role("alert")).to_have_text("Sidan finns inte.")
    status = await page.context.request.get(f"{job_url}/status.json")
    assert status.status == 404
    # Not even its actions: the cancel of a foreign job is "not found" too.
    form = await page.goto(f"{stack.base}/ui/")
    assert form is not None
    csrf = await page.locator("input[name=csrf_token]").first.input_value()
    cancelled = await page.context.request.post(
        f"{job_url}/cancel", form={"csrf_token": csrf}, max_redirects=0
    )
    assert cancelled.status == 404
    assert (
        await conn.fetchval(
            "SELECT state FROM jobs WHERE organisation_id = $1", theirs.organisation_id
        )
        == "awaiting_confirmation"
    )


async def test_forged_and_expired_tokens_are_refused(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    school_org = (await seed_school(conn)).organisation_id
    for token in (
        mint_token([school_org], key="not-the-platform's-secret-at-all-0123456789"),
        mint_token([school_org], expires_in=-300),
        "not.a.token",
    ):
        response = await page.context.request.post(f"{stack.base}/ui/launch", form={"token": token})
        assert response.status == 401
        assert "inte" in await response.text()
        assert not await page.context.cookies()
    signed_out = await page.goto(f"{stack.base}/ui/")
    assert signed_out is not None
    assert signed_out.status == 401
    await expect(page.get_by_role("alert")).to_contain_text("Du är inte inloggad")
    await accessible(page)


async def test_a_form_without_the_sessions_csrf_token_is_refused(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    await sign_in(page, stack, school.organisation_id)
    job_url = await upload_and_check(
        page, stack, school, sample_roster(3, school_age_numbers()).to_csv()
    )
    forms: list[dict[str, str | float | bool]] = [{}, {"csrf_token": "forged"}]
    for form in forms:
        answer = await page.context.request.post(f"{job_url}/confirm", form=form)
        assert answer.status == 403
    assert (
        await conn.fetchval(
            "SELECT state FROM jobs WHERE organisation_id = $1", school.organisation_id
        )
        == "awaiting_confirmation"
    )
    cookie = next(c for c in await page.context.cookies() if c["name"] == "rosterflow_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["expires"] > 0


async def test_a_one_time_sign_in_link_works_once_and_carries_no_token(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    token = stack.token(school.organisation_id)
    ticket = await asyncio.to_thread(
        store.issue_ticket, ObjectStore.from_settings(stack.settings.storage), token, 600
    )
    link = f"{stack.base}/ui/signin#{ticket}"
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(link)
    await page.wait_for_url(f"{stack.base}/ui/")
    await expect(page.get_by_role("heading", name="Patient/Elevimporter")).to_be_visible()
    assert not any(ticket in url or token in url for url in requested)

    await page.context.clear_cookies()
    await page.goto(link)
    await expect(page.get_by_role("alert")).to_contain_text("Inloggningen godtogs inte")
    await accessible(page)


async def test_no_token_identity_number_or_name_in_an_address_or_a_log_line(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    roster = sample_roster(8, school_age_numbers(), invalid=3)
    school = await seed_school(conn)
    token = stack.token(school.organisation_id, name="Karin Hemligsson")
    urls: list[str] = []

    def seen(request: Request) -> None:
        urls.append(request.url)

    page.on("request", seen)
    await launch(page, stack, token)
    await upload_and_check(page, stack, school, roster.to_csv())
    await page.locator("#tab-invalid").click()
    await page.get_by_label("Filtrera på orsak").select_option("identity_format")
    await page.get_by_role("button", name="Filtrera").click()
    await page.goto(f"{stack.base}/ui/exclusions")
    await page.get_by_label("Personnummer").fill(roster.valid_identities[0])
    await page.get_by_role("button", name="Lägg till").click()

    secrets = [token, "Hemligsson", *roster.valid_identities, *roster.names()]
    secrets += [row[0] for row in roster.rows]
    logs = "".join(s.log.read_text(errors="replace") for s in stack.services.running)
    for secret in secrets:
        assert not any(secret in url for url in urls), secret
        assert secret not in logs, secret
