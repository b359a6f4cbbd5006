"""Contact data: an invalid email address, phone number or postcode is dropped with a warning.

The row still imports; a typo in an address must not keep a student out of
the journal. Patterns are RE2 (Arrow) syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from services.validator.header import CONTACT, GUARDIAN_COLUMNS, GUARDIAN_PREFIXES
from services.validator.messages import RowCode

_ATOM = r"[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+"
# Bounded repetitions ({0,61}) over Unicode classes blow up RE2's automaton
# (50 times slower); label lengths are not worth that.
EMAIL = rf"^{_ATOM}(?:\.{_ATOM})*@(?:[\p{{L}}\p{{N}}-]+\.)+\p{{L}}{{2,}}$"
# The same for ASCII text, which RE2 matches in half the time.
_ASCII_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
ASCII_EMAIL = rf"^{_ASCII_ATOM}(?:\.{_ASCII_ATOM})*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{{2,}}$"
# A Swedish number with its leading 0 (area code or mobile prefix), or an
# international one with + or 00 and a country code; digits may be grouped
# with spaces, hyphens, dots, slashes or parentheses. Matched as written:
# removing the separators first took six times as long.
_SEP = r"[ ./()-]*"
PHONE = (
    rf"^{_SEP}(?:(?:\+|00){_SEP}[1-9](?:{_SEP}[0-9]){{6,14}}"
    rf"|0{_SEP}[1-9](?:{_SEP}[0-9]){{5,10}})$"
)
POSTCODE = r"^(?:[Ss][Ee]-? ?)?([1-9][0-9]{2}) ?([0-9]{2})$"
_NULL = pa.scalar(None, pa.string())
_CANONICAL_POSTCODE_LENGTH = pa.scalar(6, pa.int32())


class Checked(NamedTuple):
    values: pa.Array
    """The value to store: null where it was invalid."""
    invalid: pa.Array
    """True where a value was given and dropped."""


def _keep(values: pa.Array, valid: pa.Array) -> Checked:
    valid = pc.fill_null(valid, True)  # a missing value is not an invalid one
    if pc.all(valid).as_py():
        return Checked(values, pc.invert(valid))
    return Checked(pc.if_else(valid, values, _NULL), pc.invert(valid))


def check_email(values: pa.Array) -> Checked:
    valid = pc.match_substring_regex(values, ASCII_EMAIL)
    # Internationalised addresses (åäö in the domain) are the rare ones.
    other = pc.fill_null(pc.invert(pc.string_is_ascii(values)), False)
    if pc.any(other).as_py():
        valid = pc.replace_with_mask(
            valid, other, pc.match_substring_regex(values.filter(other), EMAIL)
        )
    return _keep(values, valid)


def check_phone(values: pa.Array) -> Checked:
    return _keep(values, pc.match_substring_regex(values, PHONE))


def check_postcode(values: pa.Array) -> Checked:
    """Stored the way the postal service writes it: 123 45."""
    checked = _keep(values, pc.match_substring_regex(values, POSTCODE))
    # A valid value of six characters is already "123 45"; only others change.
    odd = pc.fill_null(
        pc.not_equal(pc.binary_length(checked.values), _CANONICAL_POSTCODE_LENGTH), False
    )
    if not pc.any(odd).as_py():
        return checked
    normalised = pc.replace_substring_regex(checked.values.filter(odd), POSTCODE, r"\1 \2")
    return Checked(pc.replace_with_mask(checked.values, odd, normalised), checked.invalid)


_BY_KIND: Mapping[str, tuple[Callable[[pa.Array], Checked], RowCode]] = {
    "email": (check_email, RowCode.EMAIL_INVALID),
    "phone": (check_phone, RowCode.PHONE_INVALID),
    "postcode": (check_postcode, RowCode.POSTCODE_INVALID),
}


def _kind(column: str) -> str:
    """A column's kind of value: ``guardian2_phone_3`` is a phone number."""
    for prefix in GUARDIAN_PREFIXES:
        column = column.removeprefix(prefix)
    return column.removesuffix("_2").removesuffix("_3")


CHECKS: Mapping[str, tuple[Callable[[pa.Array], Checked], RowCode]] = {
    column: _BY_KIND[_kind(column)]
    for column in (*CONTACT, *GUARDIAN_COLUMNS)
    if _kind(column) in _BY_KIND
}
"""Every canonical column with a rule of its own, student's and guardians' alike."""
