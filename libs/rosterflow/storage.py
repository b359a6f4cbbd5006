"""Object storage through pyarrow.fs: a local directory or an S3 bucket.

Every object of an organisation lives under ``orgs/<organisation id>/`` so
that retention and access can be reasoned about per organisation. Object keys
are built from ids only, never from a client's file name.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rosterflow.settings import StorageSettings


class StorageError(Exception):
    pass


class UploadTooLarge(StorageError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the limit of {limit} bytes")
        self.limit = limit


def upload_key(organisation_id: UUID, job_id: UUID) -> str:
    return f"orgs/{organisation_id}/uploads/{job_id}/source"


def organisation_prefix(organisation_id: UUID) -> str:
    """Every object of an organisation lies under this prefix, and nothing else does."""
    return f"orgs/{organisation_id}/"


def under_organisation(key: str, organisation_id: UUID) -> bool:
    """Whether a key names an object of this organisation (no way out of its prefix)."""
    prefix = organisation_prefix(organisation_id)
    parts = key[len(prefix) :].split("/")
    return key.startswith(prefix) and all(p not in ("", ".", "..") for p in parts)


def report_keys(organisation_id: UUID, job_id: UUID) -> tuple[str, str]:
    base = f"orgs/{organisation_id}/reports/{job_id}"
    return f"{base}/valid.parquet", f"{base}/invalid.parquet"


def archive_key(organisation_id: UUID, job_id: UUID) -> str:
    """The archive set the plan wrote beside the report."""
    valid_key, _ = report_keys(organisation_id, job_id)
    return valid_key.rsplit("/", 1)[0] + "/archive.parquet"


def check_objects(organisation_id: UUID, job_id: UUID) -> tuple[str, ...]:
    """Every object a job's check may leave behind: its report, the report's rewrite
    in progress (``.partial``) and the plan's archive set."""
    valid_key, invalid_key = report_keys(organisation_id, job_id)
    return (
        valid_key,
        invalid_key,
        valid_key + ".partial",
        invalid_key + ".partial",
        archive_key(organisation_id, job_id),
    )


@dataclass(frozen=True)
class WrittenObject:
    key: str
    sha256: str
    size_bytes: int


class ObjectStore:
    def __init__(self, fs: pafs.FileSystem, root: str) -> None:
        self._fs = fs
        self._root = root.rstrip("/")

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> ObjectStore:
        if urlsplit(settings.uri).scheme == "s3":
            return cls(*s3_filesystem(settings))
        fs, root = pafs.FileSystem.from_uri(settings.uri)
        if isinstance(fs, pafs.LocalFileSystem):
            fs.create_dir(root, recursive=True)
        return cls(fs, root)

    def _path(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"refusing an object key outside the store: {key!r}")
        return f"{self._root}/{key}"

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], max_bytes: int
    ) -> WrittenObject:
        """Stream chunks into an object, hashing as it goes; nothing is kept on overflow."""
        digest = hashlib.sha256()
        size = 0
        path = self._path(key)
        self._ensure_parent(path)
        try:
            with self._fs.open_output_stream(path) as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise UploadTooLarge(max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
        except UploadTooLarge:
            self.delete(key)
            raise
        return WrittenObject(key, digest.hexdigest(), size)

    def check(self) -> None:
        """Raise unless the store's root can be listed (readiness probes)."""
        info = self._fs.get_file_info(self._root)
        if info.type == pafs.FileType.NotFound:
            raise StorageError("the object store's root does not exist")

    def write_bytes(self, key: str, data: bytes) -> WrittenObject:
        path = self._path(key)
        self._ensure_parent(path)
        with self._fs.open_output_stream(path) as out:
            out.write(data)
        return WrittenObject(key, hashlib.sha256(data).hexdigest(), len(data))

    def open_input(self, key: str) -> pa.NativeFile:
        try:
            return self._fs.open_input_stream(self._path(key))
        except FileNotFoundError as exc:
            raise StorageError(f"object {key} does not exist") from exc

    def size(self, key: str) -> int:
        info = self._fs.get_file_info(self._path(key))
        if info.type != pafs.FileType.File:
            raise StorageError(f"object {key} does not exist")
        return int(info.size)

    def digest(self, key: str, limit: int) -> WrittenObject:
        """The object's size and SHA-256, read in blocks (no more than ``limit`` + 1 bytes)."""
        digest = hashlib.sha256()
        size = 0
        with self.open_input(key) as source:
            while size <= limit:
                block = source.read(1024 * 1024)
                if not block:
                    break
                size += len(block)
                digest.update(block)
        return WrittenObject(key, digest.hexdigest(), size)

    def write_table(self, key: str, table: pa.Table, row_group_size: int = 50_000) -> None:
        """Parquet; row groups are the batches readers (the importer) work through."""
        path = self._path(key)
        self._ensure_parent(path)
        pq.write_table(
            table, path, filesystem=self._fs, compression="zstd", row_group_size=row_group_size
        )

    def parquet_writer(self, key: str, schema: pa.Schema, **options: Any) -> pq.ParquetWriter:
        """A Parquet object written batch by batch; ``options`` as pyarrow's ParquetWriter."""
        path = self._path(key)
        self._ensure_parent(path)
        return pq.ParquetWriter(path, schema, filesystem=self._fs, **options)

    def parquet_file(self, key: str) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self._fs.open_input_file(self._path(key)))
        except FileNotFoundError as exc:
            raise StorageError(f"object {key} does not exist") from exc

    def move(self, source: str, destination: str) -> None:
        path = self._path(destination)
        self._ensure_parent(path)
        self._fs.move(self._path(source), path)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.delete_file(self._path(key))

    def _ensure_parent(self, path: str) -> None:
        if isinstance(self._fs, pafs.LocalFileSystem):
            self._fs.create_dir(path.rsplit("/", 1)[0], recursive=True)


# pyarrow's own s3:// URI options that may still be given in the URI's query.
_S3_URI_OPTIONS = {"region", "scheme", "endpoint_override"}


def s3_filesystem(settings: StorageSettings) -> tuple[pafs.S3FileSystem, str]:
    """An S3 filesystem and the ``bucket/prefix`` root for an ``s3://bucket/prefix`` URI."""
    options, root = s3_options(settings)
    return pafs.S3FileSystem(**options), root


def s3_options(settings: StorageSettings) -> tuple[dict[str, Any], str]:
    """pyarrow S3FileSystem arguments and the ``bucket/prefix`` root for an s3:// URI.

    Built explicitly rather than by ``FileSystem.from_uri``: the endpoint, region
    and credentials come from the settings (secrets never sit in the URI), and
    with the region given pyarrow never asks AWS where a bucket lives. The
    bucket must exist; the store never creates or deletes buckets.
    """
    parts = urlsplit(settings.uri)
    if not parts.netloc:
        raise StorageError(f"an s3:// storage URI needs a bucket: {settings.uri!r}")
    query = dict(parse_qsl(parts.query))
    unknown = set(query) - _S3_URI_OPTIONS
    if unknown:
        raise StorageError(f"unexpected options in the storage URI: {sorted(unknown)}")
    options: dict[str, Any] = {
        "region": query.get("region", settings.s3_region),
        "request_timeout": settings.s3_request_timeout_seconds,
        "connect_timeout": settings.s3_connect_timeout_seconds,
    }
    if settings.s3_endpoint:
        endpoint = urlsplit(settings.s3_endpoint)
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            raise StorageError(
                f"the S3 endpoint must be an http(s) URL, got {settings.s3_endpoint!r}"
            )
        options["scheme"] = endpoint.scheme
        options["endpoint_override"] = endpoint.netloc
    elif "endpoint_override" in query:
        options["endpoint_override"] = query["endpoint_override"]
        options["scheme"] = query.get("scheme", "https")
    if settings.s3_access_key_id is not None:
        if settings.s3_secret_access_key is None:
            raise StorageError("an S3 access key id was given without its secret access key")
        options["access_key"] = settings.s3_access_key_id
        options["secret_key"] = settings.s3_secret_access_key.get_secret_value()
    if settings.s3_ca_file is not None:
        options["tls_ca_file_path"] = str(settings.s3_ca_file)
    root = (parts.netloc + parts.path).rstrip("/")
    return options, root
