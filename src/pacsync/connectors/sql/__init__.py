"""SQL databases through SQLAlchemy: SQL Server, PostgreSQL, MariaDB/MySQL, SQLite, Firebird."""
