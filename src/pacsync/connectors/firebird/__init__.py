"""Legacy PACS databases on Firebird servers: the catalog of a legacy imaging store."""

from pacsync.connectors.firebird.catalog import FirebirdCatalog
from pacsync.connectors.firebird.dsn import FirebirdDsn, parse_dsn

__all__ = ["FirebirdCatalog", "FirebirdDsn", "parse_dsn"]
