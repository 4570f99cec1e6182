"""FHIR connections in the store: the key by path or sealed, refused early when
unusable; an export job that cannot start finishes failed with its coded error."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pacsync import bootstrap
from pacsync.bootstrap import fhir, fhir_export, jobs
from pacsync.config import Settings
from pacsync.errors import ConfigError, NotFound

URL = "https://ehr.example.org/fhir"
TOKEN_URL = "https://ehr.example.org/oauth2/token"


@pytest.fixture
def store(tmp_path: Path) -> bootstrap.Store:
    settings = Settings(_env_file=None, home=tmp_path / "home", database_url=None,  # type: ignore[call-arg]
                        secret_key=None)  # fmt: skip
    return bootstrap.store(settings)


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _options(**more: object) -> dict[str, object]:
    return {"client_id": "backend", "oauth_url": TOKEN_URL, **more}


def test_a_key_by_path_stays_a_path(store: bootstrap.Store, pem: str, tmp_path: Path) -> None:
    path = tmp_path / "ehr.pem"
    path.write_text(pem)
    fhir.add_connection(store, "ehr", URL, _options(key_path=str(path)))

    view = store.connections.get("ehr")
    assert view is not None
    assert view.kind == "fhir"
    assert view.options["key_path"] == str(path)
    assert not view.password_set
    with fhir.client(store, "ehr") as client:
        assert client.tokens is not None
        assert client.tokens.assertion.client_id == "backend"
        assert client.base_url == URL


def test_a_sealed_key_is_kept_out_of_the_url_and_options(store: bootstrap.Store, pem: str) -> None:
    fhir.add_connection(store, "ehr", URL, _options(), key_pem=pem)

    view = store.connections.get("ehr")
    assert view is not None
    assert view.password_set
    assert "PRIVATE KEY" not in view.url
    assert "PRIVATE KEY" not in str(view.options)
    key = fhir.private_key(store, fhir.endpoint(store, "ehr"))
    assert isinstance(key, rsa.RSAPrivateKey)
    listed = fhir.endpoints(store)
    assert [(e.name, sealed) for e, sealed in listed] == [("ehr", True)]


def test_unusable_keys_are_refused_when_the_connection_is_added(
    store: bootstrap.Store, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="cannot read the private key"):
        fhir.add_connection(store, "ehr", URL, _options(key_path=str(tmp_path / "none.pem")))
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        fhir.add_connection(store, "ehr", URL, _options(), key_pem="not a key")
    assert store.connections.get("ehr") is None


def test_a_client_id_without_any_key_says_how_to_give_one(store: bootstrap.Store) -> None:
    fhir.add_connection(store, "ehr", URL, _options())
    with pytest.raises(ConfigError, match="no private key") as caught:
        fhir.client(store, "ehr")
    assert "--seal-key" in caught.value.hint


def test_only_fhir_connections_are_fhir_endpoints(store: bootstrap.Store) -> None:
    store.connections.put("pacs", "dicom", "dicom://PACS@127.0.0.1:104", {})
    for name in ("pacs", "nowhere"):
        with pytest.raises(NotFound, match=f"no FHIR connection '{name}'"):
            fhir.endpoint(store, name)


def test_an_export_job_that_cannot_start_fails_with_its_code(
    store: bootstrap.Store, tmp_path: Path
) -> None:
    fhir.add_connection(store, "epic", URL, {"vendor": "epic"})
    request = fhir_export.export_request("epic", tmp_path / "out", types=["Patient"])
    job_id, _ = jobs.create_job(store, request)

    outcome = fhir_export.ExportJobs(store, "test").run(job_id, "epic", request.args)

    assert outcome["status"] == "failed"
    assert outcome["error"]["code"] == "PACS-103"
    job = store.jobs.get(job_id)
    assert job is not None
    assert job.status == "failed"
    assert (job.kind, job.pipeline, job.queue) == ("fhir-export", "epic", "sync-jobs")
