"""The byte-level fast paths answer exactly as the exact way does, and do take the usual rows.

Each fast path decides only the rows it recognises and leaves the rest to the
exact implementation (RE2 patterns, the column parser); these properties feed
both the same values, many of them built near the edges of the fast shapes,
and compare every output. The second kind of test makes sure the fast path is
not silently empty: a fast path that accepts nothing would pass the first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from services.validator import contact
from services.validator.buffers import Strings
from services.validator.identity import (
    Identity,
    _parse_exact,
    _written_numbers,
    parse_identity,
    parse_identity_column,
)
from services.validator.rows import clean_text

TODAY = date(2026, 11, 28)


def _luhn(nine: str) -> str:
    total = 0
    for position, char in enumerate(nine):
        product = int(char) * (2 - position % 2)
        total += product - 9 if product > 9 else product
    return str(-total % 10)


@st.composite
def near_phone(draw: st.DrawFn) -> str:
    """Digits in groups around the lengths and prefixes the pattern draws its lines at."""
    head = draw(st.sampled_from(["0", "00", "+", "", "+0", "0 "]))
    count = draw(st.integers(min_value=3, max_value=16))
    number = draw(st.text(alphabet="0123456789", min_size=count, max_size=count))
    separators = draw(st.lists(st.sampled_from(["", " ", "-", ".", "(", ")", "/", "x"]),
                               min_size=len(number), max_size=len(number)))  # fmt: skip
    body = "".join(f"{sep}{digit}" for sep, digit in zip(separators, number, strict=True))
    return head + body + draw(st.sampled_from(["", "", " ", "-"]))


@st.composite
def near_number(draw: st.DrawFn) -> str:
    """An identity number in one of the usual forms, often valid, often just not."""
    born = draw(st.dates(min_value=date(1880, 1, 1), max_value=date(2045, 12, 31)))
    day = born.day + (60 if draw(st.booleans()) else 0)
    nnn = draw(st.integers(min_value=0, max_value=999))
    ten = f"{born:%y%m}{day:02d}{nnn:03d}"
    check = _luhn(ten) if draw(st.integers(0, 3)) else draw(st.sampled_from("0123456789"))
    ten += check
    century = f"{born.year // 100:02d}"
    forms = [ten, f"{ten[:6]}-{ten[6:]}", f"{ten[:6]}+{ten[6:]}", century + ten,
             f"{century}{ten[:6]}-{ten[6:]}", f"{century}{ten[:6]}+{ten[6:]}"]  # fmt: skip
    return draw(st.sampled_from(forms))


phone_like = st.one_of(st.text(alphabet="0123456789 ./()-+x", max_size=20), near_phone())
postcode_like = st.text(alphabet="0123456789 SEse-", max_size=9)
number_like = st.one_of(
    near_number(),
    st.text(alphabet="0123456789", min_size=10, max_size=12),
    st.text(alphabet="0123456789-+", min_size=10, max_size=13),
    st.builds(
        lambda a, sep, b: f"{a}{sep}{b}",
        st.text(alphabet="0123456789", min_size=6, max_size=8),
        st.sampled_from(["-", "+", ""]),
        st.text(alphabet="0123456789", min_size=4, max_size=4),
    ),
)


def column(values: Sequence[str | None]) -> pa.Array:
    return pa.array(values, pa.string())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), phone_like), max_size=40))
def test_phone_fast_path_agrees_with_the_pattern(values: list[str | None]) -> None:
    fast = contact.check_phone(column(values))
    exact = contact._check_phone_exact(column(values))
    assert fast.values.to_pylist() == exact.values.to_pylist()
    assert fast.invalid.to_pylist() == exact.invalid.to_pylist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), postcode_like), max_size=40))
def test_postcode_fast_path_agrees_with_the_pattern(values: list[str | None]) -> None:
    fast = contact.check_postcode(column(values))
    exact = contact._check_postcode_exact(column(values))
    assert fast.values.to_pylist() == exact.values.to_pylist()
    assert fast.invalid.to_pylist() == exact.invalid.to_pylist()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), number_like), max_size=40),
    # From 2000 on: the exact column parser writes centuries 18-20 only, and
    # before 1999 a "+" number could be born in the 1700s.
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
)
def test_identity_fast_path_agrees_with_the_exact_column_parser(
    values: list[str | None], today: date
) -> None:
    fast = parse_identity_column(column(values), today)
    exact = _parse_exact(column(values), today)
    for name in ("normalised", "codes", "kinds"):
        assert getattr(fast, name).to_pylist() == getattr(exact, name).to_pylist(), name


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=" \tab\u00a0", max_size=6), max_size=20))
def test_clean_text_trims_whatever_the_padding(values: list[str]) -> None:
    whitespace = " \t\n\r\f\v\u00a0\u2007\u202f\ufeff"
    expected = []
    for value in values:
        tidy = re.sub(f"[{whitespace}]+", " ", value).strip(whitespace)
        expected.append(tidy or None)
    assert clean_text(column(list(values))).to_pylist() == expected


def test_the_usual_forms_take_the_fast_paths() -> None:
    phones = ["070-123 45 67", "0701234567", "08-123 456", "(08) 123 45 67", "+46701234567"]
    assert contact._national_phones(Strings(column(phones))).tolist() == [
        True, True, True, True, False,
    ]  # fmt: skip
    postcodes = ["123 45", "12345", "012 34", None]
    assert contact._canonical_postcodes(Strings(column(postcodes))).tolist() == [
        True, False, False, True,
    ]  # fmt: skip
    numbers = ["900121-2399", "199001212399", "9001212399", "19900121-2399", "900121+2399"]
    written = _written_numbers(Strings(column(numbers)), TODAY)
    assert written.accepted.tolist() == [True] * 5
    for number, twelve in zip(numbers, written.normalised, strict=True):
        parsed = parse_identity(number, TODAY)
        assert isinstance(parsed, Identity)
        assert bytes(twelve).decode() == parsed.normalised
    # Errors, temporary numbers and padding go the exact way.
    others = ["900121-2390", "20150312TF10", " 900121-2399", "900132-2399", "19000121+2399"]
    assert not _written_numbers(Strings(column(others)), TODAY).accepted.any()


def test_a_slice_of_a_column_is_read_where_it_starts() -> None:
    values = column(["x", "900121-2399", "070-123 45 67", "123 45"])
    for start in range(4):
        part = values.slice(start)
        assert parse_identity_column(part, TODAY).normalised.to_pylist() == [
            parse_identity(v, TODAY).normalised  # type: ignore[union-attr]
            if isinstance(parse_identity(v, TODAY), Identity)
            else None
            for v in part.to_pylist()
        ]
        phone = contact.check_phone(part)
        assert phone.invalid.to_pylist() == contact._check_phone_exact(part).invalid.to_pylist()
