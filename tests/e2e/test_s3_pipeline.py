"""One import through the five service processes with S3 object storage (the local S3 server).

The journal platform's way in (the file stored, UploadRequested, then
ConfirmationRequested), driven by the compose demo-data job's own code
(`rosterflow.demo_data`) with its demo files: the validator streams the upload
from S3 and writes its Parquet report there, the importer, archiver and
notifier read the report from S3.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pyarrow.fs as pafs

from rosterflow import demo_data
from rosterflow.jobs import JobState
from rosterflow.launcher import free_port, service_processes
from rosterflow.settings import REPO_ROOT, HttpSettings, Settings
from rosterflow.storage import report_keys, s3_filesystem, upload_key
from rosterflow.testing import wait_for
from tests.support.s3 import local_s3, remove_prefix


async def test_an_import_runs_end_to_end_on_s3_storage(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    storage = local_s3()
    settings = settings.model_copy(
        update={"storage": storage, "http": HttpSettings(port=free_port())}
    )
    files = demo_data.DemoFiles.read(REPO_ROOT / "deploy" / "compose" / "demo")
    try:
        with service_processes(settings, tmp_path / "logs") as services:
            job = await demo_data.run(settings, files, within=120)

            async def email_sent() -> list[tuple[str, str]] | None:
                rows = await conn.fetch(
                    "SELECT outcome, state FROM notifications WHERE job_id = $1", job.id
                )
                sent = [(r["outcome"], r["state"]) for r in rows]
                return sent if sent and all(state != "sending" for _, state in sent) else None

            emails = await wait_for(email_sent, within=30, what="the job's email")
            assert services.alive() == ["ingest", "validator", "importer", "archiver", "notifier"]

        assert job.state is JobState.COMPLETED, job.error_message
        assert job.import_counts == {
            "created": 300,
            "updated": 0,
            "unchanged": 0,
            "reactivated": 0,
            "guardians_created": 0,
            "guardians_updated": 0,
            "guardians_unchanged": 0,
        }
        assert job.archived_count == len(files.leavers)
        assert job.check_result is not None
        assert job.check_result.counts.invalid == 6

        # The objects are in the bucket, under the organisation's prefix.
        fs, root = s3_filesystem(storage)
        assert isinstance(fs, pafs.S3FileSystem)
        valid_key, invalid_key = report_keys(job.organisation_id, job.id)
        assert job.file_key == upload_key(job.organisation_id, job.id)
        for key in (job.file_key, valid_key, invalid_key):
            assert fs.get_file_info(f"{root}/{key}").type == pafs.FileType.File, key
        assert fs.get_file_info(f"{root}/{job.file_key}").size == len(files.roster)
        assert job.check_result.report.valid_rows_key == valid_key

        active = await conn.fetchval(
            "SELECT count(*) FROM enrolments WHERE unit_id = $1 AND status = 'active'",
            job.unit_id,
        )
        assert active == 300
        assert emails == [("completed", "sent")]
    finally:
        remove_prefix(storage)
