"""Run the five services as separate processes: for the demo, e2e tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from rosterflow.settings import REPO_ROOT, Settings

SERVICES = ("ingest", "validator", "importer", "archiver", "notifier")


def environment(settings: Settings) -> dict[str, str]:
    """The variables that make a service process use these settings."""
    return {
        "ROSTERFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "ROSTERFLOW_KAFKA_PREFIX": settings.kafka.prefix,
        "ROSTERFLOW_KAFKA_PARTITIONS": str(settings.kafka.partitions),
        "ROSTERFLOW_DB_DSN": settings.db.dsn.get_secret_value(),
        "ROSTERFLOW_STORAGE_URI": settings.storage.uri,
        "ROSTERFLOW_SMTP_HOST": settings.smtp.host,
        "ROSTERFLOW_SMTP_PORT": str(settings.smtp.port),
        "ROSTERFLOW_HTTP_HOST": settings.http.host,
        "ROSTERFLOW_HTTP_PORT": str(settings.http.port),
        "ROSTERFLOW_PLATFORM_BASE_URL": settings.platform.base_url,
    }


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    # Where its /health, /ready and /metrics answer (issue 7).
    ops_url: str = ""


@dataclass
class Services:
    running: list[Service]
    base_url: str

    def alive(self) -> list[str]:
        return [s.name for s in self.running if s.process.poll() is None]


def _wait_for_http(url: str, services: list[Service], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        dead = [s for s in services if s.process.poll() is not None]
        if dead:
            tail = dead[0].log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"service {dead[0].name} exited at start:\n{tail}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 404:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the ingest API at {url} did not answer within {within} s")


@contextmanager
def service_processes(
    settings: Settings, log_dir: Path, names: tuple[str, ...] = SERVICES
) -> Iterator[Services]:
    """Start each service with ``python -m services.<name>``; SIGTERM them on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **environment(settings)}
    started: list[Service] = []
    try:
        for name in names:
            log = log_dir / f"{name}.log"
            ops_env, ops_url = _ops_endpoint(settings, name)
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}"],
                    cwd=REPO_ROOT,
                    env={**env, **ops_env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(Service(name, process, log, ops_url))
        base_url = f"http://{settings.http.host}:{settings.http.port}"
        if "ingest" in names:
            _wait_for_http(
                f"{base_url}/v1/imports/00000000-0000-0000-0000-000000000000", started, within=60
            )
        yield Services(started, base_url)
    finally:
        for service in started:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in started:
            try:
                service.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()


# --- ops endpoints (issue 7) -------------------------------------------------


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ops_endpoint(settings: Settings, name: str) -> tuple[dict[str, str], str]:
    """A port of its own for each process's ops endpoints (ingest: its API port)."""
    if name == "ingest":
        return {}, f"http://{settings.http.host}:{settings.http.port}"
    host = settings.ops.host
    port = _free_port(host)
    return (
        {"ROSTERFLOW_OPS_HOST": host, "ROSTERFLOW_OPS_PORT": str(port)},
        f"http://{host}:{port}",
    )
