"""Alembic migrations of the pacsync store."""
