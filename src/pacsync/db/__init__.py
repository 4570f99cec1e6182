"""The pacsync store: jobs, errors, checkpoints, record state, dead letters, statistics, audit."""
