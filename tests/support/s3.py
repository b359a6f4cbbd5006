"""The local stack's S3 server (SeaweedFS, deploy/local/devstack/s3.py) as tests reach it."""

from __future__ import annotations

import os
from uuid import uuid4

import pyarrow.fs as pafs
from pydantic import SecretStr

from rosterflow.settings import StorageSettings
from rosterflow.storage import s3_filesystem

# The stack's development values; deploy/local/devstack/s3.py defines the same.
BUCKET = "rosterflow"
ACCESS_KEY = "rosterflow-local"
SECRET_KEY = "rosterflow-local-secret"


def endpoint() -> str:
    port = os.environ.get("ROSTERFLOW_LOCAL_S3_PORT", "").strip() or "18333"
    return f"http://127.0.0.1:{port}"


def local_s3(prefix: str | None = None, *, secret: str = SECRET_KEY) -> StorageSettings:
    """Settings for a prefix of its own in the local bucket (a new one by default)."""
    return StorageSettings(
        uri=f"s3://{BUCKET}/{prefix or 't' + uuid4().hex[:12]}",
        s3_endpoint=endpoint(),
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SecretStr(secret),
    )


def remove_prefix(settings: StorageSettings) -> None:
    """Delete everything under the settings' prefix (never the bucket)."""
    fs, root = s3_filesystem(settings)
    if root.strip("/") == BUCKET:
        raise ValueError("refusing to empty the whole bucket")
    if fs.get_file_info(root).type != pafs.FileType.NotFound:
        fs.delete_dir(root)
