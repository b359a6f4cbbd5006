"""The overview, the exclusions, English, the keyboard alone."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Page, expect

from rosterflow.testing import (
    School,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
)
from tests.support.browser import Stack, accessible, csv_file, shot, sign_in, upload_and_check


async def test_the_overview_filters_by_unit_state_and_day(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    school = await seed_school(conn, name="Solbackens skola")
    other = await conn.fetchval(
        "INSERT INTO units (id, organisation_id, name, school_level) "
        "VALUES (gen_random_uuid(), $1, 'Vårdcentralen Norr', 'unspecified') RETURNING id",
        school.organisation_id,
    )
    await sign_in(page, stack, school.organisation_id)
    await upload_and_check(page, stack, school, sample_roster(5, numbers).to_csv())
    await page.goto(f"{stack.base}/ui/new")
    await page.get_by_label("Skola eller mottagning").select_option(str(other))
    # A unit of unspecified level offers "treat as upper secondary".
    await page.get_by_label("Hantera som gymnasieskola").check()
    await page.get_by_role("button", name="Ladda upp fil").click()
    await page.get_by_label("Fil", exact=True).set_input_files(
        csv_file(sample_roster(3, numbers[50:]).to_csv(), "vardcentralen.csv")
    )
    await page.get_by_role("button", name="Kontrollera filen").click()
    await expect(page.locator("#state-text")).to_have_text("Väntar på bekräftelse", timeout=60_000)
    await page.get_by_role("button", name="Avbryt").click()
    await page.get_by_role("dialog").get_by_role("button", name="Avbryt importen").click()
    await expect(page.locator("#state-text")).to_have_text("Avbruten", timeout=30_000)

    await page.get_by_role("link", name="Importer", exact=True).click()
    table = page.locator("#imports tbody tr")
    await expect(table).to_have_count(2)
    # Newest first, with who, unit, school year, file, options.
    await expect(table.nth(0)).to_contain_text("vardcentralen.csv")
    await expect(table.nth(0)).to_contain_text("Vårdcentralen Norr")
    await expect(table.nth(0)).to_contain_text("gymnasium")
    await expect(table.nth(0)).to_contain_text("Karin Admin")
    await expect(table.nth(1)).to_contain_text("Solbackens skola")
    await accessible(page)
    await shot(page, "oversikt")

    await page.get_by_label("Skola eller mottagning").select_option(str(school.unit_id))
    await page.get_by_role("button", name="Filtrera").click()
    await expect(table).to_have_count(1)
    await expect(table.nth(0)).to_contain_text("elever.csv")
    await page.get_by_label("Skola eller mottagning").select_option("")
    await page.get_by_label("Status").select_option("cancelled")
    await page.get_by_role("button", name="Filtrera").click()
    await expect(table).to_have_count(1)
    await expect(table.nth(0)).to_contain_text("Avbruten")
    await page.get_by_label("Status").select_option("")
    await page.get_by_label("Från och med").fill("2099-01-01")
    await page.get_by_role("button", name="Filtrera").click()
    await expect(page.get_by_text("Inga importer.")).to_be_visible()

    await page.goto(f"{stack.base}/ui/")
    await page.locator("#imports tbody tr").nth(1).get_by_role("link").click()
    await expect(page.get_by_role("heading", name="Kontrollera filen")).to_be_visible()


async def test_exclusions_are_listed_added_and_removed_in_english(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    school = await seed_school(conn, name="Solbacken School")
    await seed_active_patients(conn, school, numbers[400:402])
    await sign_in(page, stack, school.organisation_id, language="en")

    await expect(page.get_by_role("heading", name="Patient/student imports")).to_be_visible()
    await page.get_by_role("link", name="Archive exclusions").click()
    await expect(page.get_by_text("No exclusions.")).to_be_visible()
    number = numbers[400]
    await page.get_by_label("Identity number").fill(f"{number[:8]}-{number[8:]}")
    await page.get_by_role("button", name="Add").click()
    rows = page.locator("#exclusions tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.nth(0)).to_contain_text(number)
    await accessible(page)
    await shot(page, "exclusions-en")

    # Someone not in the organisation, and a malformed number: said plainly, nothing added.
    await page.get_by_label("Identity number").fill(numbers[-1])
    await page.get_by_role("button", name="Add").click()
    await expect(page.get_by_role("alert")).to_have_text("No such patient in the organisation.")
    await page.get_by_label("Identity number").fill("12345")
    await page.get_by_role("button", name="Add").click()
    await expect(page.get_by_role("alert")).to_contain_text("twelve digits")
    assert number not in page.url
    assert numbers[-1] not in page.url
    await expect(rows).to_have_count(1)
    await accessible(page)

    await rows.nth(0).get_by_role("button", name=re.compile("Remove")).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Remove the exclusion?")
    await dialog.get_by_role("button", name="Remove").click()
    await expect(page.get_by_text("No exclusions.")).to_be_visible()

    # Switchable: the user's language comes from the token, Swedish is one click away.
    await page.get_by_role("button", name="På svenska").click()
    await expect(page.get_by_role("heading", name="Undantag från arkivering")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "sv")
    await page.get_by_role("button", name="In English").click()
    await expect(page.get_by_role("heading", name="Archive exclusions")).to_be_visible()


async def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(
            "(s) => document.activeElement !== null && document.activeElement.matches(s)", selector
        ):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def test_the_happy_path_by_keyboard_alone(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    roster = sample_roster(12, school_age_numbers(), invalid=1)
    roster.header += ["Guardian 1 name", "Guardian 2 name"]
    for row in roster.rows:
        row += ["Karin Berg", "Olof Berg"]
    school = await seed_school(conn)
    await sign_in(page, stack, school.organisation_id, language="en")

    await tab_to(page, "a[href='/ui/new']")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Import information")).to_be_visible()
    await tab_to(page, "#archive_missing")
    await page.keyboard.press("Space")
    await expect(page.locator("#archive_missing")).to_be_checked()
    await tab_to(page, "#step1 button[type=submit]")
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", name="Upload file")).to_be_visible()
    await tab_to(page, "#file")
    async with page.expect_file_chooser() as chooser:
        await page.keyboard.press("Space")
    await (await chooser.value).set_files(csv_file(roster.to_csv()))
    await tab_to(page, "#upload button[type=submit]")
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/ui/imports/"))
    await expect(page.locator("#state-text")).to_have_text("Awaiting confirmation", timeout=60_000)
    await expect(page.locator("#plan-guardians-create")).to_have_text("24 new guardians")
    await expect(page.locator("#plan-guardians-update")).to_have_text("0 guardians updated")

    await tab_to(page, "#tab-invalid")
    await page.keyboard.press("Enter")
    await expect(page.locator("#rows tbody tr")).to_have_count(1)
    await tab_to(page, "[data-dialog='confirm-dialog']")
    await page.keyboard.press("Enter")
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    # The focus moves into the dialog and stays there.
    assert await page.evaluate("document.activeElement.closest('dialog')?.id") == "confirm-dialog"
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    assert await page.evaluate("document.activeElement.dataset.dialog") == "confirm-dialog"
    await page.keyboard.press("Enter")
    await tab_to(page, "#confirm-dialog button.primary")
    await page.keyboard.press("Enter")
    await expect(page.locator("#state-text")).to_have_text("Completed", timeout=60_000)
    await expect(page.locator(".figures").first).to_contain_text("12 created")
    await expect(page.locator("#outcome-guardians-created")).to_have_text("24 new guardians")
    await tab_to(page, "#job-actions a.primary")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Patient/student imports")).to_be_visible()


async def at_step_2(page: Page, stack: Stack, conn: asyncpg.Connection) -> School:
    """A new school's administrator at the upload, with step 1's defaults."""
    school = await seed_school(conn)
    await sign_in(page, stack, school.organisation_id)
    await page.goto(f"{stack.base}/ui/new")
    await page.get_by_role("button", name="Ladda upp fil").click()
    return school


async def test_a_wrong_file_type_is_answered_before_the_upload_and_a_dropped_file_is_chosen(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    school = await at_step_2(page, stack, conn)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" else None)
    await page.get_by_label("Fil", exact=True).set_input_files(
        {"name": "elever.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.7"}
    )
    await page.get_by_role("button", name="Kontrollera filen").click()
    await expect(page.get_by_role("alert")).to_contain_text("Filen har fel typ")
    await expect(page.get_by_label("Fil", exact=True)).to_be_focused()
    assert uploads == []

    # Dropped on the drop zone, a file is the chosen one.
    await page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["Personnummer;Förnamn;Efternamn\\r\\n"], "elever.csv"));
            const zone = document.getElementById("drop");
            zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true }));
        }"""
    )
    assert await page.get_by_label("Fil", exact=True).evaluate("i => i.files[0].name") == (
        "elever.csv"
    )
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE organisation_id = $1", school.organisation_id
        )
        == 0
    )


async def test_an_empty_file_is_refused_in_the_users_language(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    school = await at_step_2(page, stack, conn)
    await page.get_by_label("Fil", exact=True).set_input_files(csv_file("", "tom.csv"))
    await page.get_by_role("button", name="Kontrollera filen").click()
    await expect(page.get_by_role("alert")).to_have_text("Filen är tom.")
    await expect(page.get_by_role("heading", name="Ladda upp fil")).to_be_visible()
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE organisation_id = $1", school.organisation_id
        )
        == 0
    )


async def test_an_administrator_of_two_organisations_chooses_between_them(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    first = await seed_school(conn, name="Solbackens skola")
    second = await seed_school(conn, name="Ekbackens skola")
    await conn.execute(
        "UPDATE organisations SET name = 'Elevhälsan Grannkommun' WHERE id = $1",
        second.organisation_id,
    )
    await sign_in(page, stack, first.organisation_id, second.organisation_id)
    await upload_and_check(page, stack, first, sample_roster(3, school_age_numbers()).to_csv())

    await page.goto(f"{stack.base}/ui/new")
    units = page.get_by_label("Skola eller mottagning").locator("option")
    await expect(units).to_have_text(["Ekbackens skola", "Solbackens skola"])

    await page.goto(f"{stack.base}/ui/?organisation_id={first.organisation_id}")
    await expect(page.locator("#imports tbody tr")).to_have_count(1)
    await page.get_by_label("Organisation").select_option(label="Elevhälsan Grannkommun")
    await page.get_by_role("button", name="Filtrera").click()
    await expect(page.get_by_text("Inga importer.")).to_be_visible()
    await accessible(page)
