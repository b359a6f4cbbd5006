"""Grades by the unit's school level, and contact data dropped with a warning."""

from __future__ import annotations

import pyarrow as pa
import pytest

from services.validator.contact import check_email, check_phone, check_postcode
from services.validator.grades import SchoolLevel, place, place_one
from services.validator.messages import RowCode
from tests.support.checks import NUMBERS, Checked, csv, issues_by_line, run_check, valid_identities

COMPULSORY: list[tuple[str, tuple[str | None, int | None]]] = [
    ("F", ("preschool_class", 0)),
    ("FK", ("preschool_class", 0)),
    ("Förskoleklass", ("preschool_class", 0)),
    ("förskoleklass", ("preschool_class", 0)),
    ("0", ("preschool_class", 0)),
    ("1", ("compulsory", 1)),
    ("07", ("compulsory", 7)),
    ("åk 7", ("compulsory", 7)),
    ("Åk7", ("compulsory", 7)),
    ("9", ("compulsory", 9)),
    ("10", ("special", 10)),
]


COMPULSORY_GRADES = ("F", "1", "4", "5", "10")


@pytest.mark.parametrize("level", ["compulsory", "unspecified"])
@pytest.mark.parametrize(("grade", "placed"), COMPULSORY)
def test_grades_at_a_compulsory_or_unspecified_unit(
    level: SchoolLevel, grade: str, placed: tuple[str | None, int | None]
) -> None:
    assert place_one(grade, None, level, upper_secondary=False) == (*placed, None)


@pytest.mark.parametrize(
    ("grade", "placed"),
    [("1", ("upper_secondary", 1)), ("4", ("upper_secondary", 4)), ("10", ("upper_secondary", 4))],
)
def test_grades_at_an_upper_secondary_unit(
    grade: str, placed: tuple[str | None, int | None]
) -> None:
    assert place_one(grade, None, "upper_secondary", upper_secondary=False) == (*placed, None)


@pytest.mark.parametrize("grade", ["F", "0", "5", "9"])
def test_a_grade_an_upper_secondary_unit_does_not_have_is_not_allowed(grade: str) -> None:
    assert place_one(grade, None, "upper_secondary", upper_secondary=False) == (
        None,
        None,
        RowCode.GRADE_NOT_ALLOWED,
    )


def test_treat_as_upper_secondary_changes_1_to_4_and_10_only() -> None:
    placed = {
        g: place_one(g, None, "unspecified", upper_secondary=True)[:2] for g in COMPULSORY_GRADES
    }
    assert placed == {
        "F": ("preschool_class", 0),
        "1": ("upper_secondary", 1),
        "4": ("upper_secondary", 4),
        "5": ("compulsory", 5),
        "10": ("upper_secondary", 4),
    }


def test_a_clinic_has_no_grades() -> None:
    assert place_one("7", None, "clinic", upper_secondary=False)[2] == RowCode.GRADE_NOT_ALLOWED
    assert place_one(None, "7A", "clinic", upper_secondary=False) == (None, None, None)


@pytest.mark.parametrize("grade", ["11", "X", "7A", "-1", "åk", "1.5"])
def test_text_that_is_no_grade_is_invalid(grade: str) -> None:
    assert place_one(grade, None, "compulsory", upper_secondary=False)[2] == RowCode.GRADE_INVALID


@pytest.mark.parametrize(
    ("class_name", "level", "placed"),
    [
        ("7A", "compulsory", ("compulsory", 7, None)),
        ("10B", "compulsory", ("special", 10, None)),
        ("2C", "upper_secondary", ("upper_secondary", 2, None)),
        ("NA22b", "upper_secondary", (None, None, RowCode.GRADE_MISSING)),
        ("7A", "upper_secondary", (None, None, RowCode.GRADE_MISSING)),
        ("Röd", "compulsory", (None, None, RowCode.GRADE_MISSING)),
        ("123", "compulsory", (None, None, RowCode.GRADE_MISSING)),
        (None, "compulsory", (None, None, RowCode.GRADE_MISSING)),
    ],
)
def test_a_missing_grade_is_read_from_the_class_or_warned_about(
    class_name: str | None, level: SchoolLevel, placed: tuple[object, ...]
) -> None:
    assert place_one(None, class_name, level, upper_secondary=False) == placed


def test_place_takes_the_class_only_where_the_grade_is_missing() -> None:
    placement = place(
        pa.array(["3", None, None, "x"], pa.string()),
        pa.array(["7A", "7A", "Röd", "1A"], pa.string()),
        level="compulsory",
        upper_secondary=False,
    )
    assert placement.school_form.to_pylist() == ["compulsory", "compulsory", None, None]
    assert placement.grade_year.to_pylist() == [3, 7, None, None]
    assert placement.codes.to_pylist() == [None, None, "grade_missing", "grade_invalid"]


@pytest.mark.parametrize(
    "email",
    ["anna@skolan.se", "anna.berg+elev@skola.example.se", "åsa@örebro.se", "a_b-c@x-y.com"],
)
def test_valid_email_addresses_are_kept(email: str) -> None:
    checked = check_email(pa.array([email, None], pa.string()))
    assert checked.values.to_pylist() == [email, None]
    assert checked.invalid.to_pylist() == [False, False]


@pytest.mark.parametrize(
    "email", ["anna", "anna@", "@skolan.se", "anna@skolan", "an na@skolan.se", "a..b@c.se",
              "anna@@skolan.se", ".anna@skolan.se", "anna@skolan.s"],
)  # fmt: skip
def test_invalid_email_addresses_are_dropped(email: str) -> None:
    checked = check_email(pa.array([email], pa.string()))
    assert checked.values.to_pylist() == [None]
    assert checked.invalid.to_pylist() == [True]


@pytest.mark.parametrize(
    "phone",
    ["070-123 45 67", "0701234567", "+46 70 123 45 67", "+46701234567", "0046 70 123 45 67",
     "08-123 456", "(08) 123 45 67", "031-12 34 56"],
)  # fmt: skip
def test_valid_phone_numbers_are_kept_as_written(phone: str) -> None:
    checked = check_phone(pa.array([phone], pa.string()))
    assert checked.values.to_pylist() == [phone]


@pytest.mark.parametrize(
    "phone", ["701234567", "123", "070-ABC", "+0 70 123", "tel 070-1234567", "0701234567890123"]
)
def test_invalid_phone_numbers_are_dropped(phone: str) -> None:
    checked = check_phone(pa.array([phone], pa.string()))
    assert checked.invalid.to_pylist() == [True]


@pytest.mark.parametrize(
    ("postcode", "stored"),
    [("123 45", "123 45"), ("12345", "123 45"), ("SE-123 45", "123 45"), ("se12345", "123 45")],
)
def test_valid_postcodes_are_stored_as_the_postal_service_writes_them(
    postcode: str, stored: str
) -> None:
    checked = check_postcode(pa.array([postcode, None], pa.string()))
    assert checked.values.to_pylist() == [stored, None]
    assert checked.invalid.to_pylist() == [False, False]


@pytest.mark.parametrize("postcode", ["1234", "123456", "012 34", "ABC 12", "N-0150"])
def test_invalid_postcodes_are_dropped(postcode: str) -> None:
    checked = check_postcode(pa.array([postcode], pa.string()))
    assert checked.values.to_pylist() == [None]
    assert checked.invalid.to_pylist() == [True]


# --- in a whole file -----------------------------------------------------------------


def test_contact_data_is_carried_to_the_valid_rows() -> None:
    header = "Personnummer;Förnamn;Efternamn;E-post;Telefon;Gatuadress;Postnummer;Postort"
    row = f"{NUMBERS[0]};Alva;Berg;alva@skolan.se;070-123 45 67;Storgatan 1;12345;Umeå"

    result = run_check(csv(row, header=header))

    assert result.valid.select(["email", "phone", "street", "postcode", "city"]).to_pylist() == [
        {
            "email": "alva@skolan.se",
            "phone": "070-123 45 67",
            "street": "Storgatan 1",
            "postcode": "123 45",
            "city": "Umeå",
        }
    ]


def test_invalid_contact_data_is_dropped_with_a_warning_and_the_row_imports() -> None:
    header = "Personnummer;Förnamn;Efternamn;E-post;Telefon;Postnummer"

    result = run_check(csv(f"{NUMBERS[0]};Alva;Berg;alva(at)skolan;701234567;1234", header=header))

    assert valid_identities(result) == [NUMBERS[0]]
    assert result.valid.select(["email", "phone", "postcode"]).to_pylist() == [
        {"email": None, "phone": None, "postcode": None}
    ]
    assert issues_by_line(result) == {2: ["email_invalid", "phone_invalid", "postcode_invalid"]}
    assert set(result.issues.column("severity").to_pylist()) == {"warning"}
    assert (result.counts.valid, result.counts.invalid, result.counts.warnings) == (1, 0, 3)


def placements(result: Checked) -> list[tuple[str | None, int | None]]:
    return list(
        zip(
            result.valid.column("school_form").to_pylist(),
            result.valid.column("grade_year").to_pylist(),
            strict=True,
        )
    )


def test_missing_grade_is_read_from_a_class_name_like_7a() -> None:
    result = run_check(csv(f"{NUMBERS[0]};Alva;Andersson;;7A", f"{NUMBERS[1]};Bo;Berg;F;FA"))

    assert placements(result) == [("compulsory", 7), ("preschool_class", 0)]
    assert result.issues.num_rows == 0


def test_grades_are_compulsory_school_years_at_a_compulsory_unit() -> None:
    result = run_check(csv(f"{NUMBERS[0]};Alva;Andersson;2;2A", f"{NUMBERS[1]};Bo;Berg;10;10A"))

    assert placements(result) == [("compulsory", 2), ("special", 10)]


def test_treat_as_upper_secondary_makes_grade_2_the_second_upper_secondary_year() -> None:
    result = run_check(
        csv(f"{NUMBERS[0]};Alva;Andersson;2;NA24b", f"{NUMBERS[1]};Bo;Berg;;3C"),
        level="unspecified",
        upper_secondary=True,
    )

    assert placements(result) == [("upper_secondary", 2), ("upper_secondary", 3)]


def test_a_grade_the_unit_does_not_have_is_an_error_and_the_row_is_skipped() -> None:
    result = run_check(
        csv(f"{NUMBERS[0]};Alva;Andersson;7;7A", f"{NUMBERS[1]};Bo;Berg;2;NA24b"),
        level="upper_secondary",
    )

    assert valid_identities(result) == [NUMBERS[1]]
    assert issues_by_line(result) == {2: ["grade_not_allowed"]}
    assert (result.counts.valid, result.counts.invalid) == (1, 1)
