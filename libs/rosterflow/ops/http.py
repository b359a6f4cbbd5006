"""The ops endpoints every service serves: /health, /ready, /metrics.

Every service, ingest too, runs ``OpsServer`` (uvicorn on
ROSTERFLOW_OPS_HOST:PORT) beside its own work: the public API port never
exposes readiness details or metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from rosterflow.ops import health, metrics

if TYPE_CHECKING:
    from rosterflow.runtime import Runtime

log = logging.getLogger(__name__)


def router(rt: Runtime) -> APIRouter:
    ops = APIRouter(tags=["operations"])
    timeout = rt.settings.ops.check_timeout_seconds

    @ops.get("/health")
    async def alive() -> dict[str, str]:
        """The process runs and its event loop answers (liveness)."""
        return {"status": "ok", "service": rt.service}

    @ops.get("/ready")
    async def ready() -> JSONResponse:
        """Broker, database and object storage reachable (readiness); 503 names what is not."""
        checks = await health.readiness(rt.kafka_probe, rt.pool_or_none, rt.store, timeout)
        # Stopped by the dead-letter limit: reachable, but not doing its work.
        checks["consumer"] = rt.consumer.limit.halted or "ok"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "service": rt.service, "checks": checks},
            status_code=200 if ok else 503,
        )

    @ops.get("/metrics")
    async def scrape() -> Response:
        body = await metrics.scrape(
            rt.pool_or_none, rt.kafka_probe, rt.consumer.subscriptions, timeout
        )
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return ops


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service owns SIGTERM; uvicorn must not take it over.
        yield


class OpsServer:
    """uvicorn serving the ops router, started and stopped with its service."""

    def __init__(self, rt: Runtime) -> None:
        app = FastAPI(title=f"rosterflow {rt.service} operations", docs_url=None, redoc_url=None)
        app.include_router(router(rt))
        config = uvicorn.Config(
            app,
            host=rt.settings.ops.host,
            port=rt.settings.ops.port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Bound here, so a taken port is an OSError at start (uvicorn would sys.exit).
        config = self._server.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError:
            sock.close()
            raise
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                # e.g. the port is taken: fail the service's start, loudly.
                self._task.result()
                raise RuntimeError("the ops server stopped at start")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        """The port it listens on (the one the system chose for port 0)."""
        servers = self._server.servers
        return int(servers[0].sockets[0].getsockname()[1]) if servers else 0

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
