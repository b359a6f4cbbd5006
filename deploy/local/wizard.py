"""`make wizard`: the five services for the wizard in the browser, left running.

Seeds a demo organisation (a compulsory school with last year's students, a
school of unspecified level, a clinic), writes a sample roster to upload,
starts the five services and prints a one-time sign-in link for the demo
administrator. Ctrl-C stops the services; the stack stays up.
"""

from __future__ import annotations

import asyncio
import signal
from uuid import UUID, uuid4

from rosterflow import db
from rosterflow.launcher import service_processes
from rosterflow.settings import LOCAL_DIR, Settings
from rosterflow.testing import (
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
)
from services.ingest.web.local import demo_link, wizard_settings

SAMPLE = LOCAL_DIR / "wizard" / "elever-ht2026.csv"


async def seed(settings: Settings) -> UUID:
    conn = await db.connect(settings.db.dsn.get_secret_value())
    try:
        await db.migrate(conn)
        numbers = school_age_numbers()
        school = await seed_school(conn, name="Solbackens skola")
        await seed_active_patients(conn, school, numbers[306:326])
        for name, level in (("Gläntans skola", "unspecified"), ("Vårdcentralen Norr", "clinic")):
            await conn.execute(
                "INSERT INTO units (id, organisation_id, name, school_level) "
                "VALUES ($1, $2, $3, $4)",
                uuid4(),
                school.organisation_id,
                name,
                level,
            )
        return school.organisation_id
    finally:
        await conn.close()


def main() -> None:
    settings = wizard_settings()
    organisation = asyncio.run(seed(settings))
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    roster = sample_roster(300, school_age_numbers(), invalid=6)
    SAMPLE.write_bytes(roster.to_csv().encode("cp1252"))
    with service_processes(settings, LOCAL_DIR / "logs" / "wizard") as services:
        print(f"services running: {', '.join(services.alive())}")
        print(f"a roster to upload (300 students, 6 broken rows): {SAMPLE}")
        print(
            "sign in as the demo administrator (the link works once, for "
            f"{settings.ui.ticket_minutes} minutes):"
        )
        print(f"\n    {demo_link(settings, [organisation])}\n")
        print("Ctrl-C stops the services; the stack stays up.")
        stop = asyncio.Event()

        async def wait() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()

        asyncio.run(wait())


if __name__ == "__main__":
    main()
