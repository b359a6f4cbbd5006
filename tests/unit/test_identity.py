from __future__ import annotations

import contextlib
import random
from datetime import date, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.se import personnummer as stdnum_personnummer

from rosterflow.testing import TEST_NUMBERS
from services.validator.identity import (
    Identity,
    IdentityError,
    parse_identity,
    parse_identity_column,
)
from tests.support.identity import luhn_digit

TODAY = date(2026, 3, 15)

# Skatteverket test numbers (see TEST_NUMBERS).
BORN_1990 = "199001212399"
BORN_1890 = "189001019802"
BORN_1926_MAY = "192605049093"
BORN_1926_JAN = "192601049030"
BORN_2024_DEC = "202412312387"
BORN_LEAP_DAY = "201602292383"
BORN_2015_MAR = "201503162396"


def with_check_digit(twelve_without_check: str) -> str:
    return twelve_without_check + luhn_digit(twelve_without_check[2:])


@pytest.fixture(scope="module")
def test_numbers() -> list[str]:
    # read_text raises when the file is missing: the test fails, never skips.
    numbers = TEST_NUMBERS.read_text(encoding="ascii").split()
    assert len(numbers) == 41_493
    return numbers


def test_every_skatteverket_test_number_is_a_valid_personnummer(test_numbers: list[str]) -> None:
    for number in test_numbers:
        assert parse_identity(number, TODAY) == Identity(number, "personnummer"), number


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("199001212399", BORN_1990),
        ("19900121-2399", BORN_1990),
        ("900121-2399", BORN_1990),
        ("9001212399", BORN_1990),
        ("  900121-2399\u00a0\t", BORN_1990),
        ("\ufeff19900121-2399", BORN_1990),
        ("900101+9802", BORN_1890),
        ("18900101-9802", BORN_1890),
        ("160229-2383", BORN_LEAP_DAY),
    ],
)
def test_accepted_forms_normalise_to_twelve_digits(raw: str, normalised: str) -> None:
    assert parse_identity(raw, TODAY) == Identity(normalised, "personnummer")


def test_plus_means_the_year_the_person_turns_100_or_earlier() -> None:
    # Skatteverket writes '+' from the start of the year of the 100th birthday,
    # so on 2026-03-15 someone born 1926-05-04 (still 99) already has '+'.
    assert parse_identity("260504+9093", TODAY) == Identity(BORN_1926_MAY, "personnummer")
    assert parse_identity("260104+9030", TODAY) == Identity(BORN_1926_JAN, "personnummer")
    assert parse_identity("900101+9802", TODAY) == Identity(BORN_1890, "personnummer")


def test_ten_digits_without_plus_make_the_person_0_to_99() -> None:
    # 2026-05-04 has not happened yet, so the only 0-99-year-old is from 1926.
    assert parse_identity("260504-9093", TODAY) == Identity(BORN_1926_MAY, "personnummer")
    assert parse_identity("2605049093", TODAY) == Identity(BORN_1926_MAY, "personnummer")
    assert parse_identity("260104-9030", TODAY) == Identity("202601049030", "personnummer")
    assert parse_identity("900101-9802", TODAY) == Identity("199001019802", "personnummer")
    # Born today is 0 years old, not 100.
    assert parse_identity("150316-2396", date(2015, 3, 16)) == Identity(
        BORN_2015_MAR, "personnummer"
    )


def test_samordningsnummer_has_day_plus_60() -> None:
    number = with_check_digit("19900181239")
    assert parse_identity(number, TODAY) == Identity(number, "samordningsnummer")
    assert parse_identity(f"{number[2:8]}-{number[8:]}", TODAY) == Identity(
        number, "samordningsnummer"
    )
    assert parse_identity(with_check_digit("19900192239"), TODAY) == IdentityError.BAD_DATE


@pytest.mark.parametrize(
    "raw", ["20150312TF10", "20150312-TF10", "150312-TF10", "150312TF10", " 150312-tf10 "]
)
def test_temporary_numbers(raw: str) -> None:
    assert parse_identity(raw, TODAY) == Identity("20150312TF10", "temporary")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, IdentityError.MISSING),
        ("", IdentityError.MISSING),
        (" \u00a0 ", IdentityError.MISSING),
        ("abc", IdentityError.FORMAT),
        ("1990-01-21", IdentityError.FORMAT),
        ("19900121+2399", IdentityError.FORMAT),
        ("900121/2399", IdentityError.FORMAT),
        ("900121 2399", IdentityError.FORMAT),
        ("21900121-2399", IdentityError.FORMAT),
        ("900121-23999", IdentityError.FORMAT),
        ("20150312XY10", IdentityError.FORMAT),
        ("900121239", IdentityError.EXCEL_MANGLED),
        ("19900121239", IdentityError.EXCEL_MANGLED),
        ("1.99001E+11", IdentityError.EXCEL_MANGLED),
        ("1,99001E+11", IdentityError.EXCEL_MANGLED),
        ("199001212399.0", IdentityError.EXCEL_MANGLED),
        ("9001212399,0", IdentityError.EXCEL_MANGLED),
        ("19901321-2399", IdentityError.BAD_DATE),
        ("19900021-2399", IdentityError.BAD_DATE),
        ("19900132-2399", IdentityError.BAD_DATE),
        ("19000229-2399", IdentityError.BAD_DATE),
        ("20150230TF10", IdentityError.BAD_DATE),
        (BORN_1990[:11] + "0", IdentityError.BAD_CHECK_DIGIT),
        ("900121-2398", IdentityError.BAD_CHECK_DIGIT),
        (with_check_digit("19900121000"), IdentityError.BIRTH_NUMBER_000),
        ("20260316TF10", IdentityError.FUTURE),
    ],
)
def test_error_codes(raw: str | None, code: IdentityError) -> None:
    assert parse_identity(raw, TODAY) == code


def test_born_after_today_is_future() -> None:
    assert parse_identity(BORN_2024_DEC, date(2024, 12, 30)) == IdentityError.FUTURE
    assert parse_identity(BORN_2024_DEC, date(2024, 12, 31)) == Identity(
        BORN_2024_DEC, "personnummer"
    )


def variants(number: str, rng: random.Random) -> list[str | None]:
    short = number[2:]
    shuffled = list(number)
    rng.shuffle(shuffled)
    return [
        short,
        f"{short[:6]}-{short[6:]}",
        f"{short[:6]}+{short[6:]}",
        f"{number[:8]}-{number[8:]}",
        f"{number[:8]}+{number[8:]}",
        number[:11] + str((int(number[11]) + 1) % 10),
        number[1:],
        number[3:],
        f"{number}.0",
        f"{number[0]}.{number[1:6]}E+11",
        number[:4] + "13" + number[6:],
        number[:6] + f"{int(number[6:8]) + 60:02d}" + number[8:],
        with_check_digit(number[:6] + f"{int(number[6:8]) + 60:02d}" + number[8:10]),
        with_check_digit(number[:8] + "000"),
        f"{number[:8]}TF{number[10:]}",
        f"{short[:6]}-tf{number[10:]}",
        f" {number}\u00a0",
        "".join(shuffled),
        "".join(rng.choice("0123456789-+TFtfE., \u00a0x") for _ in range(rng.randint(0, 14))),
        None,
    ]


@pytest.mark.parametrize("today", [TODAY, date(2000, 2, 28), date(2015, 3, 16), date(2024, 2, 29)])
def test_column_agrees_with_scalar(test_numbers: list[str], today: date) -> None:
    rng = random.Random(20260315)
    values: list[str | None] = list(test_numbers)
    for number in test_numbers[::200]:
        values.extend(variants(number, rng))
    # Ten-digit forms of everyone born on today's day and month: the century
    # boundary between "born today" and "99 years old".
    birthday = f"{today:%m%d}"
    values.extend(n[2:] for n in test_numbers if n[4:8] == birthday)

    column = parse_identity_column(pa.array(values, pa.string()), today)

    assert len(values) > len(test_numbers) + 4_000
    seen: set[str | None] = set()
    rows = zip(
        values,
        column.normalised.to_pylist(),
        column.codes.to_pylist(),
        column.kinds.to_pylist(),
        strict=True,
    )
    for raw, normalised, code, kind in rows:
        expected = parse_identity(raw, today)
        if isinstance(expected, IdentityError):
            assert (normalised, code, kind) == (None, expected.value, None), raw
        else:
            assert (normalised, code, kind) == (expected.normalised, None, expected.kind), raw
        seen.add(code)
    # The variants must reach every branch, or agreement proves little.
    assert seen >= {None, *(code.value for code in IdentityError if code != "identity_future")}


def test_column_accepts_chunked_input_and_returns_strings() -> None:
    chunked = pa.chunked_array([["900121-2399", None], ["20150312tf10"]])
    column = parse_identity_column(chunked, TODAY)
    assert column.normalised.to_pylist() == [BORN_1990, None, "20150312TF10"]
    assert column.codes.to_pylist() == [None, "identity_missing", None]
    assert column.kinds.to_pylist() == ["personnummer", None, "temporary"]
    assert column.normalised.type == column.codes.type == column.kinds.type == pa.string()


# --- properties (hypothesis), python-stdnum as the oracle for plain personnummer ---

TODAY_REAL = date.today()


@st.composite
def plain_personnummer(draw: st.DrawFn) -> tuple[str, str]:
    """Twelve digits of a plain personnummer shape, any check digit: (written, twelve)."""
    year = draw(st.integers(min_value=1890, max_value=TODAY_REAL.year))
    month = draw(st.integers(min_value=0, max_value=13))
    day = draw(st.integers(min_value=0, max_value=32))  # never a samordningsnummer day
    tail = draw(st.text(alphabet="0123456789", min_size=4, max_size=4))
    twelve = f"{year:04d}{month:02d}{day:02d}{tail}"
    written = draw(st.sampled_from([twelve, f"{twelve[:8]}-{twelve[8:]}"]))
    return written, twelve


@settings(max_examples=400, deadline=None)
@given(plain_personnummer())
def test_plain_personnummer_agrees_with_python_stdnum(case: tuple[str, str]) -> None:
    written, twelve = case
    ours = parse_identity(written, TODAY_REAL)
    born = None
    with contextlib.suppress(ValueError):
        born = date(int(twelve[:4]), int(twelve[4:6]), int(twelve[6:8]))
    # stdnum knows neither the 000 birth number nor dates of birth in the future.
    expected = (
        stdnum_personnummer.is_valid(written)
        and twelve[8:11] != "000"
        and born is not None
        and born <= TODAY_REAL
    )
    assert isinstance(ours, Identity) == expected, (written, ours)
    if isinstance(ours, Identity):
        assert ours == Identity(twelve, "personnummer")
        assert stdnum_personnummer.compact(written).replace("-", "") == twelve


@st.composite
def valid_personnummer(draw: st.DrawFn) -> str:
    """A valid personnummer of someone 0–99 years old (not born today's date a century ago)."""
    born = draw(
        st.dates(
            min_value=date(TODAY_REAL.year - 99, 1, 1) + timedelta(days=366),
            max_value=TODAY_REAL,
        )
    )
    nnn = draw(st.integers(min_value=1, max_value=999))
    return with_check_digit(f"{born:%Y%m%d}{nnn:03d}")


@settings(max_examples=300, deadline=None)
@given(valid_personnummer())
def test_every_accepted_form_of_a_number_normalises_to_the_same_twelve_digits(
    number: str,
) -> None:
    forms = [number, f"{number[:8]}-{number[8:]}", number[2:], f"{number[2:8]}-{number[8:]}"]
    for form in forms:
        assert parse_identity(form, TODAY_REAL) == Identity(number, "personnummer"), form
        assert stdnum_personnummer.is_valid(form), form


@settings(max_examples=300, deadline=None)
@given(valid_personnummer(), st.integers(min_value=2, max_value=11), st.integers(1, 9))
def test_a_changed_digit_is_never_accepted(number: str, position: int, change: int) -> None:
    changed = (
        number[:position] + str((int(number[position]) + change) % 10) + number[position + 1 :]
    )
    assert not isinstance(parse_identity(changed, TODAY_REAL), Identity), changed


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet="0123456789-+TFtfE., \u00a0x", max_size=14),
            valid_personnummer(),
            valid_personnummer().map(lambda n: f"{n[2:8]}-{n[8:]}"),
        ),
        max_size=30,
    )
)
def test_the_column_parser_agrees_with_the_scalar_one(values: list[str | None]) -> None:
    column = parse_identity_column(pa.array(values, pa.string()), TODAY_REAL)
    for raw, normalised, code, kind in zip(
        values,
        column.normalised.to_pylist(),
        column.codes.to_pylist(),
        column.kinds.to_pylist(),
        strict=True,
    ):
        expected = parse_identity(raw, TODAY_REAL)
        if isinstance(expected, IdentityError):
            assert (normalised, code, kind) == (None, expected.value, None), raw
        else:
            assert (normalised, code, kind) == (expected.normalised, None, expected.kind), raw
