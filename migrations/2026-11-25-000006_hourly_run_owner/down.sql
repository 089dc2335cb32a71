ALTER TABLE hourly_runs DROP COLUMN job_id;
