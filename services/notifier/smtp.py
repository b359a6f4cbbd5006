"""Handing one stored message to the SMTP relay, and what its answer means.

Security, authentication and the CA to trust come from SmtpSettings:
``none`` speaks plain SMTP (the local sink), ``starttls`` upgrades the
connection before anything else is said, ``tls`` connects with TLS at once
(port 465 style). Certificates and host names are always verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

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


# An open connection is used again for at most this long after its last email.
# Relays close idle connections themselves (often after a minute or more);
# the next email then opens a new one.
KEEP_ALIVE_SECONDS = 30.0


class Relay:
    """SMTP connections kept open between emails, instead of one per email.

    A connection carries one conversation at a time: a send takes an idle one
    (or opens one), and puts it back when the relay accepted the email. A
    failed send closes its connection, so the next email starts afresh. A kept
    connection the relay has closed meanwhile is replaced once, within the
    same send; a relay that is down fails the send as it always did.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        # (connection, when it was last used), the most recently used last.
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._keep = settings.max_concurrent_sends + 1

    async def send(self, message: bytes, sender: str, recipient: str) -> None:
        """Send, or raise Refused or Deferred.

        The whole conversation ends within half the lease: no other instance
        takes the email over while this one may still be talking to the relay.
        """
        try:
            async with asyncio.timeout(self._settings.send_lease_seconds / 2):
                await self._send(message, sender, recipient)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise classify(exc) from exc

    async def _send(self, message: bytes, sender: str, recipient: str) -> None:
        kept = self._take()
        if kept is not None:
            try:
                await kept.sendmail(sender, [recipient], message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                # Closed by the relay while idle (its own timeout, a restart):
                # the email goes on a new connection. Should the relay have
                # closed it after accepting the data but before answering, the
                # email arrives twice: delivery is at least once, as a retry's is.
                kept.close()
            except BaseException:
                kept.close()
                raise
            else:
                self._put(kept)
                return
        client = self._client()
        try:
            await client.connect()
            await client.sendmail(sender, [recipient], message)
        except BaseException:
            client.close()
            raise
        self._put(client)

    def _client(self) -> aiosmtplib.SMTP:
        settings = self._settings
        return aiosmtplib.SMTP(
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

    def _take(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            client, used = self._idle.pop()
            if client.is_connected and now - used <= KEEP_ALIVE_SECONDS:
                return client
            client.close()
        return None

    def _put(self, client: aiosmtplib.SMTP) -> None:
        if len(self._idle) >= self._keep:
            client.close()
            return
        self._idle.append((client, time.monotonic()))

    async def close(self) -> None:
        """Say QUIT on the idle connections (on shutdown)."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            if client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await client.quit(timeout=self._settings.timeout_seconds)
            client.close()
