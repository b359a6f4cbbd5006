"""A file whose columns the import does not know: mapped on the job page, checked again."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Page, expect

from rosterflow.testing import school_age_numbers, seed_school
from tests.support.browser import Stack, accessible, csv_file, sign_in


async def test_the_columns_are_mapped_on_the_job_page_and_the_file_checked_again(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    content = "\r\n".join(
        ["Elevens personnr,Förnamn,Efternamn,Grupp", f"{numbers[0]},Märta,Åberg,7A",
         f"{numbers[1]},Bo,Öst,8B", ""]
    )  # fmt: skip
    school = await seed_school(conn, name="Solbackens skola")
    await sign_in(page, stack, school.organisation_id)
    await page.get_by_role("link", name="Ny elevimport/Ny patientimport").first.click()
    await page.get_by_role("button", name="Ladda upp fil").click()
    await page.get_by_label("Fil", exact=True).set_input_files(csv_file(content, "tersus.csv"))
    await page.get_by_role("button", name="Kontrollera filen").click()
    await page.wait_for_url(re.compile(r"/ui/imports/[0-9a-f-]{36}$"))
    first = page.url

    mapping = page.locator("#mapping")
    await expect(mapping).to_be_visible(timeout=60_000)
    await expect(page.get_by_label("Elevens personnr")).to_have_value("identity")
    await expect(page.get_by_label("Grupp")).to_have_value("class")
    await accessible(page)
    await page.get_by_role("button", name="Spara kopplingen och kontrollera igen").click()

    await page.wait_for_url(lambda url: url != first and "/ui/imports/" in url)
    await expect(page.locator("#state-text")).to_have_text("Väntar på bekräftelse", timeout=60_000)
    await expect(page.locator("#plan")).to_contain_text("2 skapas")
    # A file without guardians says nothing of them.
    await expect(page.locator("#plan")).not_to_contain_text("vårdnadshavare")
    await page.goto(first)
    await expect(page.locator("#mapping")).to_be_hidden()


async def test_a_repeated_column_is_told_apart_on_the_job_page(
    page: Page, stack: Stack, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    content = "\r\n".join(
        ["Personnummer;Förnamn;Efternamn;Klass;Klass", f"{numbers[0]};Märta;Åberg;Grupp 1;7A",
         f"{numbers[1]};Bo;Öst;Grupp 2;8B", ""]
    )  # fmt: skip
    school = await seed_school(conn, name="Solbackens skola")
    await sign_in(page, stack, school.organisation_id)
    await page.get_by_role("link", name="Ny elevimport/Ny patientimport").first.click()
    await page.get_by_role("button", name="Ladda upp fil").click()
    await page.get_by_label("Fil", exact=True).set_input_files(csv_file(content))
    await page.get_by_role("button", name="Kontrollera filen").click()
    await page.wait_for_url(re.compile(r"/ui/imports/[0-9a-f-]{36}$"))

    await expect(page.locator("#mapping")).to_be_visible(timeout=60_000)
    fourth = page.get_by_label("Klass (kolumn 4, namnet finns flera gånger)")
    fifth = page.get_by_label("Klass (kolumn 5, namnet finns flera gånger)")
    await expect(fourth).to_have_value("class")
    await expect(fifth).to_have_value("")
    await accessible(page)
    await fourth.select_option("")
    await fifth.select_option("class")
    await page.get_by_role("button", name="Spara kopplingen och kontrollera igen").click()

    await expect(page.locator("#state-text")).to_have_text("Väntar på bekräftelse", timeout=60_000)
    await expect(page.locator("#plan")).to_contain_text("2 skapas")
    await expect(page.locator("#rows tbody")).to_contain_text("7A")
    await expect(page.locator("#rows tbody")).not_to_contain_text("Grupp 1")
