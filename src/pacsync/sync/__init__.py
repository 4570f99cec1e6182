"""Use cases: running pipelines entity by entity, change detection, reconciliation."""
