from __future__ import annotations

from uuid import UUID

import pytest

from rosterflow.events import FileFormat, ImportOptions, ImportRequest
from services.ingest.logic import Unit, check_request

ORGANISATION = UUID(int=10)
OTHER_ORGANISATION = UUID(int=20)
UNIT = UUID(int=11)


def request(
    *,
    unit_id: UUID = UNIT,
    file_format: FileFormat = FileFormat.ROSTERFLOW_CSV,
    upper_secondary: bool = False,
    archive_missing: bool = False,
) -> ImportRequest:
    return ImportRequest(
        organisation_id=ORGANISATION,
        unit_id=unit_id,
        school_year="2026/2027",
        format=file_format,
        options=ImportOptions(
            archive_missing=archive_missing, treat_as_upper_secondary=upper_secondary
        ),
    )


def unit(*, organisation_id: UUID = ORGANISATION, level: str = "compulsory") -> Unit:
    return Unit(
        id=UNIT, organisation_id=organisation_id, name="Solbackens skola", school_level=level
    )


@pytest.mark.parametrize("archive_missing", [False, True])
def test_a_good_request_passes(archive_missing: bool) -> None:
    assert check_request(request(archive_missing=archive_missing), unit()) is None


def test_unknown_unit_and_another_organisations_unit_get_the_same_answer() -> None:
    unknown = check_request(request(), None)
    foreign = check_request(request(), unit(organisation_id=OTHER_ORGANISATION))

    assert unknown is not None
    assert unknown.code == "unit_not_found"
    # Identical, so the answer cannot reveal that the unit exists elsewhere.
    assert foreign == unknown


def test_treat_as_upper_secondary_is_allowed_for_a_unit_of_unspecified_level() -> None:
    assert check_request(request(upper_secondary=True), unit(level="unspecified")) is None


@pytest.mark.parametrize("level", ["compulsory", "upper_secondary"])
def test_treat_as_upper_secondary_is_refused_for_a_unit_with_a_known_level(level: str) -> None:
    rejection = check_request(request(upper_secondary=True), unit(level=level))

    assert rejection is not None
    assert rejection.code == "option_not_allowed"
    assert rejection.message


@pytest.mark.parametrize("level", ["compulsory", "upper_secondary", "unspecified"])
def test_every_level_accepts_a_request_without_the_option(level: str) -> None:
    assert check_request(request(), unit(level=level)) is None


@pytest.mark.parametrize("file_format", list(FileFormat))
def test_every_format_the_contract_names_is_accepted(file_format: FileFormat) -> None:
    assert check_request(request(file_format=file_format), unit()) is None


def test_unit_check_comes_before_the_format_check() -> None:
    # A foreign unit must be "not found" whatever else is wrong with the request.
    rejection = check_request(
        request(file_format=FileFormat.SCHOOLSOFT, upper_secondary=True),
        unit(organisation_id=OTHER_ORGANISATION),
    )

    assert rejection is not None
    assert rejection.code == "unit_not_found"
