"""Building blocks for tests, the demo and benchmarks: sample rosters, seeding, waiting.

Identity numbers come only from Skatteverket's published test numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar
from uuid import UUID, uuid4

import jwt
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from rosterflow.db import Connection
from rosterflow.events import Message
from rosterflow.kafka.admin import ensure_topics
from rosterflow.kafka.broker import topic_name
from rosterflow.runtime import Runtime
from rosterflow.settings import KafkaSettings
from rosterflow.topics import ALL_TOPICS

# Skatteverket's published test numbers, shipped with the package (testdata/README.md).
TEST_NUMBERS = Path(__file__).resolve().parent / "testdata" / "skatteverket-testpersonnummer.txt"

GIVEN = [
    "Alva",
    "Elsa",
    "Maja",
    "Wilma",
    "Astrid",
    "Nils",
    "Hugo",
    "Oskar",
    "Liam",
    "Ebbe",
    "Åsa",
    "Märta",
    "Björn",
    "Sören",
    "Ingrid",
    "Örjan",
]
FAMILY = [
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Lindström",
    "Åberg",
    "Öberg",
    "Sjögren",
]

T = TypeVar("T")
M = TypeVar("M", bound=Message)


def school_age_numbers(born_after: int = 2006, born_before: int = 2022) -> list[str]:
    """Skatteverket's test numbers of school age, as 12 digits."""
    numbers = TEST_NUMBERS.read_text().split()
    return [n for n in numbers if born_after <= int(n[:4]) <= born_before]


@dataclass
class Roster:
    """A roster file's rows and what a correct check must find in them."""

    header: list[str]
    rows: list[list[str]]
    valid_identities: list[str] = field(default_factory=list)
    invalid_lines: dict[int, str] = field(default_factory=dict)  # line → expected code

    def to_csv(self, delimiter: str = ";", newline: str = "\r\n") -> str:
        lines = [delimiter.join(self.header), *(delimiter.join(r) for r in self.rows)]
        return newline.join(lines) + newline

    def names(self) -> set[str]:
        return {cell for row in self.rows for cell in row[1:3] if cell}


def sample_roster(size: int, numbers: list[str], *, invalid: int = 0, seed: int = 7) -> Roster:
    """``size`` valid students (class 1A–9C) plus ``invalid`` rows with known errors."""
    rng = random.Random(seed)
    roster = Roster(["Personnummer", "Förnamn", "Efternamn", "Årskurs", "Klass"], [])
    for number in numbers[:size]:
        grade = str(rng.randint(1, 9))
        # Administrators write the short form with a hyphen more often than not.
        shown = f"{number[2:8]}-{number[8:]}" if rng.random() < 0.7 else number
        roster.rows.append(
            [shown, rng.choice(GIVEN), rng.choice(FAMILY), grade, grade + rng.choice("ABC")]
        )
        roster.valid_identities.append(number)
    spare = numbers[size : size + invalid]
    broken: list[tuple[Callable[[str], str], str]] = [
        (_wrong_check_digit, "identity_bad_check_digit"),
        (_wrong_separator, "identity_format"),
        (str, "given_name_missing"),
    ]
    for i, number in enumerate(spare):
        make, code = broken[i % len(broken)]
        row = [make(number), rng.choice(GIVEN), rng.choice(FAMILY), "5", "5A"]
        if code == "given_name_missing":
            row[1] = ""
        roster.rows.append(row)
        roster.invalid_lines[len(roster.rows) + 1] = code
    return roster


def _wrong_check_digit(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def _wrong_separator(number: str) -> str:
    return number[2:8] + "/" + number[8:]


@dataclass(frozen=True)
class School:
    organisation_id: UUID
    unit_id: UUID


async def seed_school(
    conn: Connection, *, name: str = "Solbackens skola", level: str = "compulsory"
) -> School:
    org, unit = uuid4(), uuid4()
    await conn.execute(
        "INSERT INTO organisations (id, name) VALUES ($1, $2)", org, "Elevhälsan Testkommun"
    )
    await conn.execute(
        "INSERT INTO units (id, organisation_id, name, school_level) VALUES ($1, $2, $3, $4)",
        unit,
        org,
        name,
        level,
    )
    return School(org, unit)


async def seed_active_patients(conn: Connection, school: School, identities: list[str]) -> None:
    """Patients already active in the unit, e.g. last year's students."""
    await conn.executemany(
        """WITH p AS (
               INSERT INTO patients (organisation_id, identity_number, identity_kind,
                                     given_name, family_name)
               VALUES ($1, $3, 'personnummer', 'Tidigare', 'Elev') RETURNING id)
           INSERT INTO enrolments (patient_id, unit_id) SELECT id, $2 FROM p""",
        [(school.organisation_id, school.unit_id, n) for n in identities],
    )


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 30.0, what: str = "condition"
) -> T:
    """Poll until ``probe`` returns something, or fail naming what never happened."""
    deadline = time.monotonic() + within
    delay = 0.02
    while True:
        value = await probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {within} s")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def read_message(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def read_mailbox(mailbox: Path) -> list[EmailMessage]:
    """Every message the local SMTP sink kept, oldest first."""
    return [read_message(path) for path in sorted(mailbox.glob("*.eml"))]


async def delete_prefixed_topics(settings: KafkaSettings) -> None:
    """Delete every topic of a test's prefix (never of an unprefixed deployment)."""
    if not settings.prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


@asynccontextmanager
async def running(rt: Runtime) -> AsyncIterator[Runtime]:
    """A service's runtime and broker, started in this process for a test."""
    await rt.start()
    try:
        await rt.broker.start()
        yield rt
    finally:
        await rt.broker.stop()
        await rt.stop()


class EventTap:
    """Reads every rosterflow topic of one prefix from the beginning, for assertions."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._names = {topic_name(settings, spec): spec for spec in ALL_TOPICS}
        self.seen: list[tuple[str, Message]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventTap:
        await ensure_topics(self._settings)
        self._consumer = AIOKafkaConsumer(
            *self._names,
            bootstrap_servers=self._settings.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _collect(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            spec = self._names[record.topic]
            with contextlib.suppress(ValueError):
                self.seen.append((record.topic, spec.event.model_validate_json(record.value)))

    def of(self, event_type: type[M], job_id: UUID | None = None) -> list[M]:
        return [
            e
            for _, e in self.seen
            if isinstance(e, event_type)
            and (job_id is None or getattr(e, "job_id", None) == job_id)
        ]

    async def drained(self) -> bool:
        """True when every consumer group of this prefix has committed up to each topic's end."""
        assert self._consumer is not None
        admin = AIOKafkaAdminClient(bootstrap_servers=self._settings.bootstrap_servers)
        await admin.start()
        try:
            groups = [
                g[0]
                for g in await admin.list_consumer_groups()
                if g[0].startswith(self._settings.prefix + "rosterflow.")
            ]
            for group in groups:
                committed = await admin.list_consumer_group_offsets(group)
                ends = await self._consumer.end_offsets(list(committed))
                if any(meta.offset < ends[tp] for tp, meta in committed.items()):
                    return False
            return bool(groups)
        finally:
            await admin.close()

    async def next(self, event_type: type[M], job_id: UUID, *, within: float = 30.0) -> M:
        async def probe() -> M | None:
            found = self.of(event_type, job_id)
            return found[0] if found else None

        return await wait_for(probe, within=within, what=f"{event_type.__name__} for {job_id}")


# --- bearer tokens as the journal platform issues them -------------

# The HS256 secret tests, the demo and the e2e run configure; never a deployment's.
TEST_AUTH_SECRET = "rosterflow-local-test-secret-not-for-production"


def mint_token(
    organisations: list[UUID],
    *,
    key: str | bytes = TEST_AUTH_SECRET,
    algorithm: str = "HS256",
    user_id: str = "u-1",
    name: str = "Karin Admin",
    email: str = "karin.admin@skolhalsan.example",
    language: str = "sv",
    audience: str = "rosterflow",
    issuer: str | None = None,
    expires_in: float = 600.0,
    **claims: object,
) -> str:
    """A JWT with the claims ingest reads; ``key`` is the HS256 secret or an RS256 private key."""
    now = int(time.time())
    payload: dict[str, object] = {
        "sub": user_id,
        "name": name,
        "email": email,
        "language": language,
        "admin_organisations": [str(o) for o in organisations],
        "aud": audience,
        "iat": now,
        "exp": now + int(expires_in),
        **claims,
    }
    if issuer is not None:
        payload["iss"] = issuer
    return jwt.encode(payload, key, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
