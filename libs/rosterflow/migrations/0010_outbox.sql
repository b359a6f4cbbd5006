-- The transactional outbox: the event that follows a job's transition,
-- written in the transition's transaction, published by the relay
-- (rosterflow.outbox) and then deleted: a row here is an event not yet known
-- to be published.

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
    claimed_until  timestamptz
);

-- The relay right after a commit takes the job's rows; the sweep the oldest (by id).
CREATE INDEX outbox_by_job ON outbox (job_id);
