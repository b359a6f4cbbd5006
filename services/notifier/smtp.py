"""Handing one stored message to the SMTP relay, and what its answer means.

Security, authentication and the CA to trust come from SmtpSettings:
``none`` speaks plain SMTP (the local sink), ``starttls`` upgrades the
connection before anything else is said, ``tls`` connects with TLS at once
(port 465 style). Certificates and host names are always verified.
"""

from __future__ import annotations

import asyncio
import ssl

import aiosmtplib

from rosterflow.settings import SmtpSettings


class DeliveryError(Exception):
    """Why the relay did not take the message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:500]


class Refused(DeliveryError):
    """Permanent: the relay will never accept this recipient or message (a 5xx answer)."""


class Deferred(DeliveryError):
    """Worth another try later: the relay is down, busy, or answered 4xx."""


def classify(exc: Exception) -> DeliveryError:
    """Refused only when the refusal is about this email; anything else may heal.

    A 5xx to AUTH or MAIL FROM means the notifier's own configuration is
    wrong (password, sender): every email would fail alike, and each should
    go out once an operator fixes it, so those are retried, not dropped.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        answers = exc.recipients
        reason = "; ".join(f"{r.code} {r.message}" for r in answers) or str(exc)
        permanent = bool(answers) and all(r.code >= 500 for r in answers)
        return Refused(reason) if permanent else Deferred(reason)
    if isinstance(exc, aiosmtplib.SMTPDataError):
        reason = f"{exc.code} {exc.message}"
        return Refused(reason) if exc.code >= 500 else Deferred(reason)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return Deferred(f"{exc.code} {exc.message} ({type(exc).__name__})")
    return Deferred(f"{type(exc).__name__}: {exc}")


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.security == "none":
        return None
    return ssl.create_default_context(
        cafile=str(settings.ca_file) if settings.ca_file is not None else None
    )


async def send(settings: SmtpSettings, message: bytes, sender: str, recipient: str) -> None:
    """Send, or raise Refused or Deferred.

    The whole conversation ends within half the lease: no other instance takes
    the email over while this one may still be talking to the relay.
    """
    try:
        async with asyncio.timeout(settings.send_lease_seconds / 2):
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[recipient],
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password.get_secret_value() if settings.password else None,
                use_tls=settings.security == "tls",
                # False, not None: None would upgrade opportunistically even
                # when the configuration says plain SMTP.
                start_tls=settings.security == "starttls",
                tls_context=tls_context(settings),
                timeout=settings.timeout_seconds,
            )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise classify(exc) from exc
