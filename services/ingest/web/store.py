"""The wizard's own data: the units it offers, and one-time sign-in tickets.

Everything about jobs, reports and exclusions goes through the API's routes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from uuid import UUID

from rosterflow.db import Connection
from rosterflow.storage import ObjectStore, StorageError
from services.ingest.logic import Unit

UNITS_OF_ORGANISATIONS = """
SELECT id, organisation_id, name, school_level FROM units
 WHERE organisation_id = ANY($1::uuid[]) ORDER BY name, id
"""


async def units_of(conn: Connection, organisations: list[UUID]) -> list[Unit]:
    return [Unit(**dict(r)) for r in await conn.fetch(UNITS_OF_ORGANISATIONS, organisations)]


ORGANISATION_NAMES = "SELECT id, name FROM organisations WHERE id = ANY($1::uuid[]) ORDER BY name"


async def organisation_names(conn: Connection, organisations: list[UUID]) -> dict[UUID, str]:
    return {r["id"]: r["name"] for r in await conn.fetch(ORGANISATION_NAMES, organisations)}


# A one-time sign-in link (for local use) names a random ticket; the platform's
# token waits in object storage under the ticket's hash, so neither the link nor
# a log line carries the token, and the object is gone once used.
TICKETS = "ui-tickets"


def _ticket_key(ticket: str) -> str:
    return f"{TICKETS}/{hashlib.sha256(ticket.encode()).hexdigest()}.json"


def issue_ticket(store: ObjectStore, token: str, lifetime_seconds: float) -> str:
    ticket = secrets.token_urlsafe(32)
    body = {"token": token, "expires_at": time.time() + lifetime_seconds}
    store.write_bytes(_ticket_key(ticket), json.dumps(body).encode())
    return ticket


def redeem_ticket(store: ObjectStore, ticket: str) -> str | None:
    """The ticket's token, once; None for an unknown, used or expired ticket."""
    key = _ticket_key(ticket)
    try:
        with store.open_input(key) as stream:
            body = json.loads(stream.read())
    except StorageError:
        return None
    store.delete(key)
    if body["expires_at"] < time.time():
        return None
    token: str = body["token"]
    return token


def sign_in_link(
    base_url: str, store: ObjectStore, token: str, lifetime_seconds: float, target: str = ""
) -> str:
    """A one-time link for local use: the ticket (and where to land) ride in the
    fragment, which the browser never sends to the server."""
    ticket = issue_ticket(store, token, lifetime_seconds)
    landing = f"&next={target}" if target else ""
    return f"{base_url.rstrip('/')}/ui/signin#{ticket}{landing}"
