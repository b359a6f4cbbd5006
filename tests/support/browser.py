"""What the browser tests share besides fixtures: the running services, signing in, files to
upload, the first two steps, screenshots, the accessibility check, the mailbox."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from email.message import EmailMessage
from uuid import UUID

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import FilePayload, Page, expect

from rosterflow.launcher import Services
from rosterflow.settings import LOCAL_DIR, REPO_ROOT, Settings
from rosterflow.testing import School, mint_token, wait_for
from tests.support.pipeline import mails_to


def csv_file(content: str, name: str = "elever.csv") -> FilePayload:
    """A roster as Excel on Swedish Windows saves it."""
    return {"name": name, "mimeType": "text/csv", "buffer": content.encode("cp1252")}


async def mail_to(address: str) -> EmailMessage:
    async def probe() -> EmailMessage | None:
        found = mails_to(address)
        return found[0] if found else None

    return await wait_for(probe, within=60, what=f"an email to {address}")


@dataclass
class Stack:
    settings: Settings
    services: Services
    dsn: str

    @property
    def base(self) -> str:
        return self.services.base_url

    def token(self, *organisations: UUID, **claims: object) -> str:
        return mint_token(list(organisations), **claims)  # type: ignore[arg-type]


# Every screenshot a test takes lands here; with ROSTERFLOW_DOCS_SCREENSHOTS=1
# the ones named for the documentation are copied into docs/screenshots.
SHOTS = LOCAL_DIR / "screenshots"
DOCS_SHOTS = REPO_ROOT / "docs" / "screenshots"


async def sign_in(page: Page, stack: Stack, *organisations: UUID, **claims: object) -> None:
    await launch(page, stack, stack.token(*organisations, **claims))


async def launch(page: Page, stack: Stack, token: str) -> None:
    """As the platform does: its token in a form POST, never in an address.

    From a blank page, as from the platform's own site: a cross-site POST."""
    await page.goto("about:blank")
    await page.evaluate(
        """([token, action]) => {
            const form = document.createElement("form");
            form.method = "post"; form.action = action;
            const input = document.createElement("input");
            input.type = "hidden"; input.name = "token"; input.value = token;
            form.append(input); document.body.append(form); form.submit();
        }""",
        [token, f"{stack.base}/ui/launch"],
    )
    await page.wait_for_url(f"{stack.base}/ui/")


async def shot(page: Page, name: str) -> None:
    """The whole page into .local/screenshots; what the window shows into docs/ on request."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    if os.environ.get("ROSTERFLOW_DOCS_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=DOCS_SHOTS / f"{name}.png")


_axe = Axe()


async def accessible(page: Page) -> None:
    """axe-core on the page as it is: no serious or critical violation (WCAG 2.1 AA)."""
    results = await _axe.run(
        page,
        options={
            "runOnly": {
                "type": "tag",
                "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
            }
        },
    )
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: {bad}"


async def upload_and_check(
    page: Page, stack: Stack, school: School, content: str, *, archive_missing: bool = False
) -> str:
    """Steps 1 and 2 by mouse; the job page's address once the check is done."""
    await page.goto(f"{stack.base}/ui/new")
    await page.get_by_label("Skola eller mottagning").select_option(str(school.unit_id))
    if archive_missing:
        await page.get_by_label("Arkivera patienter som inte återfinns i importfilen").check()
    await page.get_by_role("button", name="Ladda upp fil").click()
    await page.get_by_label("Fil", exact=True).set_input_files(csv_file(content))
    await page.get_by_role("button", name="Kontrollera filen").click()
    await page.wait_for_url(re.compile(r"/ui/imports/[0-9a-f-]{36}$"))
    await expect(page.locator("#state-text")).to_have_text("Väntar på bekräftelse", timeout=60_000)
    return page.url


async def confirm(page: Page) -> None:
    await page.locator("#job-actions").get_by_role("button", name="Importera filen").click()
    await page.get_by_role("dialog").get_by_role("button", name="Importera filen").click()
