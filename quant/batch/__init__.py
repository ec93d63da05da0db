"""Scheduled batch work: the jobs (through the Workspace), their log, the scheduler and its
cron, the monitor's checks after the daily job, and how worker threads wait."""
