"""The topic registry: every topic, its event, who produces and who consumes it."""

from __future__ import annotations

from dataclasses import dataclass

from rosterflow import events


@dataclass(frozen=True)
class TopicSpec:
    name: str
    event: type[events.Message]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    compacted: bool = False


# The project's own services, the producers and consumers below that are not
# the platform's or the operators'.
SERVICES = ("ingest", "validator", "importer", "archiver", "notifier")
PLATFORM = "journal-platform"

UPLOAD_REQUESTED = TopicSpec(
    "rosterflow.upload-requested.v1",
    events.UploadRequested,
    (PLATFORM,),
    ("ingest",),
    "The platform stored a roster file and asks for an import job.",
)
CONFIRMATION_REQUESTED = TopicSpec(
    "rosterflow.confirmation-requested.v1",
    events.ConfirmationRequested,
    (PLATFORM,),
    ("ingest",),
    "The administrator confirmed the check result.",
)
CANCELLATIONS = TopicSpec(
    "rosterflow.cancellations.v1",
    events.CancelRequested,
    (PLATFORM, "ingest"),
    ("ingest", "validator", "importer", "archiver"),
    "Cancel requests, keyed by job id and compacted; every instance of every "
    "service reads it, not one instance per consumer group.",
    compacted=True,
)
JOB_ACCEPTED = TopicSpec(
    "rosterflow.job-accepted.v1",
    events.JobAccepted,
    ("ingest",),
    ("validator",),
    "A job passed the front door's checks and its file awaits validation.",
)
JOB_REJECTED = TopicSpec(
    "rosterflow.job-rejected.v1",
    events.JobRejected,
    ("ingest",),
    (PLATFORM,),
    "A request was refused (unknown unit, option not allowed, …).",
)
JOB_VALIDATED = TopicSpec(
    "rosterflow.job-validated.v1",
    events.JobValidated,
    ("validator",),
    (PLATFORM,),
    "The check result is ready; the job awaits confirmation.",
)
IMPORT_CONFIRMED = TopicSpec(
    "rosterflow.import-confirmed.v1",
    events.ImportConfirmed,
    ("ingest",),
    ("importer",),
    "A confirmed job, to be applied to the journal.",
)
IMPORT_APPLIED = TopicSpec(
    "rosterflow.import-applied.v1",
    events.ImportApplied,
    ("importer",),
    ("archiver",),
    "The valid rows are committed; archiving (if asked) comes next.",
)
ARCHIVE_HELD = TopicSpec(
    "rosterflow.archive-held.v1",
    events.ArchiveHeld,
    ("archiver",),
    (PLATFORM,),
    "Archiving exceeds the safety threshold and waits for an administrator's decision.",
)
ARCHIVE_DECISION_REQUESTED = TopicSpec(
    "rosterflow.archive-decision-requested.v1",
    events.ArchiveDecisionRequested,
    (PLATFORM,),
    ("ingest",),
    "The administrator approves or declines a held archive.",
)
ARCHIVE_DECIDED = TopicSpec(
    "rosterflow.archive-decided.v1",
    events.ArchiveDecided,
    ("ingest",),
    ("archiver",),
    "A held archive was approved or declined; the archiver finishes the job.",
)
ARCHIVE_UNDONE = TopicSpec(
    "rosterflow.archive-undone.v1",
    events.ArchiveUndone,
    ("ingest",),
    (PLATFORM,),
    "An import's archiving was reverted.",
)
JOB_FINISHED = TopicSpec(
    "rosterflow.job-finished.v1",
    events.JobFinished,
    ("ingest", "validator", "importer", "archiver"),
    ("notifier", PLATFORM),
    "A job reached a terminal state: completed, failed, cancelled or rejected.",
)
DEAD_LETTERS = TopicSpec(
    "rosterflow.dead-letters.v1",
    events.DeadLetter,
    ("ingest", "validator", "importer", "archiver", "notifier"),
    ("operators",),
    "Messages that can never be processed, with the reason and the original bytes.",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    UPLOAD_REQUESTED,
    CONFIRMATION_REQUESTED,
    CANCELLATIONS,
    JOB_ACCEPTED,
    JOB_REJECTED,
    JOB_VALIDATED,
    IMPORT_CONFIRMED,
    IMPORT_APPLIED,
    ARCHIVE_HELD,
    ARCHIVE_DECISION_REQUESTED,
    ARCHIVE_DECIDED,
    ARCHIVE_UNDONE,
    JOB_FINISHED,
    DEAD_LETTERS,
)


def topic_for(event: type[events.Message]) -> TopicSpec:
    for spec in ALL_TOPICS:
        if spec.event is event:
            return spec
    raise KeyError(f"no topic carries {event.__name__}")
