"""``/connections``: managed connections whose passwords are sealed and never shown,
pipeline files' connections listed read-only, and a connection test that reports
the PACS code of what went wrong."""

from __future__ import annotations

import socket

from pacsync.domain.access import Role

from .conftest import Api, problem

PASSWORD = "s3cr3t-Pa55word"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_password_in_the_url_is_split_out_sealed_and_never_shown(api: Api) -> None:
    url = f"postgresql+psycopg://sync:{PASSWORD}@db.example.org/warehouse"
    response = api.put("/connections/warehouse", json={"kind": "sql", "url": url})
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["url"] == "postgresql+psycopg://sync@db.example.org/warehouse"
    assert (made["password_set"], made["origin"], made["kind"]) == (True, "store", "sql")
    assert api.store.connections.resolved_url("warehouse") == url
    replaced = api.put(
        "/connections/warehouse",
        json={"kind": "sql", "url": made["url"], "options": {"pool_size": 2}},
    )
    assert replaced.status_code == 200
    assert replaced.json()["password_set"] is True  # kept when none is given
    cleared = api.put(
        "/connections/warehouse", json={"kind": "sql", "url": made["url"], "password": ""}
    )
    assert cleared.json()["password_set"] is False
    for text in (api.get("/connections").text, api.get("/connections/warehouse").text):
        assert PASSWORD not in text
    entries = api.audit("connection.put")
    assert [e["outcome"] for e in entries] == ["replaced", "replaced", "created"]
    assert PASSWORD not in str(entries)
    assert api.get("/connections/warehouse", as_=Role.VIEWER).json()["options"] == {}


def test_a_password_given_apart_wins_and_is_write_only(api: Api) -> None:
    body = {"kind": "sql", "url": "postgresql+psycopg://sync:old@db/x", "password": PASSWORD}
    made = api.put("/connections/x", json=body).json()
    assert "password" not in made
    assert api.store.connections.resolved_url("x") == f"postgresql+psycopg://sync:{PASSWORD}@db/x"


def test_pipeline_connections_are_listed_read_only(api: Api) -> None:
    api.pipeline_file("county")
    api.put("/connections/warehouse", json={"kind": "sql", "url": "sqlite:///w.db"})
    listed = api.get("/connections", as_=Role.VIEWER).json()
    assert [(c["name"], c["origin"], c["pipeline"]) for c in listed] == [
        ("warehouse", "store", None),
        ("county.legacy", "pipeline", "county"),
        ("county.warehouse", "pipeline", "county"),
    ]
    one = api.get("/connections/county.legacy").json()
    assert one["url"].endswith("/legacy.db")
    assert one["password_set"] is False
    blocked = problem(api.delete("/connections/county.legacy"), 409, "PACS-107")
    assert "pipeline 'county'" in blocked["detail"]
    problem(
        api.put("/connections/county.legacy", json={"kind": "sql", "url": "sqlite:///x"}),
        422,
        "PACS-105",
    )
    problem(api.get("/connections/nope"), 404, "PACS-104")


def test_delete_a_managed_connection(api: Api) -> None:
    api.put("/connections/old", json={"kind": "sql", "url": "sqlite:///old.db"})
    assert api.delete("/connections/old").json() == {"name": "old", "deleted": True}
    problem(api.delete("/connections/old"), 404, "PACS-104")
    (_, entry) = api.audit("connection.delete")
    assert (entry["target"], entry["outcome"]) == ("old", "ok")


def test_an_unreachable_host_tests_as_pacs_001(api: Api) -> None:
    url = f"postgresql+psycopg://sync:{PASSWORD}@127.0.0.1:{_closed_port()}/db"
    api.put("/connections/down", json={"kind": "sql", "url": url})
    response = api.post("/connections/down/test")
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["status"], result["code"]) == ("failed", "PACS-001")
    assert result["hint"]
    assert result["response_ms"] >= 0
    assert PASSWORD not in response.text
    (entry,) = api.audit("connection.test")
    assert (entry["target"], entry["outcome"]) == ("down", "PACS-001")


def test_a_pipeline_connection_tests_ok(api: Api) -> None:
    api.pipeline_file("county")
    (api.settings.home / "legacy.db").touch()
    result = api.post("/connections/county.legacy/test").json()
    assert (result["status"], result["code"], result["message"]) == ("ok", None, "connected")


def test_only_database_connections_are_tested(api: Api) -> None:
    api.put("/connections/pacs", json={"kind": "dicom", "url": "dicom://ORTHANC@pacs:4242"})
    result = api.post("/connections/pacs/test").json()
    assert (result["status"], result["code"]) == ("failed", "PACS-103")
    problem(api.post("/connections/missing/test"), 404, "PACS-104")


def test_connections_are_written_by_admins_only(api: Api) -> None:
    body = {"kind": "sql", "url": "sqlite:///x.db"}
    problem(api.put("/connections/x", json=body, as_=Role.OPERATOR), 403, "PACS-002")
    problem(api.post("/connections/x/test", as_=Role.OPERATOR), 403, "PACS-002")
    problem(api.put("/connections/x", json={"kind": "sql", "url": "no-scheme"}), 400, "PACS-105")
    assert api.get("/connections").json() == []


def test_an_mllp_receiver_is_tested_by_connecting_to_it(api: Api) -> None:
    with socket.socket() as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.listen()
        port = receiver.getsockname()[1]
        api.put("/connections/ris", json={"kind": "mllp", "url": f"mllp://127.0.0.1:{port}"})
        result = api.post("/connections/ris/test").json()
        assert (result["status"], result["code"]) == ("ok", None)
    result = api.post("/connections/ris/test").json()  # nobody listens any more
    assert (result["status"], result["code"]) == ("failed", "PACS-651")
    assert f"127.0.0.1:{port}" in result["message"]


def test_a_drop_folder_is_tested_by_looking_into_it(api: Api) -> None:
    folder = api.settings.home / "drops"
    api.put("/connections/drops", json={"kind": "file", "url": f"file://{folder}"})
    result = api.post("/connections/drops/test").json()
    assert (result["status"], result["code"]) == ("failed", "PACS-304")
    folder.mkdir()
    (folder / "patients.csv").write_text("id\n1\n")
    result = api.post("/connections/drops/test").json()
    assert (result["status"], result["message"]) == ("ok", "folder readable")
