"""Authentication and tenancy: 401/403 exactly as the seed, header or query key, revocation."""

import pytest
from fastapi.testclient import TestClient

from tests.conftest import OTHER_PARTNER, PARTNER

BASE = f"/api/voices/{PARTNER}"


def test_missing_key_is_401(anon_client):
    response = anon_client.get(BASE)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key"}


def test_wrong_key_is_401(anon_client, api_key):
    response = anon_client.get(BASE, headers={"X-Api-Key": api_key + "x"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key"}


def test_query_parameter_key_works(anon_client, api_key):
    assert anon_client.get(BASE, params={"api_key": api_key}).status_code == 200


def test_key_for_other_partner_is_403(anon_client, api_key):
    response = anon_client.get(f"/api/voices/{OTHER_PARTNER}", headers={"X-Api-Key": api_key})
    assert response.status_code == 403
    assert response.json() == {"detail": "Access denied"}


def test_unknown_partner_is_403_not_500(anon_client, api_key):
    response = anon_client.post("/api/voices/no-such-partner/empty", data={"name": "x"}, headers={"X-Api-Key": api_key})
    assert response.status_code == 403


def test_revoked_key_is_401(anon_client, services):
    key, record = services.api_keys.create("temp", [PARTNER])
    assert anon_client.get(BASE, headers={"X-Api-Key": key}).status_code == 200
    assert services.api_keys.revoke_by_id(record.key_id)
    assert anon_client.get(BASE, headers={"X-Api-Key": key}).status_code == 401


def test_wildcard_key_reaches_every_partner(anon_client, services):
    key, _ = services.api_keys.create("admin", ["*"])
    for partner in (PARTNER, OTHER_PARTNER, "anyone"):
        assert anon_client.get(f"/api/voices/{partner}", headers={"X-Api-Key": key}).status_code == 200


def test_keys_are_stored_hashed(services, api_key):
    items = services.dynamodb.scan(TableName=services.settings.table_name)["Items"]
    assert api_key not in str(items)


# Every partner-scoped route (paths relative to BASE, or absolute); test_every_partner_route_is_listed
# keeps this list complete as routes are added.
PARTNER_ROUTES = [
    ("get", ""),
    ("post", ""),
    ("post", "/empty"),
    ("get", "/v"),
    ("delete", "/v"),
    ("put", "/v/name"),
    ("post", "/v/samples"),
    ("get", "/v/samples/1"),
    ("delete", "/v/samples/1"),
    ("get", "/v/samples-bundle"),
    ("post", "/v/split"),
    ("post", "/v/embed"),
    ("get", "/v/test-samples"),
    ("get", "/v/test-samples/test_1_1.opus"),
    ("delete", "/v/test-files/kyutai"),
    ("put", "/v/preferred-sample"),
    ("post", "/v/cancel"),
    ("post", f"/api/uploads/{PARTNER}"),
]


def _url(path: str) -> str:
    return path if path.startswith("/api/") else f"{BASE}{path}"


@pytest.mark.parametrize(("method", "path"), PARTNER_ROUTES)
@pytest.mark.parametrize("key_in", ["header", "query"])
def test_other_partners_key_cannot_touch_any_route(app, other_api_key, client, method, path, key_in, all_bucket_keys):
    client.post(f"{BASE}/empty", data={"name": "v"})
    before = all_bucket_keys()
    intruder = TestClient(app, raise_server_exceptions=False)
    kwargs = {"headers": {"X-Api-Key": other_api_key}} if key_in == "header" else {"params": {"api_key": other_api_key}}
    # With a plausible body too, so the refusal cannot depend on the request failing validation first.
    if method in ("post", "put"):
        kwargs["data" if not path.startswith("/api/uploads") else "json"] = (
            {"filename": "x.wav", "size_bytes": 10} if path.startswith("/api/uploads") else {"name": "w"}
        )
    response = getattr(intruder, method)(_url(path), **kwargs)
    assert response.status_code == 403
    assert response.json() == {"detail": "Access denied"}
    assert client.get(f"{BASE}/v").status_code == 200
    assert [v["name"] for v in client.get(BASE).json()] == ["v"]
    assert all_bucket_keys() == before


def test_every_partner_route_is_listed(app):
    """A new partner-scoped route must join PARTNER_ROUTES, or this fails (read from the OpenAPI
    document, which lists every operation whatever the router nesting)."""
    concrete = {
        "{partner}": PARTNER,
        "{voice}": "v",
        "{index}": "1",
        "{filename}": "test_1_1.opus",
        "{tts_type}": "kyutai",
    }
    documented = set()
    for template, operations in app.openapi()["paths"].items():
        if "{partner}" not in template:
            continue
        for placeholder, value in concrete.items():
            template = template.replace(placeholder, value)
        documented |= {(method, template) for method in operations}
    listed = {(method, _url(path)) for method, path in PARTNER_ROUTES}
    assert len(documented) >= 17
    assert documented <= listed, sorted(documented - listed)


def test_cli_creates_lists_and_revokes(services, capsys, monkeypatch, anon_client):
    from voice_onboarding.cli import keys as cli

    monkeypatch.setattr(cli, "make_client", lambda service, settings: services.dynamodb)
    monkeypatch.setenv("TABLE_NAME", services.settings.table_name)
    from voice_onboarding.settings import get_settings

    get_settings.cache_clear()
    try:
        assert cli.main(["create", "--name", "acme", "--partner", PARTNER]) == 0
        out = capsys.readouterr().out
        api_key = out.split("api_key: ")[1].strip()
        key_id = out.split("key_id: ")[1].split()[0]
        assert anon_client.get(BASE, headers={"X-Api-Key": api_key}).status_code == 200
        assert cli.main(["list"]) == 0
        listed = capsys.readouterr().out
        assert key_id in listed and api_key not in listed
        assert cli.main(["revoke", key_id]) == 0
        assert anon_client.get(BASE, headers={"X-Api-Key": api_key}).status_code == 401
        assert cli.main(["revoke", "deadbeef"]) == 1
    finally:
        get_settings.cache_clear()
