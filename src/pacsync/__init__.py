"""pacsync: integration engine."""
