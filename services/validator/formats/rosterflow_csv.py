"""The rosterflow template as CSV: Swedish or English header names."""

from __future__ import annotations

from rosterflow.events import FileFormat
from services.validator.errors import Label
from services.validator.formats.base import RosterFormat, aliases
from services.validator.sniff import Container

# Header names as they appear in files, compared after folding (header.fold).
ALIASES = aliases(
    identity=("personnummer", "personalid", "personnr", "pnr"),
    given_name=("fornamn", "givenname", "firstname"),
    family_name=("efternamn", "familyname", "lastname", "surname"),
    grade=("arskurs", "grade", "ak"),
    **{"class": ("klass", "class", "classname")},
    email=("epost", "email", "mail"),
    phone=("telefon", "phone", "mobil", "mobile"),
    street=("gatuadress", "street", "address"),
    postcode=("postnummer", "postcode", "zipcode"),
    city=("postort", "city"),
)

TEMPLATE = {"identity": "Personnummer", "given_name": "Förnamn", "family_name": "Efternamn"}

FORMAT = RosterFormat(
    id=FileFormat.ROSTERFLOW_CSV,
    label=Label("rosterflow CSV", "rosterflow CSV"),
    containers=frozenset({Container.TEXT}),
    aliases=ALIASES,
    template=TEMPLATE,
)
