-- The administrator's column mapping, remembered per unit and format for a
-- header: the next file of the unit in that format with the same header row
-- (header_key: a SHA-256 of its folded names, in order) is read with it.
-- columns: header name as written → canonical column, or null (not read).
-- OneRoster: the header is users.csv's, and org_sourced_id the org whose
-- students the unit takes.
CREATE TABLE column_mappings (
    unit_id        uuid NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    format         text NOT NULL,
    header_key     text NOT NULL,
    header         jsonb NOT NULL,
    columns        jsonb NOT NULL,
    org_sourced_id text,
    set_by         text NOT NULL,
    set_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_id, format, header_key)
);

-- What the check found of a job's columns, for the mapping: kept apart from
-- check_result, which only a passed check has.
ALTER TABLE jobs ADD COLUMN column_mapping jsonb;
