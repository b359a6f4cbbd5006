"""Run the five services as separate processes: for the demo, e2e tests and benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rosterflow.settings import LOCAL_DIR, REPO_ROOT, Settings
from rosterflow.topics import SERVICES

# Where the local stack's Prometheus discovers what to scrape (file_sd).
PROMETHEUS_TARGETS = LOCAL_DIR / "prometheus" / "targets"


def environment(settings: Settings) -> dict[str, str]:
    """The variables that make a service process use these settings."""
    return {
        **_s3_environment(settings),
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
        **_auth_environment(settings),
        **{
            f"ROSTERFLOW_HEALING_{name.upper()}": str(value)
            for name, value in settings.healing.model_dump().items()
        },
    }


def _auth_environment(settings: Settings) -> dict[str, str]:
    """The front door's token verification, when configured."""
    auth = settings.auth
    env = {"ROSTERFLOW_AUTH_AUDIENCE": auth.audience}
    if auth.issuer is not None:
        env["ROSTERFLOW_AUTH_ISSUER"] = auth.issuer
    if auth.hs256_secret is not None:
        env["ROSTERFLOW_AUTH_HS256_SECRET"] = auth.hs256_secret.get_secret_value()
    if auth.rs256_public_key_file is not None:
        env["ROSTERFLOW_AUTH_RS256_PUBLIC_KEY_FILE"] = str(auth.rs256_public_key_file)
    if settings.ui.session_secret is not None:
        env["ROSTERFLOW_UI_SESSION_SECRET"] = settings.ui.session_secret.get_secret_value()
    return env


def _s3_environment(settings: Settings) -> dict[str, str]:
    """The S3 endpoint and credentials, when set."""
    storage = settings.storage
    values = {
        "ROSTERFLOW_STORAGE_S3_ENDPOINT": storage.s3_endpoint,
        "ROSTERFLOW_STORAGE_S3_REGION": storage.s3_region,
        "ROSTERFLOW_STORAGE_S3_ACCESS_KEY_ID": storage.s3_access_key_id,
        "ROSTERFLOW_STORAGE_S3_SECRET_ACCESS_KEY": (
            storage.s3_secret_access_key.get_secret_value()
            if storage.s3_secret_access_key is not None
            else None
        ),
    }
    return {name: value for name, value in values.items() if value is not None}


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    # Where its /health, /ready and /metrics answer.
    ops_url: str = ""


@dataclass
class Services:
    running: list[Service]
    base_url: str
    # Every ingest instance's API (the first is base_url); more with instances > 1.
    base_urls: list[str] = field(default_factory=list)

    def instances(self, name: str) -> list[Service]:
        """The running processes of one service (``validator`` or ``validator-2`` …)."""
        return [s for s in self.running if s.name == name or s.name.startswith(name + "-")]

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
            # 404 for the unknown job, or 401: ingest answers, and wants a token.
            if httpx.get(url, timeout=1.0).status_code in (401, 404):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the ingest API at {url} did not answer within {within} s")


def _instance_environment(settings: Settings, name: str, instance: int) -> dict[str, str]:
    """What the instances of a service need apart: ingest's API port, a client id.

    (Every process gets its own ops port from _ops_endpoint.)
    """
    extra = {
        # The broker tells the instances apart by client id (<id>-<instance>-<service>).
        "ROSTERFLOW_KAFKA_CLIENT_ID": f"{settings.kafka.client_id}-{instance}",
    }
    if name == "ingest" and instance > 1:
        extra["ROSTERFLOW_HTTP_PORT"] = str(free_port(settings.http.host))
    return extra


@contextmanager
def service_processes(
    settings: Settings,
    log_dir: Path,
    names: tuple[str, ...] = SERVICES,
    *,
    instances: int = 1,
    targets_dir: Path = PROMETHEUS_TARGETS,
) -> Iterator[Services]:
    """Start each service with ``python -m services.<name>``; SIGTERM them on exit.

    With ``instances`` > 1 each service runs that many processes (``validator-1``,
    ``validator-2`` …) in the same consumer groups, each with ports of its own.
    Each process is announced to Prometheus by a target file in ``targets_dir``
    while it runs.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **environment(settings)}
    started: list[Service] = []
    base_urls: list[str] = []
    announced: list[Path] = []
    try:
        for name in names:
            for instance in range(1, instances + 1):
                label = name if instances == 1 else f"{name}-{instance}"
                extra = _instance_environment(settings, name, instance) if instances > 1 else {}
                ops_env, ops_url = _ops_endpoint(settings, name, extra)
                log = log_dir / f"{label}.log"
                with log.open("ab") as out:
                    process = subprocess.Popen(
                        [sys.executable, "-m", f"services.{name}"],
                        cwd=REPO_ROOT,
                        env={**env, **extra, **ops_env},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                started.append(Service(label, process, log, ops_url))
                announced.append(announce(targets_dir, name, label, process.pid, ops_url))
                if name == "ingest":
                    port = extra.get("ROSTERFLOW_HTTP_PORT", str(settings.http.port))
                    base_urls.append(f"http://{settings.http.host}:{port}")
        base_url = f"http://{settings.http.host}:{settings.http.port}"
        for url in base_urls:
            _wait_for_http(
                f"{url}/v1/imports/00000000-0000-0000-0000-000000000000",
                started,
                within=60 * instances,  # more processes starting on the same cores
            )
        yield Services(started, base_url, base_urls)
    finally:
        # Withdrawn first: a process stopped on purpose is not a target that is down.
        for path in announced:
            path.unlink(missing_ok=True)
        for service in started:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in started:
            try:
                service.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()


def announce(targets_dir: Path, service: str, label: str, pid: int, ops_url: str) -> Path:
    """Write a Prometheus file_sd target file for one process; return its path.

    Written to a temporary name and renamed, so Prometheus never reads half a file.
    """
    targets_dir.mkdir(parents=True, exist_ok=True)
    address = ops_url.removeprefix("http://")
    group = [{"targets": [address], "labels": {"service": service, "process": label}}]
    path = targets_dir / f"{label}-{pid}.json"
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(group))
    partial.replace(path)
    return path


# --- ops endpoints -------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ops_endpoint(
    settings: Settings, name: str, extra: dict[str, str]
) -> tuple[dict[str, str], str]:
    """A port of its own for each process's ops endpoints."""
    host = settings.ops.host
    ops_port = free_port(host)
    return (
        {"ROSTERFLOW_OPS_HOST": host, "ROSTERFLOW_OPS_PORT": str(ops_port)},
        f"http://{host}:{ops_port}",
    )


# --- memory limits -------------------------------------------------

_UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}


def manifest_memory_limit(name: str) -> int:
    """The memory limit (bytes) of a service's container in deploy/k8s/base."""
    import yaml  # only the tests and the benchmarks ask

    path = REPO_ROOT / "deploy" / "k8s" / "base" / f"{name}.yaml"
    for document in yaml.safe_load_all(path.read_text()):
        if not document or document.get("kind") != "Deployment":
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            text = str(container["resources"]["limits"]["memory"])
            unit = text[-2:]
            return int(text[:-2]) * _UNITS[unit] if unit in _UNITS else int(text)
    raise ValueError(f"no Deployment with a memory limit in {path}")


def _status_kib(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


class MemoryWatch:
    """A limit on each process's resident memory, as a container's would be: a
    process above its limit is killed (SIGKILL, like the OOM killer), and its peak
    (VmHWM, the kernel's high-water mark) is kept while it runs."""

    def __init__(self, limits: dict[int, int], every: float = 0.02) -> None:
        self.limits = limits
        """pid → bytes."""
        self.peaks: dict[int, int] = dict.fromkeys(limits, 0)
        self.killed: list[int] = []
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="memory-watch", daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._look()

    def _look(self) -> None:
        for pid, limit in self.limits.items():
            rss, peak = _status_kib(pid, "VmRSS"), _status_kib(pid, "VmHWM")
            if peak is not None:
                self.peaks[pid] = max(self.peaks[pid], peak * 1024)
            if rss is not None and rss * 1024 > limit and pid not in self.killed:
                self.killed.append(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _watch(self) -> None:
        while not self._stop.wait(self._every):
            self._look()
