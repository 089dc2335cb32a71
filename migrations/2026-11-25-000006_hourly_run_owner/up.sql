-- The job that claimed an hourly slot: the slot runs once whatever the queue remembers (a Redis that lost its
-- data may hand out the same slot again); only a retry of that same job may run it again.
ALTER TABLE hourly_runs ADD COLUMN job_id UUID;
