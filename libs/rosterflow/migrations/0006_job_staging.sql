-- Large jobs' valid rows, staged once: the validator's plan COPYs them
-- into an UNLOGGED table of the job's own, job_staging."<job id>", and the
-- importer applies from it and drops it. Whoever ends the job drops it too, and
-- a plan left unconfirmed too long loses it (rosterflow.journal.sweep_job_tables).
CREATE SCHEMA job_staging;
