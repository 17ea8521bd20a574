"""docs/openapi.json is the app's document (regenerate with `make openapi`), and the client's endpoint
table and models agree with it: every operation covered, paths/methods/fields as the API has them."""

import json
from typing import Any

import pytest
from infra.openapi_export import DEFAULT_PATH, openapi_document, render
from pydantic import BaseModel

from voice_onboarding_client import models
from voice_onboarding_client.client import ENDPOINTS


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = _ref_name(schema)
    return document["components"]["schemas"][name] if name else schema


def test_committed_document_matches_the_app(document: dict[str, Any]) -> None:
    committed = DEFAULT_PATH.read_text() if DEFAULT_PATH.exists() else ""
    assert committed == render(document), "docs/openapi.json drifted from the app: run `make openapi` and commit it"


def test_every_operation_has_a_client_endpoint(document: dict[str, Any]) -> None:
    covered = {(e.method, e.path) for e in ENDPOINTS.values()}
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    missing = sorted(operations - covered)
    assert not missing, f"API operations without a client method (add to ENDPOINTS, the client and the CLI): {missing}"
    unknown = sorted(covered - operations)
    assert not unknown, f"client endpoints the API does not have: {unknown}"


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_endpoint_matches_the_operation(document: dict[str, Any], name: str) -> None:
    endpoint = ENDPOINTS[name]
    operation = document["paths"][endpoint.path][endpoint.method.lower()]
    success = next(v for k, v in operation["responses"].items() if k.startswith("2"))
    content = success.get("content", {})
    if endpoint.response is None:
        # Downloads: no JSON model (or an untyped one, like /health).
        schema = content.get("application/json", {}).get("schema", {})
        assert _ref_name(schema) is None and "items" not in schema, f"{name} returns a model the client ignores"
    else:
        schema = content["application/json"]["schema"]
        if endpoint.many:
            assert schema.get("type") == "array", f"{name}: the API returns one object, not a list"
            schema = schema["items"]
        assert _ref_name(schema) == endpoint.response.__name__, f"{name}: the API returns {schema}"

    body = operation.get("requestBody", {}).get("content", {})
    if endpoint.form:
        form_types = ("multipart/form-data", "application/x-www-form-urlencoded")
        form_schema = next(v["schema"] for k, v in body.items() if k in form_types)
        fields = set(_resolve(document, form_schema)["properties"])
        assert set(endpoint.form) == fields, f"{name}: client sends {sorted(endpoint.form)}, API takes {sorted(fields)}"
    if endpoint.json_body is not None:
        schema = body["application/json"]["schema"]
        schema = next((s for s in schema.get("anyOf", [schema]) if "$ref" in s), schema)
        assert _ref_name(schema) == endpoint.json_body.__name__
    if not endpoint.form and endpoint.json_body is None:
        assert not body, f"{name}: the API takes a body the client does not send"

    query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and p["name"] != "api_key"}
    assert set(endpoint.query) == query, f"{name}: query parameters {sorted(query)}"
    path_params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
    assert {f"{{{p}}}" for p in path_params} == {s for s in endpoint.path.split("/") if s.startswith("{")}


def _client_models() -> dict[str, type[BaseModel]]:
    return {
        name: cls
        for name, cls in vars(models).items()
        if isinstance(cls, type) and issubclass(cls, models.ApiModel) and cls is not models.ApiModel
    }


@pytest.mark.parametrize("name", sorted(_client_models()))
def test_model_fields_match_the_schema(document: dict[str, Any], name: str) -> None:
    schemas = document["components"]["schemas"]
    assert name in schemas, f"client model {name} has no schema of that name in the API"
    schema = schemas[name]
    client_fields = set(_client_models()[name].model_fields)
    api_fields = set(schema["properties"])
    assert client_fields == api_fields, f"{name}: client {sorted(client_fields)} vs API {sorted(api_fields)}"
    cls = _client_models()[name]
    for field in schema.get("required", []):
        # A field the API always sends is required in the client model too (request models excepted:
        # the client leaves out what the caller did not set).
        if name not in ("TrainRequest", "UploadRequest"):
            assert cls.model_fields[field].is_required(), f"{name}.{field} is required by the API"


def test_json_round_trip_of_the_examples(document: dict[str, Any]) -> None:
    """The seed's example bodies parse into the client's models."""
    voice = {
        "name": "speaker-1",
        "status": {"splitting": "completed", "embedding": "completed"},
        "samples": [{"index": 1, "source_timestamp": "00:00", "duration": 15.0}],
        "embedding_type": "kyutai",
        "embedding_info": {
            "tts_type": "kyutai",
            "last_update_status": "success",
            "last_update_time": "2025-01-15T10:30:00Z",
            "test_samples": [{"sample_index": 1, "sentence_index": 1, "filename": "test_1_1.opus"}],
            "sample_scores": [{"sample_index": 3, "score": 0.92}],
        },
        "preferred_sample_index": 3,
        "a_future_field": True,
    }
    parsed = models.VoiceDetails.model_validate(json.loads(json.dumps(voice)))
    assert parsed.embedding_info is not None and parsed.embedding_info.sample_scores[0].score == 0.92
    assert parsed.model_dump()["a_future_field"] is True  # a newer server's field survives
