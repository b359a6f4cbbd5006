"""ObjectStore against a local directory and against the local stack's S3 server, alike.

The S3 cases talk to a real S3 server over HTTP (SeaweedFS, started by
`deploy/local/stack.py up`) with signed requests; a server that is not
running fails them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pyarrow as pa
import pytest

from rosterflow.settings import StorageSettings
from rosterflow.storage import (
    ObjectStore,
    StorageError,
    UploadTooLarge,
    report_keys,
    upload_key,
)
from tests.support.s3 import local_s3, remove_prefix


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageSettings]:
    if request.param == "local":
        yield StorageSettings(uri=(tmp_path / "objects").as_uri())
        return
    settings = local_s3()
    yield settings
    remove_prefix(settings)


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read_all(store: ObjectStore, key: str, block: int = 64 * 1024) -> tuple[bytes, int]:
    """The object's bytes, read as a stream in blocks, and how many reads it took."""
    parts = []
    with store.open_input(key) as stream:
        while chunk := stream.read(block):
            parts.append(chunk)
    return b"".join(parts), len(parts)


def valid_rows(count: int) -> pa.Table:
    return pa.table(
        {
            "line": pa.array(range(2, count + 2), pa.int64()),
            "identity_number": [f"20100101{i % 10000:04d}" for i in range(count)],
            "class_name": [f"{1 + i % 9}A" for i in range(count)],
        }
    )


async def test_an_upload_streams_in_hashed_and_reads_back_as_a_stream(
    storage: StorageSettings,
) -> None:
    store = ObjectStore.from_settings(storage)
    org, job = uuid4(), uuid4()
    # 12 MB: larger than pyarrow's S3 part size, so the upload is a multipart one.
    data = os.urandom(12 * 1024 * 1024 + 17)
    key = upload_key(org, job)

    written = await store.write_stream(key, chunks_of(data, 256 * 1024), max_bytes=len(data))

    assert written.key == f"orgs/{org}/uploads/{job}/source"
    assert written.size_bytes == len(data)
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert store.size(key) == len(data)
    back, reads = read_all(store, key)
    assert back == data
    assert reads > 1


async def test_an_upload_over_the_limit_leaves_nothing(storage: StorageSettings) -> None:
    store = ObjectStore.from_settings(storage)
    key = upload_key(uuid4(), uuid4())

    with pytest.raises(UploadTooLarge):
        await store.write_stream(key, chunks_of(b"x" * 300_000, 65_536), max_bytes=200_000)

    with pytest.raises(StorageError):
        store.size(key)
    with pytest.raises(StorageError):
        store.open_input(key)


def test_reports_are_parquet_read_back_by_row_group(storage: StorageSettings) -> None:
    store = ObjectStore.from_settings(storage)
    valid_key, invalid_key = report_keys(uuid4(), uuid4())
    rows = valid_rows(25_000)

    store.write_table(valid_key, rows, row_group_size=10_000)
    with store.parquet_writer(invalid_key, rows.schema, compression="zstd") as writer:
        for batch in rows.to_batches(max_chunksize=7_000):
            writer.write_batch(batch)

    parquet = store.parquet_file(valid_key)
    assert parquet.metadata.num_row_groups == 3
    assert parquet.read_row_group(2).num_rows == 5_000
    assert parquet.read().equals(rows)
    assert store.parquet_file(invalid_key).read().equals(rows)
    with pytest.raises(StorageError):
        store.parquet_file(valid_key + ".missing")


def test_an_organisations_objects_all_live_under_its_prefix(storage: StorageSettings) -> None:
    store = ObjectStore.from_settings(storage)
    org, other, job = uuid4(), uuid4(), uuid4()
    store.write_bytes(upload_key(org, job), b"source")
    store.write_table(report_keys(org, job)[0], valid_rows(3))
    store.write_bytes(upload_key(other, job), b"someone else's")

    # A store rooted at the organisation's prefix sees exactly its objects.
    scoped = ObjectStore.from_settings(
        storage.model_copy(update={"uri": storage.uri.rstrip("/") + f"/orgs/{org}"})
    )
    assert scoped.size(f"uploads/{job}/source") == len(b"source")
    assert scoped.parquet_file(f"reports/{job}/valid.parquet").read().num_rows == 3
    with pytest.raises(StorageError):
        scoped.size(f"../{other}/uploads/{job}/source")
    with pytest.raises(StorageError):
        store.write_bytes(f"orgs/{org}/../{other}/x", b"escape")


def test_move_replaces_the_source(storage: StorageSettings) -> None:
    store = ObjectStore.from_settings(storage)
    valid_key, _ = report_keys(uuid4(), uuid4())
    store.write_table(valid_key, valid_rows(100))

    store.move(valid_key, valid_key + ".partial")

    with pytest.raises(StorageError):
        store.size(valid_key)
    assert store.parquet_file(valid_key + ".partial").read().num_rows == 100


def test_retention_deletes_a_jobs_objects_and_nothing_else(storage: StorageSettings) -> None:
    store = ObjectStore.from_settings(storage)
    org = uuid4()
    expired, kept = uuid4(), uuid4()

    def job_objects(job: UUID) -> list[str]:
        keys = [upload_key(org, job), *report_keys(org, job)]
        store.write_bytes(keys[0], b"file")
        for key in keys[1:]:
            store.write_table(key, valid_rows(10))
        return keys

    expired_keys, kept_keys = job_objects(expired), job_objects(kept)

    for key in expired_keys:
        store.delete(key)
    for key in expired_keys:  # a second pass (a retried retention run) is harmless
        store.delete(key)

    for key in expired_keys:
        with pytest.raises(StorageError):
            store.size(key)
        with pytest.raises(StorageError):
            store.open_input(key)
    assert store.size(kept_keys[0]) == 4
    assert [store.parquet_file(k).read().num_rows for k in kept_keys[1:]] == [10, 10]


def test_wrong_s3_credentials_are_refused_by_the_server() -> None:
    good = local_s3()
    store = ObjectStore.from_settings(local_s3(good.uri.split("/", 3)[3], secret="not-the-secret"))
    try:
        with pytest.raises(OSError, match=r"(?i)signature|access.denied|forbidden"):
            store.write_bytes("orgs/x/uploads/y/source", b"data")
        ObjectStore.from_settings(good).write_bytes("orgs/x/uploads/y/source", b"data")
        with pytest.raises(OSError, match=r"(?i)signature|access.denied|forbidden"):
            store.size("orgs/x/uploads/y/source")
    finally:
        remove_prefix(good)
