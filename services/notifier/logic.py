"""The email an administrator gets when an import ends. No I/O here.

Only counts and codes from the job go in: never an identity number or a
patient's name. Values users typed (file and unit names) are escaped for
HTML and stripped of line breaks, so they can never add headers or markup.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from rosterflow.events import ImportCounts, JobFinished, Language, Outcome
from rosterflow.jobs import Job

SUBJECTS = {
    Language.SV: {
        Outcome.COMPLETED: "Importen är klar",
        Outcome.FAILED: "Importen misslyckades",
        Outcome.CANCELLED: "Importen avbröts",
        Outcome.REJECTED: "Importen avvisades",
    },
    Language.EN: {
        Outcome.COMPLETED: "The import is complete",
        Outcome.FAILED: "The import failed",
        Outcome.CANCELLED: "The import was cancelled",
        Outcome.REJECTED: "The import was rejected",
    },
}

LABELS = {
    Language.SV: {
        "unit": "Enhet",
        "school_year": "Läsår",
        "file": "Fil",
        "created": "Nya",
        "updated": "Uppdaterade",
        "unchanged": "Oförändrade",
        "reactivated": "Återaktiverade",
        "archived": "Arkiverade",
        "skipped": "Överhoppade rader",
        "duration": "Tid",
        "link": "Visa importen",
        "reason": "Orsak",
        "nothing": "Ingenting importerades; journalen är oförändrad.",
    },
    Language.EN: {
        "unit": "Unit",
        "school_year": "School year",
        "file": "File",
        "created": "Created",
        "updated": "Updated",
        "unchanged": "Unchanged",
        "reactivated": "Re-activated",
        "archived": "Archived",
        "skipped": "Skipped rows",
        "duration": "Duration",
        "link": "View the import",
        "reason": "Reason",
        "nothing": "Nothing was imported; the journal is unchanged.",
    },
}


@dataclass(frozen=True)
class Email:
    recipient: str
    subject: str
    text: str
    html: str


def _plain(value: str) -> str:
    return " ".join(value.split())


def duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s"


def compose(job: Job, event: JobFinished, unit_name: str, link: str) -> Email:
    lang = Language(job.requested_by_language)
    words = LABELS[lang]
    lines: list[tuple[str, str]] = [
        (words["unit"], _plain(unit_name)),
        (words["school_year"], job.school_year),
        (words["file"], _plain(job.file_name)),
    ]
    counts = event.imported or ImportCounts(created=0, updated=0, unchanged=0, reactivated=0)
    if event.outcome is Outcome.COMPLETED:
        lines += [
            (words[name], str(getattr(counts, name)))
            for name in ("created", "updated", "unchanged", "reactivated")
        ]
        lines.append((words["archived"], str(event.archived)))
    skipped = (job.check_result or {}).get("counts", {}).get("invalid")
    if skipped is not None:
        lines.append((words["skipped"], str(skipped)))
    if job.finished_at is not None:
        # Rounded up: a job that took 0.4 s did not take "0 s".
        seconds = math.ceil((job.finished_at - job.received_at).total_seconds())
        lines.append((words["duration"], duration(seconds)))
    if event.error_message:
        lines.append((words["reason"], _plain(event.error_message)))
    subject = SUBJECTS[lang][event.outcome]
    note = (
        words["nothing"]
        if event.outcome in (Outcome.FAILED, Outcome.REJECTED) and event.imported is None
        else ""
    )
    text = "\n".join(
        [
            subject,
            "",
            *(f"{k}: {v}" for k, v in lines),
            "",
            *([note, ""] if note else []),
            f"{words['link']}: {link}",
            "",
        ]
    )
    rows = "".join(
        f"<tr><th align=left>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in lines
    )
    body = (
        f"<h1>{html.escape(subject)}</h1><table>{rows}</table>"
        + (f"<p>{html.escape(note)}</p>" if note else "")
        + f'<p><a href="{html.escape(link)}">{html.escape(words["link"])}</a></p>'
    )
    return Email(job.requested_by_email, subject, text, body)


def to_message(email: Email, sender: str, domain: str = "rosterflow.invalid") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.recipient
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(email.text)
    message.add_alternative(
        f"<!doctype html><html><body>{email.html}</body></html>", subtype="html"
    )
    return message
