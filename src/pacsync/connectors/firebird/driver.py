"""firebird-driver behind typed interfaces, and its errors as pacsync errors.

The driver has no type information; this module is the only one that imports it.
Failures are told apart by the Firebird status codes (``gds_codes``) and the SQLSTATE
class, never by the wording of the message, which depends on the server's language.
"""

from __future__ import annotations

import decimal
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Protocol, cast

from firebird.base.types import Error as _DriverError  # type: ignore[import-untyped]
from firebird.driver import connect, driver_config  # type: ignore[import-untyped]

from pacsync.errors import AuthenticationFailed, ConnectionTimeout, PacsyncError, SourceError

Row = tuple[object, ...]

# Firebird status codes (ibase.h)
_LOGIN = 335544472  # isc_login: user name and password are not defined
_NO_PRIV = 335544352  # isc_no_priv: no permission for ... access
_IO_ERROR = 335544344  # isc_io_error: I/O error during "open" (no such database file)
_BAD_DB_FORMAT = 335544323  # isc_bad_db_format: not a valid database
_UNAVAILABLE = frozenset(
    {
        335544421,  # isc_connect_reject: connection rejected by remote interface
        335544528,  # isc_shutdown: database shut down
        335544721,  # isc_network_error: unable to complete network request
        335544722,  # isc_net_connect_err: failed to establish a connection
        335544723,  # isc_net_connect_listen_err
        335544726,  # isc_net_read_err: error reading data from the connection
        335544727,  # isc_net_write_err: error writing data to the connection
        335544741,  # isc_lost_db_connection: connection lost to database
        335544856,  # isc_att_shutdown: connection shut down
    }
)


class Cursor(Protocol):
    def execute(self, operation: str, parameters: Sequence[object] | None = None) -> object: ...

    def fetchmany(self, size: int) -> list[Row]: ...

    def fetchall(self) -> list[Row]: ...

    def close(self) -> None: ...


class Transaction(Protocol):
    def cursor(self) -> Cursor: ...

    def is_active(self) -> bool: ...

    def commit(self) -> None: ...


class Connection(Protocol):
    @property
    def query_transaction(self) -> Transaction:
        """The connection's read-only READ COMMITTED transaction: it never holds back
        the garbage collection of a live legacy database, however long a scan reads."""
        ...

    def is_closed(self) -> bool: ...

    def close(self) -> None: ...


def open_connection(
    dsn: str, *, user: str | None, password: str | None, charset: str, timeout: int
) -> Connection:
    """Attach to the database (``timeout`` seconds to reach the server at most).

    The driver sets the thread's decimal precision to 34 when it first loads its
    client library; the precision the rest of the process uses is put back."""
    precision = decimal.getcontext().prec
    try:
        return cast(
            Connection,
            connect(_configured(dsn, timeout), user=user, password=password, charset=charset),
        )
    finally:
        decimal.getcontext().prec = precision


def _configured(dsn: str, timeout: int) -> str:
    """The name of a driver database configuration for ``dsn`` with a connect timeout:
    the driver takes the timeout only from a configuration, so one is registered per
    (DSN, timeout) and reused."""
    name = "pacsync-" + hashlib.sha256(f"{timeout} {dsn}".encode()).hexdigest()[:24]
    if driver_config.get_database(name) is None:
        try:
            config = driver_config.register_database(name)
        except ValueError:  # registered meanwhile by another thread
            return name
        config.dsn.value = dsn
        config.timeout.value = timeout
    return name


def close_quietly(cursor: Cursor) -> None:
    """Close a cursor whose connection may be gone already (its own error, if any,
    has been raised where it happened)."""
    with suppress(_DriverError, OSError):
        cursor.close()


def close_connection_quietly(connection: Connection) -> None:
    """Detach from a server that may be gone; a detach that fails is forgotten."""
    with suppress(_DriverError, OSError):
        connection.close()


@contextmanager
def translated(where: str, *, location: str) -> Iterator[None]:
    """Re-raise driver errors inside the block as pacsync errors about ``where``."""
    try:
        yield
    except (_DriverError, OSError) as exc:
        raise translate(exc, where, location=location) from exc


def translate(exc: BaseException, where: str, *, location: str) -> PacsyncError:
    """The pacsync error for a firebird-driver error raised while talking to ``where``
    (a database at ``location``)."""
    codes = set(getattr(exc, "gds_codes", None) or ())
    state = str(getattr(exc, "sqlstate", None) or "")
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    message = f"{where}: {text}"
    if _NO_PRIV in codes:  # SQLSTATE 28000 too, but the login worked
        return SourceError(
            message, hint="Grant the connection's user SELECT on the mapped legacy tables."
        )
    if _LOGIN in codes or state.startswith("28"):
        return AuthenticationFailed(message)
    if codes & {_IO_ERROR, _BAD_DB_FORMAT}:
        return SourceError(
            message,
            hint=f"Check the database path or alias in the DSN ({location}): it must name "
            "an existing database file on the Firebird server's own disk.",
        )
    if codes & _UNAVAILABLE or state.startswith("08"):
        return ConnectionTimeout(
            message,
            hint=f"Check that the Firebird server of {location} is running and that its "
            "host and port (3050 by default) are reachable from here, then try again.",
        )
    if isinstance(exc, OSError):
        return SourceError(message, hint="Check that the Firebird client library is installed.")
    return SourceError(message)
