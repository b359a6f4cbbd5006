"""Protected identities (skyddad folkbokföring, sekretessmarkering), read from the file's mark.

A marked student is imported with the mark and without any contact data of
their own or of their guardians: the address a protected identity hides is
also where their family lives. The contact data is dropped before any rule
sees it, so no warning, report, log line or metric ever holds it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

# Folded (lower case) as people write them in such a column.
YES = pa.array(["ja", "j", "x", "1", "true", "yes", "y", "sant", "skyddad"], pa.string())
NO = pa.array(["nej", "n", "0", "false", "no", "falskt", "-"], pa.string())


class Marks:
    """Which rows are protected, and which marks were neither yes nor no."""

    protected: pa.Array
    unclear: pa.Array
    """A value that says neither: read as protected (a hidden address cannot be
    taken back once stored), with a warning."""

    def __init__(self, values: pa.Array) -> None:
        if values.null_count == len(values):  # no such column, or nobody marked
            self.unclear = self.protected = pa.repeat(pa.scalar(False), len(values))
            return
        folded = pc.utf8_lower(values)
        yes = pc.fill_null(pc.is_in(folded, value_set=YES), False)
        no = pc.fill_null(pc.is_in(folded, value_set=NO), False)
        given = pc.is_valid(values)
        self.unclear = pc.and_(given, pc.invert(pc.or_(yes, no)))
        self.protected = pc.or_(yes, self.unclear)
