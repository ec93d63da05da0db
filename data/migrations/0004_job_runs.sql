-- The run log of batch jobs: one row per attempt, written when it starts and when it ends.
CREATE TABLE job_runs (
    run_id       VARCHAR PRIMARY KEY,
    job          VARCHAR NOT NULL,
    as_of        DATE NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    status       VARCHAR NOT NULL
                 CHECK (status IN ('running', 'ok', 'skipped', 'failed', 'aborted', 'interrupted')),
    counters     JSON,
    error        VARCHAR,
    pid          INTEGER,
    host         VARCHAR
);
CREATE INDEX job_runs_job_as_of ON job_runs (job, as_of);
