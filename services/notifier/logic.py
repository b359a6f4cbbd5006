"""The email an administrator gets when an import ends. No I/O here.

Only counts, reason codes and the report's reason messages go in: never an
identity number, a patient's name or a cell of the file. Values users typed
(file and unit names) are stripped of control characters and line breaks and
escaped for HTML, so they can neither add headers nor markup; headers hold
fixed texts only (and the recipient, parsed as one address).
"""

from __future__ import annotations

import email.errors
import email.policy
import html
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from uuid import UUID

from rosterflow.events import JobFinished, Language, Outcome
from rosterflow.jobs import Job
from services.notifier.texts import (
    ERRORS,
    LABELS,
    SUBJECT_DETAILS,
    SUBJECTS,
    SUMMARIES,
    UNKNOWN_ERROR,
)


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, making each header's class once.

    The stdlib's ``HeaderRegistry`` builds a new class (``type(…)``) for every
    header it parses; for the ~16 headers of one email that was ~1.5 ms of the
    notifier's CPU. The classes it builds hold no state, so one per header
    name serves every message.
    """

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# The stdlib's default policy (and SMTP's, for the wire) with that registry.
_POLICY = email.policy.default.clone(header_factory=_HeaderClasses())
_SMTP = _POLICY.clone(linesep="\r\n")

# A file name is at most 255 characters; a unit name has no limit in the
# database, and an email line need not show more than this.
_SHOWN_CHARS = 200
_COUNTS = ("created", "updated", "unchanged", "reactivated")
# Shown only when the file touched any guardian: most files name none.
_GUARDIAN_COUNTS = ("guardians_created", "guardians_updated", "guardians_unchanged")
_ARCHIVE_CODES = ("archive_held", "archive_not_approved")


class InvalidRecipient(ValueError):
    """The requester's address is not one SMTP could deliver to."""


@dataclass(frozen=True)
class Reason:
    """One of the commonest reasons rows were skipped, as the check counted them."""

    code: str
    message: str
    rows: int


@dataclass(frozen=True)
class Email:
    recipient: str
    language: Language
    subject: str
    text: str
    html: str


def plain(value: str) -> str:
    """One line of printable text: no control or format characters, no line breaks."""
    # Categories C* are controls (CR, LF, NUL, ESC), format characters (bidi
    # overrides that could disguise a name) and unassigned code points.
    printable = "".join(" " if unicodedata.category(c).startswith("C") else c for c in value)
    shown = " ".join(printable.split())
    return shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 1] + "…"


def duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def language_of(job: Job) -> Language:
    try:
        return Language(job.requested_by_language)
    except ValueError:
        return Language.SV  # the product's default language


def failure_reason(code: str | None, lang: Language) -> str:
    """A reason in the requester's language, chosen by code: never the job's free text."""
    if code is None:
        return UNKNOWN_ERROR[lang].format(code="–")
    known = ERRORS[lang].get(code)
    # Codes are identifiers the services chose; the filter keeps it that way.
    return known or UNKNOWN_ERROR[lang].format(code=re.sub(r"[^a-z0-9_]", "", code)[:64])


@dataclass(frozen=True)
class _Story:
    subject_detail: str | None
    summary: tuple[str, ...]
    reason: bool = False


def _story(job: Job, event: JobFinished) -> _Story:
    applied = event.imported is not None
    code = event.error_code
    if event.outcome is Outcome.COMPLETED:
        if code in _ARCHIVE_CODES:
            assert code is not None
            return _Story(code, ("completed", code))
        if not job.archive_missing:
            return _Story(None, ("completed", "no_archive_asked"))
        return _Story(None, ("completed", "archived" if event.archived else "none_missing"))
    if event.outcome is Outcome.CANCELLED:
        if applied:
            return _Story("rows_saved", ("cancelled_after_import",))
        if code == "superseded":
            return _Story(None, ("superseded", "nothing"))
        return _Story(None, ("cancelled", "nothing"))
    if event.outcome is Outcome.FAILED:
        if applied:
            return _Story("rows_saved", ("failed_after_import",), reason=True)
        return _Story(None, ("failed", "nothing"), reason=True)
    return _Story(None, ("rejected", "nothing"), reason=True)


def compose(
    job: Job, event: JobFinished, unit_name: str, link: str, reasons: Sequence[Reason] = ()
) -> Email:
    lang = language_of(job)
    words = LABELS[lang]
    story = _story(job, event)
    subject = SUBJECTS[lang][event.outcome]
    if story.subject_detail is not None:
        subject = f"{subject} – {SUBJECT_DETAILS[lang][story.subject_detail]}"
    summary = " ".join(SUMMARIES[lang][key] for key in story.summary)

    lines: list[tuple[str, str]] = [
        (words["unit"], plain(unit_name)),
        (words["school_year"], plain(job.school_year)),
        (words["file"], plain(job.file_name)),
    ]
    if event.imported is not None:
        lines += [(words[name], str(getattr(event.imported, name))) for name in _COUNTS]
        if any(getattr(event.imported, name) for name in _GUARDIAN_COUNTS):
            lines += [
                (words[name], str(getattr(event.imported, name))) for name in _GUARDIAN_COUNTS
            ]
        lines.append((words["archived"], str(event.archived)))
    if job.check_result is not None:
        invalid = job.check_result.counts.invalid
        label = "skipped" if event.imported is not None else "rows_with_errors"
        lines.append((words[label], str(invalid)))
    if job.finished_at is not None:
        # Rounded up: a job that took 0.4 s did not take "0 s".
        seconds = math.ceil((job.finished_at - job.received_at).total_seconds())
        lines.append((words["duration"], duration(max(seconds, 0))))
    if story.reason:
        lines.append((words["reason"], failure_reason(event.error_code, lang)))
    shown_reasons = [
        f"{plain(r.message)} ({r.rows} {words['row'] if r.rows == 1 else words['rows']})"
        for r in reasons
    ]

    text = "\n".join(
        [
            subject,
            "",
            summary,
            "",
            *(f"{k}: {v}" for k, v in lines),
            "",
            *([f"{words['reasons']}:", *(f"- {r}" for r in shown_reasons), ""] if reasons else []),
            f"{words['link']}: {link}",
            "",
        ]
    )
    rows = "".join(
        f"<tr><th align=left>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in lines
    )
    reasons_html = (
        f"<h2>{html.escape(words['reasons'])}</h2><ul>"
        + "".join(f"<li>{html.escape(r)}</li>" for r in shown_reasons)
        + "</ul>"
        if reasons
        else ""
    )
    body = (
        f"<h1>{html.escape(subject)}</h1><p>{html.escape(summary)}</p><table>{rows}</table>"
        + reasons_html
        + f'<p><a href="{html.escape(link)}">{html.escape(words["link"])}</a></p>'
    )
    return Email(job.requested_by_email, lang, subject, text, body)


def message_id(job_id: UUID, outcome: Outcome, sender: str) -> str:
    """The same Message-ID for every attempt at one job outcome's email.

    A rare duplicate (see handlers) then carries the id of the original, so
    clients that deduplicate by Message-ID show it once.
    """
    domain = parseaddr(sender)[1].rpartition("@")[2] or "rosterflow.invalid"
    # Hex without dashes keeps the header on one line for ordinary domains.
    return f"<{job_id.hex}.{outcome.value}@{domain}>"


def envelope_sender(sender: str) -> str:
    return parseaddr(sender)[1]


def to_message(
    email_: Email, sender: str, msgid: str, date: datetime | None = None
) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    try:
        message["To"] = Address(addr_spec=email_.recipient)
    except (ValueError, email.errors.HeaderParseError) as exc:
        raise InvalidRecipient(f"not a deliverable address ({type(exc).__name__})") from exc
    message["Subject"] = email_.subject
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = msgid
    # RFC 3834: an automatic message; vacation responders stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email_.text)
    message.add_alternative(
        f'<!doctype html><html lang="{email_.language.value}"><head><meta charset="utf-8">'
        f"<title>{html.escape(email_.subject)}</title></head><body>{email_.html}</body></html>",
        subtype="html",
    )
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as it goes over SMTP (CRLF line ends), stored before the first attempt."""
    return message.as_bytes(policy=_SMTP)
