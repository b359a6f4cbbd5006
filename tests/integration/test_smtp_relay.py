"""The notifier's SMTP connections: kept open between emails, replaced when the relay hangs up."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from rosterflow.launcher import free_port
from rosterflow.settings import SmtpSettings
from rosterflow.testing import wait_for
from services.notifier.smtp import Deferred, Relay
from tests.support.mailserver import smtp_server

SENDER = "no-reply@rosterflow.invalid"


def email(subject: str) -> bytes:
    return f"Subject: {subject}\r\nMessage-ID: <{uuid4().hex}@test>\r\n\r\nbody\r\n".encode()


def relay_at(port: int) -> Relay:
    return Relay(SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=5.0))


async def test_emails_one_after_another_share_one_connection() -> None:
    port = free_port()
    relay = relay_at(port)
    async with smtp_server(port) as server:
        for n in range(3):
            await relay.send(email(f"n{n}"), SENDER, f"admin{n}@skolhalsan.example")
        await relay.close()
    assert [r.message["Subject"] for r in server.received] == ["n0", "n1", "n2"]
    assert [r.recipients for r in server.received] == [
        [f"admin{n}@skolhalsan.example"] for n in range(3)
    ]
    assert len(server.connections) == 1


async def test_emails_at_the_same_time_each_get_a_connection_then_reuse_them() -> None:
    port = free_port()
    relay = relay_at(port)
    async with smtp_server(port) as server:
        first = [email(f"a{n}") for n in range(3)]
        await asyncio.gather(*(relay.send(m, SENDER, "a@skolhalsan.example") for m in first))
        opened = len(server.connections)
        for n in range(3):
            await relay.send(email(f"b{n}"), SENDER, "b@skolhalsan.example")
        await relay.close()
    assert sorted(r.message["Subject"] for r in server.received) == [
        "a0", "a1", "a2", "b0", "b1", "b2"
    ]  # fmt: skip
    assert opened == 3
    assert len(server.connections) == 3  # the later ones went over kept connections


# 0: the client learns of the hang-up only when it speaks (the retry within the
# send); 0.05 s: it has seen the connection close before the next send.
@pytest.mark.parametrize("pause", [0.0, 0.05])
async def test_a_connection_the_relay_closed_is_replaced_and_the_email_still_goes(
    pause: float,
) -> None:
    port = free_port()
    relay = relay_at(port)
    async with smtp_server(port) as server:
        await relay.send(email("before"), SENDER, "admin@skolhalsan.example")
        server.hang_up()
        await asyncio.sleep(pause)
        await relay.send(email("after"), SENDER, "admin@skolhalsan.example")
        await relay.close()
    assert [r.message["Subject"] for r in server.received] == ["before", "after"]
    assert len(server.connections) == 2


async def test_a_relay_gone_after_an_email_defers_the_next_as_when_it_was_never_there() -> None:
    port = free_port()
    relay = relay_at(port)
    async with smtp_server(port) as server:
        await relay.send(email("before"), SENDER, "admin@skolhalsan.example")
        server.hang_up()
    with pytest.raises(Deferred) as raised:
        await relay.send(email("after"), SENDER, "admin@skolhalsan.example")
    assert raised.value.reason.startswith("SMTPConnectError")
    assert [r.message["Subject"] for r in server.received] == ["before"]


async def test_closing_says_quit_on_the_kept_connections() -> None:
    port = free_port()
    relay = relay_at(port)
    async with smtp_server(port) as server:
        await relay.send(email("one"), SENDER, "admin@skolhalsan.example")
        [connection] = server.connections
        assert connection.transport is not None

        async def dropped() -> bool:  # aiosmtpd drops the connection after answering QUIT
            return connection.transport is None

        await relay.close()
        await wait_for(dropped, within=5, what="the relay's QUIT answered")
