"""SMTP sink for the rosterflow local development stack.

Accepts every message from any sender to any recipient and stores it as
``<mailbox>/<UTC timestamp>-<uuid>.eml``. Each file is written under a hidden
temporary name in the same directory and then renamed with os.replace, so a
reader that lists ``*.eml`` never sees a half-written message.

Two headers are prepended to the stored message so tests can check the SMTP
envelope (which is otherwise lost, e.g. for Bcc recipients):
``X-Envelope-From`` and ``X-Envelope-To``.

Run with the project venv (aiosmtpd is a dev dependency):

    .venv/bin/python deploy/local/smtp_sink.py --host 127.0.0.1 --port 2525 --mailbox .local/mail
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

SERVER_HOSTNAME = "rosterflow-smtp-sink"
# Recipients in this reserved domain are refused permanently (550), as a relay
# refuses a bad address: tests of the notifier's refusal handling use it.
REFUSED_DOMAIN = "@refused.invalid"
# Recipients in this one are deferred (451), as a greylisting or overloaded
# relay defers: tests show that such an email is retried without holding up
# anybody else's.
TEMPFAIL_DOMAIN = "@tempfail.invalid"


class MailboxHandler:
    """aiosmtpd handler that writes each received message to the mailbox directory."""

    def __init__(self, mailbox: Path) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower().endswith(REFUSED_DOMAIN):
            return "550 5.1.1 Recipient address rejected: no such user"
        if address.lower().endswith(TEMPFAIL_DOMAIN):
            return "451 4.7.1 Recipient address deferred: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        path = self.store(envelope)
        recipients = ",".join(envelope.rcpt_tos)
        size = path.stat().st_size
        print(
            f"{utc_now_iso()} stored {path.name} from=<{envelope.mail_from}> "
            f"to=<{recipients}> bytes={size}",
            flush=True,
        )
        return "250 Message accepted for delivery"

    def store(self, envelope: Envelope) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{uuid.uuid4()}.eml"
        final = self.mailbox / name
        partial = self.mailbox / f".{name}.part"
        with open(partial, "xb") as handle:
            handle.write(envelope_headers(envelope))
            handle.write(message_bytes(envelope))
        os.replace(partial, final)
        return final


def message_bytes(envelope: Envelope) -> bytes:
    if envelope.original_content is not None:
        return envelope.original_content
    content = envelope.content
    if isinstance(content, str):
        return content.encode("utf-8", errors="surrogateescape")
    return content or b""


def envelope_headers(envelope: Envelope) -> bytes:
    sender = envelope.mail_from or ""
    recipients = ", ".join(envelope.rcpt_tos)
    text = f"X-Envelope-From: <{sender}>\r\nX-Envelope-To: {recipients}\r\n"
    return text.encode("utf-8", errors="surrogateescape")


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def serve(host: str, port: int, mailbox: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = MailboxHandler(mailbox)

    def make_protocol() -> SMTP:
        return SMTP(handler, hostname=SERVER_HOSTNAME, enable_SMTPUTF8=True, loop=loop)

    server = await loop.create_server(make_protocol, host=host, port=port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"{utc_now_iso()} smtp sink listening on {host}:{port}, mailbox {mailbox}", flush=True)
    async with server:
        await stop.wait()
    print(f"{utc_now_iso()} smtp sink stopped", flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Store each received SMTP message as .eml file.")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2525, help="listen port (default 2525)")
    parser.add_argument("--mailbox", type=Path, required=True, help="directory for the .eml files")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    mailbox: Path = args.mailbox.resolve()
    mailbox.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(serve(args.host, args.port, mailbox))
    except OSError as exc:
        message = f"smtp sink: cannot listen on {args.host}:{args.port}: {exc}"
        print(message, file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
