"""``/pipelines``: listing, reading (no passwords), validating and writing pipeline files."""

from __future__ import annotations

from pathlib import Path

from pacsync.domain.access import Role

from .conftest import Api, pipeline_text, problem


def test_the_list_shows_valid_and_broken_files(api: Api) -> None:
    api.pipeline_file("county")
    (api.settings.home / "pipelines" / "broken.yaml").write_text("name: [", encoding="utf-8")
    response = api.get("/pipelines", as_=Role.VIEWER)
    assert response.status_code == 200
    listed = {p["name"]: p for p in response.json()}
    assert listed["county"]["valid"] is True
    assert listed["county"]["entities"] == ["parcels", "owners"]
    assert listed["broken"]["valid"] is False
    assert listed["broken"]["error"]["code"] == "PACS-101"


def test_one_pipeline_hides_connection_passwords(api: Api) -> None:
    path = api.pipeline_file("county")
    text = path.read_text().replace(
        f"sqlite:///{api.settings.home}/warehouse.db", "postgresql+psycopg://sync:s3cret@db/w"
    )
    path.write_text(text)
    response = api.get("/pipelines/county", as_=Role.VIEWER)
    assert response.status_code == 200
    body = response.json()
    assert "s3cret" not in response.text
    assert body["connections"]["warehouse"]["url"] == "postgresql+psycopg://sync:***@db/w"
    assert [e["name"] for e in body["entities"]] == ["parcels", "owners"]
    assert body["entities"][0] == {
        "name": "parcels",
        "source_table": "Parcel",
        "target_table": "parcels",
        "key": ["ParcelID"],
        "strategy": "hash_diff",
        "fields": 2,
    }
    assert (body["source"], body["destination"]) == ("legacy", "warehouse")


def test_a_pipeline_name_cannot_name_a_path(api: Api) -> None:
    problem(api.get("/pipelines/..%2Fsecret.yaml", as_=Role.VIEWER), 404, "PACS-104")
    body = problem(api.get("/pipelines/Secret.yaml", as_=Role.VIEWER), 422, "PACS-105")
    assert body["errors"][0]["field"] == "path.name"


def test_put_yaml_creates_then_replaces_and_audits(api: Api) -> None:
    text = pipeline_text("county", api.settings.home)
    created = api.put(
        "/pipelines/county", content=text.encode(), headers={"Content-Type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["created"] is True
    stored = Path(created.json()["file"])
    assert stored == api.settings.home / "pipelines" / "county.yaml"
    assert stored.read_text() == text

    changed = text.replace("transforms: [trim]", "transforms: [trim, upper]")
    replaced = api.put("/pipelines/county", json={"yaml": changed})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["created"] is False
    assert stored.read_text() == changed
    assert [e["outcome"] for e in api.audit("pipeline.put")] == ["replaced", "created"]
    assert not list(stored.parent.glob(".*draft"))


def test_an_invalid_upload_changes_nothing(api: Api) -> None:
    path = api.pipeline_file("county")
    before = path.read_text()
    bad = before.replace("type: integer", "type: number", 1)
    response = api.put("/pipelines/county", content=bad, headers={"Content-Type": "text/yaml"})
    body = problem(response, 422, "PACS-101")
    assert body["detail"].startswith("county.yaml:")
    assert ".draft" not in body["detail"]
    assert path.read_text() == before
    assert not list(path.parent.glob(".*draft"))
    (entry,) = api.audit("pipeline.put")
    assert entry["outcome"] == "PACS-101"


def test_an_upload_must_name_the_pipeline_it_is_saved_as(api: Api) -> None:
    text = pipeline_text("county", api.settings.home)
    body = problem(api.put("/pipelines/other", content=text), 422, "PACS-101")
    assert "'county', not 'other'" in body["detail"]
    assert not (api.settings.home / "pipelines" / "other.yaml").exists()


def test_upload_bodies_are_checked(api: Api) -> None:
    problem(
        api.put("/pipelines/c", content=b"{", headers={"Content-Type": "application/json"}),
        400,
        "PACS-105",
    )
    problem(api.put("/pipelines/c", json={"text": "x"}), 422, "PACS-105")
    problem(
        api.put("/pipelines/c", content=b"\xff\xfe", headers={"Content-Type": "text/yaml"}),
        400,
        "PACS-105",
    )
    problem(
        api.put("/pipelines/c", content=b"x", headers={"Content-Type": "image/png"}),
        415,
        "PACS-105",
    )


def test_validate_text_says_what_is_wrong_without_saving(api: Api) -> None:
    text = pipeline_text("county", api.settings.home)
    ok = api.post("/pipelines/validate", as_=Role.VIEWER, content=text)
    assert ok.json() == {
        "valid": True,
        "name": "county",
        "entities": ["parcels", "owners"],
        "error": None,
    }
    bad = api.post(
        "/pipelines/validate", as_=Role.VIEWER, json={"yaml": text.replace("source:", "src:", 1)}
    )
    assert bad.status_code == 200
    assert bad.json()["valid"] is False
    assert bad.json()["error"]["code"] == "PACS-101"
    assert not (api.settings.home / "pipelines" / "county.yaml").exists()


def test_validate_a_stored_pipeline(api: Api) -> None:
    path = api.pipeline_file("county")
    assert api.post("/pipelines/county/validate", as_=Role.VIEWER).json()["valid"] is True
    path.write_text(path.read_text().replace("parcels:", "parcels: [", 1))
    result = api.post("/pipelines/county/validate", as_=Role.VIEWER).json()
    assert (result["valid"], result["error"]["code"]) == (False, "PACS-101")
    problem(api.post("/pipelines/nowhere/validate", as_=Role.VIEWER), 404, "PACS-102")
