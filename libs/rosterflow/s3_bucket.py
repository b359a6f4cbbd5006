"""python -m rosterflow.s3_bucket: create the storage URI's bucket if it is missing.

For a fresh S3-compatible server (compose's one-shot `minio-bucket` job); it reads
the same ROSTERFLOW_STORAGE_* settings as the services. The services themselves
never create or delete buckets.
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from rosterflow.settings import StorageSettings
from rosterflow.storage import s3_options


def ensure_bucket(settings: StorageSettings) -> bool:
    """True when the bucket was created, False when it existed."""
    bucket = urlsplit(settings.uri).netloc
    options, _ = s3_options(settings)
    fs = pafs.S3FileSystem(**options, allow_bucket_creation=True)
    if fs.get_file_info(bucket).type == pafs.FileType.Directory:
        return False
    fs.create_dir(bucket)
    return True


def main() -> int:
    settings = StorageSettings()
    if urlsplit(settings.uri).scheme != "s3":
        print(f"ROSTERFLOW_STORAGE_URI is not an s3:// URI: {settings.uri}", file=sys.stderr)
        return 2
    created = ensure_bucket(settings)
    print(f"bucket {urlsplit(settings.uri).netloc}: {'created' if created else 'exists'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
