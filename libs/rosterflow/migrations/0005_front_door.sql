-- The front door: progress of the running stage, superseding, the overview's filters.

ALTER TABLE jobs
    -- Rows done of the total in the stage named (validating, importing);
    -- the total is unknown (NULL) while a file is still being read.
    ADD COLUMN progress_stage  text,
    ADD COLUMN progress_done   bigint,
    ADD COLUMN progress_total  bigint,
    -- The newer upload of the same unit and school year that replaced this job.
    ADD COLUMN superseded_by   uuid;

-- The organisation overview filtered by unit, newest first.
CREATE INDEX jobs_organisation_unit_received ON jobs (organisation_id, unit_id, received_at DESC);
-- An upload looks for the earlier job of its unit and school year it supersedes.
CREATE INDEX jobs_awaiting_by_unit ON jobs (unit_id, school_year)
    WHERE state = 'awaiting_confirmation';
