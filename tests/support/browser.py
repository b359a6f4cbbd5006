"""What the browser tests share besides fixtures: files to upload, the mailbox."""

from __future__ import annotations

from email.message import EmailMessage

from playwright.async_api import FilePayload

from rosterflow.testing import wait_for
from tests.support.pipeline import mails_to


def csv_file(content: str, name: str = "elever.csv") -> FilePayload:
    """A roster as Excel on Swedish Windows saves it."""
    return {"name": name, "mimeType": "text/csv", "buffer": content.encode("cp1252")}


async def mail_to(address: str) -> EmailMessage:
    async def probe() -> EmailMessage | None:
        found = mails_to(address)
        return found[0] if found else None

    return await wait_for(probe, within=60, what=f"an email to {address}")
