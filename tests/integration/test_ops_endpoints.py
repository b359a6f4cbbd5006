"""The ops endpoints in one process, against the real stack: readiness names what failed."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from rosterflow.ops.http import OpsServer, router
from rosterflow.runtime import Runtime
from rosterflow.settings import KafkaSettings, OpsSettings, Settings, StorageSettings
from rosterflow.testing import running
from services.ingest.app import create_app


def client_for(rt: Runtime) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(router(rt))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops")


async def test_ready_when_broker_database_and_storage_answer(settings: Settings) -> None:
    async with running(Runtime(settings, "validator")) as rt, client_for(rt) as client:
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "broker": "ok",
            "database": "ok",
            "storage": "ok",
            "consumer": "ok",
        }
        scraped = await client.get("/metrics")
        families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
        states = {s.labels["state"]: s.value for s in families["rosterflow_jobs"].samples}
        assert states["received"] == 0
        assert len(states) == 9


async def test_not_ready_names_the_database_when_the_pool_is_gone(settings: Settings) -> None:
    rt = Runtime(settings, "importer")
    async with running(rt):
        pass
    async with client_for(rt) as client:
        ready = await client.get("/ready")
        assert (await client.get("/health")).status_code == 200
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"].startswith("unreachable")
    assert checks["broker"] == "ok"
    assert checks["storage"] == "ok"


async def test_not_ready_names_storage_and_broker(settings: Settings, tmp_path: Path) -> None:
    objects = tmp_path / "gone"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    broken = settings.model_copy(
        update={
            "storage": StorageSettings(uri=objects.as_uri()),
            "ops": OpsSettings(check_timeout_seconds=2),
        }
    )
    async with running(Runtime(broken, "archiver")) as rt:
        # A second runtime whose broker address answers nothing.
        offline = Runtime(
            broken.model_copy(
                update={"kafka": KafkaSettings(bootstrap_servers=f"127.0.0.1:{closed_port}")}
            ),
            "archiver",
        )
        offline._pool = rt.pool  # the same reachable database
        shutil.rmtree(objects)  # after both stores were made (making one creates it)
        async with client_for(rt) as client:
            ready = await client.get("/ready")
        async with client_for(offline) as client:
            unreachable = await client.get("/ready")
        offline._pool = None
        await offline.kafka_probe.close()
    assert ready.status_code == 503
    assert ready.json()["checks"]["storage"].startswith("unreachable")
    assert ready.json()["checks"]["database"] == "ok"
    assert unreachable.status_code == 503
    assert unreachable.json()["checks"]["broker"] != "ok"


async def test_two_instances_serve_on_their_own_ports(settings: Settings) -> None:
    first = Runtime(settings.model_copy(update={"ops": OpsSettings(port=0)}), "validator")
    second = Runtime(settings.model_copy(update={"ops": OpsSettings(port=0)}), "validator")
    servers = [OpsServer(first), OpsServer(second)]
    for server in servers:
        await server.start()
    try:
        ports = {server.port for server in servers}
        assert len(ports) == 2
        async with httpx.AsyncClient() as client:
            for port in ports:
                got = await client.get(f"http://127.0.0.1:{port}/health")
                assert got.json() == {"status": "ok", "service": "validator"}
        # The port is taken: the service does not start.
        clash = OpsServer(
            Runtime(settings.model_copy(update={"ops": OpsSettings(port=min(ports))}), "validator")
        )
        with pytest.raises(OSError, match="in use"):
            await clash.start()
    finally:
        for server in servers:
            await server.stop()


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
async def test_ingest_api_port_does_not_serve_the_ops_endpoints(
    settings: Settings, path: str
) -> None:
    # They answer on the ops port (the e2e operations test scrapes them there).
    api = create_app(settings)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get(path)).status_code == 404
