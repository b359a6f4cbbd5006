"""The identity numbers' fast path answers exactly as the exact way does, and takes the usual rows.

The fast path decides only the rows written in a usual form and valid, and
leaves the rest to the exact column parser; the property feeds both the same
values, many of them built near the edges of the fast shapes, and compares
every output. The second kind of test makes sure the fast path is not
silently empty: a fast path that accepts nothing would pass the first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from services.validator.buffers import Strings
from services.validator.identity import (
    Identity,
    _parse_exact,
    _written_numbers,
    parse_identity,
    parse_identity_column,
)
from services.validator.rows import clean_text
from tests.support.identity import luhn_digit

TODAY = date(2026, 11, 28)


@st.composite
def near_number(draw: st.DrawFn) -> str:
    """An identity number in one of the usual forms, often valid, often just not."""
    born = draw(st.dates(min_value=date(1880, 1, 1), max_value=date(2045, 12, 31)))
    day = born.day + (60 if draw(st.booleans()) else 0)
    nnn = draw(st.integers(min_value=0, max_value=999))
    ten = f"{born:%y%m}{day:02d}{nnn:03d}"
    check = luhn_digit(ten) if draw(st.integers(0, 3)) else draw(st.sampled_from("0123456789"))
    ten += check
    century = f"{born.year // 100:02d}"
    forms = [ten, f"{ten[:6]}-{ten[6:]}", f"{ten[:6]}+{ten[6:]}", century + ten,
             f"{century}{ten[:6]}-{ten[6:]}", f"{century}{ten[:6]}+{ten[6:]}"]  # fmt: skip
    return draw(st.sampled_from(forms))


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


def test_the_usual_forms_take_the_fast_path() -> None:
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
    values = column(["x", None, "900121-2399", None, "19900121-2399", "9001212399", None] * 3)
    for start in range(len(values)):
        part = values.slice(start)
        assert parse_identity_column(part, TODAY).normalised.to_pylist() == [
            parse_identity(v, TODAY).normalised  # type: ignore[union-attr]
            if isinstance(parse_identity(v, TODAY), Identity)
            else None
            for v in part.to_pylist()
        ]


def test_many_unusual_rows_are_parsed_as_a_column_and_few_one_at_a_time() -> None:
    unusual = ["20150312TF10", " 900121-2399", "900121-2390", "", None, "9.00121E+11"]
    for copies in (1, 400):  # 6 and 2,400 rows left over by the fast path
        values = ["900121-2399", *unusual * copies]
        parsed = parse_identity_column(column(values), TODAY)
        expected = [parse_identity(value, TODAY) for value in values]
        assert parsed.normalised.to_pylist() == [
            e.normalised if isinstance(e, Identity) else None for e in expected
        ]
        assert parsed.codes.to_pylist() == [
            None if isinstance(e, Identity) else e.value for e in expected
        ]
        assert parsed.kinds.to_pylist() == [
            e.kind if isinstance(e, Identity) else None for e in expected
        ]


def test_a_null_is_missing_even_where_its_slot_holds_bytes() -> None:
    # Arrow lets a null slot span bytes (what some kernels leave behind): the
    # fast path must go by the validity bitmap, not by what the slot holds.
    data = b"900121-2399" * 3
    offsets = pa.py_buffer(bytes(memoryview(pa.array([0, 11, 22, 33], pa.int32()).buffers()[1])))
    validity = pa.py_buffer(bytes([0b101]))
    values = pa.StringArray.from_buffers(3, offsets, pa.py_buffer(data), validity, 1)
    for part in (values, values.slice(1)):
        parsed = parse_identity_column(part, TODAY)
        expected = [parse_identity(v, TODAY) for v in part.to_pylist()]
        assert parsed.codes.to_pylist() == [
            None if isinstance(e, Identity) else e.value for e in expected
        ]
    assert parse_identity_column(values, TODAY).codes.to_pylist()[1] == "identity_missing"
