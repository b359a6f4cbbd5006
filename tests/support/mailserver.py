"""SMTP servers of a test's own (aiosmtpd), for what the shared sink cannot show:
a relay that is down and comes up, TLS with a certificate of the test's own,
authentication.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed(directory: Path) -> Certificate:
    """A certificate for 127.0.0.1, made by the openssl command line."""
    cert, key = directory / "relay.pem", directory / "relay.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)


@dataclass(frozen=True)
class Received:
    message: EmailMessage
    recipients: list[str]
    login: str | None
    encrypted: bool


@dataclass
class Relay:
    """What the server received, and the accounts it accepts."""

    users: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    # Every connection a client opened, in order.
    connections: list[SMTP] = field(default_factory=list)

    def hang_up(self) -> None:
        """Close every open connection, as a relay does after its idle timeout."""
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.recipients]

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = self.users.get(data.login.decode()) == data.password.decode()
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=data)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        self.received.append(
            Received(
                parse(envelope.original_content or b""),
                list(envelope.rcpt_tos),
                auth.login.decode() if isinstance(auth, LoginPassword) else None,
                server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 OK"


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@asynccontextmanager
async def smtp_server(
    port: int,
    *,
    users: dict[str, str] | None = None,
    starttls: Certificate | None = None,
    tls: Certificate | None = None,
) -> AsyncIterator[Relay]:
    """A relay on 127.0.0.1:port: plain, STARTTLS required, or TLS from the first byte.

    With ``users``, AUTH is required before MAIL.
    """
    relay = Relay(users or {})
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        with warnings.catch_warnings():
            # It warns of AUTH without TLS: with implicit TLS it cannot tell.
            warnings.simplefilter("ignore", UserWarning)
            connection = _smtp()
        relay.connections.append(connection)
        return connection

    def _smtp() -> SMTP:
        return SMTP(
            relay,
            hostname="test-relay",
            loop=loop,
            tls_context=starttls.server_context() if starttls else None,
            require_starttls=starttls is not None,
            authenticator=relay.authenticate if users else None,
            auth_required=bool(users),
            # With implicit TLS aiosmtpd does not know the line is encrypted;
            # it is, from the first byte.
            auth_require_tls=tls is None,
        )

    server = await loop.create_server(
        protocol, "127.0.0.1", port, ssl=tls.server_context() if tls else None
    )
    try:
        yield relay
    finally:
        server.close()
        await server.wait_closed()
