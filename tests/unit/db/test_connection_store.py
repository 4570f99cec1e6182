"""Connections: the password leaves the URL, is sealed, and only comes back for connecting."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from pacsync.db.connections import ConnectionStore, masked, split_password, with_password
from pacsync.db.tables import connections
from pacsync.errors import ConfigError, InvalidRequest, NotFound
from pacsync.security.secrets import SecretBox, is_sealed


def test_a_password_in_the_url_is_sealed_and_never_listed(engine: Engine, box: SecretBox) -> None:
    store = ConnectionStore(engine, box)
    view = store.put(
        "legacy", "sql", "mssql+pymssql://sync:p@ss:w0rd@legacy:1433/assess", {"timeout": 5}
    )
    assert view.url == "mssql+pymssql://sync@legacy:1433/assess"
    assert view.password_set
    assert view.options == {"timeout": 5}
    with engine.connect() as conn:
        row = conn.execute(select(connections)).one()
    assert "w0rd" not in str(tuple(row))
    assert is_sealed(row.secret)
    listed = store.list()
    assert [(c.name, c.password_set) for c in listed] == [("legacy", True)]
    assert "w0rd" not in repr(listed)
    resolved = store.resolved_url("legacy")
    assert make_url(resolved).password == "p@ss:w0rd"
    assert make_url(resolved).username == "sync"


def test_an_explicit_password_wins_and_a_later_put_keeps_or_clears_it(
    engine: Engine, box: SecretBox
) -> None:
    store = ConnectionStore(engine, box)
    store.put("wh", "sql", "postgresql+psycopg://u:inurl@db/x", password="given")
    assert make_url(store.resolved_url("wh")).password == "given"
    updated = store.put("wh", "sql", "postgresql+psycopg://u@db2/x")  # no password: kept
    assert updated.password_set
    assert make_url(store.resolved_url("wh")).host == "db2"
    assert make_url(store.resolved_url("wh")).password == "given"
    cleared = store.put("wh", "sql", "postgresql+psycopg://u@db2/x", password="")
    assert not cleared.password_set
    assert store.resolved_url("wh") == "postgresql+psycopg://u@db2/x"
    assert cleared.created_at == updated.created_at
    assert cleared.updated_at >= updated.updated_at


def test_a_sealed_password_belongs_to_its_connection(engine: Engine, box: SecretBox) -> None:
    store = ConnectionStore(engine, box)
    store.put("a", "sql", "postgresql+psycopg://u:pa@db/x")
    store.put("b", "sql", "postgresql+psycopg://u:pb@db/x")
    with engine.begin() as conn:
        sealed_a = conn.execute(select(connections.c.secret).where(connections.c.name == "a"))
        conn.execute(
            connections.update().where(connections.c.name == "b").values(secret=sealed_a.scalar())
        )
    with pytest.raises(ConfigError, match="connection:b"):
        store.resolved_url("b")


def test_another_key_cannot_open_the_passwords(engine: Engine, box: SecretBox) -> None:
    ConnectionStore(engine, box).put("a", "sql", "postgresql+psycopg://u:pa@db/x")
    with pytest.raises(ConfigError, match="wrong secret key"):
        ConnectionStore(engine, SecretBox(bytes(32))).resolved_url("a")


def test_get_delete_and_unknown_names(engine: Engine, box: SecretBox) -> None:
    store = ConnectionStore(engine, box)
    store.put("files", "folder", "file:///srv/dicom")
    found = store.get("files")
    assert found is not None
    assert (found.kind, found.password_set) == ("folder", False)
    assert store.resolved_url("files") == "file:///srv/dicom"
    assert store.delete("files") is True
    assert store.delete("files") is False
    assert store.get("files") is None
    with pytest.raises(NotFound):
        store.resolved_url("files")


@pytest.mark.parametrize(("name", "kind", "url"), [("", "sql", "x://h"), ("a", "sql", "nourl")])
def test_bad_connections_are_refused(
    engine: Engine, box: SecretBox, name: str, kind: str, url: str
) -> None:
    with pytest.raises(InvalidRequest):
        ConnectionStore(engine, box).put(name, kind, url)


@pytest.mark.parametrize(
    ("url", "bare", "password"),
    [
        ("postgresql://u:pw@h:5432/d?x=1", "postgresql://u@h:5432/d?x=1", "pw"),
        ("http://:tok@h/p", "http://h/p", "tok"),
        ("mysql://u:p%2Fw%40@[::1]:3306/d", "mysql://u@[::1]:3306/d", "p/w@"),
        ("postgresql://u@h/d", "postgresql://u@h/d", None),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db", None),
    ],
)
def test_passwords_split_out_of_urls_and_back(url: str, bare: str, password: str | None) -> None:
    assert split_password(url) == (bare, password)
    if password is not None:
        assert split_password(with_password(bare, password)) == (bare, password)


@pytest.mark.parametrize(
    ("url", "options", "where"),
    [
        ("postgresql://u@h/d?sslmode=require&password=s3cret", {}, "URL parameter 'password'"),
        ("mssql+pyodbc://?odbc_connect=UID%3Du%3BPWD%3Ds3cret", {}, "URL parameter 'odbc_connect'"),
        ("postgresql://u@h/d", {"connect_args": {"sslpassword": "s3cret"}}, "connect_args"),
        ("https://h/fhir", {"api_key": "s3cret", "timeout": 5}, "option 'api_key'"),
    ],
)
def test_a_secret_that_cannot_be_sealed_is_refused_without_its_value(
    engine: Engine, box: SecretBox, url: str, options: dict[str, object], where: str
) -> None:
    store = ConnectionStore(engine, box)
    with pytest.raises(InvalidRequest) as refused:
        store.put("c", "sql", url, options)
    assert where in refused.value.message
    assert "s3cret" not in refused.value.message + refused.value.hint
    assert store.list() == []


def test_masked_hides_secret_looking_query_values_and_options_for_display() -> None:
    url, options = masked(
        "postgresql://u@h/d?sslmode=require&password=s3cret&token=t0k",
        {"pool_size": 5, "connect_args": {"password": "s3cret", "sslmode": "require"}},
    )
    assert url == "postgresql://u@h/d?sslmode=require&password=***&token=***"
    assert options == {"pool_size": 5, "connect_args": {"password": "***", "sslmode": "require"}}
    assert masked("postgresql://u@h/d?x=%2F", {}) == ("postgresql://u@h/d?x=%2F", {})
