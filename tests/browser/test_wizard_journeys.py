"""The wizard's other journeys: a corrected file, cancel, held archives, undo."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Page, expect

from rosterflow.testing import (
    School,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
)
from tests.support.browser import (
    Stack,
    accessible,
    confirm,
    csv_file,
    shot,
    sign_in,
    upload_and_check,
)
from tests.support.locks import organisation_locked, someone_waits_for_the_lock


async def test_invalid_rows_filter_by_reason_and_a_corrected_file_replaces_the_check(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    roster = sample_roster(20, numbers, invalid=6)
    school = await seed_school(conn)
    await sign_in(page, stack, school.organisation_id)
    first = await upload_and_check(page, stack, school, roster.to_csv())

    await page.locator("#tab-invalid").click()
    await expect(page.locator("#rows tbody tr")).to_have_count(6)
    await page.get_by_label("Filtrera på orsak").select_option("given_name_missing")
    await page.get_by_role("button", name="Filtrera").click()
    rows = page.locator("#rows tbody tr")
    await expect(rows).to_have_count(2)
    for line in range(2):
        await expect(rows.nth(line)).to_have_attribute("data-code", "given_name_missing")
        await expect(rows.nth(line)).to_contain_text("Förnamn saknas")
    assert "given_name_missing" in page.url
    await accessible(page)
    await shot(page, "step3-filtrerat-pa-orsak")

    # Föregående: back to the upload with the same choices, a corrected file.
    await page.get_by_role("link", name="Föregående").click()
    await expect(page.get_by_role("heading", name="Ladda upp fil")).to_be_visible()
    corrected = sample_roster(20, numbers)
    await page.get_by_label("Fil", exact=True).set_input_files(csv_file(corrected.to_csv()))
    await page.get_by_role("button", name="Kontrollera filen").click()
    await page.wait_for_url(lambda url: "/ui/imports/" in url and url != first)
    await expect(page.locator("#state-text")).to_have_text("Väntar på bekräftelse", timeout=60_000)
    await expect(page.locator("#tab-invalid")).to_contain_text("(0)")

    await page.goto(first)
    await expect(page.locator("#state-text")).to_have_text("Avbruten")
    await expect(page.get_by_text("En nyare fil laddades upp")).to_be_visible()
    await expect(page.get_by_role("button", name="Importera filen")).to_have_count(0)


async def test_a_cancel_during_the_import_through_the_dialog_leaves_the_journal_unchanged(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    roster = sample_roster(40, school_age_numbers())
    school = await seed_school(conn)
    await sign_in(page, stack, school.organisation_id)
    await upload_and_check(page, stack, school, roster.to_csv())

    # The organisation's lock held: the import waits inside its transaction, as a long one does.
    async with organisation_locked(stack.settings, school):
        await confirm(page)
        await expect(page.locator("#state-text")).to_have_text("Importeras", timeout=30_000)
        await someone_waits_for_the_lock(conn)
        await page.locator("#job-actions").get_by_role("button", name="Avbryt").click()
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_contain_text("Avbryta importen?")
        await accessible(page)
        await shot(page, "step4-avbryt")
        await dialog.get_by_role("button", name="Avbryt importen").click()
        await expect(page.get_by_text("Avbryts …")).to_be_visible()
    await expect(page.locator("#state-text")).to_have_text("Avbruten", timeout=60_000)
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM patients WHERE organisation_id = $1", school.organisation_id
        )
        == 0
    )


async def held_import(page: Page, stack: Stack, conn: asyncpg.Connection) -> tuple[School, str]:
    """An import that archives every one of 20 active patients: the safety hold stops it."""
    numbers = school_age_numbers()
    roster = sample_roster(10, numbers)
    school = await seed_school(conn)
    await seed_active_patients(conn, school, numbers[300:320])
    await sign_in(page, stack, school.organisation_id)
    await upload_and_check(page, stack, school, roster.to_csv(), archive_missing=True)
    await expect(page.locator("#plan")).to_contain_text("20 arkiveras")
    await expect(page.get_by_text("väntar på ditt godkännande")).to_be_visible()
    await confirm(page)
    await expect(page.get_by_role("heading", name="Arkiveringen väntar på beslut")).to_be_visible(
        timeout=60_000
    )
    await accessible(page)
    return school, page.url


async def active_in(conn: asyncpg.Connection, school: School) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM enrolments WHERE unit_id = $1 AND status = 'active'",
            school.unit_id,
        )
    )


async def test_a_held_archive_approved_and_then_undone(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    school, _ = await held_import(page, stack, conn)
    await shot(page, "step4-arkivering-vantar")
    await page.get_by_role("button", name="Godkänn arkivering").click()
    await page.get_by_role("dialog").get_by_role("button", name="Godkänn arkivering").click()
    await expect(page.locator("#state-text")).to_have_text("Klar", timeout=60_000)
    await expect(page.locator(".figures").first).to_contain_text("20 arkiverade")
    assert await active_in(conn, school) == 10

    await page.get_by_role("button", name="Ångra arkivering").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Återaktivera de 20 patienter")
    await dialog.get_by_role("button", name="Ångra arkivering").click()
    await expect(page.get_by_text("Arkiveringen ångrades: 20 patienter")).to_be_visible()
    await expect(page.get_by_role("button", name="Ångra arkivering")).to_have_count(0)
    assert await active_in(conn, school) == 30
    await accessible(page)


async def test_a_held_archive_declined_archives_nobody(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    school, _ = await held_import(page, stack, conn)
    await page.get_by_role("button", name="Avböj arkivering").click()
    await page.get_by_role("dialog").get_by_role("button", name="Avböj arkivering").click()
    await expect(page.locator("#state-text")).to_have_text("Klar", timeout=60_000)
    await expect(page.locator(".figures").first).to_contain_text("0 arkiverade")
    await expect(page.get_by_role("button", name="Ångra arkivering")).to_have_count(0)
    assert await active_in(conn, school) == 30
