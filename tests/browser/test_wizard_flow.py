"""The four steps in Swedish, by mouse, ending with the imported patients and the email."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Page, expect

from rosterflow.testing import sample_roster, school_age_numbers, seed_active_patients, seed_school
from tests.support.browser import Stack, accessible, csv_file, mail_to, shot, sign_in


async def test_the_four_steps_import_a_roster_and_the_email_arrives(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    roster = sample_roster(60, numbers, invalid=3)
    # The first 20 students name a guardian: the plan and the outcome count them.
    roster.header.append("Vårdnadshavare 1 namn")
    for index, row in enumerate(roster.rows):
        row.append(f"Karin Vårdnad {index}" if index < 20 else "")
    school = await seed_school(conn, name="Solbackens skola")
    leavers = numbers[100:103]
    await seed_active_patients(conn, school, leavers)
    email = f"karin-{school.unit_id.hex[:8]}@skolhalsan.example"
    await sign_in(page, stack, school.organisation_id, email=email)

    await expect(page.get_by_role("heading", name="Patient/Elevimporter")).to_be_visible()
    await accessible(page)
    await page.get_by_role("link", name="Ny elevimport/Ny patientimport").first.click()

    # Step 1: import information.
    await expect(page.get_by_role("heading", name="Importinformation")).to_be_visible()
    await expect(page.get_by_label("Skola eller mottagning")).to_have_value(str(school.unit_id))
    # A compulsory school: "treat as upper secondary" is not offered.
    await expect(page.get_by_label("Hantera som gymnasieskola")).to_be_hidden()
    # Every format of the registry is offered, SchoolSoft's guardian file among them.
    guardian_file = page.locator("#format option[value=schoolsoft_guardians]")
    await expect(guardian_file).to_have_text("SchoolSoft vårdnadshavare (CSV/XLSX)")
    await page.get_by_label("Arkivera patienter som inte återfinns i importfilen").check()
    await accessible(page)
    await shot(page, "step1-importinformation")
    await page.get_by_role("button", name="Ladda upp fil").click()

    # Step 2: upload.
    await expect(page.get_by_role("heading", name="Ladda upp fil")).to_be_visible()
    await page.get_by_label("Fil", exact=True).set_input_files(csv_file(roster.to_csv()))
    await accessible(page)
    await shot(page, "step2-ladda-upp-fil")
    await page.get_by_role("button", name="Kontrollera filen").click()

    # Step 3: the check, live until it is done.
    await page.wait_for_url(re.compile(r"/ui/imports/[0-9a-f-]{36}$"))
    job_url = page.url
    await expect(page.locator("#state-text")).to_have_text("Väntar på bekräftelse", timeout=60_000)
    await expect(page.get_by_role("heading", name="Kontrollera filen")).to_be_visible()
    await expect(page.locator("#plan")).to_contain_text("60 skapas")
    await expect(page.locator("#plan")).to_contain_text("3 arkiveras")
    await expect(page.locator("#plan-guardians-create")).to_have_text("20 nya vårdnadshavare")
    await expect(page.locator("#plan-guardians-update")).to_have_text("0 vårdnadshavare uppdateras")
    await expect(page.locator("#plan-guardians-unchanged")).to_have_text(
        "0 vårdnadshavare oförändrade"
    )
    await expect(page.locator("#archive-list tbody tr")).to_have_count(3)
    await expect(page.locator("#rows tbody tr")).to_have_count(50)  # a page of 60
    await expect(page.get_by_text("1–50 av 60")).to_be_visible()
    await accessible(page)
    await shot(page, "step3-kontrollera-filen")
    await page.locator("#tab-invalid").click()
    await expect(page.locator("#rows tbody tr")).to_have_count(3)
    await accessible(page)
    await shot(page, "step3-ogiltiga-rader")

    # Step 4: confirm in the dialog, watch it import, see the outcome.
    await page.get_by_role("button", name="Importera filen").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Importera 60 giltiga rader till Solbackens skola?")
    await accessible(page)
    await dialog.get_by_role("button", name="Importera filen").click()
    await expect(page.locator("#state-text")).to_have_text("Klar", timeout=60_000)
    await expect(page.get_by_role("heading", name="Importera filen")).to_be_visible()
    await expect(page.get_by_role("heading", name="Resultat")).to_be_visible()
    await expect(page.locator(".figures").first).to_contain_text("60 skapade")
    await expect(page.locator(".figures").first).to_contain_text("3 arkiverade")
    await expect(page.locator("#outcome-guardians-created")).to_have_text("20 nya vårdnadshavare")
    await expect(page.locator("#rows caption")).to_have_text("Importerade patienter")
    await expect(page.locator("#rows tbody tr")).to_have_count(50)

    # The email went out, and links to this very page.
    mail = await mail_to(email)
    body = mail.get_body(("plain",))
    assert body is not None
    assert job_url in body.get_content()
    await page.reload()
    await expect(page.locator("#email-status")).to_have_text("E-post skickad till dig.")
    await accessible(page)
    await shot(page, "step4-importera-filen")
    active = await conn.fetchval(
        "SELECT count(*) FROM enrolments WHERE unit_id = $1 AND status = 'active'", school.unit_id
    )
    assert active == 60

    await page.get_by_role("link", name="Klar").click()
    await expect(page.locator("#imports tbody tr")).to_have_count(1)
    await expect(page.locator("#imports")).to_contain_text("elever.csv")
