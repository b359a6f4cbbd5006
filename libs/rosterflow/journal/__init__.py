"""The journal registry's SQL: stage a file's rows, apply them, find the archive set.

Applying is set-based: the valid rows are COPYed into a temporary staging
table, joined once with the journal (RESOLVE: each row's patient id and what
differs, compared with IS DISTINCT FROM), and then only what is new or
changed is inserted or updated in patients, enrolments and placements, so a
row that changes nothing writes nothing. The same join, read-only (CLASSIFY),
is how the validator computes the plan the administrator confirms.

A large job's rows are staged once: the plan COPYs them into an UNLOGGED
table of the job's own (``job_staging."<job id>"``) instead of the session's
temporary ``staged``, and the importer resolves and applies from that table,
against the journal as it is at apply time, then drops it in its own
transaction. When the table is gone (a crash of PostgreSQL empties UNLOGGED
tables, a plan kept too long was swept), the importer stages the rows from
the report again.

A small set (under ARRAY_ROWS rows, ``as_arrays``) is not staged: its
rows are passed as one array per column (``RowArrays``) to the same
statements, composed from the same pieces, and the apply is one statement.

One module per concern: ``encoding`` (rows as CSV for COPY), ``staging`` (the
session's temporary tables and COPY into them), ``job_tables`` (a job's own
table and their sweep), ``arrays`` (a small set's rows as parameters),
``merge`` (classify and apply), ``archive`` (the archive set, archive, undo).
"""
