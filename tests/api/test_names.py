"""Every accepted voice name works on every route (non-ASCII, RTL, emoji, very long, dots, spaces,
quotes, URL metacharacters), headers built from names are always valid (RFC 6266/5987), and partner
names follow one rule on every partner route, the wildcard living only in key grants."""

from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest
from werkzeug.http import parse_options_header

from tests.conftest import PARTNER
from tests.tricky_names import VOICE_NAMES as NAMES
from voice_onboarding.cli import keys as keys_cli
from voice_onboarding.content_disposition import content_disposition
from voice_onboarding.domain.partner import PARTNER_RULE
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.storage import keys

BASE = f"/api/voices/{PARTNER}"


def url(name: str) -> str:
    return f"{BASE}/{quote(name, safe='')}"


def download_name(header: str) -> str:
    """What a client saves the file as (werkzeug prefers filename* over the ASCII fallback)."""
    header.encode("latin-1")  # a valid header value at all
    _, options = parse_options_header(header)
    return options["filename"]


@pytest.mark.parametrize(
    "filename",
    ["a.opus", "голос-😀-samples.zip", 'q"b\\c.zip', "שלום עולם.zip", "%20?#.zip", "😀", "..", "a;b=c.zip"],
)
def test_content_disposition_round_trips_any_name(filename):
    header = content_disposition(filename)
    assert header.isascii()
    assert download_name(header) == filename
    _, options = parse_options_header(header.split("; filename*=")[0])  # what an RFC 2616-only client sees
    fallback = options["filename"]
    assert fallback.isascii() and '"' not in fallback and "\\" not in fallback and "%" not in fallback
    assert fallback.strip("._-")  # never empty or a bare dot name


def test_plain_ascii_names_keep_the_simple_form():
    assert content_disposition("3.opus") == 'attachment; filename="3.opus"'
    assert content_disposition("ref.wav", "inline") == 'inline; filename="ref.wav"'


def _finish(services: Any, name: str, job: str) -> None:
    services.voices.finish_job(PARTNER, name, job, JobStatus.COMPLETED)


@pytest.mark.parametrize("name", NAMES, ids=lambda n: n.encode("unicode_escape").decode()[:40])
def test_a_voice_with_any_accepted_name_works_on_every_route(client, services, wav_tone, name):
    audio = {"file": ("take 1 – é.wav", wav_tone.read_bytes(), "audio/wav")}
    created = client.post(BASE, data={"name": name}, files=audio)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
    _finish(services, name, "splitting")
    assert [v["name"] for v in client.get(BASE).json()] == [name]
    assert client.get(url(name)).json()["name"] == name

    uploaded = client.post(f"{url(name)}/samples", files=audio)
    assert uploaded.status_code == 201, uploaded.text
    index = uploaded.json()["index"]
    sample = client.get(f"{url(name)}/samples/{index}")
    assert sample.status_code == 200 and download_name(sample.headers["content-disposition"]) == f"{index}.opus"
    bundle = client.get(f"{url(name)}/samples-bundle")
    assert bundle.status_code == 200, bundle.text
    assert download_name(bundle.headers["content-disposition"]) == f"{name}-samples.zip"
    preferred = client.put(f"{url(name)}/preferred-sample", data={"sample_index": str(index)})
    assert preferred.status_code == 200 and preferred.json()["preferred_sample_index"] == index

    split = client.post(f"{url(name)}/split", data={"max_samples": "3", "sample_duration": "5"})
    assert split.status_code == 202, split.text
    _finish(services, name, "splitting")
    embed = client.post(f"{url(name)}/embed")
    assert embed.status_code == 202, embed.text
    # The embedding left a test sample and a ZIP behind (as the GPU job would).
    record = services.voices.require(PARTNER, name)
    test_key = keys.test_samples_prefix(PARTNER, record.voice_id, "kyutai") + "test_1_1.opus"
    services.blobs.put_bytes(test_key, b"opus")
    zip_key = keys.embedding_zip_key(PARTNER, record.voice_id, "kyutai")
    services.blobs.put_bytes(zip_key, b"zip")
    services.voices.finish_job(PARTNER, name, "embedding", JobStatus.COMPLETED, extra={"embedding_zip_key": zip_key})
    details = client.get(url(name)).json()
    zip_disposition = parse_qs(urlparse(details["embedding_zip_url"]).query)["response-content-disposition"][0]
    assert download_name(zip_disposition) == f"{name}-kyutai.zip"
    listed = client.get(f"{url(name)}/test-samples").json()
    assert [f["filename"] for f in listed] == ["test_1_1.opus"]
    test_sample = client.get(f"{url(name)}/test-samples/test_1_1.opus")
    assert test_sample.status_code == 200 and test_sample.content == b"opus"
    assert client.delete(f"{url(name)}/test-files/kyutai").status_code == 200

    renamed = f"{name[:250]}-2"
    assert client.put(f"{url(name)}/name", data={"name": renamed}).status_code == 200
    assert client.put(f"{url(renamed)}/name", data={"name": name}).json()["name"] == name
    assert client.delete(f"{url(name)}/samples/{index}").status_code == 200
    assert client.delete(url(name)).status_code == 200
    assert client.get(BASE).json() == []
    assert list(services.blobs.list_keys(keys.voice_prefix(PARTNER, record.voice_id))) == []


def test_a_large_bundle_redirect_names_the_file_safely(client, services, wav_tone):
    name = "голос-😀"
    assert client.post(f"{BASE}/empty", data={"name": name}).status_code == 201
    client.post(f"{url(name)}/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})
    services.settings = services.settings.model_copy(update={"max_inline_download_bytes": 10})
    response = client.get(f"{url(name)}/samples-bundle", follow_redirects=False)
    assert response.status_code == 307
    disposition = parse_qs(urlparse(response.headers["location"]).query)["response-content-disposition"][0]
    assert download_name(disposition) == f"{name}-samples.zip"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (".", "'.' or '..'"),
        ("..", "'.' or '..'"),
        ("a/b", "slashes"),
        ("tab\there", "control"),
        ("del\x7f", "control"),
        ("😀" * 255, "bytes"),
        ("x" * 256, "1-255"),
        ("   ", "1-255"),
    ],
)
def test_unaddressable_names_are_refused_with_the_rule(client, name, fragment):
    response = client.post(f"{BASE}/empty", data={"name": name})
    assert response.status_code == 422 and fragment in response.json()["detail"], response.text
    assert client.get(BASE).json() == []


def _partner_routes(client: Any) -> list[tuple[str, str]]:
    """Every documented operation with a partner in its path, other parameters filled in."""
    fill = {"{voice}": "v", "{index}": "1", "{filename}": "test_1_1.opus", "{tts_type}": "kyutai"}
    routes = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if "{partner}" not in path:
            continue
        for placeholder, value in fill.items():
            path = path.replace(placeholder, value)
        routes.extend((method.upper(), path) for method in operations)
    return routes


@pytest.mark.parametrize("partner", ["*", "My-Partner", "p" * 129, "pärtner", "a.b", "a b"])
def test_every_partner_route_refuses_a_name_outside_the_rule(app, services, partner):
    from fastapi.testclient import TestClient

    wildcard_key, _ = services.api_keys.create("admin", ["*"])
    client = TestClient(app, headers={"X-Api-Key": wildcard_key}, raise_server_exceptions=False)
    routes = _partner_routes(client)
    assert len(routes) >= 17
    for method, path in routes:
        response = client.request(method, path.replace("{partner}", quote(partner, safe="")))
        assert (response.status_code, response.json()) == (422, {"detail": PARTNER_RULE}), (method, path)
    assert list(services.blobs.list_keys("")) == []


def test_a_partner_named_by_the_rule_works_with_a_wildcard_key(app, services):
    from fastapi.testclient import TestClient

    wildcard_key, _ = services.api_keys.create("admin", ["*"])
    client = TestClient(app, headers={"X-Api-Key": wildcard_key}, raise_server_exceptions=False)
    for partner in ("a", "p" * 128, "acme_prod-2"):
        assert client.post(f"/api/voices/{partner}/empty", data={"name": "v"}).status_code == 201


def test_the_wildcard_exists_only_in_key_grants(services, capsys, monkeypatch):
    services.api_keys.create("admin", ["*"])
    services.api_keys.create("two", ["acme", "acme_staging-2"])
    for bad in (["Acme"], ["a*"], ["acme", "*x"], []):
        with pytest.raises(ValueError):
            services.api_keys.create("bad", bad)
    with pytest.raises(SystemExit) as exit_info:
        keys_cli.main(["create", "--name", "x", "--partner", "ACME"])
    assert exit_info.value.code == 2 and "lowercase letters" in capsys.readouterr().err


def test_openapi_documents_the_partner_rule(client):
    schema = client.get("/openapi.json").json()
    [partner] = [p for p in schema["paths"]["/api/voices/{partner}"]["get"]["parameters"] if p["name"] == "partner"]
    assert partner["schema"]["pattern"] == "^[a-z0-9_-]{1,128}$"
    assert "lowercase letters" in partner["description"]
