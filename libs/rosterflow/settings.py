"""Configuration from the environment, one model per concern.

Every default is the local stack's value (deploy/local/stack.py), so a
service started on a developer machine needs no configuration at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = REPO_ROOT / ".local"


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_KAFKA_")

    bootstrap_servers: str = "127.0.0.1:19092"
    # Prepended to every topic and consumer group name: lets tests (and
    # several environments on one cluster) share a broker without crosstalk.
    prefix: str = ""
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # A validation or an import of a large file runs inside one handler call;
    # the consumer must not be evicted from its group meanwhile.
    max_poll_interval_ms: int = 30 * 60 * 1000
    client_id: str = "rosterflow"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_DB_")

    dsn: SecretStr = SecretStr("postgresql://rosterflow@127.0.0.1:55432/rosterflow")
    min_pool_size: int = 1
    max_pool_size: int = 10


class StorageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_STORAGE_")

    # Anything pyarrow.fs.FileSystem.from_uri understands: a local directory
    # (file:///…) or a bucket (s3://bucket/prefix?endpoint_override=…).
    uri: str = (LOCAL_DIR / "objects").as_uri()
    max_upload_bytes: int = 50 * 1024 * 1024


class SmtpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_SMTP_")

    host: str = "127.0.0.1"
    port: int = 2525
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "none"
    sender: str = "rosterflow <no-reply@rosterflow.invalid>"
    timeout_seconds: float = 10.0


class HttpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_HTTP_")

    host: str = "127.0.0.1"
    port: int = 8080


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_PLATFORM_")

    # Links in emails point at the import in the journal platform.
    base_url: str = "http://127.0.0.1:3000"


class ImportSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_IMPORT_")

    max_rows: int = 1_000_000
    batch_rows: int = 50_000
    default_archive_hold_ratio: float = 0.10


class Settings(BaseSettings):
    """Everything a service needs; each part reads its own variables."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    platform: PlatformSettings = Field(default_factory=PlatformSettings)
    imports: ImportSettings = Field(default_factory=ImportSettings)
