"""python -m services.ingest: the HTTP API and the platform's event intake."""

from __future__ import annotations

import uvicorn

from rosterflow.logs import configure_logging
from rosterflow.settings import Settings
from services.ingest.app import create_app


def main() -> None:
    settings = Settings()
    configure_logging("ingest")
    uvicorn.run(
        create_app(settings),
        host=settings.http.host,
        port=settings.http.port,
        log_config=None,
        timeout_graceful_shutdown=20,
        # As every service (rosterflow.service.run): uvloop, said, not left to "auto".
        loop="uvloop",
    )


if __name__ == "__main__":
    main()
