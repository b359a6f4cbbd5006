-- Every attempt of a consumer at an event of a job, counted before the work
-- starts and committed on its own: a process that crashes, aborts, runs out
-- of memory or is stopped for taking too long leaves its count behind, so
-- the redelivery knows how many attempts went before it. After
-- ROSTERFLOW_KAFKA_MAX_ATTEMPTS the job ends failed (stage_attempts_exhausted)
-- and the partition moves on.
CREATE TABLE job_attempts (
    job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    attempts     integer NOT NULL,
    last_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, consumer, event_id)
);
