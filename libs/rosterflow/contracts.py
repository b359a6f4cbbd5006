"""Generate schemas/ from the event models: JSON Schemas, examples, AsyncAPI.

    python -m rosterflow.contracts          # rewrite schemas/
    python -m rosterflow.contracts --check  # exit 1 when schemas/ has drifted

The platform team builds against schemas/; the models are the source of truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from rosterflow import events
from rosterflow.settings import REPO_ROOT
from rosterflow.topics import ALL_TOPICS, TopicSpec

SCHEMAS_DIR = REPO_ROOT / "schemas"

_JOB = UUID("6f1c1e0e-3b7a-4c57-9d2e-2f0c8a1d5b10")
_ORG = UUID("0b9e4d4a-5d38-4f0e-8a51-7c3f2e6a9d01")
_UNIT = UUID("5e2a7c11-9f4b-4d2e-b6a0-1c8d3e4f5a02")
_AT = datetime(2026, 8, 17, 7, 30, tzinfo=UTC)
_WHO = events.Requester(
    user_id="u-1042", name="Karin Admin", email="karin.admin@example.org", language="sv"
)
_REQUEST = events.ImportRequest(
    organisation_id=_ORG,
    unit_id=_UNIT,
    school_year="2026/2027",
    options=events.ImportOptions(archive_missing=True),
)
_FILE = events.StoredFile(
    key=f"orgs/{_ORG}/uploads/{_JOB}/source",
    name="elever-ht2026.csv",
    sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    size_bytes=48213,
)
_COUNTS = events.ImportCounts(
    created=12, updated=30, unchanged=410, reactivated=2, guardians_created=20, guardians_updated=7
)


def examples() -> dict[str, events.Message]:
    """One realistic message per event, all of the same job."""
    common: dict[str, Any] = {"job_id": _JOB, "occurred_at": _AT}
    samples: list[events.Message] = [
        events.UploadRequested(
            event_id=UUID(int=1), request=_REQUEST, file=_FILE, requested_by=_WHO, **common
        ),
        events.JobAccepted(event_id=UUID(int=2), request=_REQUEST, file=_FILE, **common),
        events.JobRejected(
            event_id=UUID(int=3),
            code="unit_not_found",
            message="The unit does not exist in this organisation.",
            **common,
        ),
        events.JobValidated(
            event_id=UUID(int=4),
            counts=events.CheckCounts(
                rows=460, valid=454, invalid=5, empty=1, warnings=3, protected_identities=1
            ),
            plan=events.Plan(
                create=12,
                update=30,
                unchanged=410,
                reactivate=2,
                archive=7,
                guardians_create=20,
                guardians_update=7,
            ),
            detected=events.Detected(
                encoding="cp1252",
                delimiter=";",
                format=events.FileFormat.ROSTERFLOW_CSV,
                columns={
                    "identity": "Personnummer",
                    "given_name": "Förnamn",
                    "family_name": "Efternamn",
                    "grade": "Årskurs",
                    "class": "Klass",
                },
            ),
            report=events.Report(
                valid_rows_key=f"orgs/{_ORG}/reports/{_JOB}/valid.parquet",
                invalid_rows_key=f"orgs/{_ORG}/reports/{_JOB}/invalid.parquet",
            ),
            **common,
        ),
        events.ConfirmationRequested(event_id=UUID(int=5), requested_by=_WHO, **common),
        events.ImportConfirmed(event_id=UUID(int=6), confirmed_by=_WHO, **common),
        events.ImportApplied(event_id=UUID(int=7), counts=_COUNTS, archive_missing=True, **common),
        events.ArchiveHeld(event_id=UUID(int=11), archive=57, active=460, hold_ratio=0.1, **common),
        events.ArchiveDecisionRequested(
            event_id=UUID(int=12), approve=True, requested_by=_WHO, **common
        ),
        events.ArchiveDecided(event_id=UUID(int=13), approve=True, decided_by=_WHO, **common),
        events.ArchiveUndone(event_id=UUID(int=14), reactivated=57, undone_by=_WHO, **common),
        events.JobFinished(
            event_id=UUID(int=8),
            outcome=events.Outcome.COMPLETED,
            imported=_COUNTS,
            archived=7,
            **common,
        ),
        events.CancelRequested(event_id=UUID(int=9), requested_by=_WHO, **common),
        events.DeadLetter(
            event_id=UUID(int=10),
            job_id=_JOB,
            occurred_at=_AT,
            source_topic="rosterflow.import-confirmed.v1",
            partition=1,
            offset=4711,
            consumer="importer",
            reason="not a valid ImportConfirmed: confirmed_by: Field required",
            original_key_b64="NmYxYzFlMGUtM2I3YS00YzU3LTlkMmUtMmYwYzhhMWQ1YjEw",
            original_value_b64="eyJqb2JfaWQiOiAiNmYxYzFlMGUifQ==",
        ),
    ]
    return {type(s).kind: s for s in samples}


def _schema_name(spec: TopicSpec) -> str:
    return f"{spec.event.kind}.v1.schema.json"


def json_schema(spec: TopicSpec) -> dict[str, Any]:
    schema = spec.event.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _schema_name(spec),
        **schema,
    }


# What every producer must do, the platform included: the pipeline's own
# producers (aiokafka) partition by murmur2 of the key, as Kafka's Java client;
# a producer that partitions otherwise (kcat's default, librdkafka's
# consistent_random) puts a job's events on another partition than the
# pipeline's, and their order is lost.
KEY_DESCRIPTION = (
    "The job id as a UUID string (UTF-8), the same for every event of a job. "
    "Producers must partition by murmur2 of this key, as Kafka's Java client and aiokafka "
    "do by default (librdkafka, kcat: -X partitioner=murmur2_random), so that all events of "
    "a job land on one partition, in order."
)
PARTITIONER = "murmur2"


def _headers(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "content-type": {"type": "string", "const": "application/json"},
            "event-kind": {
                "type": "string",
                "const": name,
                "description": "The event's name; every message of a topic carries the same",
            },
        },
        "required": ["content-type", "event-kind"],
    }


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in ALL_TOPICS:
        name = spec.event.__name__
        messages[name] = {
            "name": name,
            "contentType": "application/json",
            "headers": _headers(name),
            "payload": {"$ref": f"./{_schema_name(spec)}"},
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "format": "uuid", "description": KEY_DESCRIPTION},
                    "bindingVersion": "0.5.0",
                }
            },
            "examples": [{"payload": json.loads(examples()[spec.event.kind].model_dump_json())}],
        }
        channel = spec.name.replace(".", "_").replace("-", "_")
        channels[channel] = {
            "address": spec.name,
            "description": spec.description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "kafka": {
                    "topic": spec.name,
                    "topicConfiguration": {
                        "cleanup.policy": ["compact"] if spec.compacted else ["delete"]
                    },
                }
            },
            "x-producers": list(spec.producers),
            "x-consumers": list(spec.consumers),
        }
        operations[f"publish_{channel}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": f"Published by {', '.join(spec.producers)}; key: the job id, "
            f"partitioned by {PARTITIONER}",
            "x-partitioner": PARTITIONER,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "rosterflow events",
            "version": "1",
            "description": "Every message is JSON, keyed by its job id (UTF-8 UUID), with "
            "the headers content-type (application/json) and event-kind (the event's name). "
            + KEY_DESCRIPTION
            + " Topic names get the deployment's prefix (ROSTERFLOW_KAFKA_PREFIX). A request "
            "whose job id can be read is always answered: JobRejected and JobFinished "
            "(rejected) for a job that cannot start, JobFinished (failed) for a running one.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> dict[Path, str]:
    """Every file of schemas/, as it must be."""
    files: dict[Path, str] = {}

    def dump(value: Any) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n"

    for spec in ALL_TOPICS:
        files[SCHEMAS_DIR / _schema_name(spec)] = dump(json_schema(spec))
    for kind, example in examples().items():
        files[SCHEMAS_DIR / "examples" / f"{kind}.json"] = dump(
            json.loads(example.model_dump_json())
        )
    files[SCHEMAS_DIR / "asyncapi.json"] = dump(asyncapi())
    return files


def drift() -> list[str]:
    wanted = render()
    problems = [
        f"{path.relative_to(REPO_ROOT)} is out of date"
        for path, text in wanted.items()
        if not path.exists() or path.read_text() != text
    ]
    for path in SCHEMAS_DIR.rglob("*.json"):
        # The HTTP API's document is services.ingest.openapi's (make check runs both).
        if path not in wanted and path != SCHEMAS_DIR / "openapi.json":
            problems.append(f"{path.relative_to(REPO_ROOT)} belongs to no event")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report drift")
    args = parser.parse_args()
    if args.check:
        problems = drift()
        print("\n".join(problems) or "schemas/ is up to date")
        sys.exit(1 if problems else 0)
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(render())} files to {SCHEMAS_DIR.relative_to(REPO_ROOT)}/")


if __name__ == "__main__":
    main()
