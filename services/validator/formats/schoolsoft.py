"""SchoolSoft's student export (CSV or XLSX), recognised by its ``socialnumber`` column.

SchoolSoft's guardian export (``student_socialnumber``) is a format of its own
(schoolsoft_guardians.py); choosing this one for it is a file-level error, not
a pile of rows.
"""

from __future__ import annotations

from rosterflow.events import FileFormat
from services.validator.errors import Label
from services.validator.formats.base import RosterFormat, aliases
from services.validator.formats.rosterflow_csv import PROTECTED
from services.validator.sniff import Container

ALIASES = aliases(
    identity=("socialnumber",),
    given_name=("fname", "firstname"),
    family_name=("lname", "lastname"),
    grade=("year", "grade"),
    **{"class": ("class", "classname")},
    email=("email",),
    # SchoolSoft exports a home phone beside the mobile one; the mobile is the
    # one that reaches a student or their family, so it comes first.
    phone=("mobile",),
    phone_2=("phone",),
    street=("address", "address1"),
    postcode=("zipcode", "zip"),
    city=("city",),
    protected=PROTECTED,
)

FORMAT = RosterFormat(
    id=FileFormat.SCHOOLSOFT,
    label=Label("SchoolSoft elevexport", "SchoolSoft student export"),
    containers=frozenset({Container.TEXT, Container.XLSX}),
    aliases=ALIASES,
    template={"identity": "socialnumber", "given_name": "fname", "family_name": "lname"},
)
