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


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
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
    ],
)
def test_other_partners_key_cannot_touch_any_route(app, other_api_key, client, method, path):
    client.post(f"{BASE}/empty", data={"name": "v"})
    intruder = TestClient(app, headers={"X-Api-Key": other_api_key}, raise_server_exceptions=False)
    response = getattr(intruder, method)(f"{BASE}{path}")
    assert response.status_code == 403
    assert response.json() == {"detail": "Access denied"}
    assert client.get(f"{BASE}/v").status_code == 200


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
