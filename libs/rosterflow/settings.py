"""Configuration from the environment, one model per concern.

Every default is the local stack's value (deploy/local/stack.py), so a
service started on a developer machine needs no configuration at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    # Attempts a consumer makes at one event of a job; each is counted before
    # the work starts, so a crash, an abort or an out-of-memory kill counts
    # too. One more delivery ends the job failed (stage_attempts_exhausted)
    # and the partition moves on.
    max_attempts: int = Field(default=3, ge=1)
    # The dead-letter limit: when at least dead_letter_min_failures of the
    # last dead_letter_window messages a service handled were dead-lettered,
    # and they are at least dead_letter_ratio of them, the service stops
    # consuming (not ready, rosterflow_consumer_halted, an alert) rather than
    # fail every job in flight for what is likely its own fault.
    dead_letter_window: int = Field(default=20, ge=1)
    dead_letter_min_failures: int = Field(default=5, ge=1)
    dead_letter_ratio: float = Field(default=0.5, gt=0, le=1)
    # The outbox's sweep: how often every instance publishes the events nobody
    # published right after their commit (a crash in between, a broker down).
    outbox_sweep_seconds: float = Field(default=1.0, gt=0)


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

    # --- S3: used when `uri` is s3://bucket/prefix ---
    # The endpoint of an S3-compatible server (MinIO, SeaweedFS, Ceph …) as a
    # URL, e.g. http://minio:9000; unset means AWS itself. Credentials unset
    # means the AWS default chain (AWS_* variables, web identity, instance role).
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # A PEM bundle to trust for the endpoint instead of the system's CAs.
    s3_ca_file: Path | None = None
    s3_request_timeout_seconds: float = Field(default=30.0, gt=0)
    s3_connect_timeout_seconds: float = Field(default=5.0, gt=0)


class SmtpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_SMTP_")

    host: str = "127.0.0.1"
    port: int = 2525
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "none"
    # A CA bundle (PEM) to trust instead of the system's, for a relay whose
    # certificate a private CA signed. Hostnames are verified either way.
    ca_file: Path | None = None
    sender: str = "rosterflow <no-reply@rosterflow.invalid>"
    # Per SMTP command; a whole send is also cut off at half the lease below.
    timeout_seconds: float = Field(default=10.0, gt=0)
    # A temporarily failed email is tried again after retry_initial_seconds,
    # doubling up to retry_max_seconds, until retry_give_up_seconds after the
    # job ended (mail relays themselves give up after a few days).
    retry_initial_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=30 * 60.0, gt=0)
    retry_give_up_seconds: float = Field(default=3 * 24 * 3600.0, ge=0)
    # How long an instance holds an email it is sending; if it dies meanwhile,
    # another instance takes the email over when this runs out.
    send_lease_seconds: float = Field(default=120.0, gt=0)
    # How often an idle instance looks for emails due for another try.
    retry_poll_seconds: float = Field(default=5.0, gt=0)
    # Retried emails in flight at once per instance: one slow relay connection
    # must not hold up every other retry.
    max_concurrent_sends: int = Field(default=4, ge=1)


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
    # A plan of at least this many valid rows stages them once, in an UNLOGGED
    # table of the job's own that the importer applies from (smaller jobs are
    # staged again by the importer: creating and dropping a table costs more).
    stage_once_rows: int = Field(default=10_000, ge=1)
    # A job still awaiting confirmation this long after its plan loses that
    # table (its import then stages the rows from the report again).
    staged_rows_kept_hours: float = Field(default=24.0, gt=0)


class HealingSettings(BaseSettings):
    """Re-driving jobs that no stage works on: one ingest instance sweeps at a time."""

    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_HEALING_")

    # How often the sweep looks for stuck jobs.
    sweep_seconds: float = Field(default=30.0, gt=0)
    # A job in a running state that no stage holds, this long after it entered
    # the state (or after its last re-drive), is re-driven: the event that
    # starts its stage is published again. Long enough for a burst's backlog
    # to drain in front of it (a job waiting in Kafka is re-driven for nothing).
    # Each re-drive is one more delivery of the stage's event, counted against
    # ROSTERFLOW_KAFKA_MAX_ATTEMPTS: a job its stage takes and still does not
    # move ends failed (stage_attempts_exhausted) after that many.
    received_deadline_seconds: float = Field(default=300.0, gt=0)
    validating_deadline_seconds: float = Field(default=300.0, gt=0)
    importing_deadline_seconds: float = Field(default=300.0, gt=0)
    archiving_deadline_seconds: float = Field(default=300.0, gt=0)

    def deadline(self, state: str) -> float | None:
        """Seconds a job may wait in ``state`` before it is re-driven; None: never."""
        value = getattr(self, f"{state}_deadline_seconds", None)
        return None if value is None else float(value)


# --- front door: bearer tokens from the journal platform ---------

HS256_MIN_SECRET_BYTES = 32


def _long_enough(secret: SecretStr | None, variable: str, unset: str) -> SecretStr | None:
    """A signing secret of at least HS256_MIN_SECRET_BYTES, or none at all."""
    if secret is not None and len(secret.get_secret_value().encode()) < HS256_MIN_SECRET_BYTES:
        raise ValueError(f"{variable} must be at least {HS256_MIN_SECRET_BYTES} bytes ({unset})")
    return secret


class AuthSettings(BaseSettings):
    """How ingest verifies the platform's JWTs: HS256 with a shared secret and/or
    RS256 with the platform's public key (PEM). A token whose algorithm has no
    key configured is refused."""

    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_AUTH_")

    audience: str = "rosterflow"
    # Checked only when set.
    issuer: str | None = None
    hs256_secret: SecretStr | None = None
    rs256_public_key_file: Path | None = None
    # Clock skew tolerated on exp/nbf/iat.
    leeway_seconds: float = Field(default=30.0, ge=0)

    @field_validator("hs256_secret")
    @classmethod
    def _strong_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        # RFC 7518 §3.2: an HS256 key at least as long as the hash (256 bits).
        # A shorter one can be guessed offline from any token; refuse to start.
        return _long_enough(
            secret, "ROSTERFLOW_AUTH_HS256_SECRET", "leave it unset to refuse HS256 tokens"
        )


class UiSettings(BaseSettings):
    """The administrator's pages that ingest serves under /ui."""

    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_UI_")

    # Signs the session cookie. Unset: a random secret per process, so sessions
    # end when ingest restarts and do not carry over to a second instance.
    session_secret: SecretStr | None = None
    session_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Send the cookie over HTTPS only (set behind TLS).
    secure_cookie: bool = False
    # Who may frame the pages (CSP frame-ancestors): the platform's origin when it embeds them.
    frame_ancestors: str = "'self'"
    # A one-time sign-in link (local use) is good for this long.
    ticket_minutes: int = Field(default=30, ge=1, le=24 * 60)

    @field_validator("session_secret")
    @classmethod
    def _strong_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        # Whoever guesses it signs sessions of any administrator: as long as an HS256 key.
        return _long_enough(
            secret, "ROSTERFLOW_UI_SESSION_SECRET", "leave it unset for a random one per process"
        )


# --- operations: health, metrics and tracing ---------------------


class OpsSettings(BaseSettings):
    """Where every service serves /health, /ready and /metrics (never on ingest's API port)."""

    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_OPS_")

    host: str = "127.0.0.1"
    port: int = Field(default=9100, ge=0, le=65535)
    # Each readiness check (broker, database, object storage) gives up after this.
    check_timeout_seconds: float = Field(default=3.0, gt=0)


class TracingSettings(BaseSettings):
    """OpenTelemetry traces across the Kafka hops; off unless an endpoint is set."""

    model_config = SettingsConfigDict(env_prefix="ROSTERFLOW_TRACING_")

    # An OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces.
    otlp_endpoint: str | None = None
    sample_ratio: float = Field(default=1.0, ge=0, le=1)


class Settings(BaseSettings):
    """Everything a service needs; each part reads its own variables."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    platform: PlatformSettings = Field(default_factory=PlatformSettings)
    imports: ImportSettings = Field(default_factory=ImportSettings)
    healing: HealingSettings = Field(default_factory=HealingSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    # operations
    ops: OpsSettings = Field(default_factory=OpsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
