-- The transactional outbox: the event that follows a job's transition,
-- written in the transition's transaction, published by the relay
-- (rosterflow.outbox) and then marked sent.

CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    event_id       uuid NOT NULL,
    job_id         uuid NOT NULL,
    kind           text NOT NULL,
    payload        jsonb NOT NULL,
    -- When the row was written, not when its transaction began: the sweep
    -- leaves a row younger than a sweep to the relay of the commit.
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Taken by a relay until then; after it another may take the row again.
    claimed_until  timestamptz,
    sent_at        timestamptz
);

-- The relay right after a commit takes the job's unsent rows; the sweep the oldest.
CREATE INDEX outbox_unsent_by_job ON outbox (job_id) WHERE sent_at IS NULL;
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
