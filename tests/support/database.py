from __future__ import annotations

from rosterflow.settings import DatabaseSettings

# The stack's administrative connection: tests create and drop their databases through it.
ADMIN_DSN = DatabaseSettings().dsn.get_secret_value()


def with_database(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name
