"""Where the stack keeps its state and which ports it uses, with the env overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import StackError

HOST = "127.0.0.1"
DEPLOY_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = DEPLOY_DIR.parents[1]
KAFKA_POM = DEPLOY_DIR / "kafka" / "pom.xml"
KAFKA_LOG4J = DEPLOY_DIR / "kafka" / "log4j2.properties"
SMTP_SINK = DEPLOY_DIR / "smtp_sink.py"


@dataclass(frozen=True)
class Config:
    local: Path
    kafka_port: int
    pg_port: int
    smtp_port: int
    s3_port: int = 18333
    prometheus_port: int = 19090

    @property
    def controller_port(self) -> int:
        return self.kafka_port + 1

    @property
    def pids(self) -> Path:
        return self.local / "pids"

    @property
    def kafka_dir(self) -> Path:
        return self.local / "kafka"

    @property
    def kafka_libs(self) -> Path:
        return self.kafka_dir / "libs"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def kafka_logs(self) -> Path:
        return self.kafka_dir / "logs"

    @property
    def kafka_properties(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def pg_dir(self) -> Path:
        return self.local / "postgres"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def pg_run(self) -> Path:
        return self.pg_dir / "run"

    @property
    def pg_log(self) -> Path:
        return self.pg_dir / "log" / "postgres.log"

    @property
    def mailbox(self) -> Path:
        return self.local / "mail"

    @property
    def smtp_log(self) -> Path:
        return self.local / "logs" / "smtp_sink.log"

    @property
    def s3_dir(self) -> Path:
        return self.local / "s3"

    @property
    def s3_log(self) -> Path:
        return self.local / "logs" / "s3.log"

    @property
    def prometheus_dir(self) -> Path:
        return self.local / "prometheus"

    @property
    def prometheus_data(self) -> Path:
        return self.prometheus_dir / "data"

    @property
    def prometheus_targets(self) -> Path:
        return self.prometheus_dir / "targets"

    @property
    def prometheus_config(self) -> Path:
        return self.prometheus_dir / "prometheus.yml"

    @property
    def prometheus_log(self) -> Path:
        return self.local / "logs" / "prometheus.log"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"


def env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    # isdigit() alone also accepts digits such as '²' that int() rejects.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65534:
        raise StackError(f"{name}={raw!r} is not a valid port number (1-65534)")
    return int(raw)


def load_config() -> Config:
    local = Path(os.environ.get("ROSTERFLOW_LOCAL_DIR") or REPO_ROOT / ".local").resolve()
    return Config(
        local=local,
        kafka_port=env_port("ROSTERFLOW_LOCAL_KAFKA_PORT", 19092),
        pg_port=env_port("ROSTERFLOW_LOCAL_PG_PORT", 55432),
        smtp_port=env_port("ROSTERFLOW_LOCAL_SMTP_PORT", 2525),
        # S3 (SeaweedFS) on this port; its other ports take the next nine.
        s3_port=env_port("ROSTERFLOW_LOCAL_S3_PORT", 18333),
        prometheus_port=env_port("ROSTERFLOW_LOCAL_PROMETHEUS_PORT", 19090),
    )
