-- The pipeline's own state: jobs, their transitions, idempotent consumers.

CREATE TABLE jobs (
    id                      uuid PRIMARY KEY,
    organisation_id         uuid NOT NULL,
    unit_id                 uuid NOT NULL,
    school_year             text NOT NULL,
    format                  text NOT NULL,
    archive_missing         boolean NOT NULL DEFAULT false,
    treat_as_upper_secondary boolean NOT NULL DEFAULT false,
    file_key                text NOT NULL,
    file_name               text NOT NULL,
    file_sha256             text NOT NULL,
    file_size_bytes         bigint NOT NULL,
    requested_by_id         text NOT NULL,
    requested_by_name       text NOT NULL,
    requested_by_email      text NOT NULL,
    requested_by_language   text NOT NULL DEFAULT 'sv',
    state                   text NOT NULL DEFAULT 'received' CHECK (state IN (
                                'received', 'validating', 'awaiting_confirmation', 'importing',
                                'archiving', 'completed', 'cancelled', 'failed', 'rejected')),
    cancel_requested_at     timestamptz,
    received_at             timestamptz NOT NULL DEFAULT now(),
    validation_started_at   timestamptz,
    validation_finished_at  timestamptz,
    confirmed_at            timestamptz,
    import_started_at       timestamptz,
    import_finished_at      timestamptz,
    archived_at             timestamptz,
    finished_at             timestamptz,
    -- The check result and the applied counts, as published in the events.
    check_result            jsonb,
    import_counts           jsonb,
    archived_count          integer,
    error_code              text,
    error_message           text,
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_organisation_received ON jobs (organisation_id, received_at DESC);
CREATE INDEX jobs_unfinished ON jobs (state) WHERE finished_at IS NULL;

CREATE TABLE job_transitions (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id                  uuid NOT NULL REFERENCES jobs (id),
    from_state              text,
    to_state                text NOT NULL,
    at                      timestamptz NOT NULL DEFAULT clock_timestamp(),
    cause                   text NOT NULL
);
CREATE INDEX job_transitions_job ON job_transitions (job_id, id);

-- An event a consumer has fully handled; a redelivery is recognised here.
CREATE TABLE processed_events (
    consumer                text NOT NULL,
    event_id                uuid NOT NULL,
    job_id                  uuid,
    processed_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- One email per job outcome, whatever the redeliveries.
CREATE TABLE notifications (
    job_id                  uuid NOT NULL REFERENCES jobs (id),
    outcome                 text NOT NULL,
    recipient               text NOT NULL,
    state                   text NOT NULL CHECK (state IN ('sending', 'sent', 'refused')),
    attempts                integer NOT NULL DEFAULT 0,
    message_id              text,
    last_error              text,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, outcome)
);
