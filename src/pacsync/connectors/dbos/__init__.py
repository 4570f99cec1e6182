"""The durable job engine: DBOS Transact on the store's database (SQLite or PostgreSQL)."""
