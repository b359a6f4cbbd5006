"""Each format beyond the template through the real services into the journal."""

from __future__ import annotations

import asyncpg

from rosterflow import events
from rosterflow.settings import Settings
from rosterflow.testing import school_age_numbers, seed_school
from tests.support.formats import import_file, placed
from tests.support.pipeline import pipeline

NUMBERS = school_age_numbers()


async def test_a_schoolsoft_dat_export_is_imported_with_grades_from_the_class_names(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    content = "\r\n".join(
        [
            "Elevlista Solbackens skola",
            "Personnummer\tEfternamn\tFörnamn\tKlass",
            f"{NUMBERS[0]}\tÅberg\tMärta\t7A",
            f"{NUMBERS[1]}\tÖst\tBo\tResurs",
            f"{NUMBERS[2]}\t\tSiv\t8B",
            "",
        ]
    ).encode("cp1252")
    school = await seed_school(conn)
    async with pipeline(settings) as p:
        validated, finished = await import_file(
            p, school, content, events.FileFormat.SCHOOLSOFT_DAT
        )
    assert (validated.counts.valid, validated.counts.invalid) == (2, 1)
    assert validated.counts.warnings == 1  # Resurs: no grade to read
    assert validated.detected.header_line == 2
    assert finished.outcome is events.Outcome.COMPLETED
    expected: dict[str, dict[str, object]] = {
        NUMBERS[0]: {"given_name": "Märta", "family_name": "Åberg", "grade_year": 7,
                     "class_name": "7A"},
        NUMBERS[1]: {"given_name": "Bo", "family_name": "Öst", "grade_year": None,
                     "class_name": "Resurs"},
    }  # fmt: skip
    assert await placed(conn, school) == [
        {"identity_number": n, **expected[n]} for n in sorted(expected)
    ]
