"""The rosterflow template as CSV: Swedish or English header names."""

from __future__ import annotations

from rosterflow.events import FileFormat
from services.validator.errors import Label
from services.validator.formats.base import RosterFormat, aliases
from services.validator.sniff import Container

# The usual names of the mark of a protected identity, in any export.
PROTECTED = (
    "skyddadidentitet", "sekretessmarkering", "skyddadfolkbokforing", "skyddadepersonuppgifter",
    "sekretess", "skyddad", "protectedidentity",
)  # fmt: skip
# A guardian's field: the names after "Vårdnadshavare 1 " (or "VH1 ", "Guardian 1 ").
_GUARDIAN_FIELDS = {
    "name": ("namn", "name"),
    "identity": ("personnummer", "personalid", "pnr"),
    "email": ("epost", "email", "mail"),
    "phone": ("telefon", "phone", "mobil", "mobile", "telefon1", "phone1"),
    "phone_2": ("telefon2", "phone2", "mobil2", "mobile2"),
    "phone_3": ("telefon3", "phone3", "mobil3", "mobile3"),
    "street": ("gatuadress", "street", "address"),
    "postcode": ("postnummer", "postcode", "zipcode"),
    "city": ("postort", "city"),
}
GUARDIAN_ALIASES = {
    f"guardian{n}_{field}": tuple(
        word + str(n) + name for word in ("vardnadshavare", "vh", "guardian") for name in names
    )
    for n in (1, 2)
    for field, names in _GUARDIAN_FIELDS.items()
}

# Header names as they appear in files, compared after folding (header.fold).
ALIASES = aliases(
    identity=("personnummer", "personalid", "personnr", "pnr"),
    given_name=("fornamn", "givenname", "firstname"),
    family_name=("efternamn", "familyname", "lastname", "surname"),
    grade=("arskurs", "grade", "ak"),
    **{"class": ("klass", "class", "classname")},
    email=("epost", "email", "mail"),
    phone=("telefon", "phone", "mobil", "mobile", "telefon1", "phone1"),
    phone_2=("telefon2", "phone2", "mobil2", "mobile2"),
    phone_3=("telefon3", "phone3", "mobil3", "mobile3"),
    street=("gatuadress", "street", "address"),
    postcode=("postnummer", "postcode", "zipcode"),
    city=("postort", "city"),
    protected=PROTECTED,
    **GUARDIAN_ALIASES,
)

TEMPLATE = {"identity": "Personnummer", "given_name": "Förnamn", "family_name": "Efternamn"}

FORMAT = RosterFormat(
    id=FileFormat.ROSTERFLOW_CSV,
    label=Label("rosterflow CSV", "rosterflow CSV"),
    containers=frozenset({Container.TEXT}),
    aliases=ALIASES,
    template=TEMPLATE,
)
