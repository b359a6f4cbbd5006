-- The journal registry that imports write to.

CREATE TABLE organisations (
    id                     uuid PRIMARY KEY,
    name                   text NOT NULL,
    -- Archiving more than this share of a unit's active patients waits for approval.
    archive_hold_ratio     numeric(4, 3) NOT NULL DEFAULT 0.100
                           CHECK (archive_hold_ratio > 0 AND archive_hold_ratio <= 1),
    created_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE units (
    id                     uuid PRIMARY KEY,
    organisation_id        uuid NOT NULL REFERENCES organisations (id),
    name                   text NOT NULL,
    school_level           text NOT NULL DEFAULT 'unspecified'
                           CHECK (school_level IN ('unspecified', 'compulsory', 'upper_secondary', 'clinic')),
    created_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX units_organisation ON units (organisation_id);

CREATE TABLE patients (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id        uuid NOT NULL REFERENCES organisations (id),
    -- Normalised: 12 characters, YYYYMMDDNNNC (temporary numbers: YYYYMMDDTFNN).
    identity_number        text NOT NULL CHECK (length(identity_number) = 12),
    identity_kind          text NOT NULL
                           CHECK (identity_kind IN ('personnummer', 'samordningsnummer', 'temporary')),
    given_name             text NOT NULL,
    family_name            text NOT NULL,
    email                  text,
    phone                  text,
    street                 text,
    postcode               text,
    city                   text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organisation_id, identity_number)
);

-- A patient's membership of a unit; archiving is a state, never a deletion.
CREATE TABLE enrolments (
    patient_id             uuid NOT NULL REFERENCES patients (id),
    unit_id                uuid NOT NULL REFERENCES units (id),
    status                 text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    activated_at           timestamptz NOT NULL DEFAULT now(),
    archived_at            timestamptz,
    -- The import job whose archive-missing step archived this enrolment (for undo).
    archived_by_job        uuid,
    PRIMARY KEY (unit_id, patient_id),
    CHECK ((status = 'archived') = (archived_at IS NOT NULL))
);
CREATE INDEX enrolments_patient ON enrolments (patient_id);
CREATE INDEX enrolments_archived_by_job ON enrolments (archived_by_job) WHERE archived_by_job IS NOT NULL;

-- Grade and class per school year: importing 2026/2027 never touches 2025/2026.
CREATE TABLE placements (
    patient_id             uuid NOT NULL REFERENCES patients (id),
    unit_id                uuid NOT NULL REFERENCES units (id),
    school_year            text NOT NULL CHECK (school_year ~ '^\d{4}/\d{4}$'),
    school_form            text CHECK (school_form IN ('preschool_class', 'compulsory', 'special', 'upper_secondary')),
    grade_year             smallint,
    class_name             text,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_id, school_year, patient_id)
);

CREATE TABLE archive_exclusions (
    unit_id                uuid NOT NULL REFERENCES units (id),
    patient_id             uuid NOT NULL REFERENCES patients (id),
    created_at             timestamptz NOT NULL DEFAULT now(),
    created_by             text NOT NULL,
    PRIMARY KEY (unit_id, patient_id)
);
