"""Running work durably: retry decisions (and, next, queues, workers and schedules)."""
