"""A legacy PACS database on a Firebird server, listing its images
(:class:`pacsync.imaging.ports.LegacyCatalog`).

The catalog attaches on the first ``images()`` and stays attached until ``close()``
(a later ``images()`` attaches again).  Each listing checks the mapping against the
database, then runs one joined SELECT in the connection's read-only READ COMMITTED
transaction and fetches its rows ``batch_size`` at a time: a database of millions of
images is never held in memory, and a long scan never holds back the garbage
collection of the live legacy database.  Rows come in the server's order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from pacsync.connectors.firebird import values
from pacsync.connectors.firebird.driver import (
    Connection,
    close_connection_quietly,
    close_quietly,
    open_connection,
    translated,
)
from pacsync.connectors.firebird.dsn import parse_dsn
from pacsync.connectors.firebird.schema import COLUMNS_SQL, ImagesQuery, existing, images_query
from pacsync.domain.imaging import InstanceHeader
from pacsync.domain.legacy_mapping import LegacyMapping, specific_character_set
from pacsync.errors import ConfigError, ConnectionTimeout
from pacsync.imaging.ports import LegacyImage

#: every legacy image is served as JPEG 2000 Lossless
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"


class FirebirdCatalog:
    """The images of a legacy PACS database, with their patient, study and series.

    ``dsn`` is a Firebird connection string (``host/3050:/path/legacy.fdb``) or a
    ``firebird://user:password@host:3050//path/legacy.fdb`` URL (see
    :mod:`pacsync.connectors.firebird.dsn`); ``user`` and ``password`` given here win
    over the URL's.  ``charset`` is the connection character set the legacy text is
    read in (``UTF8``; ``WIN1252`` or ``ISO8859_1`` for text stored without one)."""

    def __init__(
        self,
        dsn: str,
        user: str | None = None,
        password: str | None = None,
        mapping: LegacyMapping | None = None,
        *,
        charset: str | None = None,
        batch_size: int = 1000,
        connect_timeout: int = 10,
        name: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, not {batch_size}")
        if connect_timeout < 1:
            raise ConfigError(f"connect timeout must be at least 1 s, not {connect_timeout}")
        parsed = parse_dsn(dsn)
        self.dsn = parsed.dsn
        self.user = user if user is not None else parsed.user
        self._password = password if password is not None else parsed.password
        self.charset = (charset or parsed.charset or "UTF8").strip().upper()
        self.mapping = mapping or LegacyMapping()
        self.batch_size = batch_size
        self.connect_timeout = connect_timeout
        self.where = f"legacy database {name!r}" if name else f"legacy database {self.dsn}"
        self._character_set = specific_character_set(self.charset)
        self._connection: Connection | None = None
        self._query: ImagesQuery | None = None

    def __repr__(self) -> str:
        return f"FirebirdCatalog({self.dsn!r}, user={self.user!r}, charset={self.charset!r})"

    def __enter__(self) -> FirebirdCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def images(self) -> Iterator[LegacyImage]:
        """Every image the database lists.  ConnectionTimeout when the server cannot be
        reached or the connection is lost (the next listing attaches again),
        AuthenticationFailed for a wrong user or password, SourceError for a mapped
        table or column the database lacks, or a database file that is not there."""
        try:
            with self._translated():
                connection = self._connect()
                query = self._images_query(connection)
                cursor = connection.query_transaction.cursor()
        except ConnectionTimeout:
            self.close()
            raise
        try:
            with self._translated():
                cursor.execute(query.sql)
            while True:
                with self._translated():
                    rows = cursor.fetchmany(self.batch_size)
                if not rows:
                    return
                for row in rows:
                    yield self._image(query.attributes, row)
        except ConnectionTimeout:
            close_quietly(cursor)
            self.close()  # the next listing attaches again
            raise
        finally:
            close_quietly(cursor)

    def close(self) -> None:
        """Detach (quietly: a server that went away has nothing left to say)."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            close_connection_quietly(connection)

    def _connect(self) -> Connection:
        if self._connection is None or self._connection.is_closed():
            self._query = None  # the tables are read again on a new attachment
            self._connection = open_connection(
                self.dsn,
                user=self.user,
                password=self._password,
                charset=self.charset,
                timeout=self.connect_timeout,
            )
        return self._connection

    def _images_query(self, connection: Connection) -> ImagesQuery:
        if self._query is None:
            cursor = connection.query_transaction.cursor()
            try:
                cursor.execute(COLUMNS_SQL)
                tables = existing(cursor.fetchall())
            finally:
                cursor.close()
            self._query = images_query(self.mapping, tables)
        return self._query

    def _image(self, attributes: tuple[str, ...], row: tuple[object, ...]) -> LegacyImage:
        fields: dict[str, Any] = {}
        for attribute, value in zip(attributes, row, strict=True):
            convert = values.CONVERTERS.get(attribute, values.text)
            fields[attribute] = convert(value)
        path = fields.pop("file_path")
        header = InstanceHeader(
            sop_instance_uid=str(fields.pop("sop_instance_uid") or ""),
            transfer_syntax_uid=JPEG2000_LOSSLESS,
            specific_character_set=self._character_set,
            **fields,
        )
        relative = self.mapping.images.relative_path(str(path)) if path else ""
        return LegacyImage(header, relative)

    def _translated(self) -> AbstractContextManager[None]:
        return translated(self.where, location=self.dsn)
