-- A student's contact data in full, the mark of a protected identity, and
-- up to two guardians a student.

ALTER TABLE patients
    ADD COLUMN phone_2 text,
    ADD COLUMN phone_3 text,
    -- Skyddad folkbokföring / sekretessmarkering, as the school's file marks it.
    ADD COLUMN protected_identity boolean NOT NULL DEFAULT false,
    -- Whatever writes a patient, a protected identity is never stored with
    -- contact data: the address it hides is the one thing that must not leak.
    ADD CONSTRAINT patients_protected_without_contact CHECK (
        NOT protected_identity
        OR (email IS NULL AND phone IS NULL AND phone_2 IS NULL AND phone_3 IS NULL
            AND street IS NULL AND postcode IS NULL AND city IS NULL));

-- A student's guardian (vårdnadshavare), by their place in the student's row of
-- the school's file (1 or 2). A guardian of two siblings is a row for each: the
-- files name a guardian per student, without an identity of their own to key on.
CREATE TABLE guardians (
    patient_id             uuid NOT NULL REFERENCES patients (id),
    position               smallint NOT NULL CHECK (position IN (1, 2)),
    name                   text,
    -- Normalised like a patient's, where the file gives one.
    identity_number        text CHECK (length(identity_number) = 12),
    email                  text,
    phone                  text,
    phone_2                text,
    phone_3                text,
    street                 text,
    postcode               text,
    city                   text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, position)
);
CREATE INDEX guardians_identity_number ON guardians (identity_number)
    WHERE identity_number IS NOT NULL;
