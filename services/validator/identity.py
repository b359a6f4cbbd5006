"""Swedish identity numbers: personnummer, samordningsnummer, temporary numbers.

`parse_identity` handles one value and `parse_identity_column` a whole Arrow
column; both share the regular expressions below and the same order of checks,
and a test holds them to the same answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import reduce
from typing import Literal, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.validator.buffers import (
    Bytes,
    Mask,
    Positions,
    Strings,
    digits,
    fixed_width_strings,
)

Kind = Literal["personnummer", "samordningsnummer", "temporary"]

# An explicit set, not str.strip()/\s: Python and Arrow disagree about what
# counts as Unicode whitespace, and both implementations must trim alike.
# No-break spaces and a stray BOM are what Excel exports actually contain.
WHITESPACE = " \t\n\r\f\v\u00a0\u2007\u202f\ufeff"

# Patterns use [0-9] and explicit case classes rather than \d and (?i): those
# mean different things in Python's re and Arrow's RE2.
_MANGLED_PATTERN = r"^(?:[0-9]{9}|[0-9]{11}|[0-9]+[.,][0-9]+|[0-9](?:[.,][0-9]+)?[Ee]\+?[0-9]+)$"
# The lengths (10, 11, 12, 13) make the parse unique, so re and RE2 agree on
# which optional group matched. Centuries outside 18-20 are typing errors.
_SHAPE_PATTERN = (
    r"^(?P<century>1[89]|20)?(?P<yy>[0-9]{2})(?P<mm>[0-9]{2})(?P<dd>[0-9]{2})"
    r"(?P<sep>[-+]?)(?P<tail>[0-9]{4}|[Tt][Ff][0-9]{2})$"
)
_MANGLED = re.compile(_MANGLED_PATTERN)
_SHAPE = re.compile(_SHAPE_PATTERN)

_SAMORDNING_OFFSET = 60
# Days per month indexed by the two-digit month as written; impossible months
# have zero days, so every day in them is out of range.
_DAYS_IN_MONTH = pa.array(
    [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] + [0] * 87, pa.int32()
)
_LUHN_WEIGHTS = (2, 1, 2, 1, 2, 1, 2, 1, 2)


class IdentityError(StrEnum):
    MISSING = "identity_missing"
    FORMAT = "identity_format"
    EXCEL_MANGLED = "identity_excel_mangled"
    BAD_DATE = "identity_bad_date"
    BAD_CHECK_DIGIT = "identity_bad_check_digit"
    BIRTH_NUMBER_000 = "identity_birth_number_000"
    FUTURE = "identity_future"


@dataclass(frozen=True)
class Identity:
    normalised: str
    kind: Kind


class IdentityColumn(NamedTuple):
    normalised: pa.Array
    codes: pa.Array
    kinds: pa.Array


def _full_year(century: int | None, yy: int, mmdd: int, plus: bool, today: date) -> int:
    if century is not None:
        return century * 100 + yy
    if plus:
        # Skatteverket switches '-' to '+' in the calendar year the person
        # turns 100, so a '+' number may belong to someone still aged 99.
        base = today.year - 100
        return base - (base - yy) % 100
    year = today.year - (today.year - yy) % 100
    if year == today.year and mmdd > today.month * 100 + today.day:
        return year - 100
    return year


def _luhn_check_digit(nine_digits: str) -> int:
    total = 0
    for digit, weight in zip(nine_digits, _LUHN_WEIGHTS, strict=True):
        product = int(digit) * weight
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


def parse_identity(raw: str | None, today: date) -> Identity | IdentityError:
    if raw is None:
        return IdentityError.MISSING
    text = raw.strip(WHITESPACE)
    if not text:
        return IdentityError.MISSING
    if _MANGLED.fullmatch(text):
        return IdentityError.EXCEL_MANGLED
    shape = _SHAPE.fullmatch(text)
    if shape is None or (shape["century"] and shape["sep"] == "+"):
        return IdentityError.FORMAT
    yy, mm, dd = int(shape["yy"]), int(shape["mm"]), int(shape["dd"])
    tail = shape["tail"].upper()
    temporary = tail.startswith("TF")
    samordning = not temporary and dd > _SAMORDNING_OFFSET
    day = dd - _SAMORDNING_OFFSET if samordning else dd
    century = int(shape["century"]) if shape["century"] else None
    year = _full_year(century, yy, mm * 100 + day, shape["sep"] == "+", today)
    try:
        born = date(year, mm, day)
    except ValueError:
        return IdentityError.BAD_DATE
    if born > today:
        return IdentityError.FUTURE
    if not temporary:
        if tail[:3] == "000":
            return IdentityError.BIRTH_NUMBER_000
        ten = f"{shape['yy']}{shape['mm']}{shape['dd']}{tail}"
        if _luhn_check_digit(ten[:9]) != int(ten[9]):
            return IdentityError.BAD_CHECK_DIGIT
    kind: Kind = "temporary" if temporary else "samordningsnummer" if samordning else "personnummer"
    return Identity(f"{year:04d}{shape['mm']}{shape['dd']}{tail}", kind)


def _luhn_table(weights: tuple[int, ...]) -> pa.Array:
    # The Luhn contribution of every group of len(weights) digits, so the column
    # code sums four table look-ups (YY, MM, DD, NNN) instead of nine digits.
    table = []
    for number in range(10 ** len(weights)):
        digits = f"{number:0{len(weights)}d}"
        products = (int(digit) * weight for digit, weight in zip(digits, weights, strict=True))
        table.append(sum(p - 9 if p > 9 else p for p in products))
    return pa.array(table, pa.int32())


_LUHN_PAIR = _luhn_table(_LUHN_WEIGHTS[0:2])
_LUHN_TRIPLE = _luhn_table(_LUHN_WEIGHTS[6:9])


def _n(value: int) -> pa.Scalar:
    # Every literal goes to pyarrow typed: an untyped Python value makes
    # pyarrow look for python-dateutil, a failed import retried on every call
    # (about 150 µs each, a fifth of the whole check before this).
    return pa.scalar(value, pa.int32())


def _s(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.string())


_FALSE = pa.scalar(False, pa.bool_())
_TRUE = pa.scalar(True, pa.bool_())
_NULL_TEXT = pa.scalar(None, pa.string())
_KINDS = pa.array(["personnummer", "samordningsnummer", "temporary"], pa.string())
# The centuries a ten-digit number can get (see _full_year), and none.
_CENTURIES = pa.array(["18", "19", "20", ""], pa.string())
_TWO = pa.scalar(2, pa.int8())
_NULL_KIND = pa.scalar(None, pa.int8())


def _as_strings(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if values.type == pa.string() else pc.cast(values, pa.string())


def _ascii_slice(text: pa.Array, start: int, stop: int | None = None) -> pa.Array:
    # Only used on values the shape regex matched, which are ASCII, so byte
    # slicing (several times faster than code-point slicing) is exact.
    return pc.binary_slice(text.view(pa.binary()), start, stop).view(pa.string())


def _full_year_column(
    century: pa.Array, yy: pa.Array, mmdd: pa.Array, plus: pa.Array, today: date
) -> pa.Array:
    """The column form of `_full_year`; century 0 means none was written."""
    base, this_year, hundred = _n(today.year - 100), _n(today.year), _n(100)
    year_plus = pc.subtract(base, pc.modulo(pc.subtract(base, yy), hundred))
    year_minus = pc.subtract(this_year, pc.modulo(pc.subtract(this_year, yy), hundred))
    later_this_year = pc.and_(
        pc.equal(year_minus, this_year),
        pc.greater(mmdd, _n(today.month * 100 + today.day)),
    )
    year_minus = pc.subtract(year_minus, pc.if_else(later_this_year, hundred, _n(0)))
    return pc.if_else(
        pc.greater(century, _n(0)),
        pc.add(pc.multiply(century, hundred), yy),
        pc.if_else(plus, year_plus, year_minus),
    )


def _impossible_date(year: pa.Array, mm: pa.Array, day: pa.Array) -> pa.Array:
    zero = _n(0)
    leap = pc.and_(
        pc.equal(pc.modulo(year, _n(4)), zero),
        pc.or_(
            pc.not_equal(pc.modulo(year, _n(100)), zero),
            pc.equal(pc.modulo(year, _n(400)), zero),
        ),
    )
    month_days = pc.add(
        pc.take(_DAYS_IN_MONTH, mm),
        pc.if_else(pc.and_(pc.equal(mm, _n(2)), leap), _n(1), zero),
    )
    return pc.or_(pc.less(day, _n(1)), pc.greater(day, month_days))


class _Written(NamedTuple):
    """The fast path's answer: which rows it found valid, their 12 characters, their kind."""

    accepted: Mask
    normalised: Bytes
    samordning: Mask


# Where the parts of each written form sit, by its length: the century (if
# written), YYMMDD, the separator (if any), NNNC. "+" goes with a century to
# the exact path (a format error there).
_FORMS = {
    10: (None, 0, None, 6),
    11: (None, 0, 6, 7),
    12: (0, 2, None, 8),
    13: (0, 2, 8, 9),
}
_MINUS, _PLUS = np.uint8(ord("-")), np.uint8(ord("+"))
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int32)
_LUHN_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], np.int32)


def _written_numbers(text: Strings, today: date) -> _Written:
    """Decide the rows written as plain digits in one of the four usual forms.

    Only what the exact path would accept is accepted here, with the same
    normalised number and kind; every other row (an error, a temporary
    number, whitespace, anything unusual) is left for the exact path. Each
    character position is one vector over the rows of a form (numpy is fast
    along a long axis, slow across a short one).
    """
    rows = text.rows
    accepted = np.zeros(rows, np.bool_)
    normalised = np.zeros((rows, 12), np.uint8)
    samordning = np.zeros(rows, np.bool_)
    today_number = today.year * 10_000 + today.month * 100 + today.day
    for width, (century_at, date_at, separator_at, tail_at) in _FORMS.items():
        found = text.of_length(width)
        if not len(found):
            continue
        chars = [text.column(found, position) for position in range(width)]
        values = [digits(char) for char in chars]
        ok = np.ones(len(found), np.bool_)
        for position, value in enumerate(values):
            if position != separator_at:
                ok &= value < 10
        plus = np.zeros(len(found), np.bool_)
        if separator_at is not None:
            separator = chars[separator_at]
            plus = separator == _PLUS
            ok &= (separator == _MINUS) | (plus if century_at is None else False)
        d = [value.astype(np.int32) for value in values]
        yy = d[date_at] * 10 + d[date_at + 1]
        mm = d[date_at + 2] * 10 + d[date_at + 3]
        dd = d[date_at + 4] * 10 + d[date_at + 5]
        coordinated = dd > _SAMORDNING_OFFSET
        day = np.where(coordinated, dd - _SAMORDNING_OFFSET, dd)
        if century_at is not None:
            century = d[century_at] * 10 + d[century_at + 1]
            ok &= (century >= 18) & (century <= 20)
            year = century * 100 + yy
        else:
            year = _full_years(yy, mm * 100 + day, plus, today)
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        month = np.where((mm >= 1) & (mm <= 12), mm, 0)
        month_days = _MONTH_DAYS[month] + ((month == 2) & leap)
        ok &= (day >= 1) & (day <= month_days)
        ok &= year * 10_000 + mm * 100 + day <= today_number
        tail = d[tail_at : tail_at + 4]
        ok &= (tail[0] | tail[1] | tail[2]) != 0  # birth number 000
        nine = d[date_at : date_at + 6] + tail[:3]
        # Non-digits (already refused) must still index the table.
        luhn = sum(_LUHN_DOUBLED[np.minimum(digit, 9)] for digit in nine[0::2]) + sum(nine[1::2])
        ok &= (10 - luhn % 10) % 10 == tail[3]
        if not ok.any():
            continue
        rows_ok = found[ok]
        accepted[rows_ok] = True
        samordning[rows_ok] = coordinated[ok]
        if century_at is None:
            years = year[ok]
            for position, scale in enumerate((1000, 100, 10, 1)):
                normalised[rows_ok, position] = years // scale % 10 + ord("0")
        else:
            for position in range(2):
                normalised[rows_ok, position] = chars[century_at + position][ok]
        for position in range(6):
            normalised[rows_ok, 2 + position] = chars[date_at + position][ok]
        for position in range(4):
            normalised[rows_ok, 8 + position] = chars[tail_at + position][ok]
    return _Written(accepted, normalised, samordning)


def _full_years(yy: Positions, mmdd: Positions, plus: Mask, today: date) -> Positions:
    """The column form of `_full_year` for numbers written without a century."""
    base = today.year - 100
    year = np.where(plus, base - (base - yy) % 100, today.year - (today.year - yy) % 100)
    later_this_year = (year == today.year) & (mmdd > today.month * 100 + today.day)
    return np.where(later_this_year & ~plus, year - 100, year)


def parse_identity_column(values: pa.Array | pa.ChunkedArray, today: date) -> IdentityColumn:
    """Every row of a column: the usual forms on the fast path, the rest the exact way."""
    text = _as_strings(values)
    written = _written_numbers(Strings(text), today)
    if written.accepted.all():
        kinds = written.samordning.astype(np.int8)
        return IdentityColumn(
            normalised=fixed_width_strings(written.normalised),
            codes=pa.nulls(len(text), pa.string()),
            kinds=pc.take(_KINDS, pa.array(kinds, pa.int8())),
        )
    rest = np.flatnonzero(~written.accepted)
    others = text.take(pa.array(rest))
    # A column parse costs about a hundred kernel calls whatever its length:
    # the few rows a usual file leaves over are quicker one at a time.
    exact = (
        _parse_each(others, today) if len(rest) <= _ONE_AT_A_TIME else _parse_exact(others, today)
    )
    valid = written.accepted.copy()
    kinds = written.samordning.astype(np.int8)
    exact_valid = Strings(exact.normalised).present
    if exact_valid.any():
        rows = rest[exact_valid]
        valid[rows] = True
        written.normalised[rows] = Strings(exact.normalised).matrix(np.flatnonzero(exact_valid), 12)
        exact_kinds = pc.index_in(exact.kinds, value_set=_KINDS).to_numpy(zero_copy_only=False)
        kinds[rows] = exact_kinds[exact_valid]
    codes = pc.replace_with_mask(
        pa.nulls(len(text), pa.string()), pa.array(~written.accepted), exact.codes
    )
    return IdentityColumn(
        normalised=fixed_width_strings(written.normalised, valid),
        codes=codes,
        kinds=pc.take(_KINDS, pa.array(kinds, pa.int8(), mask=~valid)),
    )


_ONE_AT_A_TIME = 1000


def _parse_each(text: pa.Array, today: date) -> IdentityColumn:
    """The column's answer from `parse_identity`, one value at a time."""
    parsed = [parse_identity(value, today) for value in text.to_pylist()]
    identities = [found if isinstance(found, Identity) else None for found in parsed]
    return IdentityColumn(
        normalised=pa.array([i and i.normalised for i in identities], pa.string()),
        codes=pa.array(
            [p.value if isinstance(p, IdentityError) else None for p in parsed], pa.string()
        ),
        kinds=pa.array([i and i.kind for i in identities], pa.string()),
    )


def _parse_exact(text: pa.Array, today: date) -> IdentityColumn:
    """Any value the way `parse_identity` reads it, a column at a time."""
    text = pc.utf8_trim(text, characters=WHITESPACE)
    missing = pc.fill_null(pc.equal(text, _s("")), _TRUE)
    # Matching is RE2's fast path; extracting submatches is not (it took most
    # of the run time). Once the shape is known the parts sit at fixed places:
    # the last four characters, and a date number before them.
    shaped = pc.fill_null(pc.match_substring_regex(text, _SHAPE_PATTERN), _FALSE)
    unshaped = pc.invert(shaped)
    if pc.any(unshaped).as_py():
        # No value has both shapes, so only the (usually few) others need this regex.
        mangled = pc.replace_with_mask(
            pc.and_(shaped, _FALSE),
            unshaped,
            pc.fill_null(pc.match_substring_regex(text.filter(unshaped), _MANGLED_PATTERN), _FALSE),
        )
        safe = pc.if_else(shaped, text, _s("000101-0000"))
    else:
        mangled, safe = unshaped, text
    head = _ascii_slice(safe, 0, -4)
    tail = pc.ascii_upper(_ascii_slice(safe, -4))
    plus = pc.ends_with(head, "+")
    date_text = pc.utf8_rtrim(head, characters="-+")
    has_century = pc.equal(pc.utf8_length(date_text), _n(8))
    bad_format = pc.or_(unshaped, pc.and_(has_century, plus))

    hundred = _n(100)
    written = pc.cast(date_text, pa.int32())  # YYMMDD or CCYYMMDD
    century = pc.divide(written, _n(1_000_000))
    yy = pc.modulo(pc.divide(written, _n(10_000)), hundred)
    mm = pc.modulo(pc.divide(written, hundred), hundred)
    dd = pc.modulo(written, hundred)
    temporary = pc.starts_with(tail, "TF")
    number = pc.cast(pc.if_else(temporary, _s("0"), tail), pa.int32())  # NNNC
    nnn = pc.divide(number, _n(10))

    offset = _n(_SAMORDNING_OFFSET)
    samordning = pc.and_(pc.invert(temporary), pc.greater(dd, offset))
    day = pc.subtract(dd, pc.if_else(samordning, offset, _n(0)))
    mmdd = pc.add(pc.multiply(mm, hundred), day)
    year = _full_year_column(century, yy, mmdd, plus, today)
    born = pc.add(pc.multiply(year, _n(10_000)), mmdd)
    future = pc.greater(born, _n(today.year * 10_000 + today.month * 100 + today.day))

    personnummer = pc.invert(temporary)
    luhn = pc.add(
        pc.add(pc.take(_LUHN_PAIR, yy), pc.take(_LUHN_PAIR, mm)),
        pc.add(pc.take(_LUHN_PAIR, dd), pc.take(_LUHN_TRIPLE, nnn)),
    )
    ten = _n(10)
    expected = pc.modulo(pc.subtract(ten, pc.modulo(luhn, ten)), ten)
    bad_check = pc.and_(personnummer, pc.not_equal(expected, pc.modulo(number, ten)))

    # case_when takes the first true condition: the order of the checks in
    # parse_identity. It runs on the rows with an error only (few, usually).
    ordered = [
        (missing, IdentityError.MISSING), (mangled, IdentityError.EXCEL_MANGLED),
        (bad_format, IdentityError.FORMAT),
        (_impossible_date(year, mm, day), IdentityError.BAD_DATE),
        (future, IdentityError.FUTURE),
        (pc.and_(personnummer, pc.equal(nnn, _n(0))), IdentityError.BIRTH_NUMBER_000),
        (bad_check, IdentityError.BAD_CHECK_DIGIT),
    ]  # fmt: skip
    wrong = reduce(pc.or_, (condition for condition, _ in ordered))
    valid = pc.invert(wrong)
    codes = pa.nulls(len(text), pa.string())
    if pc.any(wrong).as_py():
        conditions = pc.make_struct(
            *(condition.filter(wrong) for condition, _ in ordered),
            field_names=[code.value for _, code in ordered],
        )
        found = pc.case_when(conditions, *(_s(code.value) for _, code in ordered))
        codes = pc.replace_with_mask(codes, wrong, found)

    # The date is kept as written (a samordningsnummer keeps its day + 60),
    # behind the century where none was written: joining strings already at
    # hand costs half of printing the number anew.
    prefix = pc.if_else(
        has_century,
        _n(len(_CENTURIES) - 1),
        pc.max_element_wise(
            pc.min_element_wise(pc.subtract(pc.divide(year, hundred), _n(18)), _n(2)), _n(0)
        ),
    )
    normalised = pc.binary_join_element_wise(pc.take(_CENTURIES, prefix), date_text, tail, _s(""))
    # Kinds by position in _KINDS: samordning adds 1, temporary 2 (never both).
    kind = pc.add(pc.cast(samordning, pa.int8()), pc.multiply(pc.cast(temporary, pa.int8()), _TWO))
    if not pc.all(valid).as_py():
        normalised = pc.if_else(valid, normalised, _NULL_TEXT)
        kind = pc.if_else(valid, kind, _NULL_KIND)
    return IdentityColumn(normalised=normalised, codes=codes, kinds=pc.take(_KINDS, kind))
