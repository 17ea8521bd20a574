"""End to end through the Lambda entry point: an API Gateway REST event -> mangum -> FastAPI."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PARTNER

EVENTS = Path(__file__).resolve().parents[2] / "events"


class LambdaContext:
    function_name = "voice-onboarding-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:voice-onboarding-api"
    aws_request_id = "52fdfc07-2182-154f-163f-5f0f9a621d72"


@pytest.fixture
def lambda_handler(services, monkeypatch):
    from voice_onboarding.handlers import api

    monkeypatch.setattr(api.app.state, "services", services, raising=False)
    return api.handler


def _event(
    method: str, path: str, api_key: str, body: bytes | None = None, content_type: str | None = None
) -> dict[str, Any]:
    event = json.loads((EVENTS / "api_list_voices.json").read_text())
    headers = {**event["headers"], "X-Api-Key": api_key}
    if content_type:
        headers["Content-Type"] = content_type
    event.update(
        httpMethod=method,
        path=path,
        headers=headers,
        multiValueHeaders={k: [v] for k, v in headers.items()},
        pathParameters={"proxy": path.lstrip("/")},
    )
    event["requestContext"].update(httpMethod=method, path=f"/Prod{path}")
    if body is not None:
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
    return event


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "----voiceboundary7d"
    parts = []
    for key, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    for key, (filename, data) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; filename="{filename}"\r\n'
            f"Content-Type: audio/wav\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_list_through_lambda_handler(lambda_handler, api_key):
    response = lambda_handler(_event("GET", f"/api/voices/{PARTNER}", api_key), LambdaContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == []


def test_unauthorized_through_lambda_handler(lambda_handler):
    response = lambda_handler(_event("GET", f"/api/voices/{PARTNER}", "wrong"), LambdaContext())
    assert response["statusCode"] == 401
    assert json.loads(response["body"]) == {"detail": "Invalid API key"}


def test_create_upload_and_download_binary_through_lambda(lambda_handler, api_key, wav_tone):
    body, content_type = _multipart({"name": "speaker-2"}, {})
    created = lambda_handler(
        _event("POST", f"/api/voices/{PARTNER}/empty", api_key, body, content_type), LambdaContext()
    )
    assert created["statusCode"] == 201, created["body"]
    body, content_type = _multipart({}, {"file": ("sample.wav", wav_tone.read_bytes())})
    uploaded = lambda_handler(
        _event("POST", f"/api/voices/{PARTNER}/speaker-2/samples", api_key, body, content_type), LambdaContext()
    )
    assert uploaded["statusCode"] == 201, uploaded["body"]
    downloaded = lambda_handler(_event("GET", f"/api/voices/{PARTNER}/speaker-2/samples/1", api_key), LambdaContext())
    assert downloaded["statusCode"] == 200
    # Binary audio must travel base64-encoded, or API Gateway corrupts it.
    assert downloaded["isBase64Encoded"] is True
    assert base64.b64decode(downloaded["body"])[:4] == b"OggS"


def test_handler_logs_structured_json_with_correlation_id(lambda_handler, api_key):
    import io
    import logging

    from voice_onboarding.api import app as app_module

    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(app_module.logger.registered_formatter)
    app_module.logger.addHandler(capture)
    app_module.logger.setLevel("INFO")
    try:
        lambda_handler(_event("GET", f"/api/voices/{PARTNER}", api_key), LambdaContext())
    finally:
        app_module.logger.setLevel("WARNING")
        app_module.logger.removeHandler(capture)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request_logs = [line for line in lines if line.get("message") == "request"]
    assert request_logs, lines
    log = request_logs[-1]
    assert log["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert log["status"] == 200 and log["path"] == f"/api/voices/{PARTNER}"
    assert api_key not in stream.getvalue()


@pytest.mark.parametrize("name", ["percent%20and?query#hash&amp+plus", "голос-😀 שלום"])
def test_any_voice_name_through_lambda(lambda_handler, api_key, wav_tone, name):
    """API Gateway (REST) hands the Lambda the path still percent-encoded and mangum decodes it once:
    names with URL metacharacters or non-ASCII text reach the route intact, and their bundle's
    Content-Disposition survives the trip (the test client decodes paths twice, so this runs here)."""
    from urllib.parse import quote

    from werkzeug.http import parse_options_header

    body, content_type = _multipart({"name": name}, {})
    created = lambda_handler(
        _event("POST", f"/api/voices/{PARTNER}/empty", api_key, body, content_type), LambdaContext()
    )
    assert created["statusCode"] == 201, created["body"]
    path = f"/api/voices/{PARTNER}/{quote(name, safe='')}"
    body, content_type = _multipart({}, {"file": ("sample.wav", wav_tone.read_bytes())})
    uploaded = lambda_handler(_event("POST", f"{path}/samples", api_key, body, content_type), LambdaContext())
    assert uploaded["statusCode"] == 201, uploaded["body"]
    details = lambda_handler(_event("GET", path, api_key), LambdaContext())
    assert details["statusCode"] == 200 and json.loads(details["body"])["name"] == name
    bundle = lambda_handler(_event("GET", f"{path}/samples-bundle", api_key), LambdaContext())
    assert bundle["statusCode"] == 200, bundle["body"]
    _, options = parse_options_header(bundle["headers"]["content-disposition"])
    assert options["filename"] == f"{name}-samples.zip"
    deleted = lambda_handler(_event("DELETE", path, api_key), LambdaContext())
    assert deleted["statusCode"] == 200
