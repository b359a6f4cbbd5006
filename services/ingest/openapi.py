"""The API's OpenAPI document: generated from the routers, committed as schemas/openapi.json.

``python -m services.ingest.openapi`` writes it; ``--check`` fails when the
committed file differs from what the code would serve (make check runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fastapi import FastAPI

from rosterflow.settings import REPO_ROOT
from services.ingest.api import ROUTERS

PATH = REPO_ROOT / "schemas" / "openapi.json"
TITLE = "rosterflow ingest"
DESCRIPTION = (
    "The journal platform's API to rosterflow's roster imports. Every request carries a "
    "bearer token (JWT, HS256 or RS256) whose claims name the user (sub, name, email, "
    "language) and the organisations they administer (admin_organisations). Errors answer "
    '{"error": {"code", "message", "details"}}; the platform branches on code.'
)


# The API is served by each deployment at its own address; relative, the
# document names the server it was fetched from.
SERVERS = [{"url": "/", "description": "The ingest service that serves this document"}]
LICENSE = {"name": "Proprietary", "identifier": "LicenseRef-rosterflow-proprietary"}


def document() -> dict[str, Any]:
    app = FastAPI(
        title=TITLE, version="1", description=DESCRIPTION, servers=SERVERS, license_info=LICENSE
    )
    for router in ROUTERS:
        app.include_router(router)
    return app.openapi()


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report drift")
    args = parser.parse_args()
    if args.check:
        fresh = PATH.exists() and PATH.read_text() == render()
        print(
            "schemas/openapi.json is up to date" if fresh else "schemas/openapi.json is out of date"
        )
        sys.exit(0 if fresh else 1)
    PATH.write_text(render())
    print(f"wrote {PATH.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
