"""SchoolSoft's ``.dat`` student export, the one SchoolSoft calls *IST-format (class)*.

Where the layout comes from: ProReNata's support article on roster import file
formats ("Filformat för import av elevlistor",
support.prorenata.se/hc/sv/articles/200843575) names this export (SchoolSoft's
export for profdoc/PMO/Prorenata in IST format, by class) and says it has no
grade column. Neither SchoolSoft nor IST publishes the column layout (none was
found in the searched documentation), so this module reads the file by its
header row under the column names IST's exports use (Personnummer, Förnamn,
Efternamn, Klass, and the address and contact columns), and a remembered
column mapping covers an export whose names differ.

How SchoolSoft writes it: a text file in Windows-1252 (its Latin-1 subset),
``;`` or tab between fields, CRLF line ends, fields unquoted, sometimes a line
or two of title above the header; all of which the CSV reader already takes.

The grade is the class name's leading number (``7A`` → 7), which the grade
rules derive where the grade is missing; a class without one (``Resurs``)
leaves the grade empty with a ``grade_missing`` warning. A grade column, if an
export has one, is not this format's and is not read.
"""

from __future__ import annotations

from rosterflow.events import FileFormat
from services.validator.errors import Label
from services.validator.formats.base import RosterFormat, aliases
from services.validator.sniff import Container

ALIASES = aliases(
    identity=("personnummer", "personnr", "pnr", "elevpersonnummer"),
    given_name=("fornamn", "tilltalsnamn"),
    family_name=("efternamn",),
    **{"class": ("klass", "klassnamn", "klassbeteckning")},
    email=("epost", "epostadress", "email"),
    phone=("mobil", "mobiltelefon", "mobilnummer", "telefon"),
    street=("adress", "gatuadress", "utdelningsadress"),
    postcode=("postnr", "postnummer"),
    city=("ort", "postort"),
)

FORMAT = RosterFormat(
    id=FileFormat.SCHOOLSOFT_DAT,
    label=Label("SchoolSoft .dat (IST-format)", "SchoolSoft .dat (IST format)"),
    containers=frozenset({Container.TEXT}),
    aliases=ALIASES,
    template={"identity": "Personnummer", "given_name": "Förnamn", "family_name": "Efternamn"},
)
