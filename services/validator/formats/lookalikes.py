"""Files people upload by mistake that no registered format reads (yet)."""

from __future__ import annotations

from services.validator.errors import Label
from services.validator.formats.base import Lookalike

ONEROSTER_USERS = Lookalike(
    Label("OneRosters users.csv", "OneRoster's users.csv"),
    frozenset({"sourcedid", "givenname", "familyname"}),
)
