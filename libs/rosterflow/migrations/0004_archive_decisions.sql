-- The archive safety hold, the administrator's decision on it, and undo.

ALTER TABLE jobs
    -- Set when the archive set exceeded the threshold: the job waits in
    -- 'archiving' for an administrator's decision.
    ADD COLUMN archive_held_at       timestamptz,
    ADD COLUMN archive_decision      text CHECK (archive_decision IN ('approved', 'declined')),
    ADD COLUMN archive_decided_by    text,
    ADD COLUMN archive_decided_at    timestamptz,
    -- An undo re-activates exactly the enrolments this job archived that
    -- nobody archived again since.
    ADD COLUMN archive_undone_at     timestamptz,
    ADD COLUMN archive_undone_count  integer;
