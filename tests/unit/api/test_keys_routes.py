"""``/keys``: created with the token shown once (and working), listed without tokens,
revoked so the token stops working at once; admin only."""

from __future__ import annotations

from pacsync.domain.access import Role

from .conftest import Api, problem


def test_a_key_is_created_its_token_shown_once_and_working(api: Api) -> None:
    response = api.post("/keys", json={"name": "ci", "role": "operator", "rate_limit_per_min": 120})
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["token"].startswith(f"psk_{made['id']}_")
    assert (made["name"], made["role"], made["active"], made["rate_limit_per_min"]) == (
        "ci",
        "operator",
        True,
        120,
    )
    auth = {"Authorization": f"Bearer {made['token']}"}
    assert api.get("/jobs", as_=None, headers=auth).status_code == 200
    listed = api.get("/keys").json()
    assert made["id"] in [k["id"] for k in listed]
    assert made["token"] not in api.get("/keys").text
    assert all("token" not in k for k in listed)
    (entry,) = api.audit("key.create")
    assert (entry["target"], entry["detail"]) == (made["id"], {"name": "ci", "role": "operator"})
    assert made["token"] not in str(entry)


def test_a_revoked_key_stops_working_and_is_listed_as_revoked(api: Api) -> None:
    made = api.post("/keys", json={"name": "temp", "role": "viewer"}).json()
    auth = {"Authorization": f"Bearer {made['token']}"}
    assert api.get("/jobs", as_=None, headers=auth).status_code == 200
    response = api.delete(f"/keys/{made['id']}")
    assert response.json() == {"id": made["id"], "revoked": True}
    problem(api.get("/jobs", as_=None, headers=auth), 401, "PACS-002")
    problem(api.delete(f"/keys/{made['id']}"), 409, "PACS-107")
    problem(api.delete("/keys/0123456789abcdef"), 404, "PACS-104")
    problem(api.delete("/keys/not-a-key"), 422, "PACS-105")
    revoked = next(k for k in api.get("/keys").json() if k["id"] == made["id"])
    assert revoked["active"] is False
    assert revoked["revoked_at"] is not None
    active = [k["id"] for k in api.get("/keys?include_revoked=false").json()]
    assert made["id"] not in active
    assert len(active) == 3
    outcomes = [e["outcome"] for e in api.audit("key.revoke")]
    assert outcomes == ["PACS-104", "PACS-107", "ok"]  # newest first; the 422 ran no route


def test_bad_keys_are_refused(api: Api) -> None:
    problem(api.post("/keys", json={"name": "x", "role": "root"}), 422, "PACS-105")
    problem(api.post("/keys", json={"name": " ", "role": "viewer"}), 422, "PACS-105")
    problem(
        api.post("/keys", json={"name": "x", "role": "viewer", "rate_limit_per_min": 0}),
        422,
        "PACS-105",
    )
    assert len(api.store.api_keys.list()) == 3


def test_keys_are_for_admins(api: Api) -> None:
    problem(api.get("/keys", as_=Role.OPERATOR), 403, "PACS-002")
    problem(
        api.post("/keys", json={"name": "x", "role": "admin"}, as_=Role.OPERATOR), 403, "PACS-002"
    )
    assert len(api.store.api_keys.list()) == 3
    (entry,) = api.audit("key.create")
    assert entry["outcome"] == "denied"
